"""What counts as an element's state: the one rule checkpoints, the console and diffs share.

An element's state is its attributes, except:
- names starting with ``_`` (caches the element rebuilds: bound links, progress bars),
- names in the class's ``transient`` declarations (datasets re-read on restart),
- the kernel's own bookkeeping (``sim``, ``name``, ``parent``, ``links``, ``clocks``,
  ``subcomponents``), which the snapshot saves in its own form.

Attributes inherited from base classes are included like any other: they are
instance attributes, whichever class set them.
"""

from __future__ import annotations

import functools
from typing import Any

from nnsim.sim import Element

KERNEL_ATTRIBUTES = frozenset({"sim", "name", "parent", "links", "clocks", "subcomponents"})


def transient_names(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(vars(klass).get("transient", ()))
    return frozenset(names)


def state_items(element: Element) -> dict[str, Any]:
    """The saved attributes of a component or subcomponent, in definition order."""
    skipped = transient_names(type(element)) | KERNEL_ATTRIBUTES
    return {
        name: value
        for name, value in vars(element).items()
        if not name.startswith("_") and name not in skipped
    }


def object_fields(value: Any) -> dict[str, Any]:
    """The fields of a registered record (dataclass with slots, or a plain object)."""
    slots = slot_names(type(value))
    if slots or not hasattr(value, "__dict__"):  # a slotted record, perhaps with no fields
        return {name: getattr(value, name) for name in slots if hasattr(value, name)}
    return {name: item for name, item in vars(value).items() if not name.startswith("_")}


@functools.cache
def slot_names(cls: type) -> tuple[str, ...]:
    """The ``__slots__`` of ``cls`` and its bases, base first (once per class: events
    crossing ranks are encoded every window)."""
    slots: list[str] = []
    for klass in reversed(cls.__mro__):
        declared = vars(klass).get("__slots__", ())
        slots.extend([declared] if isinstance(declared, str) else declared)
    return tuple(slots)
