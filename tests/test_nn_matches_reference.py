"""nnsim's chain of components trains exactly like a plain numpy loop.

The reference (benchmarks/reference_mlp.py) does the same math in the same
order with no kernel at all; the weights, the biases and the metrics of a
small run must be bitwise identical, in float32 and in float64.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

import nnsim.nn as nn
from nnsim.data import write_idx
from nnsim.sim import Simulation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference_mlp import load_data, train_reference  # noqa: E402

EPOCHS = 2
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
DECAY = 1e-3
WEIGHT_SCALE = 0.01


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 training and 100 test images of random pixels, as IDX files in one folder."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(1234)
    for prefix, count in (("train", 200), ("t10k", 100)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder


def train_nnsim(folder: Path, hidden: tuple[int, ...], dtype: str, seed: int) -> dict:
    """Train with nnsim; return the weights, the printed lines and each epoch's raw sums."""
    output = io.StringIO()
    sim = Simulation(seed=seed, output=output)
    layers = [nn.Input(784)]
    for size in hidden:
        layers += [nn.Dense(size, weight_scale=WEIGHT_SCALE), nn.ReLU()]
    layers += [nn.Dense(10, weight_scale=WEIGHT_SCALE), nn.Softmax()]
    model = nn.Sequential(
        layers,
        optimizer=nn.Adam(learning_rate=LEARNING_RATE, decay=DECAY),
        controller=nn.BatchController(
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            class_image_limit=0,
            training_images=str(folder),
            test_images=str(folder),
            progress=False,
        ),
    )
    components = model.build(sim, dtype=dtype)
    controller = components["controller"]
    sums: list[tuple] = []

    # Record the exact sums each epoch's lines are printed from (they are reset afterwards).
    end_training, end_validation = controller._end_training_epoch, controller._end_validation

    def record_training(last):
        sums.append((controller.loss_sum, controller.correct, controller.count, last.update))
        end_training(last)

    def record_validation():
        sums.append((controller.loss_sum, controller.correct, controller.count))
        end_validation()

    controller._end_training_epoch, controller._end_validation = record_training, record_validation
    assert sim.run() == "primaries done"
    dense = sorted(name for name in components if name.startswith("dense"))
    return {
        "weights": {name: components[name].weights for name in dense},
        "biases": {name: components[name].biases for name in dense},
        "lines": output.getvalue().splitlines(),
        "sums": sums,
    }


def assert_bitwise_equal(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, what
    assert actual.shape == expected.shape, what
    assert actual.tobytes() == expected.tobytes(), f"{what} differs: max |diff| " + str(
        np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [(16, 16), (16,)], ids=["2-hidden", "1-hidden"])
def test_training_is_bitwise_identical_to_a_plain_numpy_loop(
    dataset: Path, hidden: tuple[int, ...], dtype: str
) -> None:
    seed = 7
    got = train_nnsim(dataset, hidden, dtype, seed)
    train_x, train_y, test_x, test_y = load_data(0, dtype, str(dataset), str(dataset))
    want = train_reference(
        train_x,
        train_y,
        test_x,
        test_y,
        sizes=(784, *hidden, 10),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        decay=DECAY,
        seed=seed,
        weight_scale=WEIGHT_SCALE,
        dtype=dtype,
    )

    assert got["weights"].keys() == want["weights"].keys()
    for name in want["weights"]:
        assert_bitwise_equal(got["weights"][name], want["weights"][name], f"{name}.weights")
        assert_bitwise_equal(got["biases"][name], want["biases"][name], f"{name}.biases")
        assert got["weights"][name].dtype == np.dtype(dtype)
    assert got["lines"] == want["lines"]
    assert len(got["sums"]) == 2 * EPOCHS
    for epoch, metrics in enumerate(want["epochs"]):
        loss_sum, correct, count, rule = got["sums"][2 * epoch]
        assert loss_sum / count == metrics["data_loss"]
        assert correct / count == metrics["train_acc"]
        assert rule.learning_rate == metrics["learning_rate"]
        loss_sum, correct, count = got["sums"][2 * epoch + 1]
        assert loss_sum / count == metrics["val_loss"]
        assert correct / count == metrics["val_acc"]
    assert want["iterations"] == EPOCHS * -(-200 // BATCH_SIZE)


def test_a_different_seed_gives_different_weights(dataset: Path) -> None:
    """The match above is not vacuous: the seed reaches the weights and the shuffling."""
    first = train_nnsim(dataset, (16,), "float32", seed=7)
    second = train_nnsim(dataset, (16,), "float32", seed=8)
    assert first["weights"]["dense1"].tobytes() != second["weights"]["dense1"].tobytes()
