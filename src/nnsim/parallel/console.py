"""The console of a parallel run: entered at a sync point, driven from rank 0.

At ``--interactive-start`` (for ``--replay`` alone, at time 0), after a
console ``run TIME``, on Ctrl-C and when a watchpoint holds, every rank
stops at the same point and the whole state is gathered to rank 0, as for
a checkpoint. Rank 0 runs nnsim's console on it: ``ls``, ``cd``, ``print``
and ``set`` see and change every rank's components. ``run``, ``continue``
and ``exit`` send each rank its components back as the console left them
(`ParallelRun.resume`), with the watchpoints, and go on with the other
ranks; the end of input runs to the end, as serially.

**Where it stops.** ``--interactive-start`` and ``run TIME`` stop before
the first event at or after that time, as serially. Ctrl-C (``mpiexec``
passes it to every rank; one rank getting it is enough) and a watchpoint
stop at the end of the window in which they happened, the sync point
after it: no rank can stop inside a window, since each delivered its
window before it hears from the others. A watchpoint is checked on the
rank that runs its component (its variables must be on one rank), and
the console's reason names the time it held and the time it stopped at.

What needs a rank's handlers to report to rank 0 (``trace``) or another
way to end (``shutdown``, ``checkpoint``) is refused in one line for now.
"""

from __future__ import annotations

from typing import Any

from nnsim.units import format_time

REFUSED = {
    name: f"'{name}' is not available in parallel runs yet"
    for name in ("trace", "shutdown", "checkpoint")
}


def drive(parallel: Any, start: int | None, replay: str | None) -> str:
    """Rank 0 at the first break of ``parallel`` (a `nnsim.parallel.run.ParallelRun`, which
    calls this): the console until the run has ended; return why it ended."""
    from nnsim.console.engine import ConsoleError
    from nnsim.console.session import ConsoleSession

    sim = parallel.sim
    session = ConsoleSession(sim)
    console = session.console
    console.refused = REFUSED
    reasons: list[str] = []

    def advance(until: int | None, to_the_end: bool) -> str:
        reason = parallel.resume(until, watch_specs(console))
        if reason == "break":
            if parallel.break_cause is not None:
                console.entry_reason = entry_reason(console, parallel.break_cause, sim.now)
            return "paused"  # what sim.run says when `run TIME` has elapsed
        reasons.append(reason)
        parallel.gather(reason)  # the end, on every rank: finish runs here, the console says so
        return reason

    def check(watchpoint: Any) -> None:
        ranks = {
            parallel.partition.assignment[name]
            for component in watchpoint.components
            for name in sim.components[component].watched_at()
        }
        if len(ranks) > 1:
            raise ConsoleError(
                f"the variables of '{watchpoint.trigger.describe()}' are on ranks "
                f"{', '.join(map(str, sorted(ranks)))}; in a parallel run a watchpoint's "
                "variables must be on one rank"
            )

    console.advance = advance
    console.check_watchpoint = check
    console.break_at_sync = lambda watchpoint: parallel.watchpoint_held(watchpoint.index)
    if parallel.break_cause is not None:
        console.entry_reason = entry_reason(console, parallel.break_cause, sim.now)
    else:
        console.entry_reason = f"--interactive-start={format_time(start)}" if start else "start"
    console.emit(f"Entering interactive mode at time {sim.now}")
    console.emit(f"  reason: {console.entry_reason}")
    console.answers = session.lines()
    if replay is not None:
        console.execute(f"replay {replay}")
    while not (console.finished_session or reasons):
        line = next(session.lines(), None)
        if line is None:  # end of input: on to the end, as serially
            break
        console.execute(line)
    console.clear_watchpoints()
    while not reasons:
        advance(None, True)
    return reasons[-1]


def entry_reason(console: Any, cause: tuple, now: int) -> str:
    """The console's reason for a break that Ctrl-C or a watchpoint asked for."""
    if cause[0] == "interrupt":
        return "interrupted (Ctrl-C)"
    _, index, held = cause
    watchpoint = console.watchpoints.get(index)
    trigger = f" ({watchpoint.trigger.describe()})" if watchpoint is not None else ""
    return (
        f"watchpoint {index}{trigger} held at {held} ps; "
        f"stopped at the sync point after it, {now} ps"
    )


def watch_specs(console: Any) -> list[list]:
    """The console's ``interactive`` watchpoints as plain data for the other ranks:
    [index, trigger (as `describe` writes it, with whole paths), handler points]."""
    return [
        [index, watchpoint.trigger.describe(), sorted(watchpoint.points)]
        for index, watchpoint in sorted(console.watchpoints.items())
        if watchpoint.trace is None
    ]


def arm(sim: Any, owned: set[str], specs: list, held: Any, previous: Any = None) -> Any:
    """This rank's watchpoints: those of ``specs`` (`watch_specs`) on components it runs,
    checked at their handlers here; when one holds, ``held(index)``. Returns what holds
    them (a console of this rank's simulation, never read from), None when there are none."""
    from nnsim.console.engine import Console
    from nnsim.console.triggers import parse_trigger
    from nnsim.console.watch import WatchPoint

    if previous is not None:
        previous.clear_watchpoints()  # armed afresh from rank 0's list at every resume
    if not specs:
        return None
    console = Console(sim)
    for index, text, points in specs:
        trigger = parse_trigger(text.split(), console.variable)
        watchpoint = WatchPoint(
            index, trigger, "interactive", lambda wp: held(wp.index), points=set(points)
        )
        if all(
            name in owned
            for component in watchpoint.components
            for name in sim.components[component].watched_at()
        ):
            console.watchpoints[index] = watchpoint
    console.hooks.update()
    return console
