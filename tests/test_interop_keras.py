"""Keras import: files written with h5py in Keras's own layouts, and with real Keras when installed.

The layouts follow keras/src/saving/saving_lib.py (``.keras``, ``.weights.h5``)
and keras/src/legacy/saving/legacy_h5_format.py (legacy ``.h5``).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, random_dense, reference_forward

h5py = pytest.importorskip("h5py")

from nnsim.errors import NnsimError  # noqa: E402
from nnsim.interop import load_model  # noqa: E402

X = np.random.default_rng(3).standard_normal((7, 6)).astype(np.float32)


def one_line_error(path, **options) -> str:
    with pytest.raises(NnsimError) as error:
        load_model(path, **options)
    assert "\n" not in str(error.value)
    return str(error.value)


def dense(name: str, units: int, activation: str = "linear", **extra) -> dict:
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "units": units,
            "activation": activation,
            "use_bias": True,
            **extra,
        },
    }


def keras2_config(layers: list[dict], width: int) -> dict:
    """A Keras 2 Sequential ``model_config``, its InputLayer first."""
    first = {
        "class_name": "InputLayer",
        "config": {"batch_input_shape": [None, width], "dtype": "float32", "name": "input_1"},
    }
    return {
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [first, *layers]},
    }


def write_legacy_h5(
    path: Path, config: dict, weights: dict[str, tuple], keras3: bool = False
) -> Path:
    """What ``model.save("m.h5")`` writes: model_config, and model_weights/<layer>/<weight path>."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["keras_version"] = b"3.15.1" if keras3 else b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        group = f.create_group("model_weights")
        layers = [layer["config"]["name"] for layer in config["config"]["layers"][1:]]
        group.attrs["layer_names"] = [name.encode("utf8") for name in layers]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = f.attrs["keras_version"]
        for name in sorted(layers):  # Keras sorts the groups by name
            layer = group.create_group(name)
            arrays = weights.get(name, ())
            suffix = "" if keras3 else ":0"
            prefix = f"sequential/{name}" if keras3 else name
            names = [f"{prefix}/kernel{suffix}", f"{prefix}/bias{suffix}"][: len(arrays)]
            layer.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for weight_name, array in zip(names, arrays, strict=True):
                layer.create_dataset(weight_name, data=array)
    return path


def write_keras3_weights(
    target, arrays: list[tuple], names: list[str] | None = None, extra=()
) -> None:
    """What Keras 3 ``save_weights`` writes: layers/dense[_i]/vars/0 (kernel) and 1 (bias)."""
    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
        for index, (kernel, bias) in enumerate(arrays):
            key = "dense" if index == 0 else f"dense_{index}"
            group = f.create_group(f"layers/{key}").create_group("vars")
            group.attrs["name"] = (names or [key] * len(arrays))[index] if names else key
            group["0"] = kernel
            group["1"] = bias
        for key in extra:  # weightless layers (dropout, re_lu) get an empty vars group
            f.create_group(f"layers/{key}").create_group("vars").attrs["name"] = key


def keras3_config(layers: list[dict], width: int) -> dict:
    """A Keras 3 Sequential config as ``config.json`` holds it."""
    first = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": [None, width],
            "dtype": "float32",
            "sparse": False,
            "name": "input_layer",
        },
        "registered_name": None,
    }
    entries = [{"module": "keras.layers", "registered_name": None, **layer} for layer in layers]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "layers": [first, *entries]},
        "registered_name": None,
    }


def write_keras_zip(path: Path, config: dict, arrays: list[tuple], extra_members=()) -> Path:
    """A ``.keras`` file: metadata.json, config.json, model.weights.h5 (as saving_lib writes it)."""
    weights = path.with_suffix(".tmp.h5")
    write_keras3_weights(weights, arrays)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "metadata.json",
            json.dumps({"keras_version": "3.15.1", "date_saved": "2026-12-01@12:00:00"}),
        )
        archive.writestr("config.json", json.dumps(config))
        archive.write(weights, "model.weights.h5")
        for name, data in extra_members:
            archive.writestr(name, data)
    weights.unlink()
    return path


# Legacy .h5 ---------------------------------------------------------------------------
def test_legacy_h5_layer_order_comes_from_the_model_config_not_the_hdf5_keys(tmp_path):
    layers = random_dense([6, 5, 4, 3], seed=1)
    names = ["dense_9", "dense_10", "dense_11"]  # h5py lists dense_10, dense_11, dense_9
    config = keras2_config(
        [
            dense("dense_9", 5, "relu"),
            {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.5}},
            dense("dense_10", 4),
            {"class_name": "Activation", "config": {"name": "act", "activation": "relu"}},
            dense("dense_11", 3, "softmax"),
        ],
        6,
    )
    weights = dict(zip(names, layers, strict=True))
    path = write_legacy_h5(tmp_path / "model.h5", config, weights)
    with h5py.File(path) as f:
        assert list(f["model_weights"]) == ["act", "dense_10", "dense_11", "dense_9", "dropout"]
    model = load_model(path)
    assert [(layer.name, layer.activation) for layer in model.layers] == [
        ("dense_9", "relu"),
        ("dense_10", "relu"),
        ("dense_11", "softmax"),
    ]
    assert_close(model.forward(X), reference_forward(X, layers, ["relu", "relu", "softmax"]))


def test_legacy_h5_as_keras_3_writes_it(tmp_path):
    layers = random_dense([6, 4, 3], seed=2)
    config = keras2_config([dense("dense", 4, "relu"), dense("dense_1", 3)], 6)
    path = write_legacy_h5(
        tmp_path / "k3.h5", config, {"dense": layers[0], "dense_1": layers[1]}, keras3=True
    )
    assert_close(load_model(path).forward(X), reference_forward(X, layers, ["relu", "linear"]))


def test_keras_2_save_weights_h5_follows_its_layer_names_or_a_config(tmp_path):
    layers = random_dense([6, 5, 3], seed=10)
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:  # what Keras 2 model.save_weights("weights.h5") writes
        f.attrs["layer_names"] = [b"dense_10", b"dense_9"]  # the model's order, not sorted
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.15.0"
        for name, (kernel, bias) in zip(["dense_10", "dense_9"], layers, strict=True):
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group[f"{name}/kernel:0"], group[f"{name}/bias:0"] = kernel, bias
    assert_close(load_model(path).forward(X), reference_forward(X, layers, ["relu", "linear"]))
    config = tmp_path / "model.json"  # model.to_json()
    config.write_text(
        json.dumps(keras2_config([dense("dense_10", 5, "relu"), dense("dense_9", 3, "softmax")], 6))
    )
    imported = load_model(path, config=config)
    assert_close(imported.forward(X), reference_forward(X, layers, ["relu", "softmax"]))


def test_a_functional_chain_is_read_and_a_branching_model_refused(tmp_path):
    layers = random_dense([6, 4, 3], seed=3)
    entries = [
        {"class_name": "InputLayer", "name": "in", "config": {"name": "in"}, "inbound_nodes": []},
        {**dense("a", 4, "relu"), "name": "a", "inbound_nodes": [[["in", 0, 0, {}]]]},
        {**dense("b", 3, "softmax"), "name": "b", "inbound_nodes": [[["a", 0, 0, {}]]]},
    ]
    config = {"class_name": "Functional", "config": {"name": "model", "layers": entries}}
    path = write_legacy_h5(tmp_path / "functional.h5", config, {"a": layers[0], "b": layers[1]})
    assert_close(load_model(path).forward(X), reference_forward(X, layers, ["relu", "softmax"]))
    entries[2]["inbound_nodes"] = [[["a", 0, 0, {}], ["in", 0, 0, {}]]]
    branching = write_legacy_h5(tmp_path / "branching.h5", config, {"a": layers[0], "b": layers[1]})
    assert "layer 'b' takes ['a', 'in'], not 'a' alone" in one_line_error(branching)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 3}},
            "layer 'conv2d' (Conv2D): nnsim imports dense networks only (Dense, Activation, ReLU, Softmax, Flatten, Dropout, InputLayer)",
        ),
        (
            dense("dense_1", 3, "tanh"),
            "layer 'dense_1' (Dense) has activation 'tanh'; nnsim imports relu, linear, softmax",
        ),
        (
            {"class_name": "ReLU", "config": {"name": "re_lu", "max_value": 6.0}},
            "layer 're_lu' (ReLU) has a max value, slope or threshold; nnsim imports plain ReLU only",
        ),
    ],
)
def test_a_layer_nnsim_cannot_run_is_named_with_its_class(tmp_path, layer, message):
    layers = random_dense([6, 3], seed=4)
    config = keras2_config([dense("dense", 3), layer], 6)
    path = write_legacy_h5(tmp_path / "m.h5", config, {"dense": layers[0], "dense_1": layers[0]})
    assert one_line_error(path) == f"'{path}': {message}"


def test_hostile_h5_files_are_one_line(tmp_path):
    layers = random_dense([6, 3], seed=5)
    config = keras2_config([dense("dense", 3)], 6)
    good = write_legacy_h5(tmp_path / "good.h5", config, {"dense": layers[0]})
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:900])
    assert "truncated.h5" in one_line_error(truncated)
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("definitely not HDF5")
    assert "is neither a .keras zip nor an HDF5 file" in one_line_error(not_hdf5)
    nan = write_legacy_h5(
        tmp_path / "nan.h5", config, {"dense": (np.full((6, 3), np.nan, np.float32), layers[0][1])}
    )
    assert "weights hold NaN" in one_line_error(nan)
    huge = write_legacy_h5(tmp_path / "huge.h5", config, {"dense": layers[0]})
    with h5py.File(huge, "a") as f:
        del f["model_weights/dense/dense/kernel:0"]
        f["model_weights/dense/dense"].create_dataset(
            "kernel:0", shape=(1 << 20, 1 << 20), dtype="f4"
        )
    assert huge.stat().st_size < 1 << 20
    assert "of shape (1048576, 1048576)" in one_line_error(huge)
    linked = write_legacy_h5(tmp_path / "linked.h5", config, {"dense": layers[0]})
    with h5py.File(linked, "a") as f:
        del f["model_weights/dense/dense/kernel:0"]
        f["model_weights/dense/dense/kernel:0"] = h5py.ExternalLink(
            str(good), "/model_weights/dense/dense/kernel:0"
        )
    assert "is a ExternalLink, not part of this file" in one_line_error(linked)
    bad_json = tmp_path / "json.h5"
    with h5py.File(bad_json, "w") as f:
        f.attrs["model_config"] = b"{not json"
    assert "the model_config of" in one_line_error(bad_json)


# Keras 3 .keras and .weights.h5 -----------------------------------------------------
def test_a_keras_zip_reads_its_config_and_weights(tmp_path):
    layers = random_dense([6, 5, 3], seed=6)
    config = keras3_config(
        [
            dense("hidden", 5, "relu"),
            {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.1}},
            dense("out", 3),
            {"class_name": "Softmax", "config": {"name": "softmax", "axis": -1}},
        ],
        6,
    )
    path = write_keras_zip(tmp_path / "model.keras", config, layers)
    model = load_model(path)
    assert [(layer.name, layer.activation) for layer in model.layers] == [
        ("hidden", "relu"),
        ("out", "softmax"),
    ]
    assert_close(model.forward(X), reference_forward(X, layers, ["relu", "softmax"]))


def test_weights_h5_take_their_config_from_config_or_the_keras_file_beside_them(tmp_path):
    layers = random_dense([6, 5, 3], seed=7)
    config = keras3_config([dense("dense", 5, "relu"), dense("dense_1", 3, "softmax")], 6)
    weights = tmp_path / "model.weights.h5"
    write_keras3_weights(weights, layers)
    expected = reference_forward(X, layers, ["relu", "softmax"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_close(load_model(weights, config=tmp_path / "config.json").forward(X), expected)
    write_keras_zip(tmp_path / "model.keras", config, layers)
    assert_close(load_model(weights).forward(X), expected)  # the sibling model.keras
    assert_close(load_model(tmp_path / "model.keras").forward(X), expected)


def test_weights_h5_without_a_config_follow_keras_numbering_not_string_order(tmp_path):
    layers = random_dense([6] + [6] * 11 + [3], seed=8)  # dense, dense_1, ..., dense_11
    weights = tmp_path / "alone.weights.h5"
    write_keras3_weights(weights, layers, extra=("dropout", "re_lu"))
    model = load_model(weights)
    assert [layer.name for layer in model.layers] == ["dense"] + [
        f"dense_{i}" for i in range(1, 12)
    ]
    activations = ["relu"] * 11 + ["linear"]
    assert_close(model.forward(X), reference_forward(X, layers, activations))


def test_hostile_keras_zips_are_refused_before_reading(tmp_path):
    layers = random_dense([6, 3], seed=9)
    config = keras3_config([dense("dense", 3)], 6)
    extra = write_keras_zip(tmp_path / "extra.keras", config, layers, [("evil.py", "import os")])
    assert "member 'evil.py' is not one of a .keras file's" in one_line_error(extra)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * (20 << 20))
    assert bomb.stat().st_size < 1 << 20
    assert "member 'config.json' declares 20971520 bytes" in one_line_error(bomb)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(write_keras_zip(tmp_path / "ok.keras", config, layers).read_bytes()[:-40])
    assert "truncated.keras" in one_line_error(truncated)
    no_weights = tmp_path / "config_only.keras"
    with zipfile.ZipFile(no_weights, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    assert "has no model.weights.h5" in one_line_error(no_weights)


# Real Keras -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "numpy")  # inference needs no framework
    return pytest.importorskip("keras")


def test_files_saved_by_keras_import_and_predict_as_keras_does(keras, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(5),
            keras.layers.ReLU(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    expected = np.asarray(model.predict(X, verbose=0))
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    model.save(tmp_path / "legacy.h5")
    for name in ("model.keras", "model.weights.h5", "legacy.h5"):
        imported = load_model(tmp_path / name)
        assert imported.sizes == (6, 8, 5, 3), name
        assert_close(imported.forward(X), expected)


def test_a_functional_keras_model_imports(keras, tmp_path):
    inputs = keras.Input((6,))
    hidden = keras.layers.Activation("relu")(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.save(tmp_path / "functional.keras")
    imported = load_model(tmp_path / "functional.keras")
    assert [layer.activation for layer in imported.layers] == ["relu", "linear"]
    assert_close(imported.forward(X), np.asarray(model.predict(X, verbose=0)))
