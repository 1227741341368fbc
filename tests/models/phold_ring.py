"""PHOLD on a ring, as a model script for the parallel tests (and benchmarks/parallel.py).

Each LP forwards every token to a random neighbour after the link latency
plus a random delay; tokens carry a small array that every hop changes, so
events in flight hold tensors. Options make the run end by a primary
component (``--primary-after N``: lp0 ends the run once it has received N
tokens), print lines from handlers (``--print-every``), raise in a handler
(``--raise-in LP:N``), use a zero-latency link, place LPs for ``--partitioner
self`` (``--ranks R``) and do heavy work per event (``--work N``: an N x N
matmul). At finish a digest line per LP shows its whole final state.
"""

import hashlib
from dataclasses import dataclass

import numpy as np

import nnsim
from nnsim.script import ArgumentParser
from nnsim.sim import Component, Event, Param, Port
from nnsim.state import state_items


@dataclass(slots=True)
class Token(Event):
    hops: int
    trail: np.ndarray


class RingLP(Component):
    type_name = "test.RingLP"
    params = (
        Param("population", int, 2, "tokens this LP starts with", min=0),
        Param("mean_delay", int, 1000, "mean extra delay in ps", min=0),
        Param("print_every", int, 0, "print a line every N tokens received (0: never)", min=0),
        Param(
            "stop_after",
            int,
            0,
            "as the primary: end the run after N tokens (0: not primary)",
            min=0,
        ),
        Param("raise_after", int, 0, "raise after N tokens (0: never)", min=0),
        Param("work", int, 0, "size of the matmul done per token", min=0),
    )
    ports = (
        Port("left", "to and from the left neighbour", handler="on_token"),
        Port("right", "to and from the right neighbour", handler="on_token"),
    )

    def build(self) -> None:
        self.received = 0
        self.total = 0.0
        self._ends = (self.links["left"], self.links["right"])
        self.matrix = self.rng.standard_normal((self.work, self.work)) / max(1, self.work)

    def setup(self) -> None:
        if self.stop_after:
            self.register_as_primary()
            self.primary_component_do_not_end_sim()
        for index in range(self.population):
            self.forward(Token(0, np.full(3, float(index))))

    def on_token(self, token: Token) -> None:
        self.received += 1
        if self.work:
            vector = np.resize(token.trail, self.work)
            self.total += float((self.matrix @ vector).sum() * 1e-9)
        if self.print_every and self.received % self.print_every == 0:
            self.print(
                f"{self.name} got token {self.received} at {self.sim.now} ps: hops {token.hops}"
            )
        if self.raise_after and self.received == self.raise_after:
            raise RuntimeError(f"{self.name} gave up after {self.received} tokens")
        if self.stop_after and self.received == self.stop_after:
            self.primary_component_ok_to_end_sim()
        token.trail = token.trail * 0.5 + self.received
        token.hops += 1
        self.forward(token)

    def forward(self, token: Token) -> None:
        delay = int(self.rng.exponential(self.mean_delay))
        self._ends[int(self.rng.integers(0, 2))].send(token, delay)

    def finish(self) -> None:
        digest = hashlib.sha256()
        for name, value in state_items(self).items():
            if isinstance(value, np.ndarray):
                value = value.tobytes()
            elif isinstance(value, np.random.Generator):
                value = value.bit_generator.state
            digest.update(f"{name}={value!r}".encode())
        self.print(f"{self.name}: received {self.received} digest {digest.hexdigest()[:16]}")


parser = ArgumentParser(prog="phold_ring.py")
parser.add_argument("--lps", type=int, default=6)
parser.add_argument("--population", type=int, default=2)
parser.add_argument("--latency", default="1ns")
parser.add_argument("--mean-delay", type=int, default=1000)
parser.add_argument("--print-every", type=int, default=0)
parser.add_argument("--primary-after", type=int, default=0)
parser.add_argument("--primary-lp", default="lp0", help="which LP is the primary")
parser.add_argument("--raise-in", default="", help="LP:N, e.g. lp4:10")
parser.add_argument("--zero-latency", default="", help="a link with latency 0, e.g. lp2")
parser.add_argument("--ranks", type=int, default=0, help="place lp i on rank i mod R (self)")
parser.add_argument("--work", type=int, default=0)
parser.add_argument(
    "--failing-storage",
    type=int,
    default=-1,
    help="register checkpoint storage failing:// whose tensor writes fail on this rank (disk full)",
)
parser.add_argument(
    "--unshared-storage",
    action="store_true",
    help="register checkpoint storage unshared://, a folder other processes cannot join",
)
args = parser.parse_args()

if args.unshared_storage:
    from nnsim.checkpoint import DirStorage, register_backend

    class UnsharedStorage(DirStorage):
        """A folder as memory:// is to other processes: rank 0 writes every rank's files."""

        def staging_token(self, staging):
            return None

    register_backend("unshared", UnsharedStorage)

if args.failing_storage >= 0:
    import errno
    import os

    from nnsim.checkpoint import DirStorage, register_backend

    class FailingStorage(DirStorage):
        """A folder whose disk is full on one rank (the launcher's PMI_RANK)."""

        def write_file(self, staging, file, chunks):
            if os.environ.get("PMI_RANK") == str(args.failing_storage) and file != "manifest.json":
                raise OSError(errno.ENOSPC, "No space left on device")
            super().write_file(staging, file, chunks)

    register_backend("failing", FailingStorage)

sim = nnsim.simulation()
raise_in, _, raise_after = args.raise_in.partition(":")
for index in range(args.lps):
    name = f"lp{index}"
    sim.add(
        RingLP,
        name,
        population=args.population,
        mean_delay=args.mean_delay,
        print_every=args.print_every,
        stop_after=args.primary_after if name == args.primary_lp else 0,
        raise_after=int(raise_after) if name == raise_in else 0,
        work=args.work,
    )
    if args.ranks:
        sim.place(name, rank=index % args.ranks)
for index in range(args.lps):
    latency = 0 if f"lp{index}" == args.zero_latency else args.latency
    sim.connect(f"lp{index}.right", f"lp{(index + 1) % args.lps}.left", latency=latency)
