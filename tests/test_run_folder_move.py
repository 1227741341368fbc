"""Run folders and outputs that survive a move (issue 12, item 8): relative paths in
``config.toml`` and ``predictions.csv``, and ``nnsim test`` on a bare checkpoint writing next to it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from conftest import EXAMPLE, REPO, example_args, make_idx_dataset, run_nnsim

from nnsim.train import load_config, train
from nnsim.train.runfolder import portable_path

CONFIG = """
[model]
hidden = [16]
[dataset]
name = "toy"
training = "data"
test = "data"
eval = "eval"
[training]
epochs = 3
batch_size = 32
weight_scale = 0.1
[training.optimizer]
learning_rate = 0.01
[checkpoint]
monitor = "val_acc"
[output]
project_dir = "{project}/runs"
run_name = "{name}"
"""


def make_project(root: Path, eval_folder: Path) -> Path:
    """A project folder holding its data, its evaluation images and (later) its runs."""
    make_idx_dataset(root / "data")
    shutil.copytree(eval_folder, root / "eval")
    for name in ("whole", "stopped"):
        (root / f"{name}.toml").write_text(CONFIG.format(project=root, name=name))
    return root


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_config_and_predictions_store_project_paths_relative_to_the_run_folder(
    tmp_path, eval_folder
):
    project = make_project(tmp_path / "project", eval_folder)
    run = train(load_config(project / "whole.toml"), progress="quiet").run_dir
    text = (run / "config.toml").read_text()
    assert 'training = "../../data"' in text and 'eval = "../../eval"' in text
    assert str(tmp_path) not in text.replace(f'project_dir = "{project}/runs"', "")
    assert [row["path"] for row in rows(run / "predictions.csv")] == [
        "../../eval/class0.png",
        "../../eval/class1.png",
    ]
    assert load_config(run / "config.toml").dataset.training == str(project / "data")


def test_paths_outside_the_project_stay_absolute(tmp_path):
    run = tmp_path / "project" / "runs" / "r"
    assert portable_path("/usr/share/datasets/fashion-mnist", run) == (
        "/usr/share/datasets/fashion-mnist"
    )
    assert portable_path(str(tmp_path / "project" / "data"), run) == "../../data"
    assert portable_path("", run) == ""


def test_a_moved_project_still_tests_and_resumes(tmp_path, eval_folder):
    project = make_project(tmp_path / "project", eval_folder)
    whole = train(load_config(project / "whole.toml"), progress="quiet")
    stopped = train(load_config(project / "stopped.toml"), progress="quiet", stop_after_epochs=1)
    assert not (stopped.run_dir / "predictions.csv").exists()
    tested_before = run_nnsim("test", "--load", str(whole.run_dir / "checkpoints" / "best"))
    assert tested_before.returncode == 0, tested_before.stderr

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(project), str(moved))
    assert not project.exists()

    tested = run_nnsim("test", "--load", "runs/whole/checkpoints/best", cwd=moved)
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.splitlines()[1] == f"test set: {moved / 'data'} (100 images)"
    assert tested.stdout.splitlines()[2] == tested_before.stdout.splitlines()[2]  # same score
    assert tested.stdout.splitlines()[-1] == ("confusion matrix: runs/whole/plots/confusion.png")

    restarted = run_nnsim("run", "runs/whole/checkpoints/last", cwd=moved)
    assert restarted.returncode == 0, restarted.stderr
    assert [line.split(" ...")[0] for line in restarted.stdout.splitlines()[:2]] == [
        f"Prediction for {moved / 'eval' / 'class0.png'}",
        f"Prediction for {moved / 'eval' / 'class1.png'}",
    ]

    resumed = run_nnsim("train", "--resume", "runs/stopped", "--quiet", cwd=moved)
    assert resumed.returncode == 0, resumed.stderr
    run = moved / "runs" / "stopped"
    assert rows(run / "predictions.csv") == rows(moved / "runs" / "whole" / "predictions.csv")
    strip = [
        {k: v for k, v in row.items() if k != "wall_seconds"} for row in rows(run / "metrics.csv")
    ]
    assert strip == [
        {k: v for k, v in row.items() if k != "wall_seconds"}
        for row in rows(moved / "runs" / "whole" / "metrics.csv")
    ]


def test_nnsim_test_on_a_bare_checkpoint_writes_next_to_it_and_says_where(tmp_path, toy_dataset):
    args = example_args(toy_dataset, None, "--epochs=1", "--evalImages=")
    work = tmp_path / "work"
    work.mkdir()
    made = run_nnsim(
        "run",
        str(REPO / EXAMPLE),
        "--checkpoint-enable",
        "--checkpoint-dir=ckpt",
        "--checkpoint-every-epochs=1",
        "--",
        *args,
        cwd=work,
    )
    assert made.returncode == 0, made.stderr
    (name,) = [path.name for path in (work / "ckpt").iterdir() if path.is_dir()]
    tested = run_nnsim("test", "--load", f"ckpt/{name}", cwd=work)
    assert tested.returncode == 0, tested.stderr
    assert tested.stdout.splitlines()[-1] == "confusion matrix: ckpt/plots/confusion.png"
    assert (work / "ckpt" / "plots" / "confusion.png").is_file()
    assert not (work / "plots").exists() and not (tmp_path / "plots").exists()
    listed = run_nnsim("checkpoint", "list", "ckpt", cwd=work)
    assert listed.returncode == 0 and name in listed.stdout
