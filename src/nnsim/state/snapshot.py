"""A whole simulation as (manifest body, tensors), and back — exactly.

``capture`` walks the live simulation between events: the model graph (how
to rebuild it: component types, construction parameters, subcomponents,
links and latencies), every element's state (``items.state_items``), the
kernel's own state (clocks, link sequence numbers, primary components,
simulated time) and the pending events in the queue with their exact keys.
``restore`` rebuilds the graph from that alone, puts every value back, and
re-queues the events, so the continued run is bit-for-bit the straight one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TextIO

import numpy as np

from nnsim.errors import StateError
from nnsim.sim import Clock, Element, Simulation
from nnsim.sim.event import EXIT_PRIORITY
from nnsim.sim.simulation import _StopMarker
from nnsim.state.encode import Decoder, Encoder
from nnsim.state.items import state_items
from nnsim.state.paths import set_value

SNAPSHOT_KIND = "nnsim-simulation"


# The model graph ----------------------------------------------------------------
def model_graph(sim: Simulation) -> dict:
    """How to rebuild the simulation: types, construction parameters, slots, links."""
    encoder = Encoder()
    components = []
    for name, component in sim.components.items():
        components.append(
            {
                "name": name,
                "type": component.kind(),
                "params": encoder.encode(component._init_params, f"{name}/<params>"),
                "subcomponents": [
                    {
                        "slot": slot,
                        "type": sub.kind(),
                        "params": encoder.encode(sub._init_params, f"{sub.name}/<params>"),
                    }
                    for slot, sub in component.subcomponents.items()
                ],
            }
        )
    if encoder.tensors:
        raise StateError("construction parameters must be plain values, not arrays")
    links = []
    for link in sim.link_list:
        left, right = link.ends
        links.append(
            {
                "name": link.name,
                "left": [left.owner.name, left.port, left.latency],
                "right": [right.owner.name, right.port, right.latency],
            }
        )
    return {"seed": sim.seed, "components": components, "links": links}


def model_signature(sim: Simulation) -> str:
    """SHA-256 of the model's structure (names, types, ports and links), not its parameters.

    Loading a checkpoint into an already built simulation requires the same
    structure; parameters may differ (a restart may run more epochs).
    """
    structure = {
        "components": [
            [
                name,
                c.kind(),
                sorted(c.links),
                sorted((s, sub.kind()) for s, sub in c.subcomponents.items()),
            ]
            for name, c in sim.components.items()
        ],
        "links": [[end.path for end in link.ends] for link in sim.link_list],
    }
    return hashlib.sha256(json.dumps(structure, sort_keys=True).encode()).hexdigest()


# Capture ------------------------------------------------------------------------
def _element_state(element: Element, encoder: Encoder) -> dict:
    return {
        name: encoder.encode(value, f"{element.name}/{name}")
        for name, value in state_items(element).items()
    }


def _queue_entries(sim: Simulation) -> list[tuple[dict, Any]]:
    """Pending events with their exact keys; targets named by port or clock, never pickled.

    Markers (source 0) are run control — pauses, ``--stop-at``, a tool's
    checkpoint request — except the end requested by the primary components.
    """
    ends = {end.id: end for c in sim.components.values() for end in c.links.values()}
    clocks = {
        clock.id: (c.name, index)
        for c in sim.components.values()
        for index, clock in enumerate(c.clocks)
    }
    entries = []
    for time, priority, source, seq, target, payload in sorted(
        sim._queue.entries(), key=lambda e: e[:4]
    ):
        entry: dict[str, Any] = {"time": time, "priority": priority, "seq": seq}
        if source == 0:
            if not (isinstance(target, _StopMarker) and target.reason == "primaries done"):
                continue
            entry["kind"] = "exit"
        elif source in ends:
            entry.update(kind="link", source=ends[source].path)
        elif source in clocks:
            entry.update(kind="clock", component=clocks[source][0], clock=clocks[source][1])
        else:
            raise StateError(f"the queue holds an entry from unknown source {source}")
        entries.append((entry, payload))
    return entries


def capture(sim: Simulation, *, copy_tensors: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """Snapshot a simulation that is between events; return (manifest body, tensors).

    ``copy_tensors=True`` copies every array, so the simulation may go on while
    the snapshot is written by another thread.
    """
    if sim.phase != "run":
        raise StateError(
            f"a simulation can be checkpointed while it runs, not in phase '{sim.phase}'"
        )
    encoder = Encoder(copy_tensors=copy_tensors)
    components = {}
    for name, component in sim.components.items():
        components[name] = {
            "state": _element_state(component, encoder),
            "subcomponents": {
                slot: _element_state(sub, encoder) for slot, sub in component.subcomponents.items()
            },
            "links": {
                port: {"latency": end.latency, "sent": end.sent}
                for port, end in component.links.items()
            },
            "clocks": [
                {
                    "frequency": clock.frequency,
                    "active": clock.active,
                    "scheduled": clock.scheduled,
                    "ticks": clock.ticks,
                    "seq": clock.seq,
                }
                for clock in component.clocks
            ],
            "primary": component.primary,
        }
    queue = []
    for index, (entry, payload) in enumerate(_queue_entries(sim)):
        if entry["kind"] == "link":
            entry["payload"] = encoder.encode(payload, f"<queue>/{index}")
        queue.append(entry)
    body = {
        "kind": SNAPSHOT_KIND,
        "simulated_time_ps": sim.now,
        "model": model_graph(sim),
        "model_signature": model_signature(sim),
        "simulation": {
            "seed": sim.seed,
            "now": sim.now,
            "delivered": sim._queue.delivered,
            "primaries": sim._primaries,
            "blockers": sorted(sim._blockers),
            "markers": sim._markers,
            "last_id": sim._last_id,
        },
        "components": components,
        "queue": queue,
    }
    return body, encoder.tensors


# Restore ------------------------------------------------------------------------
def build_model(body: dict, *, output: TextIO | None = None, verbose: int = 0) -> Simulation:
    """A new simulation with the saved graph, constructed but not started."""
    if body.get("kind") != SNAPSHOT_KIND:
        raise StateError("this checkpoint does not hold a simulation")
    model = body["model"]
    sim = Simulation(seed=model["seed"], output=output, verbose=verbose)
    decoder = Decoder({}, {})
    for spec in model["components"]:
        params = decoder.decode(spec["params"], spec["name"])
        component = sim.add(spec["type"], spec["name"], **params)
        for sub in spec["subcomponents"]:
            component.set_subcomponent(
                sub["slot"], sub["type"], **decoder.decode(sub["params"], sub["slot"])
            )
    for link in model["links"]:
        (a, a_port, a_latency), (b, b_port, b_latency) = link["left"], link["right"]
        sim.connect((a, a_port, a_latency), (b, b_port, b_latency), name=link["name"])
    return sim


def restore(
    body: dict,
    tensors: dict[str, np.ndarray],
    *,
    sim: Simulation | None = None,
    output: TextIO | None = None,
    verbose: int = 0,
    overrides: dict[str, str] | None = None,
) -> Simulation:
    """Rebuild the simulation of a snapshot (or load it into ``sim``, of the same model).

    ``overrides`` (``{"controller/epochs": "12"}``) are set after the saved
    state is back and before the elements' ``restore`` hooks run, so a new
    evaluation folder is the one that gets read.
    """
    if sim is None:
        sim = build_model(body, output=output, verbose=verbose)
    elif sim.phase != "construction":
        raise StateError("a checkpoint can only be loaded into a simulation that has not started")
    elif model_signature(sim) != body.get("model_signature"):
        raise StateError(
            "this checkpoint is of a different model (its components or links differ from the "
            "model script's); restart it without the script: nnsim run --load-checkpoint PATH"
        )
    elements: dict[str, Element] = {}
    for component in sim.components.values():
        elements[component.name] = component
        for sub in component.subcomponents.values():
            elements[sub.name] = sub
    decoder = Decoder(tensors, elements)
    saved = body["simulation"]
    if saved["last_id"] != sim._last_id:
        raise StateError("the rebuilt model numbers its ports differently from the saved one")

    for name, component in sim.components.items():
        state = body["components"][name]
        _restore_element(component, state["state"], decoder)
        for slot, sub_state in state["subcomponents"].items():
            _restore_element(component.subcomponents[slot], sub_state, decoder)
        for port, link_state in state["links"].items():
            end = component.links[port]
            end.latency = link_state["latency"]
            if end.peer is not None:
                end.send.sent = link_state["sent"]
        for clock, clock_state in zip(component.clocks, state["clocks"], strict=True):
            clock.active = clock_state["active"]
            clock.scheduled = clock_state["scheduled"]
            clock.ticks = clock_state["ticks"]
            clock.seq = clock_state["seq"]
        component.primary = state["primary"]

    sim._primaries = saved["primaries"]
    sim._blockers = set(saved["blockers"])
    sim._blocking = len(sim._blockers)
    sim._markers = saved["markers"]
    sim._start_actions.clear()  # clocks come back from the queue, not from registration
    sim.phase = "run"
    queue = sim._queue
    queue.now = saved["now"]
    queue.delivered = saved["delivered"]
    _requeue(sim, body["queue"], decoder)
    for path, text in (overrides or {}).items():
        set_value(sim, path, text)
    for element in elements.values():
        element.restore()
    return sim


def _restore_element(element: Element, state: dict, decoder: Decoder) -> None:
    for name, value in state.items():
        setattr(element, name, decoder.decode(value, f"{element.name}/{name}"))


def _requeue(sim: Simulation, entries: list[dict], decoder: Decoder) -> None:
    ends = {end.path: end for c in sim.components.values() for end in c.links.values()}
    queue = sim._queue
    for index, entry in enumerate(entries):
        kind = entry["kind"]
        if kind == "link":
            end = ends[entry["source"]]
            payload = decoder.decode(entry["payload"], f"<queue>/{index}")
            queue.push_at(
                entry["time"], entry["priority"], end.id, entry["seq"], end.send.target, payload
            )
        elif kind == "clock":
            clock: Clock = sim.components[entry["component"]].clocks[entry["clock"]]
            queue.push_at(
                entry["time"], entry["priority"], clock.id, entry["seq"], clock._tick, None
            )
        elif kind == "exit":
            marker = _StopMarker(sim, "primaries done")
            queue.push_at(entry["time"], EXIT_PRIORITY, 0, entry["seq"], marker, None)
        else:
            raise StateError(f"<queue>/{index}: unknown entry kind {kind!r}")
