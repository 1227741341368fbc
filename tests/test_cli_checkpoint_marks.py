"""``checkpoint list`` marks the best, ``checkpoint diff`` exits as diff(1) and summarizes."""

from __future__ import annotations

import json
import shutil

import test_cli_checkpoint as shared
from conftest import EXAMPLE, example_args, make_idx_dataset, run_nnsim

from nnsim.cli.checkpoint import best_checkpoint, format_listing

run = shared.run  # the module-scoped checkpoints of a two-epoch toy run


def manifest(name: str, **metrics: float) -> dict:
    return {"name": name, "simulated_time_ps": 1000, "reason": "epoch", "metrics": metrics}


def test_the_best_is_chosen_by_the_monitored_metric_in_its_direction():
    manifests = [
        manifest("a", val_loss=0.5, val_acc=0.7),
        manifest("b", val_loss=0.3, val_acc=0.6),
        manifest("c", val_loss=0.4, val_acc=0.7),
    ]
    assert best_checkpoint(manifests) == ("b", "val_loss")  # the default monitor: lowest
    assert best_checkpoint(manifests, "val_acc") == ("a", "val_acc")  # highest; earliest of equals
    written = [dict(m, monitor="val_acc") for m in manifests]
    assert best_checkpoint(written) == ("a", "val_acc")  # the run's --checkpoint-monitor
    assert best_checkpoint([manifest("x"), manifest("y", val_loss=float("nan"))]) is None

    lines = format_listing(manifests, latest="c").splitlines()
    assert lines[2].endswith("best") and lines[3].endswith("latest")
    assert not lines[1].endswith(("best", "latest"))
    assert lines[-1] == "best: b (lowest val_loss)"
    assert format_listing(manifests, "c", "val_acc").splitlines()[-1] == "best: a (highest val_acc)"


def test_list_marks_the_best_of_a_real_run_by_its_monitor(tmp_path):
    dataset = make_idx_dataset(tmp_path / "toy")
    checkpoints = tmp_path / "checkpoints"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        "--checkpoint-monitor=val_acc",
        f"--checkpoint-dir={checkpoints}",
        "--",
        *example_args(dataset, None, "--epochs=2", "--evalImages="),
    )
    assert result.returncode == 0, result.stderr
    listing = run_nnsim("checkpoint", "list", str(checkpoints))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    manifests = {
        path.name: json.loads((path / "manifest.json").read_text())
        for path in sorted(checkpoints.iterdir())
        if (path / "manifest.json").exists()
    }
    assert {m["monitor"] for m in manifests.values()} == {"val_acc"}  # written by the run
    accuracies = [(m["metrics"]["val_acc"], name) for name, m in manifests.items()]
    best = next(name for value, name in accuracies if value == max(v for v, _ in accuracies))
    assert lines[-1] == f"best: {best} (highest val_acc)"
    marked = [line.split()[0] for line in lines[1:-1] if "best" in line.split()[-2:]]
    assert marked == [best]
    by_loss = run_nnsim("checkpoint", "list", str(checkpoints), "--monitor", "val_loss")
    assert by_loss.stdout.splitlines()[-1].endswith("(lowest val_loss)")


def test_diff_exits_0_when_same_1_when_different_2_on_trouble(run, tmp_path):
    same = run_nnsim("checkpoint", "diff", str(run["last"]), str(run["last"]))
    assert (same.returncode, same.stdout) == (0, "no differences\n")
    copy = tmp_path / "copy"
    shutil.copytree(run["last"], copy)
    assert run_nnsim("checkpoint", "diff", str(run["last"]), str(copy)).returncode == 0

    different = run_nnsim("checkpoint", "diff", str(run["first"]), str(run["last"]))
    assert different.returncode == 1 and "dense1/weights" in different.stdout

    missing = run_nnsim("checkpoint", "diff", str(run["first"]), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("nnsim: error: ") and "nowhere" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_diff_summary_counts_per_component(run):
    result = run_nnsim("checkpoint", "diff", "--summary", str(run["first"]), str(run["last"]))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    groups = {line.split()[0]: line for line in lines[:-1]}
    assert {"controller", "dense1", "dense2", "dense3", "loss"} <= set(groups)
    assert "tensors, max |a-b| = " in groups["dense1"] and "changed" in groups["controller"]
    full = run_nnsim("checkpoint", "diff", str(run["first"]), str(run["last"])).stdout
    total = len(full.splitlines())
    assert lines[-1].startswith(f"{total} differences: ")
    assert len(lines) < total  # counts, not every value
