"""Parallel checkpoints: each rank writes its own tensor files, rank 0 the one manifest.

SST 16's layout for N -> M restarts: a checkpoint of a run on R ranks is
one ordinary checkpoint folder holding R tensor file sets
(``tensors-rank00002-00000-of-00001.safetensors`` ...) and one
``manifest.json`` of the whole graph, whose tensor table says which file
holds each tensor. Any reader of checkpoints (a serial restart, a restart
on R' ranks, ``nnsim checkpoint verify``, ``load_model``) reads it as any
other: every file is listed with its size and SHA-256 in the manifest.

A checkpoint at a sync point, on every rank (`ParallelCheckpoints.take`):

1. each rank captures its components and its queued entries
   (`nnsim.state.capture_components`) and sends rank 0 the JSON part only —
   no tensor bytes;
2. rank 0 assembles the manifest body of the whole model
   (`nnsim.state.combine_shares`: the serial checkpoint's, entry for
   entry), begins the staging area and tells every rank where it is and how
   to rename its queued tensors;
3. every rank writes its tensor files into it at once, hashing as it writes
   (`nnsim.checkpoint.format.write_files`), and reports their sizes and
   SHA-256 (a collective: a rank that failed makes every rank end with its
   one line, and rank 0 drops the staging area — nothing is committed);
4. rank 0 writes the manifest and commits, then ``latest``.

A backend whose staging area other processes cannot reach (``memory://``)
gets the ranks' tensor bytes through rank 0, which writes their files.

With ``asynchronous`` (``--checkpoint-async``) steps 3 and 4 run in a
background thread on every rank, over a communicator of their own, while
the windows go on; one write is in flight at most: the next checkpoint,
and the end of the run, wait for it and report its failure.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from nnsim.checkpoint.format import (
    commit,
    duplicate,
    plan_files,
    point_latest,
    write_error,
    write_files,
)
from nnsim.errors import ParamError
from nnsim.parallel.wire import pack, unpack
from nnsim.parallel.world import RankFailed, World
from nnsim.sim import Simulation
from nnsim.state import capture_components, combine_shares


def rank_prefix(rank: int) -> str:
    """How the names of rank ``rank``'s tensor files start."""
    return f"tensors-rank{rank:05d}"


class ParallelCheckpoints:
    """This rank's side of the run's checkpoints: ``storage`` on every rank, the
    `nnsim.checkpoint.CheckpointManager` (naming, retention) on rank 0."""

    def __init__(self, world: World, storage: Any, manager: Any = None, asynchronous=False):
        self.world, self.storage, self.manager = world, storage, manager
        self.asynchronous = asynchronous
        self.writers = world
        if asynchronous:
            from mpi4py import MPI

            if MPI.Query_thread() < MPI.THREAD_MULTIPLE:
                raise ParamError(
                    "--checkpoint-async in parallel runs needs an MPI with thread support "
                    "(MPI_THREAD_MULTIPLE); run without it"
                )
            self.writers = World(world.comm.Dup())  # the background writes' own collectives
        self.names: list[str] = []  # those of the last `take`
        self._thread: threading.Thread | None = None
        self._failure: str | None = None

    def take(
        self,
        sim: Simulation,
        owned: list[str],
        at: int,
        count: int,
        share: dict,
        choose: Any,
    ) -> bool:
        """Write ``count`` checkpoints of the whole run at time ``at`` (collective).

        ``share`` is what this rank adds for rank 0 (its report, metrics and
        trigger); on rank 0 ``choose(shares)`` returns the ``count`` (reason,
        metrics) of the checkpoints to write, or (reason, metrics, name) for
        one with a name of its own (the console's ``checkpoint NAME``). Returns
        whether any rank still has model events queued (a period goes on only
        then); ``names`` holds the names written.
        """
        world = self.world
        self.wait()
        part: dict = {}
        tensors: dict[str, np.ndarray] = {}

        def capture() -> bytes:
            nonlocal part, tensors
            part, tensors = capture_components(sim, owned, copy_tensors=self.asynchronous)
            part.update(share, blockers=sim.kernel_state()["blockers"])
            part["pending"] = sim.model_events_pending()
            return pack(part)

        packets = world.gather_bytes(world.together(capture))
        jobs: list[tuple[str, dict, list]] = []

        def assemble() -> bytes:
            if not world.root:
                return b""
            parts = [unpack(data)[0] for data in packets]
            blockers = sorted({name for p in parts for name in p["blockers"]})
            body, renames = combine_shares(sim, parts, now=at, blockers=blockers)
            for reason, metrics, *named in choose(parts):  # each prints its line now
                name, extras = self.manager.begin_checkpoint(
                    reason, metrics=metrics, now=at, name=named[0] if named else None
                )
                self.manager.announce_checkpoint(at)
                jobs.append((name, {**body, **extras}, renames))
            go_on = any(p["pending"] for p in parts)
            return json.dumps({"names": [name for name, _, _ in jobs], "go_on": go_on}).encode()

        plan = json.loads(world.broadcast_bytes(world.together(assemble, name_rank=False)))
        if len(plan["names"]) != count:
            raise RankFailed(f"rank 0 planned {len(plan['names'])} checkpoints, not {count}")
        self.names = plan["names"]
        work = [
            (name, *(jobs[index][1:] if world.root else (None, None)))
            for index, name in enumerate(plan["names"])
        ]
        if self.asynchronous:
            self._thread = threading.Thread(
                target=self._write_all, args=(work, tensors), daemon=True
            )
            self._thread.start()
        else:
            self._write_all(work, tensors)
            self.raise_failure()
        return bool(plan["go_on"])

    def _write_all(self, work: list, tensors: dict) -> None:
        try:
            for name, body, renames in work:
                self._write(name, body, renames, tensors)
        except RankFailed as failure:  # the same on every rank: the steps are collectives
            self._failure = str(failure)
        except BaseException as failure:  # a bug here: said, not hidden
            self._failure = f"{type(failure).__name__}: {failure}"

    def _write(self, name: str, body: dict | None, renames: list | None, tensors: dict) -> None:
        """One checkpoint's steps 2-4 (see the module docstring), on every rank."""
        world, storage = self.writers, self.storage
        staging = None

        def begin() -> bytes:
            nonlocal staging
            if not world.root:
                return b""
            if storage.exists(name):
                raise duplicate(storage, name)
            staging = self._os(name, storage.begin, name)
            token = storage.staging_token(staging)
            return json.dumps({"token": token, "renames": renames}).encode()

        try:
            plan = json.loads(world.broadcast_bytes(world.together(begin, name_rank=False)))
            token, mine = plan["token"], plan["renames"][world.rank]
            named = {mine.get(key, key): array for key, array in tensors.items()}

            def write() -> bytes:
                if token is None and not world.root:
                    return pack(None, named)  # rank 0 writes them (a store only it reaches)
                where = staging if world.root else storage.join_staging(name, token)
                plans = plan_files(named, name, rank_prefix(world.rank))
                return json.dumps(self._os(name, write_files, storage, where, plans)).encode()

            results = world.gather_bytes(world.together(write))

            def finish() -> None:
                if not world.root:
                    return
                files, entries = {}, {}
                for rank, data in enumerate(results):
                    if token is None and rank:
                        theirs = plan_files(unpack(data)[1], name, rank_prefix(rank))
                        got = self._os(name, write_files, storage, staging, theirs)
                    else:
                        got = json.loads(data)
                    files.update(got[0])
                    entries.update(got[1])
                self._os(name, commit, storage, staging, name, body, files, entries)
                point_latest(storage, name)
                self.manager.committed(name)

            world.together(finish, name_rank=False)
        except BaseException:
            if staging is not None and not storage.exists(name):
                storage.abort(staging)
            raise

    def _os(self, name: str, action: Any, *args: Any) -> Any:
        """``action(*args)``, its OSError said as the one line of a failed checkpoint write."""
        try:
            return action(*args)
        except OSError as error:
            raise write_error(self.storage, name, self.storage.location(name), error) from None

    def wait(self) -> None:
        """Collective: the background write in flight is over; its failure raised everywhere."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.raise_failure()

    def raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RankFailed(failure)


__all__ = ["ParallelCheckpoints", "rank_prefix"]
