"""A real validation split: ``dataset.validation`` in configs, ``--validation-split`` on the
example script, and ``nnsim test`` saying which data chose the checkpoint (issue 12, item 3)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, example_args, run_nnsim

from nnsim.data import hold_out, load_split
from nnsim.errors import DataError
from nnsim.train import load_config, resume, train


def write_config(tmp_path: Path, dataset: Path, validation: str | None, name: str) -> Path:
    line = "" if validation is None else f"validation = {validation}\n"
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f"""
[model]
hidden = [16]
[dataset]
name = "toy"
training = "{dataset}"
test = "{dataset}"
{line}[training]
epochs = 3
batch_size = 32
weight_scale = 0.1
[training.optimizer]
learning_rate = 0.01
[checkpoint]
monitor = "val_acc"
[output]
project_dir = "{tmp_path / "runs"}"
run_name = "{name}"
"""
    )
    return path


def metrics_without_wall_time(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as file:
        return [
            {k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(file)
        ]


def test_a_held_out_fraction_of_training_validates_and_the_test_set_stays_unseen(
    tmp_path, toy_dataset
):
    config = write_config(tmp_path, toy_dataset, "0.2", "held")
    result = run_nnsim("train", str(config), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "(on 40 held-out training images)" in result.stdout.splitlines()[1]
    run = tmp_path / "runs" / "held"
    assert load_config(run / "config.toml").dataset.validation == 0.2

    tested = run_nnsim("test", "--load", str(run / "checkpoints" / "best"))
    assert tested.returncode == 0, tested.stderr
    lines = tested.stdout.splitlines()
    assert lines[1] == f"test set: {toy_dataset} (100 images)"
    assert lines[3] == (
        "validated on: 40 training images held out (validation = 0.2); this score is on a "
        "test set that neither training nor choosing the best checkpoint saw"
    )


def test_the_held_out_images_are_not_trained_on(tmp_path, toy_dataset):
    config = load_config(write_config(tmp_path, toy_dataset, "0.2", "steps"))
    controller = train(config, progress="quiet").sim.components["controller"]
    # 200 training images: 160 train (5 batches of 32) and 40 validate (2 batches), per epoch.
    assert len(controller.train_x) == 160 and len(controller.val_x) == 40
    assert controller.stats["training_steps"] == 3 * 5
    assert controller.stats["validation_steps"] == 3 * 2
    rows = {tuple(row) for row in controller.train_x}
    assert not any(tuple(row) in rows for row in controller.val_x)


def test_the_default_validates_on_the_test_set_and_nnsim_test_says_so(tmp_path, toy_dataset):
    config = write_config(tmp_path, toy_dataset, None, "default")
    trained = run_nnsim("train", str(config), "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.splitlines()[1].endswith("(on the test set)")
    run = tmp_path / "runs" / "default"
    assert load_config(run / "config.toml").dataset.validation == "test"
    tested = run_nnsim("test", "--load", str(run / "checkpoints" / "best"))
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.splitlines()[3].startswith(
        'validated on: the test set itself (validation = "test", as in SST\'s example), '
        "so this score is on the images that chose the best checkpoint"
    )


def test_the_split_is_fixed_by_the_seed_also_across_a_resume(tmp_path, toy_dataset):
    straight = train(
        load_config(write_config(tmp_path, toy_dataset, "0.25", "a")), progress="quiet"
    )
    again = train(load_config(write_config(tmp_path, toy_dataset, "0.25", "b")), progress="quiet")
    assert metrics_without_wall_time(straight.run_dir) == metrics_without_wall_time(again.run_dir)

    stopped = train(
        load_config(write_config(tmp_path, toy_dataset, "0.25", "c")),
        progress="quiet",
        stop_after_epochs=1,
    )
    resumed = resume(stopped.run_dir, progress="quiet")
    assert metrics_without_wall_time(resumed.run_dir) == metrics_without_wall_time(straight.run_dir)

    data = load_split("train", toy_dataset)
    rest, held = hold_out(data, 0.25, seed=0)
    same_rest, same_held = hold_out(data, 0.25, seed=0)
    _, other_held = hold_out(data, 0.25, seed=1)
    assert len(held) == 50 and len(rest) == 150
    assert np.array_equal(held.images, same_held.images)
    assert not np.array_equal(held.images, other_held.images)
    assert sorted(held.labels.tolist() + rest.labels.tolist()) == sorted(data.labels.tolist())


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.001])
def test_a_split_that_leaves_one_side_empty_is_refused(toy_dataset, fraction):
    with pytest.raises(DataError, match="validation split of"):
        hold_out(load_split("train", toy_dataset), fraction, seed=0)


def test_a_bad_validation_value_is_one_line(tmp_path, toy_dataset):
    config = write_config(tmp_path, toy_dataset, None, "bad")
    for value in ("1.5", "train"):
        result = run_nnsim("train", str(config), "--set", f"dataset.validation={value}")
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert 'dataset.validation must be "test" or a fraction of the training images' in (
            result.stderr
        )
    assert not (tmp_path / "runs").exists()


def validation_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "validation:" in line]


def test_the_example_script_takes_a_validation_split_and_defaults_to_the_test_set(
    toy_dataset,
):
    args = example_args(toy_dataset, None, "--epochs=2", "--evalImages=")
    default = run_nnsim("run", EXAMPLE, "--", *args)
    explicit = run_nnsim("run", EXAMPLE, "--", *args, "--validation-split=test")
    held = run_nnsim("run", EXAMPLE, "--", *args, "--validation-split=0.2")
    for result in (default, explicit, held):
        assert result.returncode == 0, result.stderr
    assert default.stdout == explicit.stdout
    assert validation_lines(held.stdout) != validation_lines(default.stdout)
    assert len(validation_lines(held.stdout)) == 2

    bad = run_nnsim("run", EXAMPLE, "--", *args, "--validation-split=2")
    assert bad.returncode != 0
    assert "--validation-split: expected 'test' or a fraction between 0 and 1" in bad.stderr
