"""Partitioners: which rank runs which component of a parallel run.

A partitioner is a function ``(sim, ranks) -> {component name: rank}``,
registered by name with `register_partitioner` or in the
``nnsim.partitioners`` entry-point group (how nnsim registers its own four):

* ``linear`` (default): contiguous runs of the build order, balanced by weight;
* ``roundrobin``: component i on rank i mod R;
* ``self``: the rank the model script gave, ``sim.place(name, rank=R)``;
* ``graph``: METIS (pymetis) balances the weights and minimises the
  traffic-weighted links cut (``Link.traffic``).

Every partitioner except ``self`` places by *units*: the components of one
``sim.place(name, group=...)`` group (a hardware node of a dataflow mapping)
form one unit and stay on one rank, with the sum of their weights. The
`Partition` it yields names the links that cross ranks and the lookahead
they allow: the smallest latency on them. A zero-latency link between ranks
is refused here, before time starts, naming the link.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from nnsim.errors import ParamError
from nnsim.files import write_text
from nnsim.sim import Link, Simulation
from nnsim.units import format_time

ENTRY_POINT_GROUP = "nnsim.partitioners"
NO_LOOKAHEAD = 2**63 - 1  # no link crosses ranks: a window may be as long as the run

Partitioner = Callable[[Simulation, int], dict[str, int]]
_partitioners: dict[str, Partitioner] = {}
_entry_points_loaded = False


def register_partitioner(name: str, function: Partitioner | None = None):
    """Make ``function(sim, ranks) -> {component: rank}`` known as ``--partitioner NAME``.

    Usable as a decorator: ``@register_partitioner("mine")``.
    """

    def decorate(function: Partitioner) -> Partitioner:
        _partitioners[name] = function
        return function

    return decorate(function) if function is not None else decorate


def partitioners() -> dict[str, Partitioner]:
    """Every known partitioner by name (entry points included), sorted."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            _partitioners.setdefault(entry.name, entry.load())
    return dict(sorted(_partitioners.items()))


def lookup_partitioner(name: str) -> Partitioner:
    known = partitioners()
    if name not in known:
        raise ParamError(f"unknown partitioner '{name}'; use one of {', '.join(known)}")
    return known[name]


# Units: components that go together ------------------------------------------------
def units(sim: Simulation) -> list[tuple[list[str], float]]:
    """The components in build order, grouped by their ``group`` hint, each with its weight."""
    order: list[tuple[list[str], float]] = []
    by_group: dict[str, int] = {}
    for name in sim.components:
        hint = sim.placement.get(name)
        weight = hint.weight if hint is not None else 1.0
        group = hint.group if hint is not None else None
        if group is not None and group in by_group:
            members, total = order[by_group[group]]
            order[by_group[group]] = (members + [name], total + weight)
            continue
        if group is not None:
            by_group[group] = len(order)
        order.append(([name], weight))
    return order


def _expand(placed: list[tuple[list[str], int]]) -> dict[str, int]:
    return {name: rank for names, rank in placed for name in names}


def linear(sim: Simulation, ranks: int) -> dict[str, int]:
    """Contiguous runs of the build order, cut where the running weight passes k/R of the total."""
    order = units(sim)
    total = sum(weight for _, weight in order)
    placed, before = [], 0.0
    for names, weight in order:
        middle = before + weight / 2  # a unit goes where its middle falls
        placed.append((names, min(ranks - 1, int(middle * ranks / total))))
        before += weight
    return _expand(placed)


def roundrobin(sim: Simulation, ranks: int) -> dict[str, int]:
    """Unit i (a component, or a group) on rank i mod R."""
    return _expand([(names, index % ranks) for index, (names, _) in enumerate(units(sim))])


def placed(sim: Simulation, ranks: int) -> dict[str, int]:
    """The ranks the model script gave with ``sim.place(name, rank=R)``; every component needs one."""
    missing = [
        name for name in sim.components if getattr(sim.placement.get(name), "rank", None) is None
    ]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ParamError(
            f"--partitioner self: {', '.join(missing[:3])}{more} have no rank; give each "
            "component one in the model script with sim.place(name, rank=R)"
        )
    return {name: sim.placement[name].rank for name in sim.components}


def graph(sim: Simulation, ranks: int) -> dict[str, int]:
    """METIS: balanced unit weights, fewest traffic-weighted links cut (needs nnsim[dataflow])."""
    order = units(sim)
    if ranks == 1 or len(order) <= 1:
        return _expand([(names, 0) for names, _ in order])
    try:
        import pymetis
    except ImportError:
        raise ParamError(
            "--partitioner graph needs pymetis: pip install 'nnsim[dataflow]'"
        ) from None
    unit_of = {name: index for index, (names, _) in enumerate(order) for name in names}
    edges: list[dict[int, int]] = [{} for _ in order]
    for link in sim.link_list:
        a, b = (unit_of[end.owner.name] for end in link.ends)
        if a != b:
            weight = max(1, round(link.traffic))
            edges[a][b] = edges[a].get(b, 0) + weight
            edges[b][a] = edges[b].get(a, 0) + weight
    xadj, adjncy, eweights = [0], [], []
    for neighbours in edges:
        for other, weight in sorted(neighbours.items()):
            adjncy.append(other)
            eweights.append(weight)
        xadj.append(len(adjncy))
    smallest = min(weight for _, weight in order)
    vweights = [max(1, round(weight / smallest * 10)) for _, weight in order]
    options = pymetis.Options(seed=0)  # the same partition in every process and every run
    _, parts = pymetis.part_graph(
        ranks,
        pymetis.CSRAdjacency(xadj, adjncy),
        vweights=vweights,
        eweights=eweights,
        options=options,
    )
    return _expand([(names, int(part)) for (names, _), part in zip(order, parts, strict=True)])


# The partition and what follows from it ---------------------------------------------
@dataclass(frozen=True)
class CutLink:
    """A link whose ends are on different ranks; ``latency`` is the smaller one that can deliver."""

    link: Link
    ranks: tuple[int, int]
    latency: int


@dataclass(frozen=True)
class Partition:
    """Component → rank, the links cut, and the lookahead they allow (`NO_LOOKAHEAD`: none cut)."""

    name: str
    ranks: int
    assignment: dict[str, int]
    cut: tuple[CutLink, ...]
    lookahead: int

    def owned(self, rank: int) -> list[str]:
        return [name for name, owner in self.assignment.items() if owner == rank]

    def to_json(self) -> dict:
        return {
            "partitioner": self.name,
            "ranks": self.ranks,
            "components": self.assignment,
            "cut_links": [
                {"name": cut.link.name, "ranks": list(cut.ranks), "latency_ps": cut.latency}
                for cut in self.cut
            ],
            "lookahead_ps": None if self.lookahead == NO_LOOKAHEAD else self.lookahead,
        }

    def distances(self) -> list[list[int]]:
        """``d[s][r]``: the least simulated time an event takes from rank s to rank r.

        The shortest path, of one hop or more, over the ranks' cut links, each
        hop the latency of the end that sends it (``d[r][r]``: the shortest
        round trip from r back to itself); `NO_LOOKAHEAD` where no path exists.
        Every entry is at least the lookahead.
        """
        size, never = self.ranks, NO_LOOKAHEAD
        d = [[never] * size for _ in range(size)]
        for cut in self.cut:
            for end in cut.link.ends:
                if end.peer.handler_name is None:
                    continue  # what this end sends is never delivered
                s, r = self.assignment[end.owner.name], self.assignment[end.peer.owner.name]
                d[s][r] = min(d[s][r], end.latency)
        for k in range(size):  # Floyd-Warshall; the diagonal starts unknown: round trips
            for i in range(size):
                if d[i][k] == never:
                    continue
                for j in range(size):
                    if d[k][j] != never and d[i][k] + d[k][j] < d[i][j]:
                        d[i][j] = d[i][k] + d[k][j]
        return d

    def describe(self) -> str:
        """``partitioner linear, 2 links cut, lookahead 1 us`` for the ``-v`` notes."""
        lookahead = "none needed" if self.lookahead == NO_LOOKAHEAD else format_time(self.lookahead)
        return f"partitioner {self.name}, {len(self.cut)} links cut, lookahead {lookahead}"


def delivering_latency(link: Link) -> int | None:
    """The smallest latency of an end of ``link`` whose peer handles events (None: neither does)."""
    latencies = [end.latency for end in link.ends if end.peer.handler_name is not None]
    return min(latencies) if latencies else None


def make_partition(sim: Simulation, ranks: int, name: str = "linear") -> Partition:
    """Run partitioner ``name`` and check what it gave (`check_partition`)."""
    return check_partition(sim, ranks, name, lookup_partitioner(name)(sim, ranks))


def check_partition(sim: Simulation, ranks: int, name: str, assignment: dict) -> Partition:
    """The `Partition` of ``assignment``: every component on a rank below ``ranks``, the
    primary components together, no zero-latency link between ranks (ParamError otherwise)."""
    missing = [component for component in sim.components if component not in assignment]
    if missing:
        raise ParamError(f"partitioner '{name}' placed no rank for '{missing[0]}'")
    assignment = {component: assignment[component] for component in sim.components}
    for component, rank in assignment.items():
        if type(rank) is not int or not 0 <= rank < ranks:
            raise ParamError(
                f"partitioner '{name}' put '{component}' on rank {rank!r}, but the run has "
                f"{ranks} rank(s) (0 to {ranks - 1})"
            )
    primaries = {c.name: assignment[c.name] for c in sim.components.values() if c.primary}
    if len(set(primaries.values())) > 1:
        where = ", ".join(f"{c} on rank {r}" for c, r in primaries.items())
        raise ParamError(
            f"the primary components decide together when the run ends and must share a rank "
            f"(partitioner '{name}' put {where}); place them together with sim.place"
        )
    cut = []
    for link in sim.link_list:
        a, b = (assignment[end.owner.name] for end in link.ends)
        if a == b:
            continue
        latency = delivering_latency(link)
        if latency is None:
            continue  # neither end can deliver an event: nothing ever crosses
        if latency <= 0:
            raise ParamError(
                f"link '{link.name}' crosses from rank {a} to rank {b} with latency 0: a parallel "
                "run needs a latency > 0 on every link between ranks; give the link a latency, "
                "or put both components on one rank (sim.place(name, group=...))"
            )
        cut.append(CutLink(link, (a, b), latency))
    lookahead = min((c.latency for c in cut), default=NO_LOOKAHEAD)
    return Partition(name, ranks, assignment, tuple(cut), lookahead)


def write_partition(partition: Partition, path: str) -> None:
    """``--output-partition FILE``: the partition as JSON (component → rank, cuts, lookahead)."""
    write_text(path, json.dumps(partition.to_json(), indent=2) + "\n")
