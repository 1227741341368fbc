"""``nnsim train``: the run folder it writes, its progress output, and resuming a run."""

from __future__ import annotations

import csv
import io
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_nnsim
from PIL import Image

from nnsim.checkpoint import open_checkpoint, open_storage
from nnsim.errors import DataError
from nnsim.train import ConfigError, load_config, resume, to_toml, train
from nnsim.train.metrics import COLUMNS, read_metrics, summary_writer_class


def toy_toml(dataset: Path, eval_dir: Path, project: Path, *, epochs: int = 3) -> str:
    return f"""
[model]
hidden = [16]

[dataset]
name = "toy"
training = "{dataset}"
test = "{dataset}"
eval = "{eval_dir}"

[training]
epochs = {epochs}
batch_size = 32
weight_scale = 0.1

[training.optimizer]
learning_rate = 0.01
decay = 0.001

[checkpoint]
every_epochs = 1
keep_last = 2
keep_best = 1
monitor = "val_acc"

[output]
project_dir = "{project}"
"""


@pytest.fixture
def named_eval(tmp_path, eval_folder) -> Path:
    """Evaluation images whose names name their class (and one that does not)."""
    folder = tmp_path / "named_eval"
    folder.mkdir()
    shutil.copy(eval_folder / "class0.png", folder / "top.png")
    shutil.copy(eval_folder / "class1.png", folder / "trouser.png")
    shutil.copy(eval_folder / "class0.png", folder / "unnamed.png")
    return folder


@pytest.fixture
def toy_config_file(tmp_path, toy_dataset, named_eval) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(toy_toml(toy_dataset, named_eval, tmp_path / "runs"))
    return path


def read_scalars(logdir: Path) -> dict[str, dict[int, float | str]]:
    """``{tag: {step: value}}`` from TensorBoard event files (TFRecords of Event protos).

    Scalars are floats; text summaries (tag ``.../text_summary``) their string.
    """
    summary_writer_class()  # imports tensorboardX without torch
    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            offset += 12  # length, and its CRC
            event = event_pb2.Event.FromString(data[offset : offset + length])
            offset += length + 4  # the record, and its CRC
            for value in event.summary.value:
                text = value.tensor.string_val
                scalars.setdefault(value.tag, {})[event.step] = (
                    text[0].decode() if text else value.simple_value
                )
    return scalars


def assert_png(path: Path, size: tuple[int, int]) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # something is drawn, not a blank canvas


def test_a_run_folder_holds_config_checkpoints_metrics_tensorboard_plot_and_predictions(
    toy_config_file, capsys
):
    config = load_config(toy_config_file)
    result = train(config, progress="plain")
    run = result.run_dir
    assert re.fullmatch(r"mlp-16_toy_\d{4}-\d\d-\d\d_\d{6}", run.name)
    assert load_config(run / "config.toml") == config

    printed = capsys.readouterr().out
    assert "epoch 0 training:\tacc: " in printed and "epoch 2 validation:\tacc: " in printed

    rows = read_metrics(run / "metrics.csv")
    with (run / "metrics.csv").open() as file:
        assert tuple(next(csv.reader(file))) == COLUMNS
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert f"epoch {row['epoch']} validation:\tacc: {row['val_acc']:.3f} " in printed
    assert (
        rows[0]["simulated_time_ps"] < rows[1]["simulated_time_ps"] < rows[2]["simulated_time_ps"]
    )
    assert rows[0]["learning_rate"] > rows[2]["learning_rate"]  # decay
    assert rows[0]["wall_seconds"] <= rows[2]["wall_seconds"]

    checkpoints = run / "checkpoints"
    storage = open_storage(checkpoints)
    names = storage.list()
    assert "best" not in names and "last" not in names
    assert [name.split("_")[1] for name in names][-1] == "3"
    last, best = (checkpoints / "last").resolve(), (checkpoints / "best").resolve()
    assert last.name == names[-1]
    best_acc = max(row["val_acc"] for row in rows)
    assert storage.load_manifest(best.name)["metrics"]["val_acc"] == best_acc
    assert len(names) <= 3  # keep last 2 + best 1
    linked_storage, linked = open_checkpoint(checkpoints / "best")  # a link is a checkpoint
    assert linked_storage.load(linked)[0]["metrics"]["val_acc"] == best_acc

    scalars = read_scalars(run / "tensorboard")
    assert set(scalars) == {
        "loss/train",
        "loss/val",
        "accuracy/train",
        "accuracy/val",
        "optimizer/learning_rate",
        "time/wall_seconds",
        "time/simulated_ms",
        "time/simulated_ps/text_summary",
    }
    for row in rows:
        assert scalars["accuracy/val"][row["epoch"]] == pytest.approx(row["val_acc"], rel=1e-6)
        assert scalars["loss/train"][row["epoch"]] == pytest.approx(row["train_loss"], rel=1e-6)
        exact = scalars["time/simulated_ps/text_summary"][row["epoch"]]
        assert exact == str(row["simulated_time_ps"])  # every digit, unlike a float32
        ms = scalars["time/simulated_ms"][row["epoch"]]
        assert ms == pytest.approx(row["simulated_time_ps"] / 1e9, rel=1e-6)

    assert_png(run / "plots" / "training.png", (1100, 420))

    with (run / "predictions.csv").open() as file:
        predictions = list(csv.DictReader(file))
    assert [(Path(p["path"]).name, p["true"]) for p in predictions] == [
        ("top.png", "TOP"),
        ("trouser.png", "TROUSER"),
        ("unnamed.png", ""),
    ]
    assert all(p["predicted"] for p in predictions)


def test_resume_after_an_interruption_finishes_like_a_straight_run(toy_config_file):
    straight = train(
        load_config(toy_config_file, sets=["output.run_name=straight"]), progress="quiet"
    )
    config = load_config(toy_config_file, sets=["output.run_name=interrupted"])
    stopped = train(config, progress="quiet", stop_after_epochs=1)
    run = stopped.run_dir
    assert not stopped.finished
    assert [row["epoch"] for row in read_metrics(run / "metrics.csv")] == [0]
    assert not (run / "plots" / "training.png").exists()
    assert not (run / "predictions.csv").exists()
    with (run / "metrics.csv").open("a") as file:  # killed after a row, before its checkpoint
        file.write("1,9.0,9.0,9.0,9.0,9.0,999,9.0\n")

    resumed = resume(run, progress="quiet")
    assert resumed.finished and resumed.resumed_from.startswith("checkpoint_1_")

    for name, component in straight.sim.components.items():
        if component.kind() == "nn.Dense":
            assert np.array_equal(component.weights, resumed.sim.components[name].weights), name
            assert np.array_equal(component.biases, resumed.sim.components[name].biases), name

    def without_wall(rows):
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]

    straight_rows = read_metrics(straight.run_dir / "metrics.csv")
    assert without_wall(read_metrics(run / "metrics.csv")) == without_wall(straight_rows)
    assert len(straight_rows) == 3
    assert (
        open_storage(run / "checkpoints").list()
        == open_storage(straight.run_dir / "checkpoints").list()
    )
    for link in ("best", "last"):
        assert (run / "checkpoints" / link).resolve().name == (
            straight.run_dir / "checkpoints" / link
        ).resolve().name
    assert (run / "predictions.csv").read_text() == (
        straight.run_dir / "predictions.csv"
    ).read_text()
    assert sorted(read_scalars(run / "tensorboard")["accuracy/val"].items()) == sorted(
        read_scalars(straight.run_dir / "tensorboard")["accuracy/val"].items()
    )
    assert resumed.sim.now == straight.sim.now

    with pytest.raises(ConfigError, match="already finished its 3 epochs"):
        resume(run, progress="quiet")


def test_the_cli_prints_epoch_lines_off_a_terminal_and_only_a_summary_with_quiet(
    tmp_path, toy_config_file
):
    plain = run_nnsim(
        "train",
        str(toy_config_file),
        "--max-epochs",
        "2",
        "--run-name",
        "plain",
        "--set",
        "training.optimizer.beta_2=0.99",
    )
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("epoch 0 training:\tacc: ")
    assert any(line.startswith("epoch 1 validation:\tacc: ") for line in lines)
    assert not any(line.startswith("epoch 2 ") for line in lines)
    assert any(line.startswith("Prediction for ") for line in lines)
    run = tmp_path / "runs" / "plain"
    assert f"run folder: {run}" in lines
    resolved = load_config(run / "config.toml")
    assert resolved.training.epochs == 2
    assert resolved.training.optimizer.beta_2 == 0.99
    assert "\x1b[" not in plain.stdout  # no progress bar escapes in a pipe

    quiet = run_nnsim("train", str(toy_config_file), "--quiet", "--run-name", "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.splitlines()[0] == f"run folder: {tmp_path / 'runs' / 'quiet'}"
    assert not any(
        line.startswith(("epoch 0 training", "Prediction", "#"))
        for line in quiet.stdout.splitlines()
    )
    assert "evaluation images: " in quiet.stdout and "simulated time " in quiet.stdout


def test_the_cli_resumes_an_interrupted_run(toy_config_file):
    stopped = train(
        load_config(toy_config_file, sets=["output.run_name=cli-resume"]),
        progress="quiet",
        stop_after_epochs=1,
    )
    resumed = run_nnsim("train", "--resume", str(stopped.run_dir))
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[0].startswith("epoch 1 training:\tacc: ")
    assert not any(line.startswith("epoch 0 ") for line in lines)
    assert len(read_metrics(stopped.run_dir / "metrics.csv")) == 3

    again = run_nnsim("train", "--resume", str(stopped.run_dir), "--max-epochs", "5")
    assert again.returncode == 1
    assert again.stderr.startswith("nnsim: error: --resume continues a run")


def test_bad_input_fails_before_a_run_folder_is_made(tmp_path, toy_config_file):
    config = load_config(toy_config_file, sets=[f"dataset.test={tmp_path / 'missing'}"])
    with pytest.raises(DataError, match="missing"):
        train(config, progress="quiet")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

    result = run_nnsim("train", str(toy_config_file), "--set", "training.optimizer.beta2=0.9")
    assert result.returncode == 1
    assert result.stderr == (
        "nnsim: error: --set: unknown config key 'training.optimizer.beta2'; "
        "did you mean 'training.optimizer.beta_2'?\n"
    )


def test_an_existing_run_name_is_refused_and_resume_needs_a_checkpoint(toy_config_file):
    config = load_config(toy_config_file, sets=["output.run_name=taken", "training.epochs=1"])
    train(config, progress="quiet")
    with pytest.raises(ConfigError, match="already exists; choose another --run-name"):
        train(config, progress="quiet")
    empty = Path(config.output.project_dir) / "empty"
    empty.mkdir()
    (empty / "config.toml").write_text(to_toml(config))
    with pytest.raises(ConfigError, match="has no checkpoint to resume from"):
        resume(empty, progress="quiet")
    with pytest.raises(ConfigError, match="has no config.toml"):
        resume(empty.parent, progress="quiet")


def test_rich_progress_shows_epoch_and_step_bars_with_rate_and_eta(toy_config_file):
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    config = load_config(toy_config_file, sets=["output.run_name=rich"])
    train(config, progress="rich", console=console)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "epochs" in shown and "3/3" in shown and "ETA" in shown
    assert "s/epoch" in shown or "epochs/s" in shown
    assert "epoch 2 validation:" in shown  # the run's lines print above the bars


def test_a_model_script_trains_with_the_configs_data_and_schedule(tmp_path, toy_config_file):
    config = load_config(
        toy_config_file,
        sets=[
            f"model.script={REPO / 'examples' / 'fashion_mnist' / 'nn.py'}",
            "model.script_args=--hiddenLayerSize,8,--hiddenLayers,1",
            "training.epochs=2",
            "training.optimizer.learning_rate=0.02",
        ],
    )
    result = train(config, progress="quiet")
    assert result.run_dir.name.startswith("nn_toy_")
    assert [row["epoch"] for row in result.metrics] == [0, 1]
    assert result.sim.components["loss"].subcomponents["optimizer"].learning_rate == 0.02
    assert result.sim.components["dense1"].weights.shape == (784, 8)
    assert (result.run_dir / "plots" / "training.png").exists()
