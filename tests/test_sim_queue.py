"""The compiled event queue and sender behave exactly like the pure-Python ones.

Every error path too: each case below runs against both implementations and
must raise the same exception with the same message (for wrong call
signatures, the same type: Python's message names the class) and leave the
same state behind.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.sim import queue as queue_module
from nnsim.sim.queue import PyEventQueue, PySender

try:
    from nnsim.sim._cqueue import EventQueue as CEventQueue
    from nnsim.sim._cqueue import Sender as CSender
except ImportError:  # pragma: no cover - the build always compiles it here
    CEventQueue = CSender = None

IMPLEMENTATIONS = [pytest.param((PyEventQueue, PySender), id="python")]
if CEventQueue is not None:
    IMPLEMENTATIONS.append(pytest.param((CEventQueue, CSender), id="compiled"))

entries = st.lists(
    st.tuples(
        st.integers(0, 50),  # time
        st.sampled_from([0, 40, 50, 100]),  # priority
        st.integers(0, 5),  # source
        st.integers(0, 10**6),  # seq
    ),
    unique_by=lambda entry: entry[1:],
    max_size=60,
)


def test_the_normal_install_uses_the_compiled_queue_and_the_variable_forces_python():
    if os.environ.get("NNSIM_PURE_PYTHON"):
        assert (queue_module.EventQueue, queue_module.Sender) == (PyEventQueue, PySender)
    else:
        assert CEventQueue is not None, "the C event queue was not built"
        assert (queue_module.EventQueue, queue_module.Sender) == (CEventQueue, CSender)


@settings(max_examples=200, deadline=None)
@given(entries)
def test_both_queues_pop_in_the_same_total_order(keys):
    orders = []
    for queue_class in (PyEventQueue, CEventQueue or PyEventQueue):
        queue = queue_class()
        for index, (time, priority, source, seq) in enumerate(keys):
            queue.push_at(time, priority, source, seq, print, index)
        orders.append([queue.pop()[5] for _ in range(len(queue))])
    assert orders[0] == orders[1]
    assert orders[0] == [index for _, index in sorted(zip(keys, range(len(keys)), strict=True))]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_run_calls_targets_in_order_and_sets_now(implementation):
    queue_class, _ = implementation
    queue = queue_class()
    seen = []
    queue.push_at(30, 50, 1, 1, lambda payload: seen.append((queue.now, payload)), "late")
    queue.push_at(10, 50, 1, 2, lambda payload: seen.append((queue.now, payload)), "early")
    queue.push_at(10, 40, 9, 1, lambda payload: seen.append((queue.now, payload)), "clock first")
    queue.run()
    assert seen == [(10, "clock first"), (10, "early"), (30, "late")]
    assert len(queue) == 0 and queue.now == 30


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_target_that_raises_stops_the_run_and_keeps_the_rest(implementation):
    queue_class, _ = implementation
    queue = queue_class()

    def boom(_):
        raise KeyError("stop")

    queue.push_at(1, 0, 0, 1, boom, None)
    queue.push_at(2, 0, 0, 2, print, None)
    with pytest.raises(KeyError):
        queue.run()
    assert len(queue) == 1 and queue.now == 1


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_events_cannot_be_scheduled_in_the_past(implementation):
    queue_class, sender_class = implementation
    queue = queue_class()
    queue.now = 100
    with pytest.raises(ValueError, match="before now"):
        queue.push_at(99, 0, 0, 1, print, None)
    with pytest.raises(ValueError, match="negative delay"):
        queue.push(-1, 0, 0, 1, print, None)
    with pytest.raises(ValueError, match="negative"):
        sender_class(queue, 1, 50, 10, print)("event", -5)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_remove_target_and_entries(implementation):
    queue_class, _ = implementation
    queue = queue_class()
    marker = object()
    queue.push_at(5, 0, 0, 1, marker, None)
    queue.push_at(3, 0, 0, 2, print, "a")
    queue.push_at(7, 0, 0, 3, marker, None)
    assert queue.remove_target(marker) == 2
    assert [entry[5] for entry in queue.entries()] == ["a"]
    queue.clear()
    assert len(queue) == 0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sender_numbers_events_and_adds_latency_and_delay(implementation):
    queue_class, sender_class = implementation
    queue = queue_class()
    queue.now = 1000
    send = sender_class(queue, 7, 50, 250, print)
    send("first")
    send("second", 5)
    send("third", delay=10)
    assert send.sent == 3
    assert sorted(entry[:4] + (entry[5],) for entry in queue.entries()) == [
        (1250, 50, 7, 1, "first"),
        (1255, 50, 7, 2, "second"),
        (1260, 50, 7, 3, "third"),
    ]
    send.latency = 1
    send("fourth")
    assert max(entry[0] for entry in queue.entries()) == 1260
    assert (1001, 50, 7, 4) in [entry[:4] for entry in queue.entries()]


# Error cases: each takes (queue class, sender class) and does what a caller might.
def _queue_at(queue_class, now):
    queue = queue_class()
    queue.now = now
    return queue


def _twins(queue_class, how):
    """Two entries with the key (5, 0, 1, 1) behind an earlier one; ``how`` takes them out."""
    queue, seen = queue_class(), []
    queue.push_at(1, 0, 1, 9, seen.append, "first")
    queue.push_at(5, 0, 1, 1, seen.append, "twin a")
    queue.push(5, 0, 1, 1, seen.append, "twin b")
    queue.push_at(7, 0, 1, 2, seen.append, "after")
    try:
        how(queue)
    finally:
        # what is left afterwards must be the same too
        seen.append((queue.now, queue.delivered, [entry[5] for entry in queue.entries()]))
        _twins.seen = seen


def _run_twins(queue):
    queue.run()


def _pop_twins(queue):
    while len(queue):
        queue.pop()


def _sender(queue_class, sender_class, latency=10):
    return sender_class(queue_class(), 3, 50, latency, print)


def _failing_send(queue_class, sender_class, *args):
    send = _sender(queue_class, sender_class)
    try:
        send("event", *args)
    finally:
        _failing_send.sent = (send.sent, len(send.queue))


VALUE_ERRORS = {
    "push: float delay": lambda Q, S: Q().push(1.5, 0, 0, 1, print, None),
    "push: str delay": lambda Q, S: Q().push("1", 0, 0, 1, print, None),
    "push: None priority": lambda Q, S: Q().push(1, None, 0, 1, print, None),
    "push: float source": lambda Q, S: Q().push(1, 0, 2.0, 1, print, None),
    "push: float seq": lambda Q, S: Q().push(1, 0, 0, 0.5, print, None),
    "push_at: float time": lambda Q, S: Q().push_at(2.5, 0, 0, 1, print, None),
    "push: delay of 2**63": lambda Q, S: Q().push(2**63, 0, 0, 1, print, None),
    "push: delay below -2**63": lambda Q, S: Q().push(-(2**63) - 1, 0, 0, 1, print, None),
    "push: seq of 2**64": lambda Q, S: Q().push(0, 0, 0, 2**64, print, None),
    "push_at: time of 2**63": lambda Q, S: Q().push_at(2**63, 0, 0, 1, print, None),
    "push: negative delay": lambda Q, S: Q().push(-5, 0, 0, 1, print, None),
    "push: most negative delay": lambda Q, S: Q().push(-(2**63), 0, 0, 1, print, None),
    "push_at: before now": lambda Q, S: _queue_at(Q, 100).push_at(99, 0, 0, 1, print, None),
    "push: past the last time": lambda Q, S: _queue_at(Q, 2**62).push(2**62, 0, 0, 1, print, 0),
    "pop: empty": lambda Q, S: Q().pop(),
    "run: duplicate key": lambda Q, S: _twins(Q, _run_twins),
    "pop: duplicate key": lambda Q, S: _twins(Q, _pop_twins),
    "now = 1.5": lambda Q, S: setattr(Q(), "now", 1.5),
    "now = -1": lambda Q, S: setattr(Q(), "now", -1),
    "now = 2**63": lambda Q, S: setattr(Q(), "now", 2**63),
    "del now": lambda Q, S: delattr(Q(), "now"),
    "delivered = 'x'": lambda Q, S: setattr(Q(), "delivered", "x"),
    "Sender: queue is a list": lambda Q, S: S([], 3, 50, 10, print),
    "Sender: float latency": lambda Q, S: S(Q(), 3, 50, 1.0, print),
    "Sender: negative latency": lambda Q, S: S(Q(), 3, 50, -1, print),
    "Sender: source of 2**63": lambda Q, S: S(Q(), 2**63, 50, 1, print),
    "send: float delay": lambda Q, S: _failing_send(Q, S, 0.5),
    "send: str delay": lambda Q, S: _failing_send(Q, S, "5"),
    "send: negative delay": lambda Q, S: _failing_send(Q, S, -5),
    "send: past the last time": lambda Q, S: _failing_send(Q, S, 2**63 - 5),
    "sender.latency = -3": lambda Q, S: setattr(_sender(Q, S), "latency", -3),
    "sender.latency = 2.0": lambda Q, S: setattr(_sender(Q, S), "latency", 2.0),
    "sender.sent = None": lambda Q, S: setattr(_sender(Q, S), "sent", None),
    "sender.source = 2**64": lambda Q, S: setattr(_sender(Q, S), "source", 2**64),
    "send: latency past the last time": lambda Q, S: S(_queue_at(Q, 1), 3, 50, 2**63 - 1, print)(0),
}

SIGNATURE_ERRORS = {
    "push: five arguments": lambda Q, S: Q().push(1, 0, 0, 1, print),
    "push_at: seven arguments": lambda Q, S: Q().push_at(1, 0, 0, 1, print, None, None),
    "push: a keyword": lambda Q, S: Q().push(1, 0, 0, 1, print, payload=None),
    "replace_target: one argument": lambda Q, S: Q().replace_target(print),
    "remove_target: no argument": lambda Q, S: Q().remove_target(),
    "send: no event": lambda Q, S: _sender(Q, S)(),
    "send: three arguments": lambda Q, S: _sender(Q, S)("event", 1, 2),
    "send: event as a keyword": lambda Q, S: _sender(Q, S)(event="event"),
    "send: an unknown keyword": lambda Q, S: _sender(Q, S)("event", later=1),
    "sender.queue = ...": lambda Q, S: setattr(_sender(Q, S), "queue", Q()),
}


def _outcome(case, implementation):
    _twins.seen = _failing_send.sent = None
    try:
        case(*implementation)
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error), str(error), _twins.seen, _failing_send.sent
    return None, None, _twins.seen, _failing_send.sent


@pytest.mark.skipif(CEventQueue is None, reason="the C event queue was not built")
@pytest.mark.parametrize("case", VALUE_ERRORS.values(), ids=VALUE_ERRORS.keys())
def test_both_queues_raise_the_same_error_with_the_same_message(case):
    python = _outcome(case, (PyEventQueue, PySender))
    compiled = _outcome(case, (CEventQueue, CSender))
    assert python[0] is not None, "the case raised nothing"
    assert python == compiled


@pytest.mark.skipif(CEventQueue is None, reason="the C event queue was not built")
@pytest.mark.parametrize("case", SIGNATURE_ERRORS.values(), ids=SIGNATURE_ERRORS.keys())
def test_both_queues_refuse_the_same_wrong_calls(case):
    python = _outcome(case, (PyEventQueue, PySender))
    compiled = _outcome(case, (CEventQueue, CSender))
    assert python[0] is not None and python[0] is compiled[0]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_duplicate_key_is_refused_when_due_and_neither_twin_runs(implementation):
    queue_class, _ = implementation
    with pytest.raises(ValueError) as raised:
        _twins(queue_class, _run_twins)
    assert str(raised.value) == (
        "two events share the key (time 5 ps, priority 0, source 1, seq 1); "
        "each event's (time, priority, source, seq) must be unique"
    )
    assert _twins.seen == ["first", (1, 1, ["twin a", "twin b", "after"])]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_failed_send_numbers_nothing_and_queues_nothing(implementation):
    with pytest.raises(ValueError, match="negative delay"):
        _failing_send(*implementation, -1)
    assert _failing_send.sent == (0, 0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_integer_like_arguments_come_back_as_plain_ints(implementation):
    queue_class, sender_class = implementation
    queue = queue_class()
    queue.now = np.int64(10)
    queue.push(np.int32(5), True, np.uint8(2), np.int64(7), print, "a")
    sender_class(queue, np.int64(4), 50, np.int16(3), print)("b", np.int64(1))
    entries = queue.entries()
    assert entries == [(14, 50, 4, 1, print, "b"), (15, 1, 2, 7, print, "a")]
    assert {type(value) for entry in entries for value in entry[:4]} == {int}
    assert type(queue.now) is int and type(queue.pop()[0]) is int


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6), st.sampled_from([0, 40]), st.integers(0, 2), st.integers(0, 3)
        ),
        max_size=30,
    )
)
def test_both_queues_deliver_the_same_and_stop_at_the_same_duplicate(keys):
    """Keys drawn from a small space, so duplicates are common."""
    outcomes = []
    for queue_class in (PyEventQueue, CEventQueue or PyEventQueue):
        queue, seen = queue_class(), []
        for index, (time, priority, source, seq) in enumerate(keys):
            queue.push_at(time, priority, source, seq, seen.append, index)
        try:
            queue.run()
            error = None
        except ValueError as raised:
            error = str(raised)
        left = sorted(entry[:4] + (entry[5],) for entry in queue.entries())
        outcomes.append((seen, error, queue.now, queue.delivered, left))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0][1] is None) == (len(set(keys)) == len(keys))


@settings(max_examples=60, deadline=None)
@given(keys=entries, end=st.tuples(st.integers(0, 55), st.sampled_from([0, 40, 50, 100, 101])))
def test_both_queues_run_before_the_same_point_and_report_the_same_keys(keys, end):
    """``run_before(time, priority)`` delivers exactly the entries below the pair; ``key``
    is the delivered entry's, ``first_key`` the next one's (what a parallel window needs)."""
    results = []
    for queue_class, _ in (param.values[0] for param in IMPLEMENTATIONS):
        queue, seen = queue_class(), []
        for key in keys:
            queue.push_at(*key, lambda _key, q=queue, s=seen: s.append(q.key), key)
        assert queue.first_key() == (min(keys) if keys else None)
        queue.run_before(*end)
        assert seen == sorted(key for key in keys if key[:2] < end)
        results.append((seen, queue.first_key(), [entry[:4] for entry in queue.entries()]))
    assert all(result == results[0] for result in results)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_run_before_refuses_what_push_at_refuses(implementation):
    queue_class, _ = implementation
    queue = queue_class()
    with pytest.raises(TypeError):
        queue.run_before(1.5, 0)
    with pytest.raises(OverflowError):
        queue.run_before(2**64, 0)
    with pytest.raises(TypeError):
        queue.run_before(1)
