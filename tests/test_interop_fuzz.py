"""Damaged weights files: whatever the bytes, load_model gives a model or one NnsimError line."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from conftest import random_dense
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from nnsim.errors import NnsimError
from nnsim.interop import DenseModel, load_model


def npz_file(path):
    (w1, b1), (w2, b2) = random_dense([4, 3, 2])
    np.savez(path, **{"d1.weights": w1, "d1.biases": b1, "d2.weights": w2, "d2.biases": b2})


def safetensors_file(path):
    (w1, b1), (w2, b2) = random_dense([4, 3, 2])
    save_file({"fc1.weight": w1.T.copy(), "fc1.bias": b1, "fc2.weight": w2.T.copy()}, str(path))


def onnx_file(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    ((w, b),) = random_dense([4, 2])
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc"),
            helper.make_node("Softmax", ["h"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def keras_file(path):
    h5py = pytest.importorskip("h5py")
    ((w, b),) = random_dense([4, 2])
    weights = path.with_name("w.h5")
    with h5py.File(weights, "w") as f:
        f["layers/dense/vars/0"] = w
        f["layers/dense/vars/1"] = b
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"name": "dense", "activation": "softmax"}}
            ]
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.write(weights, "model.weights.h5")


def legacy_h5_file(path):
    h5py = pytest.importorskip("h5py")
    ((w, b),) = random_dense([4, 2])
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"name": "dense", "activation": "softmax"}}
            ]
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights/dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        group["dense/kernel:0"] = w
        group["dense/bias:0"] = b


FORMATS = {
    "m.npz": npz_file,
    "m.safetensors": safetensors_file,
    "m.onnx": onnx_file,
    "m.keras": keras_file,
    "m.h5": legacy_h5_file,
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_the_undamaged_files_load(tmp_path, name):
    FORMATS[name](tmp_path / name)
    assert load_model(tmp_path / name).input_size == 4


@pytest.mark.parametrize("name", list(FORMATS))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_damaged_files_give_a_model_or_one_line(tmp_path, name, data):
    path = tmp_path / name
    if not path.exists():
        FORMATS[name](path)
    original = path.read_bytes()
    damaged = tmp_path / f"damaged-{name}"
    cut = data.draw(st.integers(0, len(original)), label="cut")
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(1, 255)), max_size=4),
        label="flips",
    )
    content = bytearray(original)
    for position, value in flips:
        content[position] ^= value
    damaged.write_bytes(
        bytes(content[:cut]) if data.draw(st.booleans(), label="truncate") else bytes(content)
    )
    try:
        model = load_model(damaged)
    except NnsimError as error:
        assert "\n" not in str(error) and str(error)
    else:
        assert isinstance(model, DenseModel)
