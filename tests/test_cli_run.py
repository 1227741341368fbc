"""`nnsim run` and friends through the real CLI, as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from conftest import EXAMPLE, REPO, example_args, requires_fashion_mnist, run_nnsim
from PIL import Image


def write_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "model.py"
    script.write_text(textwrap.dedent(body))
    return script


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnsim: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_example_trains_on_a_toy_dataset_and_predicts(toy_dataset, eval_folder):
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--",
        *example_args(toy_dataset, None, "--epochs=4", f"--evalImages={eval_folder}"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:6]] == [
        "epoch 0 training",
        "epoch 0 validation",
        "epoch 1 training",
        "epoch 1 validation",
        "epoch 2 training",
        "epoch 2 validation",
    ]
    assert lines[8].endswith("Survey says ### TOP") and lines[9].endswith("Survey says ### TROUSER")
    assert lines[-1].startswith("Simulation is complete, simulated time: ")
    assert "\x1b" not in result.stdout  # no progress bar escape codes in a pipe


def test_script_arguments_go_after_the_double_dash_and_options_before(toy_dataset, tmp_path):
    dot, stats = tmp_path / "graph.dot", tmp_path / "stats.json"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--seed=5",
        f"--output-dot={dot}",
        f"--statistics={stats}",
        "--",
        *example_args(toy_dataset, None, "--epochs=1", "--evalImages="),
    )
    assert result.returncode == 0, result.stderr
    graph = dot.read_text()
    assert graph.startswith("digraph nnsim {")
    for name in (
        "controller",
        "input",
        "dense1",
        "relu1",
        "dense2",
        "relu2",
        "dense3",
        "softmax",
        "loss",
    ):
        assert f'"{name}"' in graph
    document = json.loads(stats.read_text())
    assert document["statistics"]["controller"]["training_steps"] == 7
    assert document["statistics"]["dense1"]["forward_in.events_received"] == 7 + 4


def test_statistics_as_csv(toy_dataset, tmp_path):
    stats = tmp_path / "stats.csv"
    result = run_nnsim(
        "run",
        EXAMPLE,
        f"--statistics={stats}",
        "--",
        *example_args(toy_dataset, None, "--epochs=1", "--evalImages="),
    )
    assert result.returncode == 0, result.stderr
    rows = stats.read_text().splitlines()
    assert rows[0] == "component,statistic,value"
    assert "dense1,clock0.busy_ticks,18" in rows


def test_the_same_seed_prints_the_same_output_and_another_seed_does_not(toy_dataset):
    args = ["--", *example_args(toy_dataset, None, "--epochs=2", "--evalImages=")]
    first = run_nnsim("run", EXAMPLE, "--seed=1", *args).stdout
    again = run_nnsim("run", EXAMPLE, "--seed=1", *args).stdout
    other = run_nnsim("run", EXAMPLE, "--seed=2", *args).stdout
    assert first == again
    assert first != other


def test_stop_at_ends_the_run_at_that_time(toy_dataset):
    result = run_nnsim(
        "run", EXAMPLE, "--stop-at=50us", "--", *example_args(toy_dataset, None, "--epochs=1")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Simulation is complete, simulated time: 50 us"]


def test_missing_training_folder_is_one_clear_line(tmp_path):
    result = run_nnsim("run", EXAMPLE, "--", f"--trainingImages={tmp_path / 'nope'}")
    assert_one_line_error(result, "nope", "does not exist")


def test_empty_training_folder_is_one_clear_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_nnsim("run", EXAMPLE, "--", f"--trainingImages={tmp_path / 'empty'}")
    assert_one_line_error(result, "empty")


def test_a_png_that_is_not_an_image_is_one_clear_line(toy_dataset, tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png at all")
    result = run_nnsim(
        "run", EXAMPLE, "--", *example_args(toy_dataset, None, f"--evalImages={folder}")
    )
    assert_one_line_error(result, "broken.png")


def test_a_training_image_of_the_wrong_size_is_one_clear_line(tmp_path, toy_dataset):
    root = tmp_path / "train"
    (root / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32), np.uint8), mode="L").save(root / "0" / "big.png")
    result = run_nnsim(
        "run", EXAMPLE, "--", f"--trainingImages={root}", f"--testImages={toy_dataset}"
    )
    assert_one_line_error(result, "big.png", "32x32", "28x28")


def test_unknown_parameter_is_named_with_a_suggestion(tmp_path):
    script = write_script(
        tmp_path,
        """
        import nnsim
        nnsim.simulation().add("nn.Dense", "dense", input_size=4, ouptut_size=2)
        """,
    )
    result = run_nnsim("run", str(script))
    assert_one_line_error(
        result, "dense (nn.Dense) has no parameter 'ouptut_size'", "did you mean 'output_size'"
    )


def test_ill_typed_parameter_is_named(tmp_path):
    script = write_script(
        tmp_path,
        """
        import nnsim
        nnsim.simulation().add("nn.Dense", "dense", input_size="four", output_size=2)
        """,
    )
    result = run_nnsim("run", str(script))
    assert_one_line_error(
        result, "parameter 'input_size' of dense (nn.Dense)", "expected an int", "'four'"
    )


def test_unknown_component_type_is_named(tmp_path):
    script = write_script(tmp_path, "import nnsim\nnnsim.simulation().add('nn.Dence', 'd')\n")
    assert_one_line_error(
        run_nnsim("run", str(script)), "unknown component type 'nn.Dence'", "nn.Dense"
    )


def test_a_script_that_raises_names_the_script_line_and_error(tmp_path):
    script = write_script(tmp_path, "x = 1\nraise RuntimeError('boom')\n")
    result = run_nnsim("run", str(script))
    assert_one_line_error(result, f"model script '{script}' raised RuntimeError at line 2: boom")


def test_debug_shows_the_traceback(tmp_path):
    script = write_script(tmp_path, "raise RuntimeError('boom')\n")
    result = run_nnsim("run", "--debug", str(script))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "boom" in result.stderr


def test_a_missing_script_is_one_clear_line(tmp_path):
    assert_one_line_error(run_nnsim("run", str(tmp_path / "none.py")), "none.py", "does not exist")


def test_a_link_to_a_port_that_does_not_exist_is_named(tmp_path):
    script = write_script(
        tmp_path,
        """
        import nnsim
        sim = nnsim.simulation()
        sim.add("nn.ReLU", "a")
        sim.add("nn.ReLU", "b")
        sim.connect("a.forward_out", "b.forwardin")
        """,
    )
    assert_one_line_error(
        run_nnsim("run", str(script)), "b (nn.ReLU) has no port 'forwardin'", "forward_in"
    )


def test_an_unconnected_port_that_is_used_is_named(tmp_path, toy_dataset):
    script = write_script(
        tmp_path,
        f"""
        import nnsim
        sim = nnsim.simulation()
        sim.add("nn.BatchController", "controller", training_images="{toy_dataset}",
                test_images="{toy_dataset}", progress=False)
        """,
    )
    assert_one_line_error(
        run_nnsim("run", str(script)),
        "controller sent an event on port 'forward_out', which is not connected",
    )


def test_a_model_with_no_components_is_refused(tmp_path):
    script = write_script(tmp_path, "import nnsim\nnnsim.simulation()\n")
    assert_one_line_error(run_nnsim("run", str(script)), "no components")


def test_run_help_documents_the_options():
    result = run_nnsim("run", "--help")
    for option in ("--seed", "--stop-at", "--verbose", "--debug", "--output-dot", "--statistics"):
        assert option in result.stdout


def test_progress_bar_shows_on_a_terminal(toy_dataset):
    """Under a pseudo-terminal rich draws the bar; the epoch lines still come out."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnsim.cli",
            "run",
            EXAMPLE,
            "--",
            *example_args(toy_dataset, None, "--epochs=1"),
        ],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, screen
    assert "epoch 0 validation:" in screen
    assert "\x1b[" in screen  # the bar's cursor control


@requires_fashion_mnist
def test_the_example_configuration_reaches_84_percent_and_its_simulated_time():
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--",
        "--classImageLimit=2000",
        "--batchSize=128",
        "--epochs=10",
        "--hiddenLayerSize=128",
        "--initialWeightScaling=0.01",
        "--learningRate=0.001",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 0 training:\tacc: ")
    assert lines[0].endswith("lr: 0.0008650519")
    final_validation = float(lines[19].split("acc: ")[1].split()[0])
    assert lines[19].startswith("epoch 9 validation:") and final_validation >= 0.84
    assert (
        lines[20]
        == "Prediction for examples/fashion_mnist/eval/pants.png ...\tSurvey says ### TROUSER"
    )
    assert (
        lines[21]
        == "Prediction for examples/fashion_mnist/eval/tshirt.png ...\tSurvey says ### TOP"
    )
    assert lines[22] == "Simulation is complete, simulated time: 32.2803 ms"


@requires_fashion_mnist
def test_exported_pngs_train_exactly_like_the_idx_files(tmp_path):
    out = tmp_path / "png"
    export = run_nnsim("data", "export-png", f"--out={out}", "--classImageLimit=30")
    assert export.returncode == 0, export.stderr
    assert sorted(path.name for path in (out / "train").iterdir())[:2] == ["ANKLE_BOOT", "BAG"]
    common = [
        "--classImageLimit=30",
        "--epochs=2",
        "--batchSize=64",
        "--evalImages=examples/fashion_mnist/eval2",
    ]
    from_idx = run_nnsim("run", EXAMPLE, "--", *common)
    from_png = run_nnsim(
        "run",
        EXAMPLE,
        "--",
        *common,
        f"--trainingImages={out / 'train'}",
        f"--testImages={out / 'test'}",
    )
    assert from_idx.returncode == 0 and from_png.returncode == 0, from_png.stderr
    assert from_idx.stdout == from_png.stdout
    assert from_idx.stdout.count("Prediction for") == 10


def test_verbose_reports_phases_and_double_verbose_traces_every_event(toy_dataset):
    args = ["--", *example_args(toy_dataset, None, "--epochs=1", "--evalImages=")]
    once = run_nnsim("run", "-v", EXAMPLE, *args)
    assert once.returncode == 0, once.stderr
    notes = [line for line in once.stdout.splitlines() if line.startswith("# ")]
    assert notes[0] == "# 9 components, 17 links, seed 0"
    assert "# setup done; running" in notes
    assert any(note.startswith("# run stopped at") and "(primaries done)" in note for note in notes)
    twice = run_nnsim("run", "-vv", EXAMPLE, *args)
    assert "# @1000 ps controller.on_tick (clock)" in twice.stdout
    assert "# @1001000 ps input.on_event(Batch)" in twice.stdout
    plain = [line for line in twice.stdout.splitlines() if not line.startswith("#")]
    assert plain == [line for line in once.stdout.splitlines() if not line.startswith("#")]
