"""``nnsim dataflow run`` and ``explore`` end to end, through the real CLI, on a tiny model.

The model is a 784-6-10 network written as an npz in the test (random
weights: the point is that the dataflow graph predicts what the layer math
and onnxruntime predict, not that it is accurate); the images are the toy
IDX set of conftest or a few PNGs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import make_idx_dataset, requires_fashion_mnist, run_nnsim
from PIL import Image

from nnsim.data import CLASS_NAMES, read_idx_split, scale_pixels
from nnsim.dataflow.report import LAYER_COLUMNS, LINK_COLUMNS, NODE_COLUMNS, PREDICTION_COLUMNS
from nnsim.interop import load_model

HARDWARE = """
name = "tiny"
[node]
clock = "1GHz"
macs_per_cycle = 8
memory_words = 6000
input_ports = 8
output_ports = 8
count = 4
[link]
latency = 2
width = 64
[topology]
kind = "full"
"""


def write_model(path: Path, hidden: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        **{
            "dense1.weights": rng.normal(0, 0.1, (784, hidden)).astype(np.float32),
            "dense1.biases": rng.normal(0, 0.1, hidden).astype(np.float32),
            "dense2.weights": rng.normal(0, 1.0, (hidden, 10)).astype(np.float32),
            "dense2.biases": rng.normal(0, 0.1, 10).astype(np.float32),
        },
    )
    return path


def make_case(folder: Path, test_per_class: int = 3) -> dict:
    """A model, hardware and ``10 * test_per_class`` toy test images, all in ``folder``."""
    (folder / "hw.toml").write_text(HARDWARE)
    return {
        "dir": folder,
        "weights": write_model(folder / "model.npz"),
        "hardware": folder / "hw.toml",
        "images": make_idx_dataset(
            folder / "toy", train_per_class=1, test_per_class=test_per_class
        ),
    }


@pytest.fixture
def case(tmp_path: Path) -> dict:
    """A model, hardware and 30 toy test images, all in tmp_path."""
    return make_case(tmp_path)


def dataflow_run(case: dict, *extra: str, fold: str | None = "balanced"):
    args = [
        "dataflow",
        "run",
        "--weights",
        str(case["weights"]),
        "--hardware",
        str(case["hardware"]),
    ]
    args += ["--images", str(case["images"])]
    if fold is not None:
        args += ["--fold", fold]
    return run_nnsim(*args, *extra, cwd=case["dir"])


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def expected_classes(case: dict) -> list[str]:
    data = read_idx_split(case["images"], "test")
    return [CLASS_NAMES[i] for i in load_model(case["weights"]).predict(scale_pixels(data.images))]


def test_run_prints_the_summary_and_agrees_with_onnxruntime_and_the_layer_math(case):
    result = dataflow_run(
        case, "--nodes", "4", "--compare", "onnxruntime", "--compare", "layer", "--output", "out"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    labels = [line.split("  ")[0] for line in lines]
    for name in ("latency", "throughput", "utilization", "link traffic", "memory/node"):
        assert name in labels, result.stdout
    assert any(line.startswith("critical path  source (node") for line in lines)
    assert any(line.endswith(" -> sink (node" + line.rsplit("sink (node", 1)[-1]) for line in lines)
    assert "agreement with onnxruntime: 30/30 (100.00%)" in lines
    assert "agreement with layer: 30/30 (100.00%)" in lines
    assert result.stderr == ""


def test_the_reports_have_scale_sim_like_columns_and_the_predictions_of_the_model(case):
    result = dataflow_run(case, "--nodes", "4", "--output", "out")
    assert result.returncode == 0, result.stderr
    out = case["dir"] / "out"
    header, nodes = read_csv(out / "nodes.csv")
    assert tuple(header) == NODE_COLUMNS and len(nodes) == 4
    assert sum(int(row["Vertices"]) for row in nodes) == 1 + 6 + 10 + 1
    assert sum(int(row["MACs"]) for row in nodes) == 30 * (784 * 6 + 6 * 10)
    for row in nodes:
        busy, total = int(row["Busy Cycles"]), int(row["Total Cycles"])
        assert 0 <= busy <= total and int(row["Stall Cycles"]) == total - busy
        assert int(row["Memory Words"]) <= 6000
    header, links = read_csv(out / "links.csv")
    assert tuple(header) == LINK_COLUMNS and links
    assert all(int(row["Frames"]) > 0 and int(row["Words"]) >= int(row["Frames"]) for row in links)
    header, layers = read_csv(out / "layers.csv")
    assert tuple(header) == LAYER_COLUMNS
    assert [row["Layer"] for row in layers] == ["dense1", "dense2"]
    assert [int(row["Neurons"]) for row in layers] == [6, 10]
    header, predictions = read_csv(out / "predictions.csv")
    assert tuple(header) == PREDICTION_COLUMNS and len(predictions) == 30
    assert [row["prediction"] for row in predictions] == expected_classes(case)
    data = read_idx_split(case["images"], "test")
    assert [row["label"] for row in predictions] == [CLASS_NAMES[i] for i in data.labels]
    for row in predictions:
        assert int(row["done_ps"]) - int(row["inject_ps"]) == int(row["latency_ps"]) > 0
    assert f"wrote {Path('out') / 'predictions.csv'}" in result.stdout


def test_folding_changes_the_timing_never_the_predictions(case):
    runs = {}
    for fold, nodes in (("layer", "2"), ("greedy", "4"), ("balanced", "3")):
        result = dataflow_run(case, "--nodes", nodes, "--output", fold, fold=fold)
        assert result.returncode == 0, result.stderr
        runs[fold] = read_csv(case["dir"] / fold / "predictions.csv")[1]
    predictions = {fold: [row["prediction"] for row in rows] for fold, rows in runs.items()}
    assert predictions["layer"] == predictions["greedy"] == predictions["balanced"]
    done = {fold: [row["done_ps"] for row in rows] for fold, rows in runs.items()}
    assert done["layer"] != done["greedy"]


def test_a_saved_mapping_runs_again_to_the_same_reports(case):
    first = dataflow_run(case, "--nodes", "4", "--save-mapping", "m.json", "--output", "a")
    assert first.returncode == 0, first.stderr
    again = dataflow_run(case, "--nodes", "4", "--mapping", "m.json", "--output", "b", fold=None)
    assert again.returncode == 0, again.stderr
    for name in ("nodes.csv", "links.csv", "layers.csv", "predictions.csv"):
        assert (case["dir"] / "a" / name).read_text() == (case["dir"] / "b" / name).read_text()


def test_the_same_seed_gives_the_same_faulty_run(case):
    extra = ("--nodes", "4", "--corrupt-rate", "0.001", "--seed", "7")
    one = dataflow_run(case, *extra, "--output", "one")
    two = dataflow_run(case, *extra, "--output", "two")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    for name in ("predictions.csv", "nodes.csv"):
        assert (case["dir"] / "one" / name).read_text() == (case["dir"] / "two" / name).read_text()
    _, nodes = read_csv(case["dir"] / "one" / "nodes.csv")
    assert sum(int(row["Bits Flipped"]) for row in nodes) > 0
    assert any(line.startswith("faults ") for line in one.stdout.splitlines())


def test_a_crashed_node_leaves_images_unclassified_and_says_which(case):
    result = dataflow_run(
        case, "--nodes", "4", "--fold", "layer", "--crash", "node1@0ps", "--output", "out"
    )
    assert result.returncode == 0, result.stderr
    missing = [line for line in result.stdout.splitlines() if line.startswith("missing")]
    assert missing and "images not classified" in missing[0]
    _, rows = read_csv(case["dir"] / "out" / "predictions.csv")
    assert any(row["prediction"] == "" for row in rows)


def test_class_folders_and_flat_png_folders_are_read_with_their_labels(case):
    flat, classes = case["dir"] / "flat", case["dir"] / "classes"
    flat.mkdir()
    for label in (0, 7):
        image = np.full((28, 28), 20 + 30 * label, dtype=np.uint8)
        Image.fromarray(image, mode="L").save(flat / f"{CLASS_NAMES[label].lower()}.png")
        (classes / str(label)).mkdir(parents=True)
        Image.fromarray(image, mode="L").save(classes / str(label) / "a.png")
    for folder, expected in ((flat, ["SNEAKER", "TOP"]), (classes, ["TOP", "SNEAKER"])):
        result = run_nnsim(
            "dataflow", "run", "--weights", str(case["weights"]), "--hardware",
            str(case["hardware"]), "--fold", "greedy", "--images", str(folder),
            "--output", str(folder) + "-out", cwd=case["dir"],
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        _, rows = read_csv(Path(str(folder) + "-out") / "predictions.csv")
        assert [row["label"] for row in rows] == expected  # flat: by file name


def test_explore_ranks_every_combination_and_draws_the_picture(case):
    result = run_nnsim(
        "dataflow", "explore", "--weights", str(case["weights"]), "--hardware",
        str(case["hardware"]), "--images", str(case["images"]), "--nodes", "1,2,4",
        "--fold", "layer,balanced", "--metric", "throughput", "--output", "ex",
        cwd=case["dir"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ranked by throughput (best first)")
    header, rows = read_csv(case["dir"] / "ex" / "explore.csv")
    assert len(rows) == 6
    feasible = [row for row in rows if row["feasible"] == "yes"]
    rates = [float(row["throughput_images_per_s"]) for row in feasible]
    assert rates == sorted(rates, reverse=True) and len(set(rates)) > 1
    assert rows[: len(feasible)] == feasible  # refused rows last
    assert any(row["pareto"] == "yes" for row in feasible)
    table = [line.split()[:2] for line in lines[2 : 2 + len(rows)]]
    assert table == [[row["strategy"], row["nodes"]] for row in rows]
    png = (case["dir"] / "ex" / "explore.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_explore_shows_a_configuration_that_does_not_fit_as_a_refused_row(case):
    (case["dir"] / "small.toml").write_text(HARDWARE.replace("6000", "5550"))
    result = run_nnsim(
        "dataflow", "explore", "--weights", str(case["weights"]), "--hardware", "small.toml",
        "--images", str(case["images"]), "--nodes", "1,4", "--fold", "balanced",
        cwd=case["dir"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    refused = [line for line in result.stdout.splitlines() if "refused:" in line]
    assert len(refused) == 1 and refused[0].split()[:2] == ["balanced", "1"]
    assert "memory" in refused[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--weights": "missing.npz"}, "missing.npz"),
        ({"--hardware": "missing.toml"}, "missing.toml"),
        ({"--fold": "balanse"}, "did you mean 'balanced'"),
        ({"--crash": "node3"}, "--crash 'node3': write NODE@TIME"),
        ({"--crash": "node2@5"}, "--crash 'node2@5'"),
        ({"--crash": "node9@5us"}, "not node9"),
        ({"--nodes": "0"}, "--nodes must be at least 1"),
        ({"--limit": "0"}, "--limit must be at least 1"),
        ({"--compare": "onnx"}, "unknown reference 'onnx'"),
        ({"--images": "nowhere"}, "images folder 'nowhere' does not exist"),
        ({"--granularity": "pixels"}, "granularity 'pixels'"),
        ({"--corrupt-rate": "2"}, "--corrupt-rate must be a probability"),
        ({"--mapping": "m.json"}, "either --fold STRATEGY or --mapping FILE"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(case, change, message):
    options = {"--nodes": "4", "--output": "out"}
    options.update(change)
    args = [item for pair in options.items() for item in pair]
    if "--weights" in change:
        args += [
            "--hardware",
            str(case["hardware"]),
            "--images",
            str(case["images"]),
            "--fold",
            "balanced",
        ]
        result = run_nnsim("dataflow", "run", *args, cwd=case["dir"])
    elif "--hardware" in change:
        args += [
            "--weights",
            str(case["weights"]),
            "--images",
            str(case["images"]),
            "--fold",
            "balanced",
        ]
        result = run_nnsim("dataflow", "run", *args, cwd=case["dir"])
    else:
        fold = None if "--fold" in change else "balanced"
        result = dataflow_run(case, *args, fold=fold)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("nnsim: error: ") and len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not (case["dir"] / "out").exists()


def test_a_mapping_for_another_graph_is_refused_in_one_line(case):
    saved = dataflow_run(case, "--nodes", "4", "--save-mapping", "m.json")
    assert saved.returncode == 0, saved.stderr
    case = {**case, "weights": write_model(case["dir"] / "other.npz", hidden=5)}
    result = dataflow_run(case, "--nodes", "4", "--mapping", "m.json", fold=None)
    assert result.returncode == 1
    assert result.stderr.startswith("nnsim: error: m.json") and len(result.stderr.splitlines()) == 1


@requires_fashion_mnist
def test_the_fashion_mnist_test_set_agrees_with_onnxruntime(tmp_path):
    (tmp_path / "hw.toml").write_text(HARDWARE.replace("6000", "20000"))
    weights = write_model(tmp_path / "model.npz", hidden=16)
    result = run_nnsim(
        "dataflow", "run", "--weights", str(weights), "--hardware", "hw.toml", "--fold", "metis",
        "--images", "test", "--limit", "300", "--compare", "onnxruntime", "--output", "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "agreement with onnxruntime: 300/300 (100.00%)" in result.stdout.splitlines()
    _, rows = read_csv(tmp_path / "out" / "predictions.csv")
    assert len(rows) == 300 and rows[0]["name"] == "test/0"


@pytest.mark.parametrize("output", ["linear", "softmax"])
def test_the_onnx_graph_of_a_dense_model_computes_its_forward_math(output):
    from nnsim.dataflow.compare import layer_outputs, onnxruntime_outputs
    from nnsim.interop import DenseLayer, DenseModel

    rng = np.random.default_rng(3)
    model = DenseModel(
        (
            DenseLayer("a", rng.normal(size=(20, 7)), rng.normal(size=7), "relu"),
            DenseLayer("b", rng.normal(size=(7, 5)), rng.normal(size=5), "linear"),
            DenseLayer("c", rng.normal(size=(5, 3)), rng.normal(size=3), output),
        )
    )
    pixels = rng.normal(size=(40, 20)).astype(np.float32)
    expected = layer_outputs(model, pixels)
    assert np.allclose(onnxruntime_outputs(model, pixels), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(np.argmax(expected, axis=1), model.predict(pixels))


def test_a_checkpoint_mid_run_restarts_to_the_same_reports(case):
    straight = dataflow_run(case, "--nodes", "4", "--output", "straight")
    assert straight.returncode == 0, straight.stderr
    stopped = dataflow_run(
        case, "--nodes", "4", "--checkpoint-enable", "--checkpoint-period", "10us",
        "--checkpoint-dir", "ck", "--stop-at", "15us",
    )  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    assert [path.name for path in (case["dir"] / "ck").iterdir() if path.is_dir()] == [
        "checkpoint_1_10000000"
    ]
    again = dataflow_run(case, "--nodes", "4", "--load-checkpoint", "ck", "--output", "again")
    assert again.returncode == 0, again.stderr
    for name in ("nodes.csv", "links.csv", "layers.csv", "predictions.csv"):
        assert (case["dir"] / "again" / name).read_text() == (
            case["dir"] / "straight" / name
        ).read_text()
    other = dataflow_run(case, "--nodes", "2", "--load-checkpoint", "ck")
    assert other.returncode == 1 and "is of another dataflow run" in other.stderr
    bare = run_nnsim("dataflow", "run", "--load-checkpoint", "ck", cwd=case["dir"])
    assert bare.returncode == 1 and len(bare.stderr.splitlines()) == 1
    assert "takes the options that built it" in bare.stderr


def test_the_console_walks_nodes_and_neurons_of_a_dataflow_run(case):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable, "-m", "nnsim.cli", "dataflow", "run", "--weights",
            str(case["weights"]), "--hardware", str(case["hardware"]), "--images",
            str(case["images"]), "--fold", "balanced", "--nodes", "4", "--interactive-start",
        ],
        input="print sink/classified\nrun 10us\nprint sink/classified\ncd dense1/n5\nls -l\ncontinue\n",
        capture_output=True, text=True, cwd=case["dir"], timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    counts = [int(line.split()[2]) for line in lines if line.startswith("classified = ")]
    assert counts[0] == 0 and 0 < counts[1] < 30
    assert any(line.startswith("weights/ (float64[784])") for line in lines)  # dense1/n5's row
    assert any(line.startswith("sum = ") for line in lines)
    assert any(line.startswith("latency  ") for line in lines)  # the run went on to its summary


def test_statistics_trace_and_dot_work_as_for_nnsim_run(case):
    import json

    result = dataflow_run(
        case, "--nodes", "4", "--statistics", "stats.csv", "--trace-events", "trace.json",
        "--output-dot", "graph.dot",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, rows = read_csv(case["dir"] / "stats.csv")
    assert header == ["component", "statistic", "value"]
    assert {row["component"] for row in rows} >= {"node0", "node3"}
    events = json.loads((case["dir"] / "trace.json").read_text())["traceEvents"]
    assert any(event.get("name", "").startswith("on_") for event in events)
    assert 'subgraph "cluster_node0"' in (case["dir"] / "graph.dot").read_text()


def test_an_interval_injects_at_a_fixed_rate(case):
    result = dataflow_run(case, "--nodes", "4", "--interval", "10us", "--output", "out")
    assert result.returncode == 0, result.stderr
    _, rows = read_csv(case["dir"] / "out" / "predictions.csv")
    assert [int(row["inject_ps"]) for row in rows] == [i * 10_000_000 for i in range(30)]
    rate = 30 / (max(int(row["done_ps"]) for row in rows) * 1e-12)  # first inject at 0
    assert f"throughput     {rate:,.0f} images/s (simulated)" in result.stdout.splitlines()
