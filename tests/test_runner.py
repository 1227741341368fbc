"""``nnsim run`` as functions (`nnsim.runner`): what the command does, callable from Python."""

from __future__ import annotations

import pytest
from conftest import REPO, example_args

from nnsim.errors import ParamError
from nnsim.runner import CheckpointOptions, parse_overrides, resolve_location, run_simulation
from nnsim.units import format_time

EXAMPLE = str(REPO / "examples" / "fashion_mnist" / "nn.py")

FLAGS = {
    "checkpoint_enable": False,
    "checkpoint_dir": "checkpoints",
    "checkpoint_prefix": "checkpoint",
    "checkpoint_period": None,
    "checkpoint_wall_period": None,
    "checkpoint_every_epochs": 0,
    "checkpoint_every_steps": 0,
    "checkpoint_keep_last": 0,
    "checkpoint_keep_best": 0,
    "checkpoint_monitor": "val_loss",
    "checkpoint_async": False,
}


def test_a_notebook_runs_a_script_checkpoints_it_and_restarts_it(tmp_path, toy_dataset, capsys):
    folder = tmp_path / "ckpt"
    options = CheckpointOptions.from_flags(
        {**FLAGS, "checkpoint_enable": True, "checkpoint_dir": str(folder)}
        | {"checkpoint_every_epochs": 1}
    )
    sim = run_simulation(
        EXAMPLE,
        example_args(toy_dataset, None, "--epochs=2"),
        overrides=parse_overrides(["controller/shuffle=false"]),
        checkpoint=options,
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch 0 training:\tacc: ")
    assert lines[-1].startswith("Simulation is complete, simulated time: ")
    assert sim.components["controller"].shuffle is False and sim.finished
    assert len([path for path in folder.iterdir() if path.name.startswith("checkpoint_")]) == 2

    script, location = resolve_location(str(folder), None)  # a folder is a checkpoint
    assert (script, location) == (None, str(folder))
    again = run_simulation(load_checkpoint=location)  # the newest: after the last epoch
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Prediction for ") and not any("epoch" in line for line in lines)
    assert lines[-1] == f"Simulation is complete, simulated time: {format_time(sim.now)}"
    assert again.now == sim.now


def test_checkpoint_flags_are_checked_as_on_the_command_line():
    assert CheckpointOptions.from_flags(FLAGS) is None
    with pytest.raises(ParamError, match="^the --checkpoint-\\* options need --checkpoint-enable$"):
        CheckpointOptions.from_flags({**FLAGS, "checkpoint_keep_last": 2})
    with pytest.raises(ParamError, match="--checkpoint-monitor 'loss' is not a metric"):
        CheckpointOptions.from_flags(
            {**FLAGS, "checkpoint_enable": True, "checkpoint_monitor": "loss"}
        )
    with pytest.raises(ParamError, match="give a model script or --load-checkpoint PATH"):
        run_simulation()
