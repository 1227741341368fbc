"""`nnsim checkpoint ...` and `nnsim predict` through the real CLI, on checkpoints of a real run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, example_args, make_idx_dataset, run_nnsim
from PIL import Image
from safetensors.numpy import load_file
from test_cli_run import assert_one_line_error

from nnsim.checkpoint import FORMAT_VERSION, open_checkpoint


def write_eval_folder(folder: Path) -> Path:
    """Evaluation PNGs of classes 0, 1 and 7 in the toy dataset's pattern."""
    folder.mkdir()
    for label in (0, 1, 7):
        image = np.full((28, 28), 20, dtype=np.uint8)
        row, col = divmod(label, 5)
        image[4 + row * 12 : 12 + row * 12, 2 + col * 5 : 6 + col * 5] = 230
        Image.fromarray(image, mode="L").save(folder / f"class{label}.png")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs with a checkpoint after each; the training data is deleted afterwards."""
    root = tmp_path_factory.mktemp("checkpoint_cli")
    dataset = make_idx_dataset(root / "toy")
    eval_folder = write_eval_folder(root / "eval")
    checkpoints = root / "checkpoints"
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={checkpoints}",
        "--",
        *example_args(dataset, None, "--epochs=2", f"--evalImages={eval_folder}"),
    )
    assert result.returncode == 0, result.stderr
    shutil.rmtree(dataset)  # everything below works from the checkpoints alone
    names = sorted(
        (p.name for p in checkpoints.iterdir() if p.is_dir()), key=lambda n: int(n.split("_")[1])
    )
    assert len(names) == 2, names
    return {
        "root": root,
        "dir": checkpoints,
        "first": checkpoints / names[0],
        "last": checkpoints / names[1],
        "eval": eval_folder,
        "stdout": result.stdout,
    }


def ok(*args: str) -> str:
    result = run_nnsim(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_documents_every_checkpoint_command():
    text = ok("checkpoint", "--help")
    for command in ("list", "inspect", "verify", "diff", "export"):
        assert f"  {command} " in text


def test_list_shows_one_row_per_checkpoint_and_marks_the_latest(run):
    lines = ok("checkpoint", "list", str(run["dir"])).splitlines()
    assert lines[0].split()[:5] == ["NAME", "SIMULATED", "REASON", "VAL_LOSS", "VAL_ACC"]
    assert [line.split()[0] for line in lines[1:-1]] == [run["first"].name, run["last"].name]
    assert "epoch 0" in lines[1] and "epoch 1" in lines[2]
    assert lines[2].endswith("latest") and not lines[1].endswith("latest")
    assert " ms " in lines[1] or " us " in lines[1]  # simulated time with its unit


def test_list_of_a_missing_folder_is_a_one_line_error(tmp_path):
    assert_one_line_error(
        run_nnsim("checkpoint", "list", str(tmp_path / "nowhere")), "nowhere", "does not exist"
    )


def test_inspect_shows_graph_tensors_state_and_queue_without_loading_tensors(run):
    text = ok("checkpoint", "inspect", str(run["last"]))
    assert text.startswith(f"checkpoint  {run['last'].name}\n")
    for fragment in (
        f"format      {FORMAT_VERSION}",
        "dense1            nn.Dense",
        "loss/optimizer  nn.Adam",
        "controller.forward_out (1 us)",
        "dense1/weights",
        "[784, 16]",
        "    weights: float32[784,16]",
        "    epoch = 2",
        "    state = PRECHECK_EVALUATION",
        "      iterations = ",
        "queue: ",
    ):
        assert fragment in text, fragment


def test_verify_passes_on_a_good_checkpoint_and_fails_in_one_line_on_a_corrupted_copy(run):
    manifest = json.loads((run["last"] / "manifest.json").read_text())
    line = ok("checkpoint", "verify", str(run["last"])).strip()
    files = len(manifest["files"])
    assert line.startswith(f"OK: {run['last'].name} ({files} file{'' if files == 1 else 's'}, ")
    assert line.endswith("SHA-256 verified)")

    corrupted = run["root"] / "corrupted"
    shutil.copytree(run["last"], corrupted)
    tensor_file = next(corrupted.glob("*.safetensors"))
    data = bytearray(tensor_file.read_bytes())
    data[-1] ^= 0xFF
    tensor_file.write_bytes(bytes(data))
    assert_one_line_error(run_nnsim("checkpoint", "verify", str(corrupted)), tensor_file.name)


def test_diff_between_epochs_shows_the_trained_weights_and_counters(run):
    result = run_nnsim("checkpoint", "diff", str(run["first"]), str(run["last"]))
    assert result.returncode == 1, result.stderr  # as diff(1): they differ
    text = result.stdout
    lines = {line.split()[1]: line for line in text.splitlines()}
    assert lines["controller/epoch"].split()[0] == "changed"
    assert lines["controller/epoch"].endswith("1 -> 2")
    assert (
        lines["dense1/weights"].split()[0] == "tensor" and "max |a-b| = " in lines["dense1/weights"]
    )
    assert lines["controller/state"].endswith("TRAINING -> PRECHECK_EVALUATION")
    assert ok("checkpoint", "diff", str(run["last"]), str(run["last"])).strip() == "no differences"


def test_export_writes_the_weights_of_the_checkpoint(run):
    out = run["root"] / "exported"
    out.mkdir(exist_ok=True)
    storage, name = open_checkpoint(str(run["last"]))
    _, tensors = storage.load(name)
    weights = {"dense1": tensors["dense1/weights"], "dense3": tensors["dense3/weights"]}

    ok("checkpoint", "export", str(run["last"]), "--format=safetensors", f"--out={out / 'w.st'}")
    loaded = load_file(out / "w.st")
    assert np.array_equal(loaded["dense1.weights"], weights["dense1"])

    ok("checkpoint", "export", str(run["last"]), f"--out={out / 'w.npz'}")  # format from suffix
    with np.load(out / "w.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["dense3.weights"], weights["dense3"])
        assert npz["dense3.biases"].shape == (10,)

    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        ok("checkpoint", "export", str(run["last"]), f"--out={out / 'model.onnx'}")
        assert (out / "model.onnx").stat().st_size > weights["dense1"].nbytes

    assert_one_line_error(
        run_nnsim("checkpoint", "export", str(run["last"]), f"--out={out / 'w.bin'}"),
        "--format",
    )


def test_predict_from_the_checkpoint_matches_the_training_run(run):
    expected = [line for line in run["stdout"].splitlines() if line.startswith("Prediction for")]
    assert len(expected) == 3
    result = run_nnsim("predict", "--checkpoint", str(run["dir"]), "--images", str(run["eval"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected  # the training data is gone: not needed


def test_predict_with_a_missing_images_folder_is_a_one_line_error(run):
    result = run_nnsim(
        "predict", "--checkpoint", str(run["last"]), "--images", str(run["root"] / "nope")
    )
    assert_one_line_error(result, "nope")
