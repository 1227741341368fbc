"""Fuzzing checkpoints as a stranger would craft them: every reader succeeds or refuses in one line.

A real checkpoint of a small training run (taken mid-epoch, so the queue
holds events in flight) is mutated by hypothesis: fields deleted, values
swapped for other types, numbers pushed to extremes, deep nesting, duplicate
keys, non-finite numbers, and files replaced by links, FIFOs, truncations or
junk. After a JSON mutation the manifest's own SHA-256 is resealed, so only
validation (not the checksum) can catch it. Each reader — ``checkpoint
verify``, ``inspect``, ``list``, ``predict`` and a short ``run`` — must then
either succeed or answer with exactly one ``nnsim: error:`` line, within a
time bound: never a traceback, never a hang.

Set ``NNSIM_FUZZ_EXAMPLES`` for a longer campaign; ``NNSIM_FUZZ_REPORT=FILE``
appends the count of each outcome as a JSON line.
"""

from __future__ import annotations

import collections
import json
import os
import re
import resource
import shutil
import signal
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, REPO, example_args, make_idx_dataset, run_nnsim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim.checkpoint.manifest import manifest_digest
from nnsim.cli.main import cli

EXAMPLES = int(os.environ.get("NNSIM_FUZZ_EXAMPLES", "60"))
READER_SECONDS = 20
MEMORY_BOUND = 4 * 2**30
OUTSIDE_SECRET = b"SECRET-OUTSIDE-BYTES-0123456789"
OUTCOMES: collections.Counter = collections.Counter()

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict:
    """A checkpoint folder of a real run (mid-epoch and epoch-end checkpoints) and its inputs."""
    root = tmp_path_factory.mktemp("ckpt_fuzz")
    dataset = make_idx_dataset(root / "toy", train_per_class=6, test_per_class=3)
    folder = root / "checkpoints"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-steps=3",
        f"--checkpoint-dir={folder}",
        "--",
        *example_args(dataset, None, "--epochs=2", "--batchSize=8", "--hiddenLayerSize=4"),
    )
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in folder.iterdir() if path.is_dir())
    assert len(names) >= 2, names
    secret = root / "outside-secret.bin"
    secret.write_bytes(OUTSIDE_SECRET * 37)
    image = REPO / Path(EXAMPLE).parent / "eval"
    # A reader that allocates without bound must fail this test, not the machine.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, hard))
    try:
        yield {"folder": folder, "name": names[0], "secret": secret, "image": image}
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    report = os.environ.get("NNSIM_FUZZ_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps({"fuzz": "checkpoint", **dict(sorted(OUTCOMES.items()))}) + "\n")


# Mutations of the manifest ---------------------------------------------------------
EXTREMES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    2**70,
    -(2**70),
    1e308,
    -1e-308,
    0.5,
    "",
    "x" * 1000,
    "64",
    "nan",
    "1us",
    "os:system",
    [],
    [0] * 5,
    {},
    {"__np__": "V", "value": 2_000_000_000},
    {"__np__": "float64", "value": 1.0},
    {"__enum__": "nosuch.Enum", "value": "X"},
    {"__tensor__": "no/such/tensor"},
]


def paths_of(value, prefix=()):
    """Every (path, value) inside a JSON tree, the root excluded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key), item
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index), item
            yield from paths_of(item, (*prefix, index))


def parent_of(tree, path):
    for part in path[:-1]:
        tree = tree[part]
    return tree


def swapped(value):
    """The same information in another JSON type."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return [value]
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return 0


def mutate_tree(manifest: dict, data: st.DataObject) -> str:
    """Apply one structural mutation to ``manifest``; return its description."""
    paths = [path for path, _ in paths_of(manifest) if path[0] != "manifest_sha256"]
    path = data.draw(st.sampled_from(paths), label="path")
    parent, key = parent_of(manifest, path), path[-1]
    current = parent[key]
    op = data.draw(st.sampled_from(["delete", "extreme", "swap", "negate", "grow", "nest"]))
    if op == "delete":
        del parent[key]
    elif op == "extreme":
        parent[key] = data.draw(st.sampled_from(EXTREMES), label="extreme")
    elif op == "swap":
        parent[key] = swapped(current)
    elif op == "negate" and isinstance(current, (int, float)) and not isinstance(current, bool):
        parent[key] = -current - 1
    elif op == "grow" and isinstance(current, (int, float)) and not isinstance(current, bool):
        parent[key] = current * 10**12 + 1
    elif op == "grow" and isinstance(current, list):
        parent[key] = current + current + [current[0] if current else 0]
    else:
        depth = data.draw(st.sampled_from([2, 50, 400]), label="depth")  # json.dumps recurses
        nested = current
        for _ in range(depth):
            nested = [nested]
        parent[key] = nested
    return f"{op} {'/'.join(map(str, path))}"


def reseal(manifest: dict) -> bytes:
    """Seal ``manifest`` as a careful forger would; a "nest" mutation is deeper than Python's
    default recursion limit lets json encode, so the limit is raised while sealing."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        manifest["manifest_sha256"] = manifest_digest(manifest)
        return (json.dumps(manifest, sort_keys=True) + "\n").encode()
    finally:
        sys.setrecursionlimit(limit)


def text_mutation(manifest: dict, data: st.DataObject) -> tuple[bytes, str]:
    """A manifest text that JSON alone cannot express as a dict: sealed as readers would see it."""
    kind = data.draw(st.sampled_from(["duplicate", "nonfinite", "deep", "junk", "empty"]))
    sealed = reseal(manifest)
    if kind == "duplicate":
        # The duplicate comes first, so a reader keeping the last key sees the sealed value.
        return sealed.replace(b"{", b'{"format": "other",', 1), kind
    if kind == "nonfinite":
        token = data.draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]))
        text = sealed.replace(b'"format_version": 1', b'"format_version": 1, "x": ' + token, 1)
        return text, f"{kind} {token.decode()}"
    if kind == "deep":
        depth = data.draw(st.sampled_from([1_000, 200_000]))
        return b'{"format": "nnsim-checkpoint", "x": ' + b"[" * depth + b"]" * depth + b"}", kind
    if kind == "junk":
        return sealed[: data.draw(st.integers(0, len(sealed) - 1))] + b"\xff\x00", kind
    return b"", kind


# Mutations of the files ---------------------------------------------------------------
def file_mutation(folder: Path, checkpoint: Path, secret: Path, data: st.DataObject) -> str:
    files = sorted(p.name for p in checkpoint.iterdir())
    target = data.draw(st.sampled_from([*files, "../latest"]), label="file")
    path = (checkpoint / target).resolve() if target == "../latest" else checkpoint / target
    op = data.draw(st.sampled_from(["fifo", "zero", "outside", "dir", "truncate", "append"]))
    size = path.stat().st_size
    path.unlink()
    if op == "fifo":
        os.mkfifo(path)
    elif op == "zero":
        path.symlink_to("/dev/zero")
    elif op == "outside":
        path.symlink_to(secret)
    elif op == "dir":
        path.mkdir()
    elif op == "truncate":
        path.write_bytes(b"\0" * (size // 2))
    else:
        path.write_bytes(b"\0" * (size + 1))
    return f"{op} {target}"


# Readers --------------------------------------------------------------------------------
class Hang(Exception):
    pass


@contextmanager
def time_bound(seconds: int):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def readers(folder: Path, checkpoint: Path, image: Path) -> list[list[str]]:
    """The commands a user would point at a checkpoint someone sent them."""
    stop_ps = int(checkpoint.name.rsplit("_", 1)[1]) + 20_000_000
    return [
        ["checkpoint", "verify", str(checkpoint)],
        ["checkpoint", "inspect", str(checkpoint)],
        ["checkpoint", "list", str(folder)],
        ["predict", "--checkpoint", str(checkpoint), "--images", str(image)],
        ["run", str(checkpoint), "--stop-at", f"{stop_ps}ps"],
    ]


def check_reader(args: list[str], what: str, secret: Path) -> str:
    """Run one reader in-process; return 'ok' or 'refused', fail the test on anything else."""
    runner = CliRunner()
    try:
        with time_bound(READER_SECONDS):
            result = runner.invoke(cli, args, catch_exceptions=True)
    except Hang as hang:
        pytest.fail(f"{' '.join(args[:2])} hung after {what}: {hang}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"{' '.join(args[:2])} raised after {what}:\n{trace}")
    stderr = result.stderr.strip().splitlines()
    assert "Traceback" not in result.output, (what, result.output)
    assert OUTSIDE_SECRET.decode()[:8] not in result.output + result.stderr, what
    size = secret.stat().st_size  # never quoted (as a number: a folder name may contain its digits)
    assert not re.search(rf"(?<![\w/]){size}(?!\w)", result.stderr), (what, result.stderr)
    if result.exit_code == 0:
        return "ok"
    assert len(stderr) == 1 and stderr[0].startswith("nnsim: error: "), (args, what, stderr)
    return "refused"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_reader_answers_a_mutated_checkpoint_in_one_line(pristine, tmp_path_factory, data):
    work = tmp_path_factory.mktemp("mutant")
    folder = work / "checkpoints"
    shutil.copytree(pristine["folder"], folder, symlinks=True)
    checkpoint = folder / pristine["name"]
    manifest_file = checkpoint / "manifest.json"
    manifest = json.loads(manifest_file.read_bytes())
    family = data.draw(st.sampled_from(["tree", "tree", "tree", "text", "file"]), label="family")
    if family == "tree":
        what = mutate_tree(manifest, data)
        manifest_file.write_bytes(reseal(manifest))
    elif family == "text":
        text, what = text_mutation(manifest, data)
        manifest_file.write_bytes(text)
    else:
        what = file_mutation(folder, checkpoint, pristine["secret"], data)
    for args in readers(folder, checkpoint, pristine["image"]):
        outcome = check_reader(args, what, pristine["secret"])
        OUTCOMES[f"{args[0]} {args[1]}".replace(str(checkpoint), "C") + f": {outcome}"] += 1
    OUTCOMES["cases"] += 1
