"""How long a checkpoint stalls training: synchronous against asynchronous writes.

Trains the example's chain with a wide hidden layer (so each checkpoint is
tens of MB) three times in one process — no checkpoints, a checkpoint every
epoch written synchronously, and the same written by the background writer —
and prints one JSON line: per checkpoint, how long the simulation thread was
blocked (the stall), and how much longer the whole run took. The async mode
still copies the state on the simulation thread; what it saves is the write,
hashing and fsync — on a machine whose cores are all busy training, that
work still competes with training for CPU time.

Run: ``.venv/bin/python benchmarks/checkpoint_stall.py [--hidden 1024 --epochs 4]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    import nnsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nnsim import nn
from nnsim.checkpoint.manager import Policy, enable
from nnsim.sim import Simulation


def build(args: argparse.Namespace) -> Simulation:
    sim = Simulation(seed=0, output=io.StringIO())
    nn.Sequential(
        [
            nn.Input(784),
            nn.Dense(args.hidden),
            nn.ReLU(),
            nn.Dense(args.hidden),
            nn.ReLU(),
            nn.Dense(10),
            nn.Softmax(),
        ],
        optimizer=nn.Adam(learning_rate=1e-3, decay=1e-3),
        controller=nn.BatchController(
            batch_size=128,
            epochs=args.epochs,
            class_image_limit=args.class_image_limit,
            progress=False,
        ),
    ).build(sim)
    sim.start()  # loads the data before the clock starts
    return sim


def timed(args: argparse.Namespace, mode: str, folder: Path) -> tuple[float, int, float]:
    sim = build(args)
    manager = None
    if mode != "none":
        manager = enable(
            sim,
            str(folder / mode),
            policy=Policy(every_epochs=1),
            asynchronous=mode == "async",
            announce=False,
        )
    gc.collect()
    start = time.perf_counter()
    sim.run()
    if manager is not None:
        manager.close()
    seconds = time.perf_counter() - start
    if manager is None:
        return seconds, 0, 0.0
    return seconds, len(manager.written), manager.stall_seconds / max(len(manager.written), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024, help="width of the two hidden layers")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--class-image-limit", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; the best counts")
    parser.add_argument(
        "--dir", default=".", help="where checkpoints are written (a real disk, not tmpfs)"
    )
    args = parser.parse_args(argv)

    best = {"none": float("inf"), "sync": float("inf"), "async": float("inf")}
    blocked = {"sync": float("inf"), "async": float("inf")}
    count = 0
    folder = Path(tempfile.mkdtemp(prefix="nnsim-stall-", dir=args.dir))
    try:
        for _ in range(args.repeat):
            for mode in best:
                shutil.rmtree(folder / mode, ignore_errors=True)
                seconds, written, waited = timed(args, mode, folder)
                best[mode] = min(best[mode], seconds)
                if mode in blocked:
                    blocked[mode] = min(blocked[mode], waited)
                count = max(count, written)
        sizes = sum(f.stat().st_size for f in (folder / "sync").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stall = {mode: (best[mode] - best["none"]) / count for mode in ("sync", "async")}
    print(
        json.dumps(
            {
                "benchmark": "checkpoint_stall",
                "hidden": args.hidden,
                "checkpoints": count,
                "bytes_per_checkpoint": sizes // max(count, 1),
                "seconds": {mode: round(value, 4) for mode, value in best.items()},
                "blocked_per_checkpoint_s": {
                    mode: round(value, 4) for mode, value in blocked.items()
                },
                "async_over_sync_blocked": round(blocked["async"] / blocked["sync"], 3),
                "wall_overhead_per_checkpoint_s": {
                    mode: round(value, 4) for mode, value in stall.items()
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
