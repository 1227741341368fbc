"""Views: state kept in one place, shown in the object map in the shape people look for.

A dataflow model keeps each layer's neurons vectorized (one array per
quantity, on the node that computes them), yet a person looks for one
neuron at ``dense1/n5``. An element lists such views in ``views()``; the
console's object map shows them next to its attributes and walks into them
like objects (``ls dense1/n5``, ``print dense1/n5/sum``, ``set
dense1/n5/bias 0.5``). A view holds no state of its own: the checkpoint and
``checkpoint diff`` walk the attributes only (DESIGN.md rules 1-2), so every
value is saved exactly once, where it lives, and a view reads it live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Writer = Callable[[Any], None]


class StateView:
    """A named window onto state held elsewhere; subclasses say what it shows.

    ``fields()`` returns ``{name: (value, writer)}``: the value read now, and
    a function that writes a new value back where it lives (None: read-only).
    Array values may be numpy views, so that ``set view/weights[3] 0.1``
    writes into the array that is saved.
    """

    kind = "view"

    def fields(self) -> dict[str, tuple[Any, Writer | None]]:
        raise NotImplementedError
