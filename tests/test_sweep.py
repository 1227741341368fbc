"""`nnsim sweep`: one run per value in worker processes, ranked best first."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, example_args, run_nnsim
from PIL import Image

from nnsim.sweep import (
    Prediction,
    RunResult,
    expected_class,
    format_table,
    parse_assignment,
    run_sweep,
    sort_key,
)

RATE = "loss/optimizer/learning_rate"
RATES = "0.0001,0.01,0.002"


@pytest.fixture
def named_eval_folder(tmp_path: Path) -> Path:
    """Evaluation images named after their class (top, pants = TROUSER) and one that is not."""
    folder = tmp_path / "named_eval"
    folder.mkdir()
    for name, label in (("top", 0), ("pants", 1), ("mystery", 0)):
        image = np.full((28, 28), 20, dtype=np.uint8)
        row, col = divmod(label, 5)
        image[4 + row * 12 : 12 + row * 12, 2 + col * 5 : 6 + col * 5] = 230
        Image.fromarray(image, mode="L").save(folder / f"{name}.png")
    return folder


def sweep_args(dataset: Path, eval_folder: Path, *options: str) -> list[str]:
    return [
        "sweep",
        EXAMPLE,
        *options,
        "--",
        *example_args(dataset, None, "--epochs=3", f"--evalImages={eval_folder}"),
    ]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsim: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def without_wall_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{key: value for key, value in row.items() if key != "wall_seconds"} for row in rows]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("eval2/ankle_boot.png", "ANKLE_BOOT"),
        ("Top.png", "TOP"),
        ("eval/tshirt.png", "TOP"),
        ("t-shirt.png", "TOP"),
        ("T_Shirt.png", "TOP"),
        ("pants.png", "TROUSER"),
        ("trousers.png", "TROUSER"),
        ("sneaker.PNG", "SNEAKER"),
        ("class0.png", None),
        ("photo_of_a_bag.png", None),
    ],
)
def test_the_expected_class_comes_from_the_evaluation_file_name(image, expected):
    assert expected_class(image) == expected


def test_results_sort_by_validation_accuracy_then_loss_with_failures_last():
    results = [
        RunResult(0, "a", val_acc=0.5, val_loss=1.0),
        RunResult(1, "b", error="cannot set x"),
        RunResult(2, "c", val_acc=0.9, val_loss=0.8),
        RunResult(3, "d", val_acc=0.9, val_loss=0.3),
        RunResult(4, "e"),  # finished without validation metrics
    ]
    assert [r.value for r in sorted(results, key=sort_key)] == ["d", "c", "a", "e", "b"]


def test_a_set_option_names_one_variable_and_its_values():
    assert parse_assignment(f"{RATE}=1e-4, 1e-3") == (RATE, ["1e-4", "1e-3"])
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_assignment("1e-4,1e-3")


def test_the_plain_table_aligns_columns_and_shows_errors_instead_of_metrics():
    results = [
        RunResult(
            0,
            "0.01",
            val_acc=0.9,
            val_loss=0.25,
            train_acc=0.8,
            train_loss=0.5,
            sim_time=462464000,
            predictions=[Prediction("eval/pants.png", "TROUSER"), Prediction("x.png", "BAG")],
        ),
        RunResult(1, "abc", error="cannot set lr: expected a number"),
    ]
    lines = format_table(results, RATE).splitlines()
    assert lines[0].split()[:3] == [RATE, "val", "acc"]
    assert "0.9000" in lines[1] and "462.464 us" in lines[1]
    assert lines[1].endswith("1/1  pants.png=TROUSER ok, x.png=BAG ?")
    assert lines[2].startswith("abc ") and lines[2].endswith(
        "error: cannot set lr: expected a number"
    )
    assert len({line.index("val acc") for line in lines[:1]}) == 1


def test_sweep_ranks_runs_best_first_and_writes_the_same_table_as_csv(
    toy_dataset, named_eval_folder, tmp_path
):
    table = tmp_path / "sweep.csv"
    result = run_nnsim(
        *sweep_args(
            toy_dataset, named_eval_folder, f"--set={RATE}={RATES}", "--jobs=2", f"--csv={table}"
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(RATE) and "val acc" in lines[0] and "predictions" in lines[0]
    assert "\x1b" not in result.stdout  # plain text off a terminal

    rows = read_csv(table)
    assert sorted(row["value"] for row in rows) == sorted(RATES.split(","))
    assert [line.split()[0] for line in lines[1:]] == [row["value"] for row in rows]
    ranking = [(-float(row["val_acc"]), float(row["val_loss"])) for row in rows]
    assert ranking == sorted(ranking)
    assert rows[0]["value"] == "0.01"  # the toy dataset needs a high rate in 3 epochs
    for row in rows:
        assert row["error"] == ""
        assert row["sim_time_ps"] == rows[0]["sim_time_ps"] and row["sim_time"].endswith(" us")
        for metric in ("val_acc", "val_loss", "train_acc", "train_loss", "wall_seconds"):
            float(row[metric])
        predictions = row["predictions"].split("; ")
        assert [p.split("=")[0] for p in predictions] == ["mystery.png", "pants.png", "top.png"]
        assert predictions[0].endswith(" ?")
        assert row["right"].endswith("/2")
    best = rows[0]["predictions"]
    assert "pants.png=TROUSER ok" in best and "top.png=TOP ok" in best
    assert rows[0]["right"] == "2/2"
    assert f"{float(rows[0]['val_acc']):.4f}" in lines[1]


def test_the_same_sweep_twice_gives_the_same_metrics_in_parallel_or_in_order(
    toy_dataset, named_eval_folder
):
    args = example_args(toy_dataset, None, "--epochs=2", f"--evalImages={named_eval_folder}")
    values = ["0.01", "0.001"]
    first = run_sweep(EXAMPLE, values, variable=RATE, args=args, jobs=2)
    again = run_sweep(EXAMPLE, values, variable=RATE, args=args, jobs=2)
    in_order = run_sweep(EXAMPLE, values, variable=RATE, args=args, jobs=1)
    assert all(result.ok for result in first)
    assert first[0].val_acc is not None and first[0].predictions
    assert [r.metrics() for r in first] == [r.metrics() for r in again]
    assert [r.metrics() for r in first] == [r.metrics() for r in in_order]


def test_a_bad_value_gives_an_error_row_and_exit_status_1(toy_dataset, named_eval_folder, tmp_path):
    table = tmp_path / "sweep.csv"
    result = run_nnsim(
        *sweep_args(
            toy_dataset, named_eval_folder, f"--set={RATE}=0.01,fast", "--jobs=2", f"--csv={table}"
        )
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "nnsim: error: 1 of 2 runs failed"
    lines = result.stdout.splitlines()
    assert lines[1].startswith("0.01 ")
    assert lines[2].startswith("fast ")
    assert lines[2].endswith(f"error: cannot set {RATE}: expected a number, got 'fast'")
    assert "Traceback" not in result.stdout + result.stderr
    rows = read_csv(table)
    assert [row["value"] for row in rows] == ["0.01", "fast"]
    assert rows[0]["error"] == "" and rows[0]["val_acc"]
    assert rows[1]["error"].startswith(f"cannot set {RATE}") and rows[1]["val_acc"] == ""


def test_a_replay_template_sweeps_through_console_commands_like_set(
    toy_dataset, named_eval_folder, tmp_path
):
    template = tmp_path / "rate.in"
    template.write_text("# a comment\ncd loss/optimizer\nset learning_rate {value}\nrun\n")
    by_template = tmp_path / "template.csv"
    by_set = tmp_path / "set.csv"
    common = ["--jobs=2"]
    result = run_nnsim(
        *sweep_args(
            toy_dataset,
            named_eval_folder,
            f"--replay-template={template}",
            "--values=0.01,0.001,oops",
            f"--csv={by_template}",
            *common,
        )
    )
    assert result.returncode == 1  # 'oops' does not parse in the console: that run failed
    assert result.stdout.splitlines()[0].startswith("value ")
    rows = read_csv(by_template)
    assert rows[-1]["value"] == "oops"
    assert rows[-1]["error"].startswith(f"replay: cannot set {RATE}")
    result = run_nnsim(
        *sweep_args(toy_dataset, named_eval_folder, f"--set={RATE}=0.01,0.001", f"--csv={by_set}")
    )
    assert result.returncode == 0, result.stderr
    assert without_wall_time(rows[:2]) == without_wall_time(read_csv(by_set))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ([], "give either --set"),
        ([f"--set={RATE}=1,2", "--values=1,2"], "--values goes with --replay-template"),
        ([f"--set={RATE}=1,,2"], "comma-separated"),
        (["--set=1e-4,1e-3"], "NAME=V1,V2"),
        ([f"--set={RATE}=1", "--jobs=0"], "--jobs must be at least 1"),
        ([f"--set={RATE}=1", "--csv=/nonexistent/folder/out.csv"], "--csv"),
    ],
)
def test_bad_sweep_options_give_one_line(options, fragment):
    assert_one_line_error(run_nnsim("sweep", EXAMPLE, *options), fragment)


def test_a_missing_script_gives_one_line():
    assert_one_line_error(run_nnsim("sweep", "missing.py", f"--set={RATE}=1"), "missing.py")
