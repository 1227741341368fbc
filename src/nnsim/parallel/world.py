"""The MPI world of a parallel run: found in the launcher's environment, mpi4py only then.

``mpiexec -n R nnsim run ...`` starts R processes with the launcher's
variables set (``PMI_RANK``/``PMI_SIZE`` from MPICH's hydra, the
``OMPI_COMM_WORLD_*`` ones from Open MPI); only then is mpi4py imported, so a
plain ``nnsim run`` and ``import nnsim`` never need it. The mpich wheel's
``mpiexec`` needs no options or environment on one machine.

Messages are bytes (`nnsim.parallel.wire`) moved by mpi4py's buffer-based
collectives (``Alltoallv``, ``Allgather``, ``Gatherv``): mpi4py's
lower-case, pickle-based methods are never used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from nnsim.errors import NnsimError

LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
T = TypeVar("T")
BLOCK_BYTES = 4096  # what each rank sends each rank in the one collective: MPICH's fast path
MAX_BLOCK_BYTES = 65536  # the most a block grows to when the messages are long
SPIN_SECONDS = 50e-6  # how long a waiting rank spins before it yields between tests
SLEEP_SECONDS = 0.0  # a yield: back at once when no other process wants the core


LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def launched() -> bool:
    """Whether this process was started by ``mpiexec`` (the launcher's variables are set)."""
    return any(variable in os.environ for variable in LAUNCHER_SIZE_VARIABLES)


def launched_rank() -> int | None:
    """This process's rank as the launcher set it (None when not started by ``mpiexec``).

    Known before mpi4py is imported, so that the command line can keep ranks
    other than 0 quiet from its first line (a usage error is printed once).
    """
    for variable in LAUNCHER_RANK_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return None


class RankFailed(NnsimError):
    """A rank raised: every rank raises this, with the first failing rank's message."""


class World:
    """This process's place among the ranks, and the collectives the parallel run uses.

    ``sync_seconds`` adds up the wall time spent in them (the ``-v`` report).
    """

    def __init__(self, comm: Any):
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.sync_seconds = 0.0
        self._blocks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # by shape
        self.block_bytes = BLOCK_BYTES  # the next exchange's block: every rank agrees
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this machine
        self.spins = local.Get_size() <= (os.cpu_count() or 1)
        local.Free()

    @property
    def root(self) -> bool:
        return self.rank == 0

    def exchange(
        self, outgoing: list[bytes], status: list[int] | tuple[int, ...] = ()
    ) -> tuple[list[bytes], list[list[int]]]:
        """Send ``outgoing[r]`` to rank r and this rank's ``status`` row to all; return what
        each rank sent here and every rank's status row (one list of ints per rank).

        One ``Alltoall`` of fixed-size blocks carries, to each rank, the size of
        its message, the status row and as much of the message as fills the
        block; only when some rank sends more than that does an ``Alltoallv``
        carry the rest. A window whose crossing events fit costs a single
        collective. Each block is ``BLOCK_BYTES``, or, when the longest message
        of the last exchange did not fit, the power of two that holds it (up
        to ``MAX_BLOCK_BYTES``): windows alike in what crosses then fit. Every
        rank sends the longest message it sent in its block, so every rank
        picks the same size. The buffers are kept from one call to the next.
        """
        started = time.perf_counter()
        size, fields = self.size, 3 + len(status)
        words = max(self.block_bytes // 8, fields + 1)
        inline = 8 * (words - fields)  # message bytes that travel with the status
        blocks = self._blocks.get((size, words))
        if blocks is None:
            blocks = self._blocks[(size, words)] = (
                np.zeros((size, words), dtype=np.int64),
                np.zeros((size, words), dtype=np.int64),
            )
        send, received = blocks
        counts = [len(data) for data in outgoing]
        overflow = sum(max(0, count - inline) for count in counts)
        send[:, 0] = counts
        send[:, 1] = overflow
        send[:, 2] = max(counts, default=0)
        send[:, 3:fields] = status
        heads = send[:, fields:].view(np.uint8)
        for rank, data in enumerate(outgoing):
            if data:
                head = data[:inline]
                heads[rank, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        self._wait(self.comm.Ialltoall([send, self._mpi.INT64_T], [received, self._mpi.INT64_T]))
        rows = received[:, :fields].tolist()
        incoming = [b""] * size
        lengths = [row[0] for row in rows]
        if any(lengths):
            got = received[:, fields:].view(np.uint8)
            incoming = [
                got[rank, : min(length, inline)].tobytes() if length else b""
                for rank, length in enumerate(lengths)
            ]
        if any(row[1] for row in rows):  # some rank sends more than fits: the rest follows
            incoming = self._overflow(outgoing, lengths, incoming, inline)
        self.block_bytes = _block_for(max(row[2] for row in rows) + 8 * fields)
        self.sync_seconds += time.perf_counter() - started
        return incoming, [row[3:] for row in rows]

    def _overflow(
        self, outgoing: list[bytes], lengths: list[int], heads: list[bytes], inline: int
    ) -> list[bytes]:
        """The bytes past the first ``inline`` of every message, in one ``Alltoallv``."""
        MPI = self._mpi
        send_counts = np.array([max(0, len(d) - inline) for d in outgoing], dtype=np.int64)
        recv_counts = np.array([max(0, n - inline) for n in lengths], dtype=np.int64)
        send = np.frombuffer(b"".join(d[inline:] for d in outgoing), dtype=np.uint8)
        recv = np.empty(int(recv_counts.sum()), dtype=np.uint8)
        send_displs = np.concatenate(([0], np.cumsum(send_counts)[:-1]))
        recv_displs = np.concatenate(([0], np.cumsum(recv_counts)[:-1]))
        self._wait(
            self.comm.Ialltoallv(
                [send, send_counts, send_displs, MPI.BYTE],
                [recv, recv_counts, recv_displs, MPI.BYTE],
            )
        )
        return [
            head + recv[start : start + count].tobytes()
            for head, start, count in zip(
                heads, recv_displs.tolist(), recv_counts.tolist(), strict=True
            )
        ]

    def _wait(self, request: Any) -> None:
        """Complete a non-blocking collective: by spinning when every rank on this machine
        has a core of its own (`spins`), else by spinning briefly, then yielding.

        A spinning rank answers at once, but on a machine with fewer cores
        than ranks it takes a core from the rank it waits for; there, after
        ``SPIN_SECONDS``, it yields its core (``time.sleep(0)``) between tests.
        """
        if self.spins:
            request.Wait()
            return
        if request.Test():
            return
        spin_until = time.perf_counter() + SPIN_SECONDS
        while not request.Test():
            if time.perf_counter() > spin_until:
                time.sleep(SLEEP_SECONDS)

    def allgather_ints(self, values: list[int]) -> np.ndarray:
        """Every rank's ``values`` (the same length everywhere), one row per rank."""
        started = time.perf_counter()
        mine = np.array(values, dtype=np.int64)
        rows = np.empty((self.size, len(mine)), dtype=np.int64)
        self.comm.Allgather([mine, self._mpi.INT64_T], [rows, self._mpi.INT64_T])
        self.sync_seconds += time.perf_counter() - started
        return rows

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data``, in rank order."""
        return self.exchange([data] * self.size)[0]

    def gather_bytes(self, data: bytes) -> list[bytes] | None:
        """Every rank's ``data`` on rank 0 (None elsewhere)."""
        started = time.perf_counter()
        MPI = self._mpi
        counts = np.empty(self.size, dtype=np.int64)
        self.comm.Gather(
            [np.array([len(data)], dtype=np.int64), MPI.INT64_T], [counts, MPI.INT64_T]
        )
        mine = np.frombuffer(data, dtype=np.uint8)
        if self.root:
            displs = np.concatenate(([0], np.cumsum(counts)[:-1]))
            recv = np.empty(int(counts.sum()), dtype=np.uint8)
            self.comm.Gatherv([mine, MPI.BYTE], [recv, counts, displs, MPI.BYTE], root=0)
            parts = [
                recv[start : start + count].tobytes()
                for start, count in zip(displs.tolist(), counts.tolist(), strict=True)
            ]
        else:
            self.comm.Gatherv([mine, MPI.BYTE], None, root=0)
            parts = None
        self.sync_seconds += time.perf_counter() - started
        return parts

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's ``data`` on every rank."""
        MPI = self._mpi
        size = np.array([len(data) if self.root else 0], dtype=np.int64)
        self.comm.Bcast([size, MPI.INT64_T], root=0)
        buffer = np.frombuffer(data, dtype=np.uint8).copy() if self.root else None
        if buffer is None:
            buffer = np.empty(int(size[0]), dtype=np.uint8)
        self.comm.Bcast([buffer, MPI.BYTE], root=0)
        return buffer.tobytes()

    # Errors: one rank's failure ends every rank, with one message ---------------------
    def raise_if_failed(self, error: str | None, *, name_rank: bool = True) -> None:
        """Collective: if ``error`` is set on any rank, raise `RankFailed` on every rank.

        The message is the lowest failing rank's; it names that rank unless
        every rank failed the same way (a model script's error, say) or
        ``name_rank`` is False (a step that only rank 0 takes).
        """
        flags = self.allgather_ints([error is not None])
        if not flags.any():
            return
        messages = [data.decode() for data in self.allgather_bytes((error or "").encode())]
        failed = [rank for rank in range(self.size) if flags[rank, 0]]
        first = messages[failed[0]]
        if not name_rank or (len(failed) == self.size and len(set(messages)) == 1):
            raise RankFailed(first)
        raise RankFailed(f"rank {failed[0]} of {self.size}: {first}")

    def together(self, action: Callable[[], T], *, name_rank: bool = True) -> T:
        """``action()`` on every rank; if it raised anywhere, `RankFailed` everywhere."""
        error, result = None, None
        try:
            result = action()
        except Exception as failure:  # reported by every rank, as one line
            error = describe_failure(failure)
        self.raise_if_failed(error, name_rank=name_rank)
        return result


def _block_for(need: int) -> int:
    """The block that holds ``need`` bytes: ``BLOCK_BYTES`` doubled as often as it takes,
    at most ``MAX_BLOCK_BYTES``."""
    block = BLOCK_BYTES
    while block < need and block < MAX_BLOCK_BYTES:
        block *= 2
    return block


def describe_failure(failure: BaseException) -> str:
    """An error's one line: its message when it is nnsim's, its type too when it is a bug."""
    if isinstance(failure, NnsimError):
        return str(failure)
    return f"{type(failure).__name__}: {failure}"


def world() -> World | None:
    """The running MPI world when launched by ``mpiexec`` (None for a plain run)."""
    if not launched():
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise NnsimError(
            "this run was started by mpiexec, but mpi4py is not installed: pip install 'nnsim[mpi]'"
        ) from None
    return World(MPI.COMM_WORLD)
