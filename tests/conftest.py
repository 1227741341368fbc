"""Shared fixtures: small datasets made in the test, and the path of the real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsim.data import default_dataset_dir, write_idx

REPO = Path(__file__).resolve().parent.parent


def make_idx_dataset(
    folder: Path, train_per_class: int = 20, test_per_class: int = 10, seed: int = 0
) -> Path:
    """Write a learnable toy Fashion-MNIST-shaped dataset as IDX files into ``folder``.

    Each class is a noisy bright square at its own position, so a small MLP learns it fast.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(len(labels), 28, 28), dtype=np.uint8)
        for index, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[index, 4 + row * 12 : 12 + row * 12, 2 + col * 5 : 6 + col * 5] = 230
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "toy")


@pytest.fixture
def eval_folder(tmp_path: Path) -> Path:
    """Two evaluation PNGs: classes 0 and 1 of the toy dataset's pattern."""
    folder = tmp_path / "eval"
    folder.mkdir()
    for label in (0, 1):
        image = np.full((28, 28), 20, dtype=np.uint8)
        row, col = divmod(label, 5)
        image[4 + row * 12 : 12 + row * 12, 2 + col * 5 : 6 + col * 5] = 230
        Image.fromarray(image, mode="L").save(folder / f"class{label}.png")
    return folder


requires_fashion_mnist = pytest.mark.skipif(
    not (default_dataset_dir() / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed",
)


EXAMPLE = "examples/fashion_mnist/nn.py"


def example_args(dataset: Path, eval_folder: Path | None = None, *extra: str) -> list[str]:
    """Arguments that make the Fashion-MNIST example train fast on the toy dataset.

    Later arguments win (argparse), so ``extra`` may override any of these.
    """
    args = [
        f"--trainingImages={dataset}",
        f"--testImages={dataset}",
        "--classImageLimit=0",
        "--batchSize=32",
        "--hiddenLayerSize=16",
        "--learningRate=0.01",
        "--initialWeightScaling=0.1",
    ]
    if eval_folder is not None:
        args.append(f"--evalImages={eval_folder}")
    return [*args, *extra]


def run_nnsim(*args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def checkpointed_run(checkpoints: Path, script_args: list[str], *options: str) -> list[str]:
    """Run the example with ``--checkpoint-enable`` into ``checkpoints`` (after every epoch
    unless ``options`` say otherwise); return the checkpoint names in commit order."""
    result = run_nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        *(options or ("--checkpoint-every-epochs=1",)),
        f"--checkpoint-dir={checkpoints}",
        "--",
        *script_args,
    )
    assert result.returncode == 0, result.stderr
    folders = [path.name for path in checkpoints.iterdir() if path.is_dir()]
    return sorted(folders, key=lambda name: int(name.split("_")[1]))


def random_dense(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(weights [in, out], biases [out]), ...]`` float32 for a chain of ``sizes``."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.standard_normal((n_in, n_out)).astype(np.float32),
            rng.standard_normal(n_out).astype(np.float32),
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False)
    ]


def reference_forward(x: np.ndarray, layers, activations: list[str]) -> np.ndarray:
    """Plain float64 numpy math of a dense chain, to check imported models against."""
    values = np.asarray(x, dtype=np.float64)
    for (weights, biases), activation in zip(layers, activations, strict=True):
        values = values @ weights.astype(np.float64) + biases.astype(np.float64)
        if activation == "relu":
            values = np.maximum(values, 0.0)
        elif activation == "softmax":
            shifted = np.exp(values - values.max(axis=1, keepdims=True))
            values = shifted / shifted.sum(axis=1, keepdims=True)
    return values


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    """Equal within ``rtol`` relative to the largest magnitude (float32 math against a reference)."""
    scale = max(float(np.abs(expected).max()), 1e-30)
    assert actual.shape == expected.shape
    assert float(np.abs(actual - expected).max()) <= rtol * scale


def trained_sim(dataset: Path, sizes: list[int], *, seed: int = 0, until: str = "60us"):
    """A Simulation of an MLP (ReLU hidden layers, softmax output) a few steps into training.

    ``sizes`` are the dense layers' widths after the 784 inputs: ``[12, 8, 10]``.
    """
    import io

    from nnsim import nn
    from nnsim.sim import Simulation

    layers: list = [nn.Input(784)]
    for index, size in enumerate(sizes):
        layers += [nn.Dense(size), nn.ReLU() if index < len(sizes) - 1 else nn.Softmax()]
    sim = Simulation(seed=seed, output=io.StringIO())
    nn.Sequential(
        layers,
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=1,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim, dtype="float32")
    sim.run(until=until)
    return sim
