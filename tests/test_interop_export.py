"""Trained weights out of a snapshot: the chain, safetensors, npz and ONNX."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from nnsim import nn
from nnsim.errors import NnsimError
from nnsim.interop.export import (
    export_npz,
    export_onnx,
    export_safetensors,
    layer_chain,
    trained_parameters,
)
from nnsim.nn import functional as F
from nnsim.sim import Simulation
from nnsim.state import capture

CHAIN = [
    ("input", "nn.Input"),
    ("dense1", "nn.Dense"),
    ("relu1", "nn.ReLU"),
    ("dense2", "nn.Dense"),
    ("relu2", "nn.ReLU"),
    ("dense3", "nn.Dense"),
    ("softmax", "nn.Softmax"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A three-layer network a few steps into training, and its snapshot."""
    from conftest import make_idx_dataset

    dataset = make_idx_dataset(tmp_path_factory.mktemp("toy"))
    sim = Simulation(seed=7, output=io.StringIO())
    nn.Sequential(
        [
            nn.Input(784),
            nn.Dense(12),
            nn.ReLU(),
            nn.Dense(8),
            nn.ReLU(),
            nn.Dense(10),
            nn.Softmax(),
        ],
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=2,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim, dtype="float32")
    sim.run(until="120us")
    body, tensors = capture(sim)
    return sim, body, tensors


def forward(sim: Simulation, images: np.ndarray) -> np.ndarray:
    """nnsim's own forward math, layer by layer."""
    values = images
    for name, kind in CHAIN[1:]:
        if kind == "nn.Dense":
            layer = sim.components[name]
            values = F.dense_forward(values, layer.weights, layer.biases)
        elif kind == "nn.ReLU":
            values = F.relu_forward(values)
        else:
            values = F.softmax_forward(values)
    return values


def test_the_chain_follows_the_forward_links_from_the_input_and_stops_before_the_loss(trained):
    _, body, _ = trained
    assert layer_chain(body) == CHAIN


def test_the_chain_does_not_depend_on_which_side_of_a_link_is_written_first(trained):
    _, body, _ = trained
    flipped = dict(body, model=dict(body["model"]))
    flipped["model"]["links"] = [
        dict(link, left=link["right"], right=link["left"]) for link in body["model"]["links"]
    ][::-1]
    assert layer_chain(flipped) == CHAIN


def test_trained_parameters_are_the_dense_weights_in_forward_order(trained):
    sim, body, tensors = trained
    parameters = trained_parameters(body, tensors)
    assert list(parameters) == [
        f"dense{n}.{kind}" for n in (1, 2, 3) for kind in ("weights", "biases")
    ]
    for n in (1, 2, 3):
        layer = sim.components[f"dense{n}"]
        assert np.array_equal(parameters[f"dense{n}.weights"], layer.weights)
        assert np.array_equal(parameters[f"dense{n}.biases"], layer.biases.reshape(-1))
    assert parameters["dense2.weights"].shape == (12, 8)
    assert parameters["dense2.biases"].shape == (8,)


def test_safetensors_round_trip_gives_the_weights_and_the_chain_in_the_metadata(trained, tmp_path):
    _, body, tensors = trained
    path = export_safetensors(body, tensors, tmp_path / "model.safetensors")
    loaded = load_file(path)
    expected = trained_parameters(body, tensors)
    assert loaded.keys() == expected.keys()
    for key, array in expected.items():
        assert np.array_equal(loaded[key], array) and loaded[key].dtype == array.dtype
    with safe_open(path, "np") as file:
        metadata = file.metadata()
    assert metadata["format"] == "nnsim"
    assert metadata["layers"].startswith("input:nn.Input -> dense1:nn.Dense -> relu1:nn.ReLU")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_npz_round_trip_loads_without_pickle(trained, tmp_path):
    _, body, tensors = trained
    path = export_npz(body, tensors, tmp_path / "weights")  # no suffix is added
    assert path == tmp_path / "weights"
    with np.load(path, allow_pickle=False) as loaded:
        expected = trained_parameters(body, tensors)
        assert list(loaded.keys()) == list(expected)
        for key, array in expected.items():
            assert np.array_equal(loaded[key], array)


def test_export_into_a_missing_folder_is_a_one_line_error(trained, tmp_path):
    _, body, tensors = trained
    with pytest.raises(NnsimError, match="does not exist"):
        export_npz(body, tensors, tmp_path / "missing" / "weights.npz")


def test_a_model_without_an_input_cannot_be_exported(trained):
    _, body, tensors = trained
    model = dict(body["model"])
    model["components"] = [c for c in model["components"] if c["type"] != "nn.Input"]
    with pytest.raises(NnsimError, match="exactly one nn.Input"):
        trained_parameters(dict(body, model=model), tensors)


def test_onnx_export_without_the_onnx_package_says_how_to_install_it(
    trained, tmp_path, monkeypatch
):
    _, body, tensors = trained
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(NnsimError) as error:
        export_onnx(body, tensors, tmp_path / "model.onnx")
    assert str(error.value) == "ONNX export needs the onnx package: pip install 'nnsim[onnx]'"
    assert not (tmp_path / "model.onnx").exists()


def test_onnx_model_gives_nnsims_probabilities(trained, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    sim, body, tensors = trained
    path = export_onnx(body, tensors, tmp_path / "model.onnx")

    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    assert [node.op_type for node in model.graph.node] == [
        "MatMul",
        "Add",
        "Relu",
        "MatMul",
        "Add",
        "Relu",
        "MatMul",
        "Add",
        "Softmax",
    ]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]

    images = np.random.default_rng(1).uniform(-1, 1, size=(6, 784)).astype(np.float32)
    (probabilities,) = session.run(["probabilities"], {"images": images})
    expected = forward(sim, images)
    assert probabilities.shape == (6, 10)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=1), expected.argmax(axis=1))


def test_exports_write_nothing_when_the_snapshot_has_no_weights(trained, tmp_path: Path):
    _, body, tensors = trained
    missing = {name: array for name, array in tensors.items() if name != "dense2/weights"}
    with pytest.raises(NnsimError, match="dense2/weights"):
        export_safetensors(body, missing, tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []
