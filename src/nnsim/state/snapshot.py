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
from enum import Enum
from typing import Any, TextIO

import numpy as np

from nnsim.errors import CheckpointError, StateError
from nnsim.sim import Component, Element, Pending, Simulation
from nnsim.sim.declare import resolve_params
from nnsim.state.encode import Decoder, Encoder
from nnsim.state.items import KERNEL_ATTRIBUTES, state_items, transient_names
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
    structure, and `model_differences` the same parameters and latencies.
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


def model_differences(sim: Simulation, body: dict) -> list[str]:
    """What ``sim`` (built by a model script) builds differently from a snapshot of the same structure.

    Parameters are compared as construction resolves them (defaults filled
    in), link latencies as numbers; one ``"dense1/output_size: 64 in the
    script, 32 in the checkpoint"`` line per difference, in model order.
    """
    decoder = Decoder({}, {})
    saved = {spec["name"]: spec for spec in body["model"]["components"]}
    differences = []

    def compare(path: str, element: Element, given: dict, kept: Any) -> None:
        declared = element.declared_params()
        mine = resolve_params(element.describe(), element.kind(), declared, given)
        theirs = resolve_params(
            element.describe(), element.kind(), declared, decoder.decode(kept, path)
        )
        for key in declared:
            if mine[key] != theirs[key]:
                differences.append(
                    f"{path}/{key}: {mine[key]!r} in the script, {theirs[key]!r} in the checkpoint"
                )

    for name, component in sim.components.items():
        spec = saved[name]
        compare(name, component, component._init_params, spec["params"])
        subs = {sub["slot"]: sub for sub in spec["subcomponents"]}
        for slot, sub in component.subcomponents.items():
            if slot in subs:
                compare(f"{name}/{slot}", sub, sub._init_params, subs[slot]["params"])
    links = {link["name"]: link for link in body["model"]["links"]}
    for link in model_graph(sim)["links"]:
        for side in ("left", "right"):
            mine, theirs = link[side][2], links[link["name"]][side][2]
            if mine != theirs:
                differences.append(
                    f"latency of {link[side][0]}.{link[side][1]}: {mine} ps in the script, "
                    f"{theirs} ps in the checkpoint"
                )
    return differences


# Capture ------------------------------------------------------------------------
def _element_state(element: Element, encoder: Encoder) -> dict:
    return {
        name: encoder.encode(value, f"{element.name}/{name}")
        for name, value in state_items(element).items()
    }


def _queue_entries(sim: Simulation) -> list[tuple[dict, Any]]:
    """Pending events with their exact keys; targets named by port or clock, never pickled.

    The kernel says which entries are simulation state (`Simulation.pending`):
    run control and tools' actions — pauses, ``--stop-at``, a checkpoint
    request — are not, except the end requested by the primary components.
    """
    clocks = {
        clock: (c.name, index)
        for c in sim.components.values()
        for index, clock in enumerate(c.clocks)
    }
    entries = []
    for pending in sim.pending():
        entry: dict[str, Any] = {
            "time": pending.time,
            "priority": pending.priority,
            "seq": pending.seq,
        }
        if pending.kind == "exit":
            entry["kind"] = "exit"
        elif pending.kind == "link":
            entry.update(kind="link", source=pending.end.path)
        else:
            component, index = clocks[pending.clock]
            entry.update(kind="clock", component=component, clock=index)
        entries.append((entry, pending.payload))
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
    components = {
        name: _component_state(component, encoder) for name, component in sim.components.items()
    }
    body = {
        "kind": SNAPSHOT_KIND,
        "simulated_time_ps": sim.now,
        "model": model_graph(sim),
        "model_signature": model_signature(sim),
        "simulation": {"seed": sim.seed, **sim.kernel_state()},
        "components": components,
        "queue": _encoded_queue(sim, encoder),
    }
    return body, encoder.tensors


def _component_state(component: Component, encoder: Encoder) -> dict:
    """One component's saved state: its and its subcomponents' attributes, links, clocks."""
    return {
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


def _encoded_queue(sim: Simulation, encoder: Encoder) -> list[dict]:
    queue = []
    for index, (entry, payload) in enumerate(_queue_entries(sim)):
        if entry["kind"] == "link":
            entry["payload"] = encoder.encode(payload, f"<queue>/{index}")
        queue.append(entry)
    return queue


# Part of a running simulation: a parallel run's share ----------------------------------
def capture_components(
    sim: Simulation, names: list[str], *, copy_tensors: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The state of components ``names`` and the whole queue, as the checkpoint walk saves them.

    What one process of a parallel run (``nnsim.parallel``) holds of the
    simulation: the components it runs and the entries queued for them.
    `restore_components` puts it into another process's simulation of the
    same model, while it runs. ``copy_tensors`` as for `capture`.
    """
    encoder = Encoder(copy_tensors=copy_tensors)
    components = {name: _component_state(sim.components[name], encoder) for name in names}
    return {"components": components, "queue": _encoded_queue(sim, encoder)}, encoder.tensors


def combine_shares(
    sim: Simulation, parts: list[dict], *, now: int, blockers: list[str]
) -> tuple[dict, list[dict[str, str]]]:
    """The manifest body of the whole simulation from every process's `capture_components`
    part (no tensor bytes needed), and for each part how to rename its tensors.

    What `capture` of the serial simulation at ``now`` gives, component for
    component and entry for entry: the queue is merged in queue order, and
    its tensors, which each part numbered as ``<queue>/<its index>``, are
    renamed ``<queue>/<index in the whole queue>`` (the returned maps, old ->
    new, only for names that change). ``sim`` gives the model graph and the
    kernel counters (``now`` and ``blockers`` are the whole run's).
    """
    ids = {end.path: end.id for c in sim.components.values() for end in c.links.values()}

    def key(entry: dict) -> tuple:
        if entry["kind"] == "link":
            source = ids[entry["source"]]
        elif entry["kind"] == "clock":
            source = sim.components[entry["component"]].clocks[entry["clock"]].id
        else:
            source = 0
        return (entry["time"], entry["priority"], source, entry["seq"])

    components: dict = {}
    tagged = []
    for rank, part in enumerate(parts):
        components.update(part["components"])
        tagged += [(key(entry), rank, index, entry) for index, entry in enumerate(part["queue"])]
    tagged.sort(key=lambda item: item[0])
    moves: list[dict[int, int]] = [{} for _ in parts]
    for position, (_, rank, index, _) in enumerate(tagged):
        if index != position:
            moves[rank][index] = position
    renames: list[dict[str, str]] = [{} for _ in parts]
    queue = []
    for _, rank, _, entry in tagged:
        if "payload" in entry and moves[rank]:
            entry = {**entry, "payload": _renamed(entry["payload"], moves[rank], renames[rank])}
        queue.append(entry)
    state = sim.kernel_state()
    state.update(now=max(state["now"], now), blockers=sorted(blockers))
    body = {
        "kind": SNAPSHOT_KIND,
        "simulated_time_ps": max(sim.now, now),
        "model": model_graph(sim),
        "model_signature": model_signature(sim),
        "simulation": {"seed": sim.seed, **state},
        "components": {name: components[name] for name in sim.components if name in components},
        "queue": queue,
    }
    return body, renames


_QUEUE_TENSOR = "<queue>/"


def _renamed(tree: Any, moves: dict[int, int], renames: dict[str, str]) -> Any:
    """``tree`` with its ``<queue>/<i>...`` tensor names moved to ``<queue>/<moves[i]>...``."""
    if isinstance(tree, list):
        return [_renamed(item, moves, renames) for item in tree]
    if not isinstance(tree, dict):
        return tree
    name = tree.get("__tensor__")
    if isinstance(name, str) and len(tree) == 1 and name.startswith(_QUEUE_TENSOR):
        index, slash, rest = name[len(_QUEUE_TENSOR) :].partition("/")
        if index.isdigit() and int(index) in moves:
            renames[name] = f"{_QUEUE_TENSOR}{moves[int(index)]}{slash}{rest}"
            return {"__tensor__": renames[name]}
        return tree
    return {key: _renamed(value, moves, renames) for key, value in tree.items()}


def restore_components(sim: Simulation, part: dict, tensors: dict[str, np.ndarray]) -> None:
    """Put a `capture_components` part into ``sim`` (running, of the same model), then
    call each restored element's ``restore`` so it rebuilds what was not saved."""
    elements = _elements(sim)
    decoder = Decoder(tensors, elements)
    body = {"components": part["components"]}
    restored = []
    for name, state in part["components"].items():
        component = sim.components[name]
        _check_fit(body, component, state)
        _restore_component(component, state, decoder, body, live=True)
        restored += [component, *component.subcomponents.values()]
    _requeue(sim, part["queue"], decoder)
    for element in restored:
        element.restore()


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
    else:
        differences = model_differences(sim, body)
        if differences:
            more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
            raise StateError(
                f"the model script builds the checkpoint's model differently: "
                f"{'; '.join(differences[:3])}{more}; restart without the script's arguments "
                "(nnsim run --load-checkpoint PATH), or change values with --set NAME=VALUE"
            )
    elements = _elements(sim)
    decoder = Decoder(tensors, elements)
    saved = body["simulation"]
    if saved["last_id"] != sim.kernel_state()["last_id"]:
        raise _misfit(body, "simulation/last_id", "the rebuilt model numbers its ports differently")
    for name, component in sim.components.items():
        state = body["components"][name]
        _check_fit(body, component, state)

    for name, component in sim.components.items():
        _restore_component(component, body["components"][name], decoder, body)

    sim.restore_kernel_state(saved)  # clocks come back from the queue, not their registration
    _requeue(sim, body["queue"], decoder)
    for path, text in (overrides or {}).items():
        set_value(sim, path, text)
    for element in elements.values():
        try:
            element.restore()
        except StateError as error:  # the element's own check of its restored state
            raise _misfit(body, f"components/{element.name}", str(error)) from None
    return sim


def _elements(sim: Simulation) -> dict[str, Element]:
    """Every component and subcomponent by its full name (what ``__ref__`` names)."""
    elements: dict[str, Element] = {}
    for component in sim.components.values():
        elements[component.name] = component
        for sub in component.subcomponents.values():
            elements[sub.name] = sub
    return elements


def _restore_component(
    component: Component, state: dict, decoder: Decoder, body: dict, *, live: bool = False
) -> None:
    """Put one component's saved state back: attributes, subcomponents, links, clocks.

    ``live``: the state comes from the same model running in another process,
    so an attribute may hold another kind of value than here (None, then an
    array); a checkpoint's must match the freshly built model's.
    """
    name = component.name
    _restore_element(
        component, state["state"], decoder, body, f"components/{name}/state", live=live
    )
    for slot, sub_state in state["subcomponents"].items():
        _restore_element(
            component.subcomponents[slot],
            sub_state,
            decoder,
            body,
            f"components/{name}/subcomponents/{slot}",
            live=live,
        )
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


def _misfit(body: dict, path: str, why: str) -> CheckpointError:
    name = body.get("name")
    which = f"checkpoint '{name}'" if isinstance(name, str) else "the snapshot"
    return CheckpointError(
        f"{which} does not fit the model it rebuilds ({path}: {why}); load another checkpoint"
    )


def _check_fit(body: dict, component: Component, state: dict) -> None:
    """The saved parts of ``component`` are exactly the rebuilt one's: slots, ports, clocks."""
    path = f"components/{component.name}"
    if set(state["subcomponents"]) != set(component.subcomponents):
        raise _misfit(body, f"{path}/subcomponents", "not the slots the model fills")
    if set(state["links"]) != set(component.links):
        raise _misfit(body, f"{path}/links", f"not the ports of {component.kind()}")
    if len(state["clocks"]) != len(component.clocks):
        raise _misfit(
            body,
            f"{path}/clocks",
            f"{len(state['clocks'])} saved, but {component.kind()} has {len(component.clocks)}",
        )


def _restore_element(
    element: Element, state: dict, decoder: Decoder, body: dict, path: str, *, live: bool = False
) -> None:
    """Put the saved attributes back: the rebuilt element's attributes, each of the same kind
    (any kind when ``live``: see `_restore_component`)."""
    built = state_items(element)
    for name in built:
        if name not in state:
            raise _misfit(body, f"{path}/{name}", f"missing (every {element.kind()} has it)")
    not_state = transient_names(type(element)) | KERNEL_ATTRIBUTES
    values = {}
    for name, value in state.items():
        if (
            not name.isidentifier()
            or name.startswith("_")
            or name in not_state
            or (name not in built and hasattr(type(element), name))
        ):
            raise _misfit(body, f"{path}/{name}", f"is not saved state of a {element.kind()}")
        try:
            restored = decoder.decode(value, f"{element.name}/{name}")
        except StateError as error:
            raise _misfit(body, f"{path}/{name}", str(error)) from None
        if not live and name in built and not same_kind(built[name], restored):
            raise _misfit(
                body,
                f"{path}/{name}",
                f"a {_kind(restored)} where a {element.kind()} keeps a {_kind(built[name])}",
            )
        values[name] = restored
    for name, restored in values.items():
        setattr(element, name, restored)


_NUMBERS = (int, float, np.integer, np.floating)


def same_kind(built: Any, restored: Any) -> bool:
    """May ``restored`` replace ``built``? Same kind of value; None (not yet set) takes any."""
    if built is None:
        return True
    if isinstance(built, bool | np.bool_):
        return isinstance(restored, bool | np.bool_)
    if isinstance(built, Enum):
        return type(restored) is type(built)
    if isinstance(built, int | np.integer):
        return isinstance(restored, int | np.integer) and not isinstance(restored, bool)
    if isinstance(built, float | np.floating):
        return isinstance(restored, _NUMBERS) and not isinstance(restored, bool | np.bool_)
    if isinstance(built, np.ndarray):
        return (
            isinstance(restored, np.ndarray)
            and restored.dtype == built.dtype
            and restored.ndim == built.ndim
        )
    if isinstance(built, Element):
        return isinstance(restored, type(built))
    if isinstance(built, np.random.Generator):
        return isinstance(restored, np.random.Generator)
    return type(restored) is type(built)


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name} array of {value.ndim} dimensions"
    return type(value).__name__


def _requeue(sim: Simulation, entries: list[dict], decoder: Decoder) -> None:
    """Put the saved entries back into the kernel's queue with their exact keys."""
    ends = {end.path: end for c in sim.components.values() for end in c.links.values()}
    for index, entry in enumerate(entries):
        kind, key = entry["kind"], (entry["time"], entry["priority"], entry["seq"])
        if kind == "link":
            payload = decoder.decode(entry["payload"], f"<queue>/{index}")
            sim.requeue(Pending(*key, "link", end=ends[entry["source"]], payload=payload))
        elif kind == "clock":
            clock = sim.components[entry["component"]].clocks[entry["clock"]]
            sim.requeue(Pending(*key, "clock", clock=clock))
        elif kind == "exit":
            sim.requeue(Pending(*key, "exit"))
        else:
            raise StateError(f"<queue>/{index}: unknown entry kind {kind!r}")
