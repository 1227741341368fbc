"""The compiled event queue and sender behave exactly like the pure-Python ones."""

from __future__ import annotations

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


def test_the_normal_install_uses_the_compiled_queue():
    assert CEventQueue is not None, "the C event queue was not built"
    assert queue_module.EventQueue is CEventQueue or queue_module.EventQueue is PyEventQueue


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
    with pytest.raises(ValueError, match="past"):
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
