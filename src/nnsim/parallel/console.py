"""The console of a parallel run: entered at a sync point, driven from rank 0.

At ``--interactive-start`` (for ``--replay`` alone, at time 0) and after a
console ``run TIME``, every rank stops at the same point — before the first
event at or after that time, as a serial break does — and the whole state is
gathered to rank 0, as for a checkpoint. Rank 0 runs nnsim's console on it:
``ls``, ``cd``, ``print`` and ``set`` see and change every rank's
components. ``run``, ``continue`` and ``exit`` send each rank its components
back as the console left them (`ParallelRun.resume`) and go on with the
other ranks; the end of input runs to the end, as serially. What needs
handlers on another rank (``watch``, ``trace``) or another way to end
(``shutdown``, ``checkpoint``) is refused in one line for now.
"""

from __future__ import annotations

from typing import Any

from nnsim.units import format_time

REFUSED = {
    name: f"'{name}' is not available in parallel runs yet"
    for name in ("watch", "trace", "shutdown", "checkpoint")
}


def drive(parallel: Any, start: int | None, replay: str | None) -> str:
    """Rank 0 at the first break of ``parallel`` (a `nnsim.parallel.run.ParallelRun`, which
    calls this): the console until the run has ended; return why it ended."""
    from nnsim.console.session import ConsoleSession

    sim = parallel.sim
    session = ConsoleSession(sim)
    console = session.console
    console.refused = REFUSED
    reasons: list[str] = []

    def advance(until: int | None, to_the_end: bool) -> str:
        reason = parallel.resume(until)
        if reason == "break":
            return "paused"  # what sim.run says when `run TIME` has elapsed
        reasons.append(reason)
        parallel.gather(reason)  # the end, on every rank: finish runs here, the console says so
        return reason

    console.advance = advance
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
    while not reasons:
        advance(None, True)
    return reasons[-1]
