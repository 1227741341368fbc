"""Checkpoint write and read throughput against raw numpy files and torch.save; one JSON line.

The state is a large dense layer trained with Adam: weights, bias and the
two moment buffers of each (``--params`` weights, float32: the default
100M gives three 10000x10000 arrays plus biases, about 1.2 GB). Contestants,
run interleaved in the same process and the same directory, best of
``--repeat``:

* ``nnsim``: ``DirStorage.save`` (sharded safetensors, SHA-256 of every
  file, fsync of every file and folder, atomic rename) and
  ``DirStorage.load`` with ``verify=True`` (every hash checked).
* ``raw``: the same bytes with ``ndarray.tofile`` into one file, without and
  with fsync, read back with ``np.fromfile``.
* ``torch``: ``torch.save``/``torch.load`` of the same state as a dict of
  tensors (``torch.from_numpy``), when torch is importable; ``torch.save``
  does not fsync, so it is also timed followed by an fsync of its file.

Every read then touches all the data the same way (``np.add.reduce`` over
each array), so a lazy reader (a memory map) pays for its pages too. Files
are read right after they are written, so reads come from the page cache
for every contestant alike. Ratios are throughput ratios (>1: nnsim faster).

Run: ``.venv/bin/python benchmarks/checkpoint_io.py [--params 100000000] [--quick]``
(``--quick`` = ``--params 10000000``). The data goes to a temporary folder
in ``--dir`` (default: the current directory, a real disk; /tmp may be RAM).

``--parallel`` prints another line instead: the checkpoint of a parallel run
(`nnsim.parallel.checkpoint`: each of 2 ranks writes the tensors of its
half of the components into its own files, rank 0 the manifest, committed
after both report) against the serial checkpoint of the same model
(`CheckpointManager.checkpoint_now`), both as a running simulation takes
them: capture, write, hash, fsync, commit. The model is 8 components each
holding ``--params``/8 float32 weights; best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import nnsim  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nnsim.checkpoint import DirStorage, checkpoint_name

try:
    import torch
except ImportError:  # torch is optional: its columns are then null
    torch = None

TARGETS = {
    "write_vs_raw_fsync": 0.7,  # both durable: fsync'ed before returning
    "read_vs_raw": 0.7,
    "write_vs_torch": 1.0,  # torch.save neither fsyncs nor hashes
    "write_vs_torch_fsync": 1.0,
    "read_vs_torch": 1.0,
}


def adam_state(params: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights, bias and Adam's two moments of each for a square dense layer of ``params`` weights."""
    side = max(1, math.isqrt(params))
    rng = np.random.default_rng(seed)
    state = {}
    for prefix in ("", "adam.m.", "adam.v."):
        state[f"{prefix}dense.weight"] = rng.standard_normal((side, side), dtype=np.float32)
        state[f"{prefix}dense.bias"] = rng.standard_normal(side, dtype=np.float32)
    return state


def touch(arrays) -> float:
    """Read every byte of every array (the same work for every contestant)."""
    return float(sum(np.add.reduce(array, axis=None, dtype=np.float64) for array in arrays))


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def timed(function) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run(params: int, repeat: int, folder: Path) -> dict:
    state = adam_state(params)
    nbytes = sum(array.nbytes for array in state.values())
    manifest = {"step": 1000, "rng": {"state": 2**127 + 12345, "inc": 2**64 + 1}}
    storage = DirStorage(folder / "checkpoints")
    raw_path = folder / "raw.bin"
    torch_path = folder / "state.pt"
    best: dict[str, float] = {}
    written = []

    def write_nnsim() -> None:
        name = checkpoint_name("bench", len(written), 0)
        storage.save(name, manifest, state)
        written.append(name)

    def write_raw(fsync: bool) -> None:
        with open(raw_path, "wb") as file:
            for array in state.values():
                array.tofile(file)
            if fsync:
                file.flush()
                os.fsync(file.fileno())

    def read_nnsim() -> float:
        _, tensors = storage.load(written[-1], verify=True)
        return touch(tensors.values())

    def read_raw() -> float:
        with open(raw_path, "rb") as file:
            arrays = [np.fromfile(file, a.dtype, a.size).reshape(a.shape) for a in state.values()]
        return touch(arrays)

    contestants = {
        "nnsim_write": write_nnsim,
        "raw_write": lambda: write_raw(False),
        "raw_write_fsync": lambda: write_raw(True),
        "nnsim_read": read_nnsim,
        "raw_read": read_raw,
    }
    if torch is not None:
        tensors = {name: torch.from_numpy(array) for name, array in state.items()}

        def write_torch(fsync: bool) -> None:
            torch.save(tensors, torch_path)
            if fsync:
                fd = os.open(torch_path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

        contestants["torch_write"] = lambda: write_torch(False)
        contestants["torch_write_fsync"] = lambda: write_torch(True)
        contestants["torch_read"] = lambda: touch(
            t.numpy() for t in torch.load(torch_path).values()
        )

    for _ in range(repeat):
        for key, function in contestants.items():
            # every write makes a new file, as a checkpoint does; deleting the old one is not timed
            if key.startswith("raw_write"):
                remove(raw_path)
            elif key.startswith("torch_write"):
                remove(torch_path)
            elif key == "nnsim_write" and written:
                storage.delete(written[-1])
            best[key] = min(best.get(key, math.inf), timed(function))

    seconds = {key: round(value, 4) for key, value in best.items()}
    ratios = {
        "write_vs_raw": best["raw_write"] / best["nnsim_write"],
        "write_vs_raw_fsync": best["raw_write_fsync"] / best["nnsim_write"],
        "read_vs_raw": best["raw_read"] / best["nnsim_read"],
    }
    if torch is not None:
        ratios["write_vs_torch"] = best["torch_write"] / best["nnsim_write"]
        ratios["write_vs_torch_fsync"] = best["torch_write_fsync"] / best["nnsim_write"]
        ratios["read_vs_torch"] = best["torch_read"] / best["nnsim_read"]
    return {
        "benchmark": "checkpoint_io",
        "params": params,
        "bytes": nbytes,
        "tensors": len(state),
        "shards": len(storage.load_manifest(written[-1])["files"]),
        "repeat": repeat,
        "cpus": os.cpu_count(),
        "seconds": seconds,
        "gb_per_s": {key: round(nbytes / value / 1e9, 3) for key, value in best.items()},
        "ratios": {key: round(value, 3) for key, value in ratios.items()},
        "targets": TARGETS,
        "met": {key: ratios[key] >= goal for key, goal in TARGETS.items() if key in ratios},
        "meets_targets": all(ratios.get(key, math.inf) >= goal for key, goal in TARGETS.items()),
    }


def holders(params: int):
    """A running simulation of 8 components holding ``params`` float32 weights in all."""
    from nnsim.sim import Component, Param, Simulation

    class WeightHolder(Component):
        type_name = "bench.WeightHolder"
        params = (Param("size", int, 1, "weights held"),)

        def setup(self) -> None:
            rng = np.random.default_rng(len(self.name))
            self.weights = rng.standard_normal(self.size, dtype=np.float32)

    sim = Simulation(seed=1)
    for index in range(8):
        sim.add(WeightHolder, f"h{index}", size=params // 8)
    sim.start()
    return sim


def parallel_worker(params: int, repeat: int, folder: Path) -> None:
    """One contestant: serial (no mpiexec) or this rank of a parallel run; prints its best."""
    from nnsim.checkpoint.manager import CheckpointManager
    from nnsim.parallel import world

    sim = holders(params)
    mpi = world()
    rank, size = (mpi.rank, mpi.size) if mpi else (0, 1)
    manager = None
    if rank == 0:
        manager = CheckpointManager(sim, str(folder / f"ranks{size}"), announce=False)
    best = math.inf
    for _ in range(repeat):
        if mpi is None:
            started = time.perf_counter()
            manager.checkpoint_now("bench")
            best = min(best, time.perf_counter() - started)
            continue
        from nnsim.checkpoint import open_storage
        from nnsim.parallel.checkpoint import ParallelCheckpoints

        storage = manager.storage if rank == 0 else open_storage(str(folder / f"ranks{size}"))
        writer = ParallelCheckpoints(mpi, storage, manager)
        owned = [name for i, name in enumerate(sim.components) if i * size // 8 == rank]
        mpi.comm.Barrier()
        started = time.perf_counter()
        writer.take(sim, owned, 0, 1, {}, lambda shares: [("bench", {})])
        mpi.comm.Barrier()
        best = min(best, time.perf_counter() - started)
    if rank == 0:
        print(json.dumps({"ranks": size, "seconds": best}))


def parallel_line(params: int, repeat: int, folder: Path) -> dict:
    """The parallel checkpoint on 2 ranks against the serial one, in this run."""
    import subprocess

    here = [sys.executable, __file__, "--parallel-worker", f"--params={params}"]
    here += [f"--repeat={repeat}", f"--dir={folder}"]
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    runs = {}
    for ranks in (1, 2):  # serial first, then 2 ranks; each in a fresh process
        command = here if ranks == 1 else [str(mpiexec), "-n", "2", *here]
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        runs[ranks] = json.loads(out.stdout.splitlines()[-1])
    nbytes = 4 * (params // 8) * 8
    return {
        "benchmark": "parallel_checkpoint_write",
        "bytes": nbytes,
        "serial_s": round(runs[1]["seconds"], 4),
        "ranks2_s": round(runs[2]["seconds"], 4),
        "serial_MBps": round(nbytes / runs[1]["seconds"] / 1e6, 1),
        "ranks2_MBps": round(nbytes / runs[2]["seconds"] / 1e6, 1),
        "speedup_2_ranks": round(runs[1]["seconds"] / runs[2]["seconds"], 3),
        "cores": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", action="store_true", help="the parallel checkpoint line")
    parser.add_argument("--parallel-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--params", type=int, default=100_000_000, help="weights (float32)")
    parser.add_argument("--quick", action="store_true", help="--params 10000000")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temporary files go")
    args = parser.parse_args(argv)
    params = 10_000_000 if args.quick else args.params
    if args.parallel_worker:
        return parallel_worker(params, args.repeat, args.dir)
    folder = Path(tempfile.mkdtemp(prefix=".checkpoint-io-", dir=args.dir))
    try:
        if args.parallel:
            result = parallel_line(params, args.repeat, folder)
        else:
            result = run(params, args.repeat, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
