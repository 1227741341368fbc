"""Ranks that see different bounds, as a model script for the parallel window tests.

Four parts, each placed on a rank with ``--partitioner self`` (``--layout``):

* ``iso``: two LPs passing tokens to each other, linked to nothing else;
* ``src``: two LPs passing tokens to each other; ``src`` also emits new
  tokens one way down to ``rel`` (``--down-latency``, long);
* ``rel``: only relays what it gets, on down to ``snk`` (2 ns): idle
  whenever nothing came, so its own queue says nothing about what is coming;
* ``snk``: two LPs passing tokens; ``snk`` drops some and sends some back
  up to ``rel`` (1 ns), a round trip ``snk`` -> ``rel`` -> ``snk`` of 3 ns.

Layouts: ``chain`` (3 ranks: iso and src on 0, rel on 1, the sink pair on
2: rank 0 has no link into it, rank 2 hears from rank 0 only through rank
1), ``island`` (3 ranks: iso alone on 0, no link crossing to or from it;
src on 1; rel and the sink pair on 2) and ``pair`` (2 ranks: iso and src on
0, the rest on 1). Every LP prints a line per token (time, hops, a running
mix of what it saw in order) and a digest of its state at finish, so a rank
that delivers past what is safe changes the lines or their order.
"""

from dataclasses import dataclass

import nnsim
from nnsim.script import ArgumentParser
from nnsim.sim import Component, Event, Param, Port


@dataclass(slots=True)
class Token(Event):
    hops: int


class ChainLP(Component):
    type_name = "test.ChainLP"
    params = (
        Param("population", int, 0, "tokens this LP starts with", min=0),
        Param("emit", float, 0.0, "chance per token of a new token sent down", min=0),
        Param("drop", float, 0.0, "chance per token of dropping it", min=0),
        Param("up", float, 0.0, "chance per token of sending it back up", min=0),
        Param("relay", bool, False, "send every token down (no partner)"),
    )
    ports = (
        Port("peer", "to and from the partner LP", handler="on_token"),
        Port("inlet", "tokens from upstream", handler="on_token"),
        Port("down", "one way on downstream"),
        Port("up", "one way back upstream"),
    )

    def build(self) -> None:
        self.received = 0
        self.mix = 1

    def setup(self) -> None:
        for hops in range(self.population):
            self.links["peer"].send(Token(hops), 100 * hops)

    def on_token(self, token: Token) -> None:
        self.received += 1
        self.mix = (self.mix * 1_000_003 + self.sim.now * 7 + token.hops) % (2**61 - 1)
        self.print(f"{self.name} {self.sim.now} ps hops {token.hops} mix {self.mix}")
        token.hops += 1
        delay = int(self.rng.exponential(500))
        if self.relay:
            self.links["down"].send(token, delay)
            return
        chance = self.rng.random(2)
        if chance[0] < self.emit:
            self.links["down"].send(Token(0), int(self.rng.exponential(500)))
        if chance[1] < self.up:
            self.links["up"].send(token, delay)
        elif chance[1] >= self.up + self.drop:
            self.links["peer"].send(token, delay)

    def finish(self) -> None:
        self.print(f"{self.name}: received {self.received} mix {self.mix}")


LAYOUTS = {
    # part: rank
    "chain": {"iso": 0, "src": 0, "rel": 1, "snk": 2},
    "island": {"iso": 0, "src": 1, "rel": 2, "snk": 2},
    "pair": {"iso": 0, "src": 0, "rel": 1, "snk": 1},
}

parser = ArgumentParser(prog="rank_chain.py")
parser.add_argument("--layout", choices=sorted(LAYOUTS), default="chain")
parser.add_argument("--down-latency", default="6ns", help="src -> rel")
args = parser.parse_args()
ranks = LAYOUTS[args.layout]

sim = nnsim.simulation()
parts = {
    "iso": dict(population=2),
    "iso_b": dict(),
    "src": dict(population=2, emit=0.6),
    "src_b": dict(),
    "rel": dict(relay=True),
    "snk": dict(population=1, drop=0.3, up=0.3),
    "snk_b": dict(),
}
for name, params in parts.items():
    sim.add(ChainLP, name, **params)
    sim.place(name, rank=ranks[name.removesuffix("_b")])
for pair in ("iso", "src", "snk"):
    sim.connect(f"{pair}.peer", f"{pair}_b.peer", latency="1ns")
sim.connect("src.down", "rel.inlet", latency=args.down_latency)
sim.connect("rel.down", "snk.inlet", latency="2ns")
sim.connect("snk.up", "rel.peer", latency="1ns")
