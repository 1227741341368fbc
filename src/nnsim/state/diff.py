"""What differs between two snapshots: scalars, tensors, and keys present on one side only.

Both sides are ``(body, tensors)`` as ``capture`` returns them or a checkpoint
holds them. The walk covers the simulated time, the kernel's own counters
(``<simulation>/...``) and every component's saved state, subcomponents
(``loss/optimizer/iterations``), clocks (``dense1/<clocks>/0/ticks``) and link
ends (``dense1/<links>/forward_out/sent``) — the same paths the console shows.
Values are compared as saved: enums by name, tensors by shape, dtype and
content (the largest absolute difference), generators by their exact state.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.errors import StateError
from nnsim.state.encode import TAGS

KINDS = ("changed", "added", "removed", "tensor")


@dataclass(frozen=True)
class Change:
    """One difference at ``path``; ``before``/``after`` are readable values (None if absent)."""

    path: str
    kind: str  # "changed", "added", "removed" or "tensor"
    before: Any = None
    after: Any = None
    max_abs_diff: float | None = None


def diff(
    a_body: dict,
    a_tensors: dict[str, np.ndarray],
    b_body: dict,
    b_tensors: dict[str, np.ndarray],
) -> list[Change]:
    """Every difference from snapshot A to snapshot B, in the order of A's model; [] if none."""
    walk = _Walk(a_tensors, b_tensors)
    walk.compare(
        "simulated_time_ps", a_body.get("simulated_time_ps"), b_body.get("simulated_time_ps")
    )
    if a_body.get("model_signature") != b_body.get("model_signature"):
        walk.changes.append(
            Change(
                "<model>",
                "changed",
                _short(a_body.get("model_signature")),
                _short(b_body.get("model_signature")),
            )
        )
    walk.compare("<simulation>", a_body.get("simulation", {}), b_body.get("simulation", {}))
    a_components, b_components = a_body.get("components", {}), b_body.get("components", {})
    for name in _union(_in_model_order(a_body), _in_model_order(b_body)):
        if name not in b_components:
            walk.changes.append(Change(name, "removed", before="component"))
        elif name not in a_components:
            walk.changes.append(Change(name, "added", after="component"))
        else:
            walk.component(name, a_components[name], b_components[name])
    return walk.changes


class _Walk:
    """Compares two encoded trees in step, resolving tensors through each side's table."""

    def __init__(self, a_tensors: dict[str, np.ndarray], b_tensors: dict[str, np.ndarray]):
        self.tensors = (a_tensors, b_tensors)
        self.changes: list[Change] = []

    def component(self, name: str, a: dict, b: dict) -> None:
        self.compare(name, a.get("state", {}), b.get("state", {}))
        self.compare(name, a.get("subcomponents", {}), b.get("subcomponents", {}))
        self.compare(f"{name}/<clocks>", a.get("clocks", []), b.get("clocks", []))
        self.compare(f"{name}/<links>", a.get("links", {}), b.get("links", {}))

    def compare(self, path: str, a: Any, b: Any) -> None:
        tag_a, tag_b = _tag(a), _tag(b)
        if tag_a == "__tensor__" or tag_b == "__tensor__":
            self._tensors(path, a, b)
        elif tag_a != tag_b or type(a) is not type(b) and not _both_numbers(a, b):
            self._changed(path, a, b)
        elif tag_a in ("__tuple__", "__object__", "__items__"):
            if tag_a == "__object__" and a["__object__"] != b["__object__"]:
                self._changed(path, a, b)
            elif tag_a == "__items__":
                self._mappings(path, _items(a), _items(b))
            else:
                body_a = a["fields"] if tag_a == "__object__" else a[tag_a]
                body_b = b["fields"] if tag_a == "__object__" else b[tag_a]
                self.compare(path, body_a, body_b)
        elif tag_a is not None:  # enums, numpy scalars, generators, references: compared whole
            if a != b:
                self._changed(path, a, b)
        elif isinstance(a, dict):
            self._mappings(path, a, b)
        elif isinstance(a, list):
            self._mappings(path, dict(enumerate(a)), dict(enumerate(b)))
        elif not _same_scalar(a, b):
            self._changed(path, a, b)

    def _mappings(self, path: str, a: dict, b: dict) -> None:
        for key in _union(a, b):
            child = f"{path}/{key}"
            if key not in b:
                self.changes.append(Change(child, "removed", before=self._show(a[key], 0)))
            elif key not in a:
                self.changes.append(Change(child, "added", after=self._show(b[key], 1)))
            else:
                self.compare(child, a[key], b[key])

    def _changed(self, path: str, a: Any, b: Any) -> None:
        self.changes.append(Change(path, "changed", self._show(a, 0), self._show(b, 1)))

    def _tensors(self, path: str, a: Any, b: Any) -> None:
        array_a, array_b = self._array(a, 0), self._array(b, 1)
        if array_a is None or array_b is None:  # a tensor on one side only (e.g. None -> array)
            self._changed(path, a, b)
            return
        shown_a, shown_b = describe_array(array_a), describe_array(array_b)
        if array_a.shape != array_b.shape or array_a.dtype != array_b.dtype:
            self.changes.append(Change(path, "tensor", shown_a, shown_b))
            return
        if np.array_equal(array_a, array_b, equal_nan=array_a.dtype.kind == "f"):
            return
        difference = np.abs(array_a.astype(np.float64) - array_b.astype(np.float64))
        largest = float(np.nanmax(difference)) if not np.isnan(difference).all() else math.nan
        if largest == 0.0:  # only NaNs moved
            largest = math.nan
        self.changes.append(Change(path, "tensor", shown_a, shown_b, largest))

    def _array(self, value: Any, side: int) -> np.ndarray | None:
        if _tag(value) != "__tensor__":
            return None
        name = value["__tensor__"]
        array = self.tensors[side].get(name)
        if array is None:
            raise StateError(f"tensor '{name}' is missing from snapshot {'AB'[side]}")
        return np.asarray(array)

    def _show(self, value: Any, side: int) -> Any:
        """A readable form of an encoded value: plain scalars as they are, the rest as text."""
        tag = _tag(value)
        if tag is None:
            if isinstance(value, dict):
                return f"{{{len(value)} keys}}"
            if isinstance(value, list):
                return f"[{len(value)} items]"
            return value
        if tag == "__tensor__":
            array = self.tensors[side].get(value["__tensor__"])
            return describe_array(np.asarray(array)) if array is not None else "tensor (missing)"
        if tag == "__enum__":
            return value["name"]
        if tag == "__np__":
            return value["value"]
        if tag == "__rng__":
            return f"{value['__rng__'].get('bit_generator', 'rng')} state #{_short(value)}"
        if tag == "__ref__":
            return f"-> {value['__ref__']}"
        if tag == "__object__":
            return value["__object__"].rpartition(":")[2]
        if tag == "__tuple__":
            return f"({len(value['__tuple__'])} items)"
        return f"{{{len(value['__items__'])} items}}"


def describe_array(array: np.ndarray) -> str:
    """``float32[784,128]``: an array's dtype and shape as ``inspect`` and diffs show them."""
    return f"{array.dtype.name}[{','.join(str(n) for n in array.shape)}]"


def format_diff(changes: list[Change]) -> str:
    """One aligned line per change: kind, path, then before -> after or the tensor difference."""
    if not changes:
        return ""
    width = min(max(len(change.path) for change in changes), 60)
    lines = []
    for change in changes:
        if change.kind == "added":
            detail = f"+ {_text(change.after)}"
        elif change.kind == "removed":
            detail = f"- {_text(change.before)}"
        elif change.kind == "tensor" and change.before == change.after:
            detail = f"{change.before}  max |a-b| = {change.max_abs_diff:.6g}"
        else:
            detail = f"{_text(change.before)} -> {_text(change.after)}"
        lines.append(f"{change.kind:<8} {change.path:<{width}}  {detail}")
    return "\n".join(lines)


def format_summary(changes: list[Change]) -> str:
    """Counts instead of values: one line per component (the path's first part), then a total.

    For a quick "did the weights move, and how far" between two checkpoints;
    the largest tensor difference of each component is shown.
    """
    if not changes:
        return ""

    def counted(members: list[Change]) -> list[str]:
        found = []
        for kind in KINDS:
            number = sum(change.kind == kind for change in members)
            if number:
                noun = kind if kind != "tensor" or number == 1 else "tensors"
                found.append(f"{number} {noun}")
        return found

    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.path.split("/", 1)[0], []).append(change)
    rows = []
    for group, members in groups.items():
        counts = counted(members)
        largest = [c.max_abs_diff for c in members if c.max_abs_diff is not None]
        if largest:
            counts.append(f"max |a-b| = {max(largest):.6g}")
        rows.append((group, ", ".join(counts)))
    width = max(len(group) for group, _ in rows)
    lines = [f"{group:<{width}}  {text}" for group, text in rows]
    lines.append(f"{len(changes)} differences: {', '.join(counted(changes))}")
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in value if key in TAGS), None)
    return None


def _items(value: dict) -> dict:
    return {json.dumps(key, sort_keys=True): item for key, item in value["__items__"]}


def _in_model_order(body: dict) -> dict:
    """The body's components in the model's order (a manifest may have sorted its keys)."""
    components = body.get("components", {})
    order = [spec["name"] for spec in body.get("model", {}).get("components", [])]
    return {name: None for name in [*order, *components] if name in components}


def _union(a: dict, b: dict) -> list:
    return list(a) + [key for key in b if key not in a]


def _both_numbers(a: Any, b: Any) -> bool:
    """An int and a float are the same kind of value here (JSON may write 2.0 as 2)."""
    return all(type(x) in (int, float) for x in (a, b))


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _short(value: Any) -> str:
    """The first 12 hex digits of a hash (or of the SHA-256 of a saved value)."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value[:12]
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
