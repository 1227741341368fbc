"""Retention deletes only what this run wrote; counts and periods that make no sense are refused.

Every checkpoint records the lineage (identity) of the run that wrote it; a
restarted run continues the lineage of its checkpoint. keep-last and
keep-best rank only the checkpoints of their own lineage, so another run's
checkpoints in a reused folder are kept (with one warning line), while a
restarted run keeps pruning what it wrote before the restart.
"""

from __future__ import annotations

import io

import pytest
from conftest import EXAMPLE, example_args, make_idx_dataset, run_nnsim
from test_checkpoint_run import build

from nnsim.checkpoint import DirStorage
from nnsim.checkpoint.manager import LINEAGE_KEY, Policy, enable
from nnsim.errors import ParamError

BOUND = 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_idx_dataset(tmp_path_factory.mktemp("retention") / "toy")


def train(folder, dataset, *options: str, epochs: int, hidden: int = 16, load: str | None = None):
    """One CLI run of the example checkpointing every epoch into ``folder``."""
    start = ["--load-checkpoint", load] if load else [EXAMPLE]
    result = run_nnsim(
        "run",
        *start,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={folder}",
        *options,
        *(
            []
            if load
            else [
                "--",
                *example_args(dataset, None, f"--epochs={epochs}", f"--hiddenLayerSize={hidden}"),
            ]
        ),
        timeout=BOUND,
    )
    assert result.returncode == 0, result.stderr
    return result


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("nnsim: warning: ")]


def test_another_models_eight_checkpoints_in_a_reused_folder_all_survive(tmp_path, dataset):
    folder = tmp_path / "shared"
    train(folder, dataset, epochs=8, hidden=16)
    theirs = DirStorage(folder).list()
    assert len(theirs) == 8
    result = train(
        folder,
        dataset,
        "--checkpoint-keep-last=2",
        "--checkpoint-keep-best=1",
        epochs=3,
        hidden=8,
    )
    (warning,) = warnings_of(result.stderr)
    assert "already holds 8 checkpoints of other runs" in warning and "they are kept" in warning
    names = DirStorage(folder).list()
    assert [name for name in names if name in theirs] == theirs  # 8 of 8 kept
    mine = [name for name in names if name not in theirs]
    assert len(mine) in (2, 3) and mine[-1].startswith("checkpoint_11_")  # numbered after theirs
    lineages = {DirStorage(folder).load_manifest(name)[LINEAGE_KEY] for name in mine}
    assert len(lineages) == 1
    assert lineages.isdisjoint(DirStorage(folder).load_manifest(n)[LINEAGE_KEY] for n in theirs)


def test_a_restarted_run_keeps_pruning_its_own_checkpoints_from_before_the_restart(
    tmp_path, dataset
):
    folder = tmp_path / "ckpt"
    train(folder, dataset, epochs=3)
    before = DirStorage(folder).list()
    assert len(before) == 3
    lineage = DirStorage(folder).load_manifest(before[0])[LINEAGE_KEY]
    restarted = train(
        folder, dataset, "--checkpoint-keep-last=1", epochs=3, load=str(folder / before[0])
    )
    assert warnings_of(restarted.stderr) == []  # its own lineage: nothing foreign
    after = DirStorage(folder).list()
    assert len(after) == 1 and after[0].startswith("checkpoint_5_")
    assert DirStorage(folder).load_manifest(after[0])[LINEAGE_KEY] == lineage
    # a pruned checkpoint asked for later is "does not exist", not "interrupted"
    result = run_nnsim("run", "--load-checkpoint", str(folder / before[0]), timeout=BOUND)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "does not exist" in line and "keep-last" in line and "interrupted" not in line


def test_checkpoints_without_a_lineage_are_never_pruned(tmp_path, dataset):
    """Checkpoints written before lineages existed, or by hand, belong to no run: they are kept."""
    folder = tmp_path / "ckpt"
    storage = DirStorage(folder)
    for number in (1, 2, 3):
        storage.save(f"checkpoint_{number}_0", {"metrics": {"val_loss": 0.1}}, {})
    sim = build(dataset, io.StringIO(), epochs=3)
    with pytest.warns(UserWarning, match="already holds 3 checkpoints of other runs"):
        manager = enable(sim, storage, policy=Policy(every_epochs=1, keep_last=1, keep_best=1))
    sim.run()
    manager.close()
    names = storage.list()
    assert names[:3] == ["checkpoint_1_0", "checkpoint_2_0", "checkpoint_3_0"]
    assert len(names) in (4, 5) and names[-1].startswith("checkpoint_6_")


# Counts, periods and metrics that make no sense ----------------------------------------
@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--checkpoint-keep-last=-1", "--checkpoint-keep-last"),
        ("--checkpoint-keep-best=-2", "--checkpoint-keep-best"),
        ("--checkpoint-every-steps=-1", "--checkpoint-every-steps"),
        ("--checkpoint-every-epochs=-3", "--checkpoint-every-epochs"),
        ("--checkpoint-wall-period=-1", "--checkpoint-wall-period"),
        ("--checkpoint-wall-period=0", "--checkpoint-wall-period"),
        ("--checkpoint-wall-period=nan", "--checkpoint-wall-period"),
        ("--checkpoint-wall-period=inf", "--checkpoint-wall-period"),
        ("--checkpoint-period=0", "--checkpoint-period"),
        ("--checkpoint-monitor=nosuch", "--checkpoint-monitor"),
    ],
)
def test_a_negative_or_zero_count_or_period_or_unknown_metric_is_one_line_naming_it(
    option, named, tmp_path
):
    result = run_nnsim(
        "run", EXAMPLE, "--checkpoint-enable", f"--checkpoint-dir={tmp_path}", option, timeout=60
    )
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"nnsim: error: {named} ")
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_bad_count_is_named_even_without_checkpoint_enable():
    result = run_nnsim("run", EXAMPLE, "--checkpoint-keep-last=-1", timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("nnsim: error: --checkpoint-keep-last must be")


@pytest.mark.parametrize(
    "fields",
    [
        {"keep_last": -1},
        {"keep_best": -1},
        {"every_steps": -5},
        {"every_epochs": 1.5},
        {"mode": "sideways"},
        {"monitor": ""},
    ],
)
def test_the_python_policy_refuses_what_the_cli_refuses(fields):
    with pytest.raises(ParamError, match=next(iter(fields))):
        Policy(**fields)


@pytest.mark.parametrize("wall_period", [-1, 0, float("nan"), float("inf"), "5"])
def test_enable_refuses_a_wall_period_that_is_not_a_positive_number(wall_period, tmp_path, dataset):
    sim = build(dataset, io.StringIO(), epochs=1)
    with pytest.raises(ParamError, match="wall_period"):
        enable(sim, str(tmp_path / "ckpt"), wall_period=wall_period)


def test_a_resumed_training_run_keeps_pruning_the_checkpoints_before_the_resume(
    tmp_path, toy_dataset, eval_folder
):
    from test_train_run import toy_toml

    from nnsim.train import load_config, resume, train

    path = tmp_path / "toy.toml"
    path.write_text(toy_toml(toy_dataset, eval_folder, tmp_path / "runs", epochs=4))
    config = load_config(
        path, sets=["output.run_name=r", "checkpoint.keep_last=1", "checkpoint.keep_best=0"]
    )
    stopped = train(config, progress="quiet", stop_after_epochs=2)
    storage = DirStorage(stopped.run_dir / "checkpoints")
    (before,) = storage.list()
    assert before.startswith("checkpoint_2_")
    lineage = storage.load_manifest(before)[LINEAGE_KEY]
    resumed = resume(stopped.run_dir, progress="quiet")
    assert resumed.finished
    (after,) = storage.list()
    assert after.startswith("checkpoint_4_")
    assert storage.load_manifest(after)[LINEAGE_KEY] == lineage


def test_retention_survives_a_checkpoint_of_its_lineage_with_nonsense_metrics(tmp_path, dataset):
    storage = DirStorage(tmp_path / "ckpt")
    storage.save("checkpoint_1_0", {"metrics": [1, 2], LINEAGE_KEY: "abc"}, {})
    sim = build(dataset, io.StringIO(), epochs=2)
    manager = enable(sim, storage, lineage="abc", policy=Policy(every_epochs=1, keep_best=1))
    sim.run()
    manager.close()
    assert sim.finished and storage.list()[-1].startswith("checkpoint_3_")
