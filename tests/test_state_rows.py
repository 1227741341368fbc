"""The events of one message between ranks (`nnsim.state.rows`): exact, and refusing forgeries."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from nnsim.dataflow.events import Burst, Credit, Frame
from nnsim.errors import StateError
from nnsim.sim import Event
from nnsim.state import Decoder, Encoder
from nnsim.state.rows import RecordReader, RecordWriter


@dataclass(slots=True)
class Labelled(Event):
    """An event with a string field: not a row, the checkpoint walk's."""

    label: str


def written(values: list) -> tuple[dict, dict]:
    """The message's JSON part (through JSON text, as it travels) and its tensors."""
    encoder = Encoder()
    writer = RecordWriter(encoder)
    for n, value in enumerate(values):
        writer.write(value, f"<event {n}>")
    return json.loads(json.dumps(writer.tree())), dict(encoder.tensors)


def read(tree: dict, tensors: dict) -> list:
    return RecordReader(tree, tensors, Decoder(tensors, {}), "<events>").read()


def test_records_of_numbers_lists_and_arrays_come_back_bit_for_bit():
    image = np.random.default_rng(0).standard_normal(7).astype(np.float32)
    tiny = 5e-324
    events = [
        Frame(3, 17, -1, 2, 0.1 + 0.2),
        Frame(4, 18, 5, 2, tiny),
        Frame(0, 0, 1, 0, image),
        Credit(1, 2**62),
        Burst(9, 40, 1, [1 / 3, -0.0, math.inf, 1e308]),
    ]
    tree, tensors = written(events)
    assert all(type(row) is list for row in tree["values"])  # every one a row
    back = read(tree, tensors)
    assert [type(event) for event in back] == [Frame, Frame, Frame, Credit, Burst]
    assert back[0].data == 0.1 + 0.2 and back[1].data == tiny
    assert back[2].data.dtype == np.float32 and np.array_equal(back[2].data, image)
    assert back[3].window == 2**62
    assert back[4].data == [1 / 3, -0.0, math.inf, 1e308]
    assert math.copysign(1.0, back[4].data[1]) == -1.0
    assert back[0] == events[0] and back[4] == events[4]


def test_one_object_sent_twice_is_written_once_and_comes_back_as_one():
    """A frame multicast to two receivers on one rank is one object there, as serially."""
    frame, credit = Frame(3, 17, -1, 2, np.arange(4.0)), Credit(1, 2)
    tree, tensors = written([frame, credit, frame, frame])
    assert tree["values"][2:] == [{"same": 0}, {"same": 0}]
    back = read(tree, tensors)
    assert back[0] is back[2] is back[3] and back[0] is not back[1]
    assert np.array_equal(back[2].data, frame.data)


def test_what_a_row_cannot_hold_goes_through_the_checkpoint_walk():
    values = [Labelled("x"), Burst(1, 2, 3, [1.0, 2]), Frame(1, 2, 3, 4, np.float32(1.5)), [1, 2]]
    tree, tensors = written(values)
    assert all(set(item) == {"walked"} for item in tree["values"])
    back = read(tree, tensors)
    assert back[0] == Labelled("x") and back[1].data == [1.0, 2] and back[3] == [1, 2]
    assert type(back[2].data) is np.float32 and back[2].data == np.float32(1.5)


CREDIT = "nnsim.dataflow.events:Credit"


@pytest.mark.parametrize(
    ("classes", "values", "message"),
    [
        ([CREDIT], [[1, 2, 3]], "must start with the index of its class"),
        ([CREDIT], [[]], "must start with the index of its class"),
        ([CREDIT], [[0, 2]], "holds 1 values, not 2"),
        ([CREDIT], [[0, 2, 1.5]], "a float is not what a Credit holds"),
        ([CREDIT], [[0, True, 1]], "a bool is not what a Credit holds"),
        (["nnsim.dataflow.events:Burst"], [[0, 1, 2, 3, [1.0, "x"]]], "a list of other than"),
        (["nnsim.dataflow.events:Frame"], [[0, 1, 2, 3, 4, {"__tensor__": "x"}]], "not an array"),
        ([CREDIT], [{"same": 0}], "repeats a value that is not before it"),
        ([CREDIT], [{"same": -1}], "repeats a value that is not before it"),
        ([CREDIT], ["rm -rf"], "not a row, a repeat or a walked value"),
        (["os:system"], [], "not a registered serializable type"),
        ([17], [], "17 is not a class name"),
        (CREDIT, [], "values are not readable"),
    ],
)
def test_a_forged_message_is_refused_in_one_line(classes, values, message):
    with pytest.raises(StateError, match=message):
        read({"classes": classes, "values": values}, {})


def test_a_row_may_not_smuggle_a_string_into_a_record():
    tree = {"classes": [f"{Labelled.__module__}:Labelled"], "values": [[0, "rm -rf"]]}
    with pytest.raises(StateError, match="a str is not what a Labelled holds"):
        read(tree, {})
