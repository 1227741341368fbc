"""The nnsim training job as a plain numpy loop: no components, no events, no kernel.

It does the same math as the chain ``controller -> input -> dense1 -> relu1 ->
dense2 -> relu2 -> dense3 -> softmax -> loss`` in the same order, so its
weights and printed metrics are bitwise identical to nnsim's:

* weights: each dense layer's RNG is the component's own,
  ``nnsim.sim.component_rng(seed, name)`` (the seed and the SHA-256 of the
  full name through ``SeedSequence``), and draws
  ``weight_scale * standard_normal((n_in, n_out))`` cast to ``dtype``;
* batches: the controller's RNG (named ``controller``) gives
  ``permutation(n)`` at the start of every epoch, batches are consecutive
  slices of it, the last one shorter;
* math: the kernels of ``nnsim.nn.functional`` (the same functions the
  components call), the first dense layer skipping the input gradient;
* schedule: Adam with lr / (1 + decay * iteration), the step counted from 0;
* metrics: per-batch loss sums as Python floats added up over the epoch,
  validation over the whole test set in batches, lines formatted like the
  batch controller's.

``benchmarks/train_mlp.py`` times it against nnsim and PyTorch;
``tests/test_nn_matches_reference.py`` checks the bitwise match.
Run it alone with ``python benchmarks/reference_mlp.py [--epochs N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnsim.data import load_split, scale_pixels
from nnsim.nn import functional as F
from nnsim.nn.dtypes import DTYPES
from nnsim.sim import component_rng


def load_data(
    class_image_limit: int = 2000,
    dtype: str = "float32",
    training_images: str | None = None,
    test_images: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) as the batch controller loads them.

    As in the controller, ``class_image_limit`` applies to both splits (0: all
    images), and pixels are scaled to [-1, 1] in ``dtype``.
    """
    limit = class_image_limit or None
    train = load_split("train", training_images or None, limit)
    test = load_split("test", test_images or None, limit)
    dt = np.dtype(dtype)
    return (
        scale_pixels(train.images, dt),
        train.labels,
        scale_pixels(test.images, dt),
        test.labels,
    )


def init_dense(
    seed: int, name: str, n_in: int, n_out: int, weight_scale: float, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """A dense layer's weights, biases and Adam buffers, as ``nn.Dense.build`` makes them."""
    rng = component_rng(seed, name)
    weights = (weight_scale * rng.standard_normal((n_in, n_out))).astype(dtype)
    biases = np.zeros((1, n_out), dtype=dtype)
    return {
        "weights": weights,
        "biases": biases,
        "weight_momentums": np.zeros_like(weights),
        "weight_cache": np.zeros_like(weights),
        "bias_momentums": np.zeros_like(biases),
        "bias_cache": np.zeros_like(biases),
    }


def forward(layers: list[dict[str, np.ndarray]], x: np.ndarray, cache: list | None) -> np.ndarray:
    """Class probabilities; with ``cache``, keep each dense and relu input for backward."""
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        if cache is not None:
            cache.append(x)  # dense input
        x = F.dense_forward(x, layer["weights"], layer["biases"])
        if i < last:
            if cache is not None:
                cache.append(x)  # relu input
            x = F.relu_forward(x)
    return F.softmax_forward(x)


def train_reference(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    sizes: Sequence[int] = (784, 128, 128, 10),
    epochs: int,
    batch_size: int,
    learning_rate: float,
    decay: float,
    seed: int,
    weight_scale: float,
    dtype: str = "float32",
    shuffle: bool = True,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    print_fn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``sizes[0] -> ... -> sizes[-1]`` (ReLU between dense layers, softmax at the end).

    ``train_x``/``test_x`` are scaled pixels (``scale_pixels``), one row per
    image, already in ``dtype``; ``train_y``/``test_y`` integer labels.

    Returns ``weights`` and ``biases`` (dicts by layer name ``dense1``...),
    ``epochs`` (one dict of metrics per epoch), ``lines`` (what nnsim's
    controller prints for the same run) and ``iterations``.
    """
    dt = np.dtype(dtype)
    train_x = np.asarray(train_x, dtype=dt)
    test_x = np.asarray(test_x, dtype=dt)
    names = [f"dense{i + 1}" for i in range(len(sizes) - 1)]
    layers = [
        init_dense(seed, name, n_in, n_out, weight_scale, dt)
        for name, n_in, n_out in zip(names, sizes[:-1], sizes[1:], strict=True)
    ]
    controller_rng = component_rng(seed, "controller")
    n_train, n_test = len(train_x), len(test_x)
    iterations = 0
    history: list[dict[str, float]] = []
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        if print_fn is not None:
            print_fn(line)

    for epoch in range(epochs):
        # Training: every batch forward and backward, Adam after each.
        order = controller_rng.permutation(n_train) if shuffle else np.arange(n_train)
        loss_sum, correct, count = 0.0, 0, 0
        current_lr = learning_rate
        for start in range(0, n_train, batch_size):
            indices = order[start : start + batch_size]
            inputs, targets = train_x[indices], train_y[indices]
            cache: list[np.ndarray] = []
            probabilities = forward(layers, inputs, cache)
            batch_loss = float(F.cross_entropy(probabilities, targets).sum())
            batch_correct = F.correct_predictions(probabilities, targets)
            dvalues = F.softmax_cross_entropy_backward(probabilities, targets)
            if decay:
                current_lr = learning_rate * (1.0 / (1.0 + decay * iterations))
            else:
                current_lr = learning_rate
            for i in range(len(layers) - 1, -1, -1):
                layer = layers[i]
                if i < len(layers) - 1:
                    dvalues = F.relu_backward(cache[2 * i + 1], dvalues)
                dweights, dbiases, dinputs = F.dense_backward(
                    cache[2 * i], layer["weights"], dvalues, i > 0
                )
                F.adam_update(
                    layer["weights"],
                    dweights,
                    layer["weight_momentums"],
                    layer["weight_cache"],
                    current_lr,
                    iterations,
                    beta_1,
                    beta_2,
                    epsilon,
                )
                F.adam_update(
                    layer["biases"],
                    dbiases,
                    layer["bias_momentums"],
                    layer["bias_cache"],
                    current_lr,
                    iterations,
                    beta_1,
                    beta_2,
                    epsilon,
                )
                dvalues = dinputs
            iterations += 1
            loss_sum += batch_loss
            correct += batch_correct
            count += len(targets)
        data_loss = loss_sum / count
        reg_loss = 0.0
        train_acc = correct / count
        emit(
            f"epoch {epoch} training:\tacc: {train_acc:.3f} "
            f"loss: {data_loss + reg_loss:.3f} (data_loss: {data_loss:.3f} "
            f"reg_loss: {reg_loss:.3f}) lr: {current_lr:.10f}"
        )

        # Validation: the whole test set in batches, in order, forward only.
        loss_sum, correct, count = 0.0, 0, 0
        for start in range(0, n_test, batch_size):
            inputs, targets = test_x[start : start + batch_size], test_y[start : start + batch_size]
            probabilities = forward(layers, inputs, None)
            loss_sum += float(F.cross_entropy(probabilities, targets).sum())
            correct += F.correct_predictions(probabilities, targets)
            count += len(targets)
        val_acc, val_loss = correct / count, loss_sum / count
        emit(f"epoch {epoch} validation:\tacc: {val_acc:.3f} loss: {val_loss:.3f}")
        history.append(
            {
                "train_acc": train_acc,
                "train_loss": data_loss + reg_loss,
                "data_loss": data_loss,
                "reg_loss": reg_loss,
                "learning_rate": current_lr,
                "val_acc": val_acc,
                "val_loss": val_loss,
            }
        )

    return {
        "weights": {name: layer["weights"] for name, layer in zip(names, layers, strict=True)},
        "biases": {name: layer["biases"] for name, layer in zip(names, layers, strict=True)},
        "epochs": history,
        "lines": lines,
        "iterations": iterations,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--class-image-limit", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load_data(args.class_image_limit, args.dtype)
    started = time.perf_counter()
    train_reference(
        *data,
        sizes=(784, args.hidden, args.hidden, 10),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        decay=1e-3,
        seed=args.seed,
        weight_scale=0.01,
        dtype=args.dtype,
        print_fn=print,
    )
    print(f"trained in {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
