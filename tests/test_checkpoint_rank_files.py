"""Checkpoints with one tensor file set per rank, as parallel runs write them, read by every reader.

The files are written here the way each rank of a parallel run writes its
own (`nnsim.parallel.checkpoint`: the format's `plan_files` with the rank's
prefix, `write_files` into the one staging area, then rank 0's `commit`),
without MPI. Then they are damaged or forged as a stranger would: a rank's
file missing, two ranks' files swapped, a file named twice, a file name
escaping the folder. Every case is refused in one line naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from nnsim.checkpoint import CheckpointError, open_checkpoint, open_storage
from nnsim.checkpoint.format import commit, plan_files, point_latest, staged, write_files
from nnsim.checkpoint.manifest import reseal
from nnsim.parallel.checkpoint import rank_prefix

NAME = "checkpoint_1_5000"


def rank_tensors(rank: int) -> dict[str, np.ndarray]:
    """What rank ``rank`` holds: the same shapes on every rank (so sizes cannot tell files apart)."""
    rng = np.random.default_rng(rank)
    return {
        f"lp{rank}/weights": rng.standard_normal((4, 3)).astype(np.float32),
        f"lp{rank}/counts": np.arange(5, dtype=np.int64) + rank,
    }


def write_ranked(root: Path, ranks: int = 3) -> Path:
    """A checkpoint of ``ranks`` file sets written into one staging area, then committed."""
    storage = open_storage(root)
    files, entries = {}, {}
    with staged(storage, NAME) as staging:
        token = storage.staging_token(staging)
        for rank in range(ranks):  # each rank joins rank 0's staging area by its token
            where = staging if rank == 0 else storage.join_staging(NAME, token)
            got = write_files(
                storage, where, plan_files(rank_tensors(rank), NAME, rank_prefix(rank))
            )
            files.update(got[0])
            entries.update(got[1])
        commit(storage, staging, NAME, {"step": 3}, files, entries)
    point_latest(storage, NAME)
    return root / NAME


def rank_file(folder: Path, rank: int) -> Path:
    return folder / f"{rank_prefix(rank)}-00000-of-00001.safetensors"


def forge(folder: Path, change) -> None:
    """Change the manifest with ``change(manifest)`` and reseal its SHA-256."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(reseal(manifest)))


def test_a_checkpoint_of_three_ranks_reads_as_one_with_every_file_checked(tmp_path):
    folder = write_ranked(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"] + [
        rank_file(folder, r).name for r in range(3)
    ]
    storage, name = open_checkpoint(tmp_path)
    manifest, tensors = storage.load(name)
    assert sorted(manifest["files"]) == [rank_file(folder, r).name for r in range(3)]
    assert manifest["tensors"]["lp2/weights"]["file"] == rank_file(folder, 2).name
    for rank in range(3):
        for key, array in rank_tensors(rank).items():
            assert (tensors[key] == array).all() and tensors[key].dtype == array.dtype
    storage.verify(name)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_missing_rank_file_is_refused_naming_it(tmp_path):
    folder = write_ranked(tmp_path)
    rank_file(folder, 1).unlink()
    storage = open_storage(tmp_path)
    for read in (storage.verify, storage.load, storage.load_manifest):
        with pytest.raises(CheckpointError, match=rf"'{rank_file(folder, 1).name}' .* is missing"):
            read(NAME)


def test_two_ranks_files_swapped_are_refused_by_checksum_and_by_header(tmp_path):
    folder = write_ranked(tmp_path)
    zero, one = rank_file(folder, 0), rank_file(folder, 1)
    data = zero.read_bytes()
    zero.write_bytes(one.read_bytes())
    one.write_bytes(data)
    storage = open_storage(tmp_path)
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        storage.verify(NAME)
    # Without the checksums, each file's header still has to list the manifest's tensors.
    with pytest.raises(CheckpointError, match=r"disagrees with the manifest \(tensor 'lp"):
        storage.load(NAME, verify=False)


def test_a_file_named_twice_in_the_manifest_is_refused(tmp_path):
    folder = write_ranked(tmp_path)
    path = folder / "manifest.json"
    text = path.read_text()
    entry = json.dumps(rank_file(folder, 0).name)
    # The same file listed a second time in the files table (a duplicate key).
    forged = text.replace(
        '"files": {', '"files": {' + entry + ': {"bytes": 8, "sha256": "' + "0" * 64 + '"},', 1
    )
    assert forged != text
    path.write_text(forged)
    with pytest.raises(CheckpointError, match="appears twice"):
        open_storage(tmp_path).load_manifest(NAME, verify=False)


def test_a_tensor_moved_to_another_ranks_file_is_refused(tmp_path):
    folder = write_ranked(tmp_path)
    forge(folder, lambda m: m["tensors"]["lp1/weights"].update(file=rank_file(folder, 2).name))
    with pytest.raises(CheckpointError, match="disagrees with the manifest"):
        open_storage(tmp_path).load(NAME)


@pytest.mark.parametrize(
    "file",
    ["../outside.safetensors", "/etc/passwd", "sub/tensors-rank00001.safetensors", ".hidden"],
)
def test_a_file_name_escaping_the_folder_is_refused(tmp_path, file):
    folder = write_ranked(tmp_path)
    (tmp_path / "outside.safetensors").write_bytes(rank_file(folder, 1).read_bytes())

    def escape(manifest: dict) -> None:
        entry = manifest["files"].pop(rank_file(folder, 1).name)
        manifest["files"][file] = entry
        for tensor in manifest["tensors"].values():
            if tensor["file"] == rank_file(folder, 1).name:
                tensor["file"] = file

    forge(folder, escape)
    with pytest.raises(CheckpointError, match=r"is malformed \(file name"):
        open_storage(tmp_path).load(NAME)


def test_a_rank_that_does_not_see_rank_0s_folder_is_told_so(tmp_path):
    storage = open_storage(tmp_path / "ranks")
    with staged(storage, NAME) as staging:
        elsewhere = open_storage(tmp_path / "other")
        with pytest.raises(CheckpointError, match="not visible here; parallel checkpoints need"):
            elsewhere.join_staging(NAME, storage.staging_token(staging))
        with pytest.raises(CheckpointError, match="not visible here"):
            storage.join_staging("another_name", storage.staging_token(staging))
        os.symlink(staging, tmp_path / "ranks" / f".tmp-{NAME}-1-link")
        with pytest.raises(CheckpointError, match="not visible here"):
            storage.join_staging(NAME, str(tmp_path / "ranks" / f".tmp-{NAME}-1-link"))
        commit(storage, staging, NAME, {}, {}, {})
    assert open_storage(tmp_path / "ranks").list() == [NAME]


def test_memory_storage_is_not_shared_between_processes_so_rank_0_writes_its_files():
    storage = open_storage("memory://rank-files-test")
    with staged(storage, NAME) as staging:
        assert storage.staging_token(staging) is None
        storage.abort(staging)


# Fuzzing a real checkpoint laid out in rank files, every reader in one line ----------------
RANKS = 3


def split_by_rank(folder: Path, name: str) -> None:
    """Rewrite checkpoint ``name`` as a 3-rank run writes it: each component's tensors in
    the file set of the rank `linear`-like placement gives it, one manifest for all."""
    storage = open_storage(folder)
    manifest, tensors = storage.load(name)
    components = list(manifest["components"])
    owner = {c: index * RANKS // len(components) for index, c in enumerate(components)}
    shares: list[dict] = [{} for _ in range(RANKS)]
    for key, array in tensors.items():
        shares[owner.get(key.split("/", 1)[0], 0)][key] = np.array(array)
    storage.delete(name)
    files, entries = {}, {}
    with staged(storage, name) as staging:
        for rank, share in enumerate(shares):
            got = write_files(storage, staging, plan_files(share, name, rank_prefix(rank)))
            files.update(got[0])
            entries.update(got[1])
        commit(storage, staging, name, manifest, files, entries)
    point_latest(storage, name)


@pytest.fixture(scope="module")
def ranked(tmp_path_factory) -> dict:
    """The fuzz suite's real checkpoints (a short training run), in 3 rank file sets each."""
    import resource

    from conftest import EXAMPLE, REPO, example_args, make_idx_dataset, run_nnsim
    from test_checkpoint_fuzz import MEMORY_BOUND, OUTSIDE_SECRET

    root = tmp_path_factory.mktemp("ranked_fuzz")
    dataset = make_idx_dataset(root / "toy", train_per_class=6, test_per_class=3)
    folder = root / "checkpoints"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-steps=3",
        f"--checkpoint-dir={folder}",
        "--",
        *example_args(dataset, None, "--epochs=1", "--batchSize=8", "--hiddenLayerSize=4"),
    )
    assert result.returncode == 0, result.stderr
    names = sorted((p.name for p in folder.iterdir() if p.is_dir()), key=lambda n: n.split("_")[1])
    for name in names:
        split_by_rank(folder, name)
    assert len(list((folder / names[0]).glob("tensors-rank*"))) == RANKS
    secret = root / "outside-secret.bin"
    secret.write_bytes(OUTSIDE_SECRET * 37)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, hard))
    try:
        yield {
            "folder": folder,
            "name": names[0],
            "secret": secret,
            "image": REPO / Path(EXAMPLE).parent / "eval",
        }
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def rank_file_mutation(checkpoint: Path, data) -> str:
    """What can go wrong with rank files: one missing, two swapped, one copied over another."""
    from hypothesis import strategies as st

    files = sorted(p.name for p in checkpoint.glob("tensors-rank*"))
    first, second = data.draw(st.permutations(files), label="files")[:2]
    op = data.draw(st.sampled_from(["missing", "swap", "copy"]), label="rank op")
    if op == "missing":
        (checkpoint / first).unlink()
    elif op == "swap":
        a, b = (checkpoint / first).read_bytes(), (checkpoint / second).read_bytes()
        (checkpoint / first).write_bytes(b)
        (checkpoint / second).write_bytes(a)
    else:
        (checkpoint / second).write_bytes((checkpoint / first).read_bytes())
    return f"{op} {first} {second}"


def test_every_reader_answers_a_mutated_rank_checkpoint_in_one_line(ranked, tmp_path_factory):
    """The fuzz suite's mutations and the rank files' own, on a 3-rank layout."""
    import shutil

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from test_checkpoint_fuzz import (
        check_reader,
        file_mutation,
        mutate_tree,
        readers,
        text_mutation,
    )
    from test_checkpoint_fuzz import reseal as reseal_text

    outcomes = []

    @settings(
        max_examples=int(os.environ.get("NNSIM_FUZZ_EXAMPLES", "20")),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def case(data) -> None:
        work = tmp_path_factory.mktemp("mutant")
        folder = work / "checkpoints"
        shutil.copytree(ranked["folder"], folder, symlinks=True)
        checkpoint = folder / ranked["name"]
        manifest_file = checkpoint / "manifest.json"
        manifest = json.loads(manifest_file.read_bytes())
        family = data.draw(st.sampled_from(["tree", "text", "file", "rank", "rank"]))
        if family == "tree":
            what = mutate_tree(manifest, data)
            manifest_file.write_bytes(reseal_text(manifest))
        elif family == "text":
            text, what = text_mutation(manifest, data)
            manifest_file.write_bytes(text)
        elif family == "file":
            what = file_mutation(folder, checkpoint, ranked["secret"], data)
        else:
            what = rank_file_mutation(checkpoint, data)
        for args in readers(folder, checkpoint, ranked["image"]):
            outcome = check_reader(args, what, ranked["secret"])
            if family == "rank" and args[:2] == ["checkpoint", "verify"]:
                assert outcome == "refused", what  # every rank-file damage is caught
            outcomes.append(outcome)

    case()
    assert "refused" in outcomes
