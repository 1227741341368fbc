"""A folded dataflow model on 1 and 2 MPI ranks against the serial run; one JSON line per run.

The 784-128-10 model is trained as `benchmarks/dataflow.py` trains it, then
``nnsim dataflow run`` classifies the Fashion-MNIST test set on its
``neuron`` graph folded ``balanced`` onto 8 nodes of ``mesh16.toml``,
serially and under ``mpiexec -n 1`` and ``-n 2`` (each hardware node on a
rank), exactly as a user would run it. Each line gives the wall time, the
speedup over the serial run, whether the reports are the serial ones byte
for byte (they must be), and per rank the windows, events per window and
synchronization time per window (from ``-v``).

Run: ``.venv/bin/python benchmarks/dataflow_parallel.py [--images 10000]``.
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
REPORTS = ("nodes.csv", "links.csv", "layers.csv", "predictions.csv")


def run(folder: Path, weights: Path, images: int, ranks: int | None, fold: str, nodes: int):
    out = folder / f"out-{ranks or 'serial'}-{fold}-{nodes}"
    command = [sys.executable, "-m", "nnsim.cli", "dataflow", "run", "--weights", str(weights)]
    command += ["--hardware", str(HW / "mesh16.toml"), "--fold", fold, "--nodes", str(nodes)]
    command += ["--limit", str(images), "--output", str(out), "-v"]
    if ranks is not None:
        command = [str(MPIEXEC), "-n", str(ranks), *command]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="test images")
    parser.add_argument("--fold", default="balanced")
    parser.add_argument("--nodes", type=int, default=8)
    args = parser.parse_args(argv)
    if not MPIEXEC.exists():
        raise SystemExit(f"no mpiexec in {MPIEXEC.parent}: pip install 'nnsim[mpi]'")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        weights = train_model(folder)
        serial_seconds, reference, _ = run(
            folder, weights, args.images, None, args.fold, args.nodes
        )
        for ranks in (None, 1, 2):
            if ranks is None:
                seconds, reports, per_rank = serial_seconds, reference, []
            else:
                seconds, reports, per_rank = run(
                    folder, weights, args.images, ranks, args.fold, args.nodes
                )
            line = {
                "benchmark": "dataflow_parallel",
                "config": f"neuron {args.fold} H={args.nodes}",
                "images": args.images,
                "ranks": ranks or "serial",
                "wall_seconds": round(seconds, 3),
                "speedup_over_serial": round(serial_seconds / seconds, 3),
                "reports_identical_to_serial": reports == reference,
                "per_rank": per_rank,
                "target": {"speedup_min": 1.6} if ranks == 2 else None,
            }
            if ranks == 2:
                line["target_met"] = bool(
                    line["speedup_over_serial"] >= 1.6 and line["reports_identical_to_serial"]
                )
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
