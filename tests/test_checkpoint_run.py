"""Checkpoints taken during real runs, and restarts from them, through the CLI and the API."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, example_args, run_nnsim

from nnsim import nn
from nnsim.checkpoint import CheckpointError, open_checkpoint, open_storage
from nnsim.checkpoint.manager import Policy, enable
from nnsim.sim import Simulation


def results(stdout: str) -> list[str]:
    """The run's own lines, without the checkpoint announcements."""
    return [line for line in stdout.splitlines() if not line.startswith("# Simulation Checkpoint")]


def test_restart_from_every_epoch_checkpoint_continues_with_the_same_lines(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    straight = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=3"),
    )
    assert straight.returncode == 0, straight.stderr
    announcements = [
        line for line in straight.stdout.splitlines() if line.startswith("# Simulation Checkpoint")
    ]
    assert len(announcements) == 3
    assert announcements[0].startswith("# Simulation Checkpoint: Simulated Time ")
    assert "(Real CPU time since last checkpoint " in announcements[0]
    names = sorted(path.name for path in ckpt.iterdir() if path.is_dir())
    assert [name.split("_")[:2] for name in names] == [
        ["checkpoint", "1"],
        ["checkpoint", "2"],
        ["checkpoint", "3"],
    ]
    lines = results(straight.stdout)
    for epoch, name in enumerate(names, start=1):
        restarted = run_nnsim("run", str(ckpt / name))
        assert restarted.returncode == 0, restarted.stderr
        assert results(restarted.stdout) == lines[2 * epoch :], name


def test_a_restarted_run_that_checkpoints_can_be_restarted_again(
    tmp_path, toy_dataset, eval_folder
):
    first, second = tmp_path / "first", tmp_path / "second"
    straight = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={first}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=3"),
    )
    one = sorted(p for p in first.iterdir() if p.is_dir())[0]
    again = run_nnsim(
        "run",
        "--load-checkpoint",
        str(one),
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={second}",
    )
    assert again.returncode == 0, again.stderr
    two = sorted(p for p in second.iterdir() if p.is_dir())[0]
    final = run_nnsim("run", str(two))
    assert results(final.stdout) == results(straight.stdout)[4:]


def test_period_checkpoints_are_named_by_time_and_keep_last_prunes(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-period=50us",
        "--checkpoint-keep-last=2",
        "--checkpoint-prefix=sim",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=1"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("# Simulation Checkpoint") == 3  # 50, 100, 150 us of a 166 us run
    kept = sorted(
        (path.name for path in ckpt.iterdir() if path.is_dir()), key=lambda n: int(n.split("_")[1])
    )
    assert kept == ["sim_2_100000000", "sim_3_150000000"]
    assert (ckpt / "latest").read_text().strip() == "sim_3_150000000"


def test_keep_best_by_validation_accuracy_keeps_the_best_and_the_newest(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        "--checkpoint-keep-best=1",
        "--checkpoint-monitor=val_acc",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=4"),
    )
    assert result.returncode == 0, result.stderr
    accuracies = [
        float(line.split("acc: ")[1].split()[0])
        for line in result.stdout.splitlines()
        if line.startswith("epoch") and "validation" in line
    ]
    storage = open_storage(str(ckpt))
    kept = storage.list()
    best_epoch = int(np.argmax(accuracies))  # the first of equals is the one kept
    metrics = {name: storage.load_manifest(name)["metrics"]["val_acc"] for name in kept}
    assert max(metrics.values()) == pytest.approx(accuracies[best_epoch], abs=1e-3)
    assert kept[-1].startswith("checkpoint_4_")
    assert len(kept) <= 2


def test_overrides_on_restart_run_more_epochs(tmp_path, toy_dataset, eval_folder):
    ckpt = tmp_path / "ckpt"
    run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=2"),
    )
    first = sorted(path for path in ckpt.iterdir() if path.is_dir())[0]
    restarted = run_nnsim("run", str(first), "--set", "controller/epochs=3")
    assert restarted.returncode == 0, restarted.stderr
    epochs = [line.split(":")[0] for line in results(restarted.stdout) if line.startswith("epoch")]
    assert epochs == [
        "epoch 1 training",
        "epoch 1 validation",
        "epoch 2 training",
        "epoch 2 validation",
    ]


def test_bad_override_and_bad_stop_at_on_restart_are_one_line_errors(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=1"),
    )
    for args, fragment in (
        (["--set", "controller/epochs=many"], "controller/epochs"),
        (["--set", "controler/epochs=3"], "no component named 'controler'"),
        (["--stop-at", "1us"], "before the current time"),
    ):
        result = run_nnsim("run", str(ckpt), *args)
        assert result.returncode == 1, result.stdout
        assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, (
            result.stderr
        )


def test_checkpoint_options_need_checkpoint_enable(toy_dataset, eval_folder):
    result = run_nnsim(
        "run", EXAMPLE, "--checkpoint-every-epochs=1", "--", *example_args(toy_dataset, eval_folder)
    )
    assert result.returncode == 1 and "--checkpoint-enable" in result.stderr


def test_a_checkpoint_loaded_into_a_different_model_script_is_refused(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=1"),
    )
    result = run_nnsim(
        "run",
        EXAMPLE,
        f"--load-checkpoint={ckpt}",
        "--",
        *example_args(toy_dataset, eval_folder, "--hiddenLayers=1"),
    )
    assert result.returncode == 1 and "different model" in result.stderr


def build(dataset: Path, output: io.StringIO, epochs: int = 3) -> Simulation:
    sim = Simulation(seed=5, output=output)
    nn.Sequential(
        [nn.Input(784), nn.Dense(16), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=epochs,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim)
    return sim


def test_async_checkpoints_hold_the_same_bits_as_sync_ones(tmp_path, toy_dataset):
    tensors = {}
    for mode in (False, True):
        sim = build(toy_dataset, io.StringIO())
        manager = enable(
            sim, str(tmp_path / str(mode)), policy=Policy(every_epochs=1), asynchronous=mode
        )
        sim.run()
        manager.close()
        storage = open_storage(str(tmp_path / str(mode)))
        tensors[mode] = [storage.load(name)[1] for name in storage.list()]
    for sync_set, async_set in zip(tensors[False], tensors[True], strict=True):
        assert sync_set.keys() == async_set.keys()
        for name in sync_set:
            assert np.array_equal(sync_set[name], async_set[name]), name


class FailingStorage:
    """Accepts one checkpoint, then fails like a full disk."""

    def __init__(self, inner):
        self.inner = inner
        self.saves = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def save(self, name, manifest, tensors):
        self.saves += 1
        if self.saves > 1:
            raise OSError(28, "No space left on device")
        return self.inner.save(name, manifest, tensors)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_failed_write_stops_the_run_cleanly_and_is_reported(tmp_path, toy_dataset, asynchronous):
    output = io.StringIO()
    sim = build(toy_dataset, output, epochs=4)
    storage = FailingStorage(open_storage(str(tmp_path / "ckpt")))
    manager = enable(sim, storage, policy=Policy(every_epochs=1), asynchronous=asynchronous)
    reason = sim.run()
    assert reason == "checkpoint failed"
    assert sim.finished  # complete and finish ran
    with pytest.raises(CheckpointError, match="No space left on device"):
        manager.close()
    assert output.getvalue().count("validation") < 4
    assert len(storage.inner.list()) == 1


def test_checkpoints_go_to_an_fsspec_url_and_restart_from_it(toy_dataset):
    pytest.importorskip("fsspec")
    output = io.StringIO()
    sim = build(toy_dataset, output, epochs=2)
    manager = enable(sim, "memory://nnsim-test-run", policy=Policy(every_epochs=1))
    sim.run()
    manager.close()
    storage, name = open_checkpoint("memory://nnsim-test-run")
    assert name.startswith("checkpoint_2_")
    from nnsim.state import restore

    restarted = restore(*storage.load(storage.list()[0]), output=io.StringIO())
    restarted.run()
    assert np.array_equal(restarted.components["dense1"].weights, sim.components["dense1"].weights)


def test_sim_checkpoint_from_python_between_runs(tmp_path, toy_dataset):
    sim = build(toy_dataset, io.StringIO())
    with pytest.raises(Exception, match="not enabled"):
        sim.checkpoint()
    enable(sim, str(tmp_path / "ckpt"))
    sim.run(until="30us")
    name = sim.checkpoint()
    assert name == "checkpoint_1_30000000"
    assert open_storage(str(tmp_path / "ckpt")).list() == [name]


def test_every_n_steps_and_the_wall_clock_period_trigger_checkpoints(tmp_path, toy_dataset):
    sim = build(toy_dataset, io.StringIO(), epochs=2)  # 7 training steps per epoch
    manager = enable(sim, str(tmp_path / "steps"), policy=Policy(every_steps=5), announce=False)
    sim.run()
    manager.close()
    storage = open_storage(str(tmp_path / "steps"))
    assert [storage.load_manifest(name)["reason"] for name in storage.list()] == [
        "step 5",
        "step 10",
    ]

    sim = build(toy_dataset, io.StringIO(), epochs=100_000)
    manager = enable(sim, str(tmp_path / "wall"), wall_period=0.2, announce=False)
    sim.observe("epoch_end", lambda **_: manager.written and sim.request_shutdown())
    sim.run()
    manager.close()
    reasons = {
        open_storage(str(tmp_path / "wall")).load_manifest(name)["reason"]
        for name in manager.written
    }
    assert manager.written and reasons == {"wall"}
