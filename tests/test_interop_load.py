"""load_model: choosing the importer, nnsim checkpoints and run folders, npz and safetensors tables."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    assert_close,
    make_idx_dataset,
    random_dense,
    reference_forward,
    trained_sim,
)
from safetensors.numpy import save_file

from nnsim.checkpoint.manager import enable
from nnsim.errors import NnsimError
from nnsim.interop import (
    DenseLayer,
    DenseModel,
    export_npz,
    export_safetensors,
    importers,
    load_model,
    register_importer,
)
from nnsim.interop.load import _IMPORTERS
from nnsim.state import capture
from nnsim.train.evaluate import network

X = np.random.default_rng(5).uniform(-1, 1, (6, 784)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 784-12-8-10 network a few steps into training, its snapshot, and a checkpoint of it."""
    dataset = make_idx_dataset(tmp_path_factory.mktemp("toy"))
    sim = trained_sim(dataset, [12, 8, 10], seed=3, until="90us")
    body, tensors = capture(sim)
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    manager = enable(sim, str(checkpoints), announce=False)
    name = manager.checkpoint_now()
    manager.close()
    return body, tensors, checkpoints, name


def one_line_error(path, **options) -> str:
    with pytest.raises(NnsimError) as error:  # a ModelError, or the checkpoint reader's own
        load_model(path, **options)
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# nnsim checkpoints ------------------------------------------------------------------
def test_a_checkpoint_imports_as_the_network_nnsim_runs(trained):
    body, tensors, checkpoints, name = trained
    expected = network(body, tensors)(X)
    for location in (checkpoints / name, checkpoints, checkpoints / name / "manifest.json"):
        model = load_model(location)
        assert model.sizes == (784, 12, 8, 10)
        assert [layer.activation for layer in model.layers] == ["relu", "relu", "softmax"]
        assert [layer.name for layer in model.layers] == ["dense1", "dense2", "dense3"]
        assert_close(model.forward(X), expected)
        assert model.source.endswith(name)


def test_a_run_folder_imports_its_best_checkpoint(tmp_path, toy_dataset, eval_folder):
    from test_train_run import toy_toml

    from nnsim.checkpoint import open_checkpoint
    from nnsim.train import load_config, train

    config_file = tmp_path / "toy.toml"
    config_file.write_text(toy_toml(toy_dataset, eval_folder, tmp_path / "runs", epochs=2))
    result = train(load_config(config_file), progress="quiet")
    best = result.run_dir / "checkpoints" / "best"
    storage, name = open_checkpoint(best)
    body, tensors = storage.load(name)
    model = load_model(result.run_dir)
    assert model.source == storage.location(name)
    assert_close(model.forward(X), network(body, tensors)(X))
    (result.run_dir / "checkpoints" / "best").unlink()  # then its last one
    storage, name = open_checkpoint(result.run_dir / "checkpoints" / "last")
    assert load_model(result.run_dir).source == storage.location(name)


def test_a_folder_that_is_no_checkpoint_is_one_line(tmp_path):
    assert "not a checkpoint" in one_line_error(tmp_path)


# npz and safetensors as nnsim exports them -----------------------------------------
def test_nnsims_own_exports_import_back(trained, tmp_path):
    body, tensors, _, _ = trained
    expected = network(body, tensors)(X)
    safetensors = load_model(export_safetensors(body, tensors, tmp_path / "w.safetensors"))
    assert [layer.activation for layer in safetensors.layers] == ["relu", "relu", "softmax"]
    assert_close(safetensors.forward(X), expected)
    npz = load_model(export_npz(body, tensors, tmp_path / "w.npz"))  # no chain: logits out
    assert [layer.activation for layer in npz.layers] == ["relu", "relu", "linear"]
    assert_close(npz.logits(X), safetensors.logits(X))
    softmax = load_model(tmp_path / "w.npz", output_activation="softmax")
    assert_close(softmax.forward(X), expected)


def write_table(path: Path, table: dict) -> Path:
    if path.suffix == ".npz":
        np.savez(path, **table)
    else:
        save_file(table, str(path))
    return path


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_pytorch_names_are_transposed_and_ordered_by_their_numbers(tmp_path, suffix):
    layers = random_dense([5, 4, 4, 4, 3], seed=2)
    # stored fc10, fc2, fc3, fc1: the numbers, not the strings or the file, give the order
    forward_names = ["fc1", "fc2", "fc3", "fc10"]
    table = {}
    for name in ["fc10", "fc2", "fc3", "fc1"]:
        weights, biases = layers[forward_names.index(name)]
        table[f"{name}.weight"] = np.ascontiguousarray(weights.T)  # PyTorch: [out, in]
        table[f"{name}.bias"] = biases
    model = load_model(write_table(tmp_path / f"torch{suffix}", table))
    assert [layer.name for layer in model.layers] == forward_names
    x = X[:, :5]
    assert_close(model.forward(x), reference_forward(x, layers, ["relu"] * 3 + ["linear"]))


def test_names_without_numbers_keep_the_file_order_and_missing_biases_are_zero(tmp_path):
    (w1, _), (w2, b2) = random_dense([5, 4, 3], seed=4)
    path = tmp_path / "plain.npz"
    np.savez(path, **{"hidden.weights": w1, "out.weights": w2, "out.biases": b2})
    model = load_model(path)
    assert [layer.name for layer in model.layers] == ["hidden", "out"]
    assert (model.layers[0].biases == 0).all()
    x = X[:, :5]
    expected = reference_forward(x, [(w1, np.zeros(4, np.float32)), (w2, b2)], ["relu", "linear"])
    assert_close(model.forward(x), expected)


def test_a_safetensors_chain_in_the_metadata_gives_order_and_activations(tmp_path):
    (w1, b1), (w2, b2) = random_dense([5, 4, 3], seed=6)
    path = tmp_path / "chain.safetensors"
    save_file(
        {"b.weights": w2, "b.biases": b2, "a.weights": w1, "a.biases": b1},
        str(path),
        metadata={"layers": "input:nn.Input -> a:nn.Dense -> b:nn.Dense -> sm:nn.Softmax"},
    )
    model = load_model(path)
    assert [(layer.name, layer.activation) for layer in model.layers] == [
        ("a", "linear"),
        ("b", "softmax"),
    ]
    x = X[:, :5]
    assert_close(
        model.forward(x), reference_forward(x, [(w1, b1), (w2, b2)], ["linear", "softmax"])
    )


# Choosing the importer -------------------------------------------------------------
def test_files_without_a_known_suffix_are_recognised_by_their_first_bytes(trained, tmp_path):
    body, tensors, _, _ = trained
    export_npz(body, tensors, tmp_path / "weights.bin")
    export_safetensors(body, tensors, tmp_path / "weights.dat")
    assert load_model(tmp_path / "weights.bin").sizes == (784, 12, 8, 10)
    assert load_model(tmp_path / "weights.dat").layers[-1].activation == "softmax"
    assert load_model(tmp_path / "weights.dat", format="safetensors").sizes == (784, 12, 8, 10)
    (tmp_path / "notes.txt").write_text("hello")
    message = one_line_error(tmp_path / "notes.txt")
    assert "cannot tell what kind of weights file" in message and "format=" in message


def test_a_user_registers_an_importer_of_their_own(tmp_path):
    seen = []

    def load_csv(path: Path) -> DenseModel:
        seen.append(path)
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
        return DenseModel((DenseLayer("csv", rows[:-1], rows[-1], "linear"),), str(path))

    register_importer("csv", load_csv, suffixes=(".csv",))
    try:
        (tmp_path / "w.csv").write_text("1,2\n3,4\n0.5,0.5\n")
        model = load_model(tmp_path / "w.csv")
        assert seen == [tmp_path / "w.csv"] and "csv" in importers()
        assert model.forward(np.array([[1.0, 1.0]])).tolist() == [[4.5, 6.5]]
        assert "takes no option 'config'" in one_line_error(tmp_path / "w.csv", config="x")
    finally:
        del _IMPORTERS["csv"]


def test_a_package_declares_an_importer_as_an_entry_point(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from nnsim.interop import load

    declared = [
        EntryPoint("tables", "nnsim.interop.from_npz:load_npz", load.ENTRY_POINT_GROUP),
        EntryPoint("broken", "no_such_package.importer:load", load.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(load, "entry_points", lambda group: declared[: len(seen_entries)])
    seen_entries = [1]
    ((w, b),) = random_dense([4, 3])
    np.savez(tmp_path / "w.data", **{"a.weights": w, "a.biases": b})
    try:
        assert load_model(tmp_path / "w.data.npz", format="tables").sizes == (4, 3)
        seen_entries.append(2)
        message = one_line_error(tmp_path / "w.data.npz")
        assert (
            "weights importer 'broken' (no_such_package.importer:load) cannot be loaded" in message
        )
    finally:
        _IMPORTERS.pop("tables", None)
        load._LOADED_ENTRY_POINTS.clear()


def test_bad_requests_are_one_line(tmp_path):
    assert "unknown weights format 'tflite'" in one_line_error(tmp_path / "m", format="tflite")
    assert "does not exist" in one_line_error(tmp_path / "missing.npz")
    message = one_line_error(tmp_path / "m.npz", output_activation="tanh")
    assert "output_activation 'tanh' is not one of linear, softmax" in message


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "weights"
    os.mkfifo(fifo)
    assert "weights" in one_line_error(fifo)


# Hostile tables ---------------------------------------------------------------------
def npy_bytes(shape: tuple, dtype: str = "<f4", data: bytes = b"") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_hostile_npz_files_are_refused_before_anything_is_allocated(tmp_path):
    huge = zip_of(tmp_path / "huge.npz", {"a.weights.npy": npy_bytes((1 << 20, 1 << 20))})
    assert "declares shape (1048576, 1048576)" in one_line_error(huge)
    short = zip_of(tmp_path / "short.npz", {"a.weights.npy": npy_bytes((100, 100), data=b"x" * 8)})
    assert "holds" in one_line_error(short)
    objects = zip_of(tmp_path / "obj.npz", {"a.weights.npy": npy_bytes((2,), "|O")})
    assert "not numbers" in one_line_error(objects)
    other = zip_of(tmp_path / "other.npz", {"evil.sh": b"rm -rf /"})
    assert "member 'evil.sh' is not a .npy array" in one_line_error(other)
    bomb = zip_of(tmp_path / "bomb.npz", {"a.weights.npy": npy_bytes((4, 4)) + b"\0" * (1 << 24)})
    assert "holds" in one_line_error(bomb)  # 16 MiB of zeros behind a 4x4 header


def test_damaged_and_strange_tables_are_one_line(tmp_path):
    ((w, b),) = random_dense([4, 3])
    good = tmp_path / "good.npz"
    np.savez(good, **{"a.weights": w, "a.biases": b})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:100])
    assert "truncated.npz" in one_line_error(truncated)
    nan = tmp_path / "nan.npz"
    np.savez(nan, **{"a.weights": np.full((4, 3), np.nan, np.float32), "a.biases": b})
    assert "weights hold NaN" in one_line_error(nan)
    extra = tmp_path / "bn.npz"
    np.savez(extra, **{"a.weights": w, "bn.running_mean": b})
    assert "entry 'bn.running_mean' is not a dense layer's" in one_line_error(extra)
    only_bias = tmp_path / "bias.npz"
    np.savez(only_bias, **{"a.biases": b})
    assert "layer 'a' has biases but no weights" in one_line_error(only_bias)
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    assert "wrong.safetensors" in one_line_error(wrong)
    lying = tmp_path / "lying.safetensors"
    header = json.dumps(
        {"a.weights": {"dtype": "F32", "shape": [1 << 30, 1 << 30], "data_offsets": [0, 16]}}
    )
    lying.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0" * 16)
    assert "has 16 bytes for shape" in one_line_error(lying)
    chain = tmp_path / "chain.safetensors"
    save_file(
        {"a.weights": w, "a.biases": b},
        str(chain),
        metadata={"layers": "a:nn.Dense -> c:nn.Conv2d"},
    )
    assert "layer 'c' is a nn.Conv2d" in one_line_error(chain)
