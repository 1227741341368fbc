"""Handler hooks: the one way for tools to see a component's handlers run.

A tool (the console's watchpoints, the event tracer, a user's own probe)
subclasses `HandlerHook` and adds it to a component with
``sim.hooks.add(component, hook)``. While a component has hooks, its clock
handlers and the handlers of its connected ports — in the link senders and
in the events already queued — are wrapped once, by a dispatcher that calls
every hook before and after the handler. When its last hook is removed, the
original handlers are back: a component nobody observes runs the plain
kernel (DESIGN.md rule 5), and so does a whole simulation without hooks.

Hooks run in the order they were added; ``before_*`` hooks see the state
the handler will see, ``after_*`` hooks the state it left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnsim.sim.component import Component
    from nnsim.sim.simulation import Simulation


class HandlerHook:
    """Override the calls you need; each gets the component and where the handler is.

    ``clock`` is the index of the clock in ``component.clocks``; ``port`` is
    the name of the port the event arrived on.
    """

    def before_clock(self, component: Component, clock: int, cycle: int) -> None:
        pass

    def after_clock(self, component: Component, clock: int, cycle: int) -> None:
        pass

    def before_event(self, component: Component, port: str, event: Any) -> None:
        pass

    def after_event(self, component: Component, port: str, event: Any) -> None:
        pass


class HandlerHooks:
    """The hooks of one simulation, per component (``sim.hooks``)."""

    def __init__(self, sim: Simulation):
        self._sim = sim
        self._hooks: dict[str, list[HandlerHook]] = {}
        # Per component: (owner, attribute, original, wrapper) of every wrapped handler.
        self._wrapped: dict[str, list[tuple[Any, str, Any, Any]]] = {}

    def add(self, component: Component, hook: HandlerHook) -> None:
        """Call ``hook`` around every handler of ``component`` from now on."""
        hooks = self._hooks.setdefault(component.name, [])
        if any(existing is hook for existing in hooks):
            return
        hooks.append(hook)
        if component.name not in self._wrapped:
            self._wrap(component, hooks)

    def remove(self, component: Component, hook: HandlerHook) -> None:
        """Stop calling ``hook`` for ``component``; unwrap its handlers when none are left."""
        hooks = self._hooks.get(component.name, [])
        hooks[:] = [existing for existing in hooks if existing is not hook]
        if not hooks:
            self._hooks.pop(component.name, None)
            self._unwrap(component.name)

    def remove_everywhere(self, hook: HandlerHook) -> None:
        """Remove ``hook`` from every component it observes."""
        for name in list(self._hooks):
            self.remove(self._sim.components[name], hook)

    def observed(self) -> list[str]:
        """Names of the components that have hooks now."""
        return list(self._hooks)

    def of(self, component: Component) -> tuple[HandlerHook, ...]:
        return tuple(self._hooks.get(component.name, ()))

    # Wrapping -------------------------------------------------------------------------
    def _wrap(self, component: Component, hooks: list[HandlerHook]) -> None:
        queue = self._sim._queue
        undo: list[tuple[Any, str, Any, Any]] = []
        for index, clock in enumerate(component.clocks):
            original = clock._handler

            def clocked(cycle: int, _original=original, _index=index) -> Any:
                for hook in tuple(hooks):
                    hook.before_clock(component, _index, cycle)
                result = _original(cycle)
                for hook in tuple(hooks):
                    hook.after_clock(component, _index, cycle)
                return result

            clock._handler = clocked
            undo.append((clock, "_handler", original, clocked))
        for port, end in component.links.items():
            peer = end.peer
            if peer is None or end.handler_name is None:
                continue
            original = peer.send.target

            def handled(event: Any, _original=original, _port=port) -> None:
                for hook in tuple(hooks):
                    hook.before_event(component, _port, event)
                _original(event)
                for hook in tuple(hooks):
                    hook.after_event(component, _port, event)

            # So that `-vv` and the console still name the handler (``dense1.on_event``).
            handled.__self__ = getattr(original, "__self__", original)
            handled.__name__ = getattr(original, "__name__", "handled")
            peer.send.target = handled
            queue.replace_target(original, handled)  # events already in flight too
            undo.append((peer.send, "target", original, handled))
        self._wrapped[component.name] = undo

    def _unwrap(self, name: str) -> None:
        queue = self._sim._queue
        for owner, attribute, original, wrapper in reversed(self._wrapped.pop(name, [])):
            setattr(owner, attribute, original)
            if attribute == "target":
                queue.replace_target(wrapper, original)
