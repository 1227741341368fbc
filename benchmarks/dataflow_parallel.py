"""A folded dataflow model on 1 and 2 MPI ranks against the serial run; one JSON line per run.

The 784-128-10 model is trained as `benchmarks/dataflow.py` trains it, then
``nnsim dataflow run`` classifies the Fashion-MNIST test set on its
``neuron`` graph folded ``balanced`` onto 8 nodes, serially and under
``mpiexec -n 1`` and ``-n 2`` (each hardware node on a rank), exactly as a
user would run it, on two presets:

- ``boards8.toml`` (nodes on separate boards, 2 us links: the lookahead is
  2 us), the whole test set (``--images``, 10,000): the case parallel
  dataflow runs are for; target: 2 ranks >= 1.6x the serial run;
- ``mesh16.toml`` (2 ns hops: the lookahead is 2 ns), ``--short-images``
  (500): where a parallel run does not pay, for comparison.

Each line gives the wall time, the speedup over the serial run, whether the
reports are the serial ones byte for byte (they must be), and per rank the
windows, events per window and synchronization time per window (from ``-v``).

Run: ``.venv/bin/python benchmarks/dataflow_parallel.py [--images 10000 --short-images 500]``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataflow import HW, train_model  # noqa: E402  (the same trained model)

MPIEXEC = Path(sys.executable).parent / "mpiexec"
RANK_LINE = re.compile(
    r"# rank (\d+) of (\d+): .*?, (\d+) windows, (\d+) events .*?sync ([0-9.]+) s \((\d+) us"
)
TARGET_SPEEDUP = 1.6  # issue 11: 2 ranks on 2 cores, the long-link case
REPORTS = ("nodes.csv", "links.csv", "layers.csv", "predictions.csv")


def run(folder: Path, weights: Path, case: dict, ranks: int | None):
    out = folder / f"out-{case['hardware']}-{ranks or 'serial'}"
    command = [sys.executable, "-m", "nnsim.cli", "dataflow", "run", "--weights", str(weights)]
    command += ["--hardware", str(HW / f"{case['hardware']}.toml"), "--fold", case["fold"]]
    command += ["--nodes", str(case["nodes"]), "--limit", str(case["images"])]
    command += ["--output", str(out), "-v"]
    if ranks is not None:
        command = [str(MPIEXEC), "-n", str(ranks), *command]
        command += ["--partitioner", case["partitioner"]]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    ranks_seen = [
        {
            "rank": int(m[1]),
            "windows": int(m[3]),
            "events": int(m[4]),
            "events_per_window": round(int(m[4]) / max(1, int(m[3])), 2),
            "sync_seconds": float(m[5]),
            "sync_us_per_window": int(m[6]),
        }
        for m in RANK_LINE.finditer(done.stdout)
    ]
    return seconds, {name: (out / name).read_bytes() for name in REPORTS}, ranks_seen


def measure(folder: Path, weights: Path, case: dict, target: float | None) -> None:
    """The serial run, then 1 and 2 ranks: one JSON line each."""
    serial_seconds, reference, _ = run(folder, weights, case, None)
    for ranks in (None, 1, 2):
        if ranks is None:
            seconds, reports, per_rank = serial_seconds, reference, []
        else:
            seconds, reports, per_rank = run(folder, weights, case, ranks)
        line = {
            "benchmark": "dataflow_parallel",
            "config": f"{case['hardware']} neuron {case['fold']} H={case['nodes']}",
            "lookahead": case["lookahead"],
            "partitioner": case["partitioner"] if ranks else None,
            "images": case["images"],
            "ranks": ranks or "serial",
            "wall_seconds": round(seconds, 3),
            "speedup_over_serial": round(serial_seconds / seconds, 3),
            "reports_identical_to_serial": reports == reference,
            "per_rank": per_rank,
            "target": {"speedup_min": target} if ranks == 2 and target else None,
        }
        if ranks == 2 and target:
            line["target_met"] = bool(
                line["speedup_over_serial"] >= target and line["reports_identical_to_serial"]
            )
        print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="test images, long links")
    parser.add_argument("--short-images", type=int, default=500, help="test images, mesh16")
    parser.add_argument("--fold", default="balanced")
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument(
        "--partitioner", default="roundrobin", help="ranks' share of the nodes (measured best)"
    )
    args = parser.parse_args(argv)
    if not MPIEXEC.exists():
        raise SystemExit(f"no mpiexec in {MPIEXEC.parent}: pip install 'nnsim[mpi]'")
    common = {"fold": args.fold, "nodes": args.nodes, "partitioner": args.partitioner}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        weights = train_model(folder)
        long_links = {"hardware": "boards8", "images": args.images, "lookahead": "2 us"}
        measure(folder, weights, {**common, **long_links}, TARGET_SPEEDUP)
        short_links = {"hardware": "mesh16", "images": args.short_images, "lookahead": "2 ns"}
        measure(folder, weights, {**common, **short_links}, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
