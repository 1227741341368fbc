"""Parallel runs against the serial run of the same model, in one run; one JSON line per configuration.

PHOLD on a ring (the LPs of ``benchmarks/phold.py``), each LP doing
a W x W matrix product per token, is run
three times in subprocesses with the same environment: serially (a plain
``Simulation.run``, no MPI), and through `nnsim.parallel` on 1 and on 2
ranks (the mpich wheel's ``mpiexec``). Every run must end with the same
number of events; the line gives wall times, the speedup of 2 ranks over
serial, and per rank the windows, events per window and time spent
synchronizing per window.

Four configurations: ``heavy`` (much work per window: where parallel pays),
``light`` (the same model with no work per event: the windows' sync cost
dominates), ``empty`` (two LPs, one token: each window holds about one
event, so its sync time is what an empty window costs) and ``bare`` (the
heavy case's math and one exchange per window without the simulation: the
best speedup this machine gives at the moment, the peer that says how much
of a missed target is the machine's), and ``exchange`` (a window's status
exchange alone, nothing delivered or crossing: rank 0's time per exchange is
what synchronization costs at the least).

Run: ``.venv/bin/python benchmarks/parallel.py`` (or ``--only heavy``).
BLAS threads are pinned to 1 so the comparison is of processes, not threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import nnsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent / "src"))

from phold import PholdLP, Token  # noqa: E402

from nnsim.sim import Param, Simulation, registered_types  # noqa: E402

TARGET_SPEEDUP = 1.6
# PHOLD's LPs are alike and its tokens wander at random, so the work follows no order of
# the ring: dealing LPs out in turn balances the ranks' events per window, while `linear`'s
# two contiguous halves drift apart (33 against 26 events per window in the heavy case).
PARTITIONER = os.environ.get("NNSIM_BENCH_PARTITIONER", "roundrobin")
CONFIGURATIONS = {
    # name: (lps, population, work, lookahead, mean delay, end time, partitioner)
    "heavy": (16, 4, 128, "10ns", 1000, "1us", PARTITIONER),
    "light": (16, 4, 0, "10ns", 1000, "30us", PARTITIONER),
    "empty": (2, 1, 0, "1ns", 0, "2us", "linear"),
    "bare": (0, 0, 128, "-", 0, "-", "-"),  # see bare_worker
    "exchange": (0, 0, 0, "-", 0, "-", "-"),  # see exchange_worker
}
EXCHANGES = 5000
BARE_WORK, BARE_WINDOWS, BARE_PER_WINDOW = 128, 100, 30
SINGLE_THREADED = {
    name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}


class HeavyLP(PholdLP):
    """A PHOLD LP that does ``work`` x ``work`` numpy work per token before forwarding it."""

    type_name = "bench.HeavyLP"
    params = (Param("work", int, 0, "matrix size of the work per token", min=0),)

    def build(self) -> None:
        super().build()
        self.matrix = self.rng.standard_normal((self.work, self.work))
        self.total = 0.0

    def on_token(self, token: Token) -> None:
        if self.work:  # a W x W matmul, about 2 W^3 flops: the same cost for every token
            self.total += float(np.tanh(self.matrix @ self.matrix)[0, 0])
        super().on_token(token)


def build(config: str, seed: int = 1) -> Simulation:
    from nnsim.units import parse_time

    lps, population, work, lookahead, mean_delay, end_time, _ = CONFIGURATIONS[config]
    sim = Simulation(seed, stop_at=parse_time(end_time))
    for index in range(lps):
        sim.add(HeavyLP, f"lp{index}", population=population, mean_delay=mean_delay, work=work)
    for index in range(lps):
        sim.connect(f"lp{index}.right", f"lp{(index + 1) % lps}.left", latency=lookahead)
    return sim


def bare_worker() -> None:
    """The machine's own ceiling: the heavy case's math and one exchange per window, no kernel.

    Serially the same total work is done by one process; the speedup of 2
    ranks over it is the best any parallel run can show on this machine now.
    """
    from nnsim.parallel import world

    mpi = world()
    ranks = 1 if mpi is None else mpi.size
    matrix = np.random.default_rng(0).standard_normal((BARE_WORK, BARE_WORK))
    started = time.perf_counter()
    for _ in range(BARE_WINDOWS):
        for _ in range(BARE_PER_WINDOW * (2 // ranks)):
            np.tanh(matrix @ matrix)
        if mpi is not None:
            mpi.exchange([b"x" * 100] * mpi.size, [0] * 8)
    seconds = time.perf_counter() - started
    if mpi is None or mpi.root:
        print(
            json.dumps(
                {"seconds": seconds, "events": BARE_WINDOWS * BARE_PER_WINDOW * 2, "ranks": []}
            )
        )


def exchange_worker() -> None:
    """A window's synchronization alone: the status exchange of a window with nothing to
    deliver and nothing crossing, timed per call (one run of it serially is no exchange)."""
    from nnsim.parallel import world
    from nnsim.parallel.run import FIELDS

    mpi = world()
    started = time.perf_counter()
    for _ in range(EXCHANGES if mpi is not None else 0):
        mpi.exchange([b""] * mpi.size, [0] * FIELDS)
    seconds = time.perf_counter() - started
    ranks = (
        []
        if mpi is None
        else [
            {
                "rank": mpi.rank,
                "size": mpi.size,
                "components": 0,
                "windows": EXCHANGES,
                "events": 0,
                "busiest": 0,
                "sync_seconds": seconds,
            }
        ]
    )
    if mpi is None or mpi.root:
        print(json.dumps({"seconds": seconds, "events": 0, "ranks": ranks}))


def worker(config: str) -> None:
    """One run of ``config``: serial when not under mpiexec; prints one JSON line (rank 0)."""
    from nnsim.parallel import run_parallel, world

    if config == "bare":
        bare_worker()
        return
    if config == "exchange":
        exchange_worker()
        return
    sim = build(config)
    mpi = world()
    registered_types()  # the element libraries, imported before the clock starts in every run
    started = time.perf_counter()
    if mpi is None:
        sim.run()
        reports = []
    else:
        reports = run_parallel(sim, mpi, partitioner=CONFIGURATIONS[config][6])
    seconds = time.perf_counter() - started
    if mpi is not None and not mpi.root:
        return
    events = sum(end.received for c in sim.components.values() for end in c.links.values())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "events": events,
                "ranks": [report.to_json() for report in reports],
            }
        )
    )


def launch(config: str, ranks: int | None) -> dict:
    command = [sys.executable, __file__, "--worker", config]
    if ranks is not None:
        command = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *command]
    env = {**os.environ, **SINGLE_THREADED}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def per_rank(run: dict) -> list[dict]:
    return [
        {
            "rank": rank["rank"],
            "windows": rank["windows"],
            "events_per_window": round(rank["events"] / max(1, rank["windows"]), 1),
            "sync_us_per_window": round(1e6 * rank["sync_seconds"] / max(1, rank["windows"]), 1),
        }
        for rank in run["ranks"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CONFIGURATIONS), action="append")
    parser.add_argument("--worker", choices=sorted(CONFIGURATIONS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    for config in args.only or CONFIGURATIONS:
        serial, one, two = launch(config, None), launch(config, 1), launch(config, 2)
        lps, population, work, lookahead, _, end_time, partitioner = CONFIGURATIONS[config]
        result = {
            "benchmark": "parallel_phold",
            "configuration": config,
            "lps": lps,
            "population": population,
            "work": work,
            "lookahead": lookahead,
            "end_time": end_time,
            "partitioner": partitioner,
            "events": serial["events"],
            "same_event_count": serial["events"] == one["events"] == two["events"],
            "serial_s": round(serial["seconds"], 3),
            "ranks1_s": round(one["seconds"], 3),
            "ranks2_s": round(two["seconds"], 3),
            "speedup_2_vs_serial": round(serial["seconds"] / two["seconds"], 2),
            "ranks2": per_rank(two),
            "target": TARGET_SPEEDUP if config == "heavy" else None,
        }
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
