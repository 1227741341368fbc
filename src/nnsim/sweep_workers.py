"""Where a sweep's runs happen: local worker processes, or MPI processes through mpi4py.futures.

``make_executor("local", jobs, workers)`` is a ``ProcessPoolExecutor`` of
``workers`` processes (the ``spawn`` start method) on this machine;
``make_executor("mpi", jobs, workers)`` is an ``mpi4py.futures.MPIPoolExecutor``,
whose workers come one of two ways:

* **launched**: ``mpiexec -n K python -m mpi4py.futures -m nnsim.cli sweep …
  --executor mpi`` starts K processes; rank 0 runs the sweep and the other
  K-1 are its workers (mpi4py.futures' shared pool), on this machine or on
  the hosts mpiexec was given. ``--jobs`` does not apply: ``-n`` says it.
* **spawned**: a plain ``nnsim sweep … --executor mpi`` spawns ``workers``
  processes with ``MPI_Comm_spawn``. MPICH spawns from a process that mpiexec
  did not start (a singleton) by running ``mpiexec`` itself, and without one
  on PATH it fails an assertion and hangs; so the mpich wheel's ``mpiexec``
  (in the venv's ``bin/``) is put on PATH while the workers are spawned, and
  when there is none at all the executor is refused with one line before
  anything is spawned.

Either way the caller submits plain data and gets plain data back (see
``nnsim.sweep.run_point``). mpi4py is imported only here, and only when the
``mpi`` executor is asked for: importing nnsim never needs it. This module
imports nothing heavy at its top either, because MPI workers import it (for
their initializer) before the first run and must set their BLAS threads
before numpy loads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sysconfig
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context

from nnsim.errors import NnsimError, ParamError

EXECUTORS = ("local", "mpi")

# One BLAS thread per worker, so parallel runs do not fight over cores and a
# run's bits do not depend on how many run at once.
ONE_BLAS_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")

MPI_LAUNCH = "mpiexec -n K python -m mpi4py.futures -m nnsim.cli sweep … --executor mpi"


def make_executor(name: str, jobs: int | None, workers: int) -> Executor:
    """An executor for ``workers`` runs at once (``jobs`` is what the user asked for, or None)."""
    if name == "local":
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=_start_local_worker
        )
    if name == "mpi":
        return _mpi_executor(jobs, workers)
    raise ParamError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")


def stop(executor: Executor) -> None:
    """Stop the runs in flight and start no more (Ctrl-C, or a bug in the parent)."""
    # No public way to stop running local workers before Python 3.14 (terminate_workers);
    # take them before shutdown forgets them. MPI workers are mpiexec's to stop.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


@contextlib.contextmanager
def environment(variables: dict[str, str]):
    """Set ``variables`` in this process's environment for a while, then put it back."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_local_worker() -> None:
    """Local worker initializer: Ctrl-C is the parent's to handle (it stops the workers itself).

    Its BLAS threads come from the environment it inherits (``environment(ONE_BLAS_THREAD)``
    around the first submits): a ``spawn`` child imports numpy before any initializer runs.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_mpi_worker() -> None:
    """MPI worker initializer: one BLAS thread, set before the first run imports numpy."""
    os.environ.update(ONE_BLAS_THREAD)


# main=False: a worker does not import this process's __main__ (``python -m nnsim.cli``'s
# would run the command line again); everything submitted lives in nnsim's modules.
_MPI_OPTIONS = {"initializer": _start_mpi_worker, "main": False}


def _mpi_executor(jobs: int | None, workers: int) -> Executor:
    try:
        import mpi4py  # noqa: F401 - only to know it is there; MPI starts below
    except ImportError:
        raise NnsimError("--executor mpi needs mpi4py: pip install 'nnsim[mpi]'") from None
    from mpi4py import MPI, futures

    # Private, but the only sign of `python -m mpi4py.futures`: its shared pool of workers.
    launched = getattr(futures._core, "SharedPool", None) is not None
    if launched:
        if jobs is not None:
            raise ParamError(
                f"--jobs does not apply under python -m mpi4py.futures: the workers are the "
                f"{MPI.COMM_WORLD.Get_size() - 1} ranks besides rank 0 (set their number "
                f"with mpiexec -n)"
            )
        return futures.MPIPoolExecutor(**_MPI_OPTIONS)
    if MPI.COMM_WORLD.Get_size() > 1:
        raise NnsimError(
            "nnsim sweep --executor mpi under mpiexec needs mpi4py.futures to make the other "
            f"ranks its workers: {MPI_LAUNCH}"
        )
    executor = futures.MPIPoolExecutor(max_workers=workers, env=ONE_BLAS_THREAD, **_MPI_OPTIONS)
    with environment({"PATH": _path_with_mpiexec()}):
        executor.bootup()  # spawns now, while PATH has mpiexec
    if executor.num_workers == 0:  # the spawn failed: the pool is broken
        raise NnsimError(f"--executor mpi could not spawn {workers} workers; try {MPI_LAUNCH}")
    return executor


def _path_with_mpiexec() -> str:
    """PATH, with the mpich wheel's ``mpiexec`` first when PATH has none: MPICH's singleton
    spawn runs ``mpiexec`` from PATH."""
    path = os.environ.get("PATH", "")
    if shutil.which("mpiexec", path=path):
        return path
    scripts = sysconfig.get_path("scripts")
    if scripts and shutil.which("mpiexec", path=scripts):
        return os.pathsep.join([scripts, path])
    raise NnsimError(
        "--executor mpi cannot spawn workers: MPI spawn needs mpiexec on PATH (the mpich "
        f"wheel of pip install 'nnsim[mpi]' brings one); or start them yourself: {MPI_LAUNCH}"
    )
