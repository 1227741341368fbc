"""The math of the layers, apart from the machinery (micrograd/Keras style).

Each function is a small numpy kernel vectorized over the batch, testable on
its own with finite differences. Components only move arrays between these
functions and their links. Arithmetic stays in the arrays' dtype (float32 by
default): Python scalars are weak under NEP 50 and never promote.
"""

from __future__ import annotations

import numpy as np

CLIP = 1e-7


def dense_forward(inputs: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    return inputs @ weights + biases


def dense_backward(
    inputs: np.ndarray, weights: np.ndarray, dvalues: np.ndarray, need_dinputs: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of weights, biases and (unless the layer is first) the inputs."""
    dweights = inputs.T @ dvalues
    dbiases = dvalues.sum(axis=0, keepdims=True)
    dinputs = dvalues @ weights.T if need_dinputs else None
    return dweights, dbiases, dinputs


def regularization_loss(values: np.ndarray, l1: float, l2: float) -> float:
    loss = 0.0
    if l1:
        loss += l1 * float(np.abs(values).sum())
    if l2:
        loss += l2 * float((values * values).sum())
    return loss


def add_regularization_gradient(grad: np.ndarray, values: np.ndarray, l1: float, l2: float) -> None:
    """Add the L1/L2 penalty's gradient to ``grad`` in place."""
    if l1:
        grad += l1 * np.where(values < 0, -1, 1).astype(grad.dtype)
    if l2:
        grad += (2 * l2) * values


def relu_forward(inputs: np.ndarray) -> np.ndarray:
    return np.maximum(inputs, 0)


def relu_backward(inputs: np.ndarray, dvalues: np.ndarray) -> np.ndarray:
    return np.where(inputs > 0, dvalues, 0).astype(dvalues.dtype, copy=False)


def softmax_forward(inputs: np.ndarray) -> np.ndarray:
    exp = np.exp(inputs - inputs.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def cross_entropy(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-sample loss -log p(target), with p clipped away from 0 and 1."""
    picked = probabilities[np.arange(len(targets)), targets]
    return -np.log(np.clip(picked, CLIP, 1 - CLIP))


def softmax_cross_entropy_backward(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d(mean loss)/d(logits) of softmax followed by cross-entropy: (p - onehot) / n."""
    dinputs = probabilities.copy()
    dinputs[np.arange(len(targets)), targets] -= 1
    dinputs /= len(targets)
    return dinputs


def correct_predictions(probabilities: np.ndarray, targets: np.ndarray) -> int:
    return int((probabilities.argmax(axis=1) == targets).sum())


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum: np.ndarray,
    cache: np.ndarray,
    learning_rate: float,
    step: int,
    beta_1: float,
    beta_2: float,
    epsilon: float,
) -> None:
    """One Adam step in place; ``step`` counts from 0 (bias correction uses step + 1)."""
    momentum *= beta_1
    momentum += (1 - beta_1) * grad
    cache *= beta_2
    cache += (1 - beta_2) * (grad * grad)
    corrected_momentum = momentum / (1 - beta_1 ** (step + 1))
    corrected_cache = cache / (1 - beta_2 ** (step + 1))
    param -= learning_rate * corrected_momentum / (np.sqrt(corrected_cache) + epsilon)


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum: np.ndarray | None,
    learning_rate: float,
    beta: float,
) -> None:
    """Plain SGD, or with momentum (``beta`` > 0) keeping the velocity in ``momentum``."""
    if momentum is None:
        param -= learning_rate * grad
        return
    momentum *= beta
    momentum -= learning_rate * grad
    param += momentum
