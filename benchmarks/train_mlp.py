"""Time the Fashion-MNIST example's training job in nnsim, plain numpy and PyTorch.

One process runs the same job three ways, interleaved ``--repeat`` times so
that noise on a shared machine hits each alike, and prints one JSON line with
the best wall time of each, the ratios ``nnsim_over_numpy`` and
``nnsim_over_torch``, the final validation accuracies, and the targets
(nnsim within 15% of the plain loop, and faster than PyTorch).

The job is examples/fashion_mnist/nn.py's: 784-128-128-10, Adam (lr 1e-3,
decay 1e-3), batch 128, 2000 images per class (20,000), validation on the
test set after every epoch, float32. Data loading is not timed: the arrays
are read once before, and nnsim's controller reads its copy before its clock
starts. PyTorch (CPU, if installed) starts from the same initial weights and
sees the same batches in the same order, with as many threads as numpy's BLAS.

    python benchmarks/train_mlp.py [--epochs 10] [--class-image-limit 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_mlp import (  # noqa: E402
    component_rng,
    forward,
    init_dense,
    load_data,
    train_reference,
)

import nnsim  # noqa: E402
import nnsim.nn as nn  # noqa: E402
from nnsim.nn import functional as F  # noqa: E402
from nnsim.sim import Simulation  # noqa: E402

SEED = 0
HIDDEN = 128
SIZES = (784, HIDDEN, HIDDEN, 10)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
DECAY = 1e-3
WEIGHT_SCALE = 0.01
EPSILON = 1e-7
DTYPE = "float32"
TARGET_NNSIM_OVER_NUMPY = 1.15
TARGET_NNSIM_OVER_TORCH = 1.0
PAUSE_SECONDS = 0.3


def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library numpy loaded, if it can be found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_function(prefixes: tuple[str, ...], name: str):
    library = _openblas()
    for prefix in prefixes if library is not None else ():
        function = getattr(library, f"{prefix}{name}", None)
        if function is not None:
            return function
    return None


_PREFIXES = ("scipy_openblas_", "openblas_")


def blas_threads() -> int:
    """How many threads numpy's OpenBLAS uses (os.cpu_count() if it cannot be asked)."""
    for name in ("get_num_threads64_", "get_num_threads"):
        function = _blas_function(_PREFIXES, name)
        if function is not None:
            function.restype = ctypes.c_int
            return int(function())
    return os.cpu_count() or 1


def set_blas_threads(threads: int) -> None:
    """Make numpy's OpenBLAS use ``threads`` threads (SystemExit if it cannot)."""
    for name in ("set_num_threads64_", "set_num_threads"):
        function = _blas_function(_PREFIXES, name)
        if function is not None:
            function.argtypes = [ctypes.c_int]
            function(threads)
            if blas_threads() == threads:
                return
    raise SystemExit(
        f"cannot set numpy's BLAS threads to {threads}; set OPENBLAS_NUM_THREADS instead"
    )


def accuracy(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a trained network on (x, y), with the reference's forward pass."""
    layers = [{"weights": w, "biases": b} for w, b in weights]
    correct = 0
    for start in range(0, len(x), BATCH_SIZE):
        probabilities = forward(layers, x[start : start + BATCH_SIZE], None)
        correct += F.correct_predictions(probabilities, y[start : start + BATCH_SIZE])
    return correct / len(x)


# The three ways ----------------------------------------------------------------
def run_nnsim(args: argparse.Namespace, data: tuple) -> dict[str, Any]:
    """Build (timed) and load the data (not timed), then run the simulation (timed)."""
    started = time.perf_counter()
    sim = Simulation(seed=SEED, output=io.StringIO())
    hidden = []
    for _ in range(2):
        hidden += [nn.Dense(HIDDEN, weight_scale=WEIGHT_SCALE), nn.ReLU()]
    components = nn.Sequential(
        [nn.Input(784), *hidden, nn.Dense(10, weight_scale=WEIGHT_SCALE), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=LEARNING_RATE, decay=DECAY, epsilon=EPSILON),
        controller=nn.BatchController(
            batch_size=BATCH_SIZE,
            epochs=args.epochs,
            class_image_limit=args.class_image_limit,
            progress=False,
        ),
    ).build(sim, dtype=DTYPE)
    build_seconds = time.perf_counter() - started
    sim.start()  # the controller reads the datasets here
    started = time.perf_counter()
    reason = sim.run()
    seconds = build_seconds + time.perf_counter() - started
    assert reason == "primaries done", reason
    weights = [(components[f"dense{i}"].weights, components[f"dense{i}"].biases) for i in (1, 2, 3)]
    return {
        "seconds": seconds,
        "weights": weights,
        "val_acc": accuracy(weights, data[2], data[3]),
        "lines": sim.output.getvalue().splitlines(),
    }


def run_numpy(args: argparse.Namespace, data: tuple) -> dict[str, Any]:
    started = time.perf_counter()
    result = train_reference(
        *data,
        sizes=SIZES,
        epochs=args.epochs,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        decay=DECAY,
        seed=SEED,
        weight_scale=WEIGHT_SCALE,
        dtype=DTYPE,
        epsilon=EPSILON,
    )
    seconds = time.perf_counter() - started
    weights = [(result["weights"][f"dense{i}"], result["biases"][f"dense{i}"]) for i in (1, 2, 3)]
    return {
        "seconds": seconds,
        "weights": weights,
        "val_acc": result["epochs"][-1]["val_acc"] if result["epochs"] else None,
        "lines": result["lines"],
    }


def run_torch(args: argparse.Namespace, data: tuple) -> dict[str, Any]:
    """The same job in PyTorch: same initial weights, same batches, same schedule."""
    import torch

    train_x, train_y, test_x, test_y = (torch.from_numpy(array) for array in data)
    started = time.perf_counter()
    model = torch.nn.Sequential(
        torch.nn.Linear(SIZES[0], SIZES[1]),
        torch.nn.ReLU(),
        torch.nn.Linear(SIZES[1], SIZES[2]),
        torch.nn.ReLU(),
        torch.nn.Linear(SIZES[2], SIZES[3]),
    )
    with torch.no_grad():
        for i, linear in enumerate(model[::2]):
            layer = init_dense(
                SEED, f"dense{i + 1}", SIZES[i], SIZES[i + 1], WEIGHT_SCALE, np.dtype(DTYPE)
            )
            linear.weight.copy_(torch.from_numpy(layer["weights"].T))
            linear.bias.zero_()
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, eps=EPSILON)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda iteration: 1.0 / (1.0 + DECAY * iteration)
    )
    rng = component_rng(SEED, "controller")
    n_train, n_test = len(train_x), len(test_x)
    val_acc = None
    for _ in range(args.epochs):
        order = torch.from_numpy(rng.permutation(n_train))
        model.train()
        loss_sum, correct = 0.0, 0
        for start in range(0, n_train, BATCH_SIZE):
            indices = order[start : start + BATCH_SIZE]
            inputs, targets = train_x[indices], train_y[indices]
            optimizer.zero_grad(set_to_none=True)
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(targets)
            correct += int((logits.argmax(dim=1) == targets).sum())
        model.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, n_test, BATCH_SIZE):
                inputs = test_x[start : start + BATCH_SIZE]
                targets = test_y[start : start + BATCH_SIZE]
                logits = model(inputs)
                loss_sum += float(loss_fn(logits, targets)) * len(targets)
                correct += int((logits.argmax(dim=1) == targets).sum())
        val_acc = correct / n_test
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "val_acc": val_acc}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--class-image-limit", type=int, default=2000, help="images per class (0: all)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="best of N, the three interleaved")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument(
        "--threads", type=int, default=0, help="BLAS/torch threads (0: numpy's default)"
    )
    args = parser.parse_args(argv)

    data = load_data(args.class_image_limit, DTYPE)
    if args.threads:
        set_blas_threads(args.threads)
    threads = blas_threads()
    runners = {"nnsim": run_nnsim, "numpy": run_numpy}
    torch_version = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(threads)
            torch_version = torch.__version__
            runners["torch"] = run_torch

    times: dict[str, list[float]] = {name: [] for name in runners}
    results: dict[str, dict[str, Any]] = {}
    names = list(runners)
    for rep in range(max(1, args.repeat)):
        # Rotate who goes first, and let the previous run's worker threads stop
        # spinning before the next starts, so that none always follows torch.
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            time.sleep(PAUSE_SECONDS)
            results[name] = runners[name](args, data)
            times[name].append(results[name]["seconds"])

    best = {name: min(values) for name, values in times.items()}
    identical = results["nnsim"]["lines"] == results["numpy"]["lines"] and all(
        a.tobytes() == b.tobytes()
        for pair_a, pair_b in zip(
            results["nnsim"]["weights"], results["numpy"]["weights"], strict=True
        )
        for a, b in zip(pair_a, pair_b, strict=True)
    )
    over_numpy = best["nnsim"] / best["numpy"]
    over_torch = best["nnsim"] / best["torch"] if "torch" in best else None
    report = {
        "benchmark": "train_mlp",
        "config": {
            "sizes": list(SIZES),
            "train_images": len(data[0]),
            "test_images": len(data[2]),
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": f"adam lr={LEARNING_RATE} decay={DECAY}",
            "dtype": DTYPE,
            "threads": threads,
        },
        "repeat": max(1, args.repeat),
        "seconds": {name: round(value, 4) for name, value in best.items()},
        "all_seconds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "nnsim_over_numpy": round(over_numpy, 4),
        "nnsim_over_torch": None if over_torch is None else round(over_torch, 4),
        "val_acc": {name: result["val_acc"] for name, result in results.items()},
        "nnsim_bitwise_equals_numpy": identical,
        "targets": {
            "nnsim_over_numpy": f"<= {TARGET_NNSIM_OVER_NUMPY}",
            "nnsim_over_torch": f"< {TARGET_NNSIM_OVER_TORCH}",
        },
        "targets_met": {
            "nnsim_over_numpy": over_numpy <= TARGET_NNSIM_OVER_NUMPY,
            "nnsim_over_torch": None
            if over_torch is None
            else over_torch < TARGET_NNSIM_OVER_TORCH,
        },
        "versions": {
            "nnsim": nnsim.__version__,
            "numpy": np.__version__,
            "torch": torch_version,
            "python": platform.python_version(),
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
