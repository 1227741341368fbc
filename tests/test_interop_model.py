"""DenseModel: the validated chain of dense layers every importer returns."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, random_dense, reference_forward

from nnsim.interop import DenseLayer, DenseModel, ModelError
from nnsim.interop.model import MAX_WEIGHTS_PER_LAYER


def model(sizes, activations, seed=0, source="test.npz"):
    layers = random_dense(sizes, seed)
    return (
        DenseModel(
            tuple(
                DenseLayer(f"dense{i + 1}", w, b, a)
                for i, ((w, b), a) in enumerate(zip(layers, activations, strict=True))
            ),
            source,
        ),
        layers,
    )


def test_forward_logits_and_predict_follow_the_reference_math():
    dense, layers = model([6, 5, 4, 3], ["relu", "relu", "softmax"])
    x = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32)
    probabilities = reference_forward(x, layers, ["relu", "relu", "softmax"])
    logits = reference_forward(x, layers, ["relu", "relu", "linear"])
    assert dense.forward(x).dtype == np.float32
    assert_close(dense.forward(x), probabilities)
    assert_close(dense.logits(x), logits)
    assert (dense.predict(x) == logits.argmax(axis=1)).all()
    assert dense.sizes == (6, 5, 4, 3)
    assert (dense.input_size, dense.output_size) == (6, 3)


def test_a_linear_output_gives_the_logits():
    dense, layers = model([4, 3], ["linear"])
    x = np.ones((2, 4), dtype=np.float32)
    assert_close(dense.forward(x), reference_forward(x, layers, ["linear"]))


def test_parameters_are_in_forward_order_with_nnsim_names():
    dense, layers = model([4, 3, 2], ["relu", "linear"])
    table = dense.parameters()
    assert list(table) == ["dense1.weights", "dense1.biases", "dense2.weights", "dense2.biases"]
    assert (table["dense2.weights"] == layers[1][0]).all()


def test_arrays_become_contiguous_float32_and_biases_flat():
    weights = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    dense = DenseModel((DenseLayer("a", weights, np.zeros((1, 3)), "linear"),))
    layer = dense.layers[0]
    assert layer.weights.dtype == np.float32 and layer.weights.flags.c_contiguous
    assert layer.biases.shape == (3,)


def test_a_layer_without_a_name_is_numbered():
    w, b = random_dense([3, 2])[0]
    assert DenseModel((DenseLayer("", w, b, "linear"),)).layers[0].name == "dense1"


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((), "no dense layers found in f.h5"),
        (
            (
                DenseLayer("a", np.zeros((4, 3)), np.zeros(3), "relu"),
                DenseLayer("b", np.zeros((5, 2)), np.zeros(2), "linear"),
            ),
            "layer 'b' in f.h5 takes 5 inputs but 'a' gives 3",
        ),
        (
            (
                DenseLayer("a", np.zeros((4, 3)), np.zeros(3), "softmax"),
                DenseLayer("b", np.zeros((3, 2)), np.zeros(2), "linear"),
            ),
            "activation 'softmax' is not supported for a hidden layer",
        ),
        (
            (DenseLayer("a", np.zeros((4, 3)), np.zeros(3), "tanh"),),
            "activation 'tanh' is not supported for the output layer",
        ),
        ((DenseLayer("a", np.zeros(4), np.zeros(4), "linear"),), "are not [in, out]"),
        ((DenseLayer("a", np.zeros((4, 0)), np.zeros(0), "linear"),), "are not [in, out]"),
        ((DenseLayer("a", np.zeros((4, 3)), np.zeros(2), "linear"),), "2 biases for 3 outputs"),
        (
            (DenseLayer("a", np.full((2, 2), np.nan), np.zeros(2), "linear"),),
            "weights hold NaN or infinite values",
        ),
        (
            (DenseLayer("a", np.zeros((2, 2)), np.array([0, np.inf]), "linear"),),
            "biases hold NaN or infinite values",
        ),
        (
            (DenseLayer("a", np.array([["x", "y"]]), np.zeros(2), "linear"),),
            "not numbers",
        ),
    ],
)
def test_what_is_not_a_dense_network_is_refused_in_one_line(layers, message):
    with pytest.raises(ModelError) as error:
        DenseModel(layers, "f.h5")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_layer_over_nnsims_caps_is_refused():
    # A broadcast view: the cap is checked on the shape, nothing is allocated.
    weights = np.broadcast_to(np.float32(0), (2, MAX_WEIGHTS_PER_LAYER))
    with pytest.raises(ModelError, match="exceed nnsim's layer limits"):
        DenseModel((DenseLayer("big", weights, np.zeros(1), "linear"),))


def test_inputs_of_the_wrong_width_are_refused():
    dense, _ = model([4, 2], ["linear"])
    with pytest.raises(ModelError, match="takes rows of 4 values, not an array of shape"):
        dense.forward(np.zeros((3, 5)))
