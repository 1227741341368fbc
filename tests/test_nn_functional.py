"""The layer math on its own: gradients against finite differences, optimizer steps."""

from __future__ import annotations

import numpy as np
import pytest

from nnsim.nn import functional as F


def numerical_gradient(function, array: np.ndarray, epsilon: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + epsilon
        plus = function()
        array[index] = saved - epsilon
        minus = function()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * epsilon)
    return grad


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def test_dense_gradients_match_finite_differences(rng):
    inputs = rng.standard_normal((5, 4))
    weights = rng.standard_normal((4, 3))
    biases = rng.standard_normal((1, 3))
    upstream = rng.standard_normal((5, 3))

    def loss() -> float:
        return float((F.dense_forward(inputs, weights, biases) * upstream).sum())

    dweights, dbiases, dinputs = F.dense_backward(inputs, weights, upstream)
    np.testing.assert_allclose(dweights, numerical_gradient(loss, weights), rtol=1e-6)
    np.testing.assert_allclose(dbiases, numerical_gradient(loss, biases), rtol=1e-6)
    np.testing.assert_allclose(dinputs, numerical_gradient(loss, inputs), rtol=1e-6)


def test_first_dense_layer_can_skip_the_input_gradient(rng):
    inputs, weights, upstream = (
        rng.standard_normal((2, 3)),
        rng.standard_normal((3, 2)),
        rng.standard_normal((2, 2)),
    )
    assert F.dense_backward(inputs, weights, upstream, need_dinputs=False)[2] is None


def test_relu_gradient_matches_finite_differences(rng):
    inputs = rng.standard_normal((6, 5))
    inputs[np.abs(inputs) < 1e-3] = 0.5  # keep away from the kink
    upstream = rng.standard_normal((6, 5))

    def loss() -> float:
        return float((F.relu_forward(inputs) * upstream).sum())

    np.testing.assert_allclose(
        F.relu_backward(inputs, upstream), numerical_gradient(loss, inputs), rtol=1e-6, atol=1e-9
    )


def test_softmax_rows_are_probabilities_and_stable_for_large_inputs():
    probabilities = F.softmax_forward(np.array([[1000.0, 1000.0, 0.0], [-5.0, 0.0, 5.0]]))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities[0, :2], 0.5)


def test_combined_softmax_cross_entropy_gradient_matches_finite_differences(rng):
    logits = rng.standard_normal((4, 10))
    targets = np.array([3, 0, 9, 3])

    def loss() -> float:
        return float(F.cross_entropy(F.softmax_forward(logits), targets).mean())

    analytic = F.softmax_cross_entropy_backward(F.softmax_forward(logits), targets)
    np.testing.assert_allclose(analytic, numerical_gradient(loss, logits), rtol=1e-5, atol=1e-9)


def test_regularization_gradients_match_finite_differences(rng):
    values = rng.standard_normal((3, 4))
    values[np.abs(values) < 1e-3] = 0.7

    def loss() -> float:
        return F.regularization_loss(values, 0.01, 0.02)

    grad = np.zeros_like(values)
    F.add_regularization_gradient(grad, values, 0.01, 0.02)
    np.testing.assert_allclose(grad, numerical_gradient(loss, values), rtol=1e-6)


def test_cross_entropy_is_clipped_so_a_zero_probability_gives_a_finite_loss():
    loss = F.cross_entropy(np.array([[0.0, 1.0]]), np.array([0]))
    assert np.isfinite(loss).all() and loss[0] == pytest.approx(-np.log(1e-7))


def test_adam_first_step_moves_each_parameter_by_about_the_learning_rate():
    param = np.array([1.0, -2.0, 3.0])
    grad = np.array([0.5, -4.0, 1e-3])
    momentum, cache = np.zeros(3), np.zeros(3)
    F.adam_update(param, grad, momentum, cache, 0.1, 0, 0.9, 0.999, 1e-7)
    # With bias correction, step 0 moves by lr * sign(grad) (up to epsilon).
    np.testing.assert_allclose(param, [0.9, -1.9, 2.9], atol=1e-4)


def test_adam_keeps_float32_arrays_float32():
    param = np.ones(4, dtype=np.float32)
    momentum, cache = np.zeros_like(param), np.zeros_like(param)
    F.adam_update(param, np.full(4, 0.5, np.float32), momentum, cache, 1e-3, 3, 0.9, 0.999, 1e-7)
    assert param.dtype == momentum.dtype == cache.dtype == np.float32


def test_sgd_with_momentum_accumulates_velocity():
    param, velocity = np.array([0.0]), np.array([0.0])
    for _ in range(2):
        F.sgd_update(param, np.array([1.0]), velocity, 0.1, 0.9)
    np.testing.assert_allclose(velocity, [-0.19])
    np.testing.assert_allclose(param, [-0.29])


def test_plain_sgd_steps_against_the_gradient():
    param = np.array([1.0])
    F.sgd_update(param, np.array([2.0]), None, 0.25, 0.0)
    np.testing.assert_allclose(param, [0.5])
