"""``nnsim test``: a trained checkpoint's test loss, accuracy, per-class table and confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_idx_dataset, run_nnsim
from PIL import Image

from nnsim.data import CLASS_NAMES
from nnsim.train import load_config, train
from nnsim.train.evaluate import evaluate_checkpoint, report_lines
from nnsim.train.metrics import read_metrics


@pytest.fixture
def trained_run(tmp_path, toy_dataset, eval_folder) -> Path:
    config_file = tmp_path / "toy.toml"
    config_file.write_text(
        f"""
[model]
hidden = [16]
[dataset]
name = "toy"
training = "{toy_dataset}"
test = "{toy_dataset}"
eval = "{eval_folder}"
[training]
epochs = 3
batch_size = 32
weight_scale = 0.1
[training.optimizer]
learning_rate = 0.01
[checkpoint]
monitor = "val_acc"
[output]
project_dir = "{tmp_path / "runs"}"
run_name = "trained"
"""
    )
    return train(load_config(config_file), progress="quiet").run_dir


def test_the_report_matches_the_validation_of_the_same_weights(trained_run):
    report = evaluate_checkpoint(str(trained_run / "checkpoints" / "last"))
    last = read_metrics(trained_run / "metrics.csv")[-1]
    assert report.count == 100
    assert report.accuracy == pytest.approx(last["val_acc"])
    assert report.loss == pytest.approx(last["val_loss"], rel=1e-5)
    assert report.name.startswith("checkpoint_3_")
    per_class = report.per_class()
    assert [row[0] for row in per_class] == list(CLASS_NAMES)
    assert sum(row[1] for row in per_class) == 100
    assert sum(row[2] for row in per_class) == round(report.accuracy * 100)
    assert report.confusion.shape == (10, 10)
    assert np.array_equal(report.confusion.sum(axis=1), [10] * 10)


def test_nnsim_test_prints_the_totals_and_a_class_table_and_draws_the_confusion_matrix(
    trained_run,
):
    result = run_nnsim("test", "--load", str(trained_run / "checkpoints" / "best"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    best = (trained_run / "checkpoints" / "best").resolve().name
    assert lines[0] == f"checkpoint: {trained_run / 'checkpoints' / 'best'} -> {best}"
    best_row = max(read_metrics(trained_run / "metrics.csv"), key=lambda row: row["val_acc"])
    assert f"accuracy: {best_row['val_acc']:.4f}" in lines[2]
    assert lines[2].startswith("test loss: ")
    table = lines[lines.index(next(line for line in lines if line.startswith("class"))) :]
    assert table[0].split() == ["class", "images", "correct", "accuracy"]
    assert [row.split()[0] for row in table[1:11]] == list(CLASS_NAMES)
    assert all(row.split()[1] == "10" for row in table[1:11])
    confusion = trained_run / "plots" / "confusion.png"
    assert lines[-1] == f"confusion matrix: {confusion}"
    with Image.open(confusion) as image:
        assert image.format == "PNG" and image.size == (900, 800)
        assert np.asarray(image.convert("L")).std() > 10


def test_config_and_out_choose_another_test_set_and_folder(tmp_path, trained_run):
    other = make_idx_dataset(tmp_path / "other", test_per_class=5, seed=3)
    config = tmp_path / "other.toml"
    config.write_text(f'[dataset]\nname = "other"\ntraining = "{other}"\ntest = "{other}"\n')
    out = tmp_path / "results"
    result = run_nnsim(
        "test",
        "--load",
        str(trained_run / "checkpoints"),
        "--config",
        str(config),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert f"test set: {other} (50 images)" in result.stdout
    assert (out / "plots" / "confusion.png").exists()
    assert not (trained_run / "plots" / "confusion.png").exists()


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = run_nnsim("test", "--load", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert result.stderr.startswith("nnsim: error: ")
    assert result.stderr.count("\n") == 1


def test_the_plain_report_aligns_a_row_per_class(trained_run):
    lines = report_lines(evaluate_checkpoint(str(trained_run / "checkpoints" / "best")))
    rows = lines[lines.index(next(line for line in lines if line.startswith("class "))) + 1 :]
    assert len(rows) == 10
    assert len({len(row) for row in rows}) == 1
