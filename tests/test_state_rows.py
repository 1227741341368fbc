"""Records of plain values as JSON rows (`nnsim.state.rows`): exact, and refusing anything else."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from nnsim.dataflow.events import Burst, Credit, Frame
from nnsim.errors import StateError
from nnsim.sim import Event
from nnsim.state import Encoder
from nnsim.state.rows import RowDecoder, RowEncoder


@dataclass(slots=True)
class Labelled(Event):
    """An event with a string field: not a row, the checkpoint walk's."""

    label: str


def round_trip(events: list) -> list:
    encoder = Encoder()
    rows = RowEncoder(encoder)
    encoded = [rows.encode(event, f"<event {n}>") for n, event in enumerate(events)]
    assert all(row is not None for row in encoded)
    text = json.loads(json.dumps({"classes": rows.classes, "rows": encoded}))
    decoder = RowDecoder(text["classes"], "<events>", dict(encoder.tensors))
    return [decoder.decode(row, f"<event {n}>") for n, row in enumerate(text["rows"])]


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
    back = round_trip(events)
    assert [type(event) for event in back] == [Frame, Frame, Frame, Credit, Burst]
    assert back[0].data == 0.1 + 0.2 and back[1].data == tiny
    assert back[2].data.dtype == np.float32 and np.array_equal(back[2].data, image)
    assert back[3].window == 2**62
    assert back[4].data == [1 / 3, -0.0, math.inf, 1e308]
    assert math.copysign(1.0, back[4].data[1]) == -1.0
    assert back[0] == events[0] and back[4] == events[4]


def test_what_a_row_cannot_hold_is_left_to_the_checkpoint_walk():
    rows = RowEncoder(Encoder())
    assert rows.encode(Labelled("x"), "<event>") is None
    assert rows.encode(Burst(1, 2, 3, [1.0, "x"]), "<event>") is None
    assert rows.encode(Frame(1, 2, 3, 4, np.float32(1.0)), "<event>") is None  # numpy scalar


@pytest.mark.parametrize(
    ("classes", "row", "message"),
    [
        (["nnsim.dataflow.events:Credit"], [1, 2, 3], "must start with the index of its class"),
        (["nnsim.dataflow.events:Credit"], [], "must start with the index of its class"),
        (["nnsim.dataflow.events:Credit"], [0, 2], "holds 1 values, not 2"),
        (["nnsim.dataflow.events:Credit"], [0, 2, 1.5], "a float is not what a Credit holds"),
        (["nnsim.dataflow.events:Credit"], [0, True, 1], "a bool is not what a Credit holds"),
        (["nnsim.dataflow.events:Burst"], [0, 1, 2, 3, [1.0, "x"]], "a list is not what"),
        (["nnsim.dataflow.events:Frame"], [0, 1, 2, 3, 4, {"__tensor__": "x"}], "not an array"),
        (["os:system"], [0], "not a registered serializable type"),
        ([17], [0], "17 is not a class name"),
        ("nnsim.dataflow.events:Credit", [0], "table of record classes is not readable"),
    ],
)
def test_a_forged_row_is_refused_in_one_line(classes, row, message):
    with pytest.raises(StateError, match=message):
        RowDecoder(classes, "<events>", {}).decode(row, "<event 1/2>")


def test_a_row_may_not_smuggle_a_string_into_a_record():
    decoder = RowDecoder([f"{Labelled.__module__}:Labelled"], "<events>", {})
    with pytest.raises(StateError, match="a str is not what a Labelled holds"):
        decoder.decode([0, "rm -rf"], "<event 1/2>")
