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

**Traces** run where their component runs, as watchpoints do: each rank
samples the traces of its components at their handlers, and what a
trace's action prints (``printTrace``) becomes one of that rank's printed
lines, tagged with the event's key and merged on rank 0 in serial order
with the components' lines (`ParallelRun.lines`), so the output is the
serial console's. A trace's buffer travels with the run: rank 0 sends it
out with the watchpoints at every ``run``, the rank that samples it sends
it back at the next break, where ``printTrace`` and ``watchlist`` see it.
The actions that need more than one rank at one event are refused when
the trace is created, in one line: ``printStatus`` (every component's
status at that event), ``shutdown`` and ``checkpoint`` (an end or a
checkpoint at an event the other ranks may have passed); the
``interactive`` action and then the console's ``shutdown`` or
``checkpoint`` do that at the sync point.

**Shutdown and checkpoint.** At a break the whole state is on rank 0:
``shutdown`` ends the run there (complete, finish, statistics, the serial
lines) and the other ranks just send their reports and end.
``checkpoint [NAME]`` sends every rank its components back and each
writes its own tensor files, rank 0 the manifest — the checkpoint a
``--checkpoint-period`` one at that point would be, restartable on any
number of ranks (`ParallelRun.checkpoint_at_break`); the state is then
gathered to rank 0 again and the console goes on.
"""

from __future__ import annotations

from typing import Any

from nnsim.units import format_time

# Trace actions that need every rank at the event where the trace fires: why each is refused.
UNSHARED_ACTIONS = {
    "printStatus": "prints every component's status at the event where it fires, and in a "
    "parallel run the other ranks' components are elsewhere in time then; use printTrace",
    "shutdown": "would end the run at an event of one rank, which the other ranks may have "
    "passed; use the interactive action, then 'shutdown' at the console",
    "checkpoint": "would checkpoint at an event of one rank, which the other ranks may have "
    "passed; use the interactive action, then 'checkpoint' at the console",
}


class RunLines:
    """A console's output as lines the run prints (`Simulation.print`), for its ``echo``.

    While the windows run, a rank's printed lines are tagged with the key of
    the event that printed them and merged on rank 0 in serial order; what
    a trace's action prints then goes the same way.
    """

    def __init__(self, sim: Any):
        self.sim, self.pending = sim, ""

    def write(self, text: str) -> None:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.sim.print(line)

    def flush(self) -> None:
        pass


def drive(parallel: Any, start: int | None, replay: str | None) -> str:
    """Rank 0 at the first break of ``parallel`` (a `nnsim.parallel.run.ParallelRun`, which
    calls this): the console until the run has ended; return why it ended."""
    from nnsim.console.engine import ConsoleError
    from nnsim.console.session import ConsoleSession

    sim = parallel.sim
    session = ConsoleSession(sim)
    console = session.console
    reasons: list[str] = []

    def advance(until: int | None, to_the_end: bool) -> str:
        echo, console.echo = console.echo, RunLines(sim)  # a trace's lines in serial order
        try:
            reason = parallel.resume(until, watch_specs(console))
        finally:
            console.echo = echo
        take_traces(console, parallel.trace_states)
        if reason == "break":
            if parallel.break_cause is not None:
                console.entry_reason = entry_reason(console, parallel.break_cause, sim.now)
            return "paused"  # what sim.run says when `run TIME` has elapsed
        reasons.append(reason)
        parallel.gather(reason)  # the end, on every rank: finish runs here, the console says so
        return reason

    def end_run() -> None:
        parallel.shutdown_at_break()
        reasons.append("shutdown")

    def check(watchpoint: Any) -> None:
        components = set(watchpoint.components)
        action = watchpoint.action.split()
        if watchpoint.trace is not None and action[0] in UNSHARED_ACTIONS:
            raise ConsoleError(f"the trace action '{action[0]}' {UNSHARED_ACTIONS[action[0]]}")
        setting = watchpoint.trace is not None and action[0] == "set"
        if setting:
            components.add(console.place(action[1]).component)  # set where the trace fires
        ranks = {
            parallel.partition.assignment[name]
            for component in components
            for name in sim.components[component].watched_at()
        }
        if len(ranks) > 1:
            raise ConsoleError(
                f"the variables of '{watchpoint.trigger.describe()}'"
                f"{f' and its target {action[1]}' if setting else ''} are on ranks "
                f"{', '.join(map(str, sorted(ranks)))}; in a parallel run a watchpoint's "
                "variables must be on one rank"
            )

    console.advance = advance
    console.end_run = end_run
    console.write_checkpoint = parallel.checkpoint_at_break
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
    """The console's watchpoints and traces as plain data for the other ranks:
    [index, trigger (as `describe` writes it, with whole paths), handler points, trace],
    the trace None or its size, post delay, variables, action and buffer (`trace_state`)."""
    specs = []
    for index, watchpoint in sorted(console.watchpoints.items()):
        trace = watchpoint.trace
        if trace is not None:
            trace = {
                "size": trace.size,
                "post_delay": trace.post_delay,
                "variables": [variable.path for variable in trace.variables],
                "action": watchpoint.action,
                "state": trace_state(trace),
            }
        specs.append([index, watchpoint.trigger.describe(), sorted(watchpoint.points), trace])
    return specs


def arm(sim: Any, owned: set[str], specs: list, held: Any, previous: Any = None) -> Any:
    """This rank's watchpoints and traces: those of ``specs`` (`watch_specs`) on components
    it runs, checked at their handlers here; when one breaks into the console,
    ``held(index)``. What their actions print is printed as the run's lines (`RunLines`).
    Returns what holds them (a console of this rank's simulation), None when there are none."""
    from nnsim.console.commands.watchpoints import action_runner
    from nnsim.console.engine import Console
    from nnsim.console.triggers import parse_trigger
    from nnsim.console.watch import TraceBuffer, WatchPoint

    if previous is not None:
        previous.clear_watchpoints()  # armed afresh from rank 0's list at every resume
    if not specs:
        return None
    console = Console(sim, echo=RunLines(sim))
    console.break_at_sync = lambda watchpoint: held(watchpoint.index)
    for index, text, points, spec in specs:
        trigger = parse_trigger(text.split(), console.variable)
        trace, action, run = None, "interactive", console.enter_from_watchpoint
        if spec is not None:
            variables = [console.variable(path) for path in spec["variables"]]
            trace = TraceBuffer(spec["size"], spec["post_delay"], variables)
            restore_trace(trace, spec["state"])
            action = spec["action"]
            run = action_runner(console, action.split()[0], action.split())
        watchpoint = WatchPoint(index, trigger, action, run, points=set(points), trace=trace)
        if all(
            name in owned
            for component in watchpoint.components
            for name in sim.components[component].watched_at()
        ):
            console.watchpoints[index] = watchpoint
    console.hooks.update()
    return console


def trace_states(console: Any) -> dict[str, dict]:
    """The buffers of the traces ``console`` (`arm`'s) holds, by index, for rank 0."""
    if console is None:
        return {}
    return {
        str(index): trace_state(watchpoint.trace)
        for index, watchpoint in console.watchpoints.items()
        if watchpoint.trace is not None
    }


def take_traces(console: Any, states: dict[str, dict]) -> None:
    """Rank 0: the buffers the other ranks sent back put into its console's traces."""
    for index, state in states.items():
        watchpoint = console.watchpoints.get(int(index))
        if watchpoint is not None and watchpoint.trace is not None:
            restore_trace(watchpoint.trace, state)
    states.clear()


def trace_state(trace: Any) -> dict:
    """A trace's buffer as plain JSON (values through the state walk's encoder)."""
    from nnsim.state import Encoder

    encoder = Encoder()

    def sample(s: Any) -> list:
        values = [encoder.encode(value, "<trace sample>") for value in s.values]
        return [s.point, s.time, s.tag, values]

    samples = list(trace.samples)
    trigger = trace.triggered_at
    at = next((i for i, s in enumerate(samples) if s is trigger), None)
    capture = trace.last_capture
    return {
        "samples": [sample(s) for s in samples],
        "trigger_at": at,  # the trigger sample is one of the samples, or pushed out (overrun)
        "trigger": None if trigger is None or at is not None else sample(trigger),
        "remaining": trace.remaining,
        "fired": trace.fired,
        "keep_after_fire": trace.keep_after_fire,
        "overrun": trace.overrun,
        "last_capture": None
        if capture is None
        else [None if capture[0] is None else sample(capture[0]), [sample(s) for s in capture[1]]],
    }


def restore_trace(trace: Any, state: dict) -> None:
    """Put a buffer `trace_state` wrote into ``trace``."""
    from nnsim.console.watch import Sample
    from nnsim.state import Decoder

    decoder = Decoder({}, {})

    def sample(data: list) -> Any:
        point, time, tag, values = data
        return Sample(point, time, tag, [decoder.decode(v, "<trace sample>") for v in values])

    samples = [sample(data) for data in state["samples"]]
    trace.samples.clear()
    trace.samples.extend(samples)
    at, trigger = state["trigger_at"], state["trigger"]
    trace.triggered_at = samples[at] if at is not None else trigger and sample(trigger)
    trace.remaining, trace.fired = state["remaining"], state["fired"]
    trace.keep_after_fire, trace.overrun = state["keep_after_fire"], state["overrun"]
    capture = state["last_capture"]
    trace.last_capture = (
        None
        if capture is None
        else (capture[0] and sample(capture[0]), [sample(data) for data in capture[1]])
    )
