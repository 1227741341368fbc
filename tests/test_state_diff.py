"""`nnsim.state.diff`: what changed between two snapshots, readable, aligned."""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nnsim import nn
from nnsim.sim import Simulation
from nnsim.state import capture
from nnsim.state.diff import Change, diff, format_diff


def build(dataset: Path) -> Simulation:
    sim = Simulation(seed=3, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(8), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=2,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim)
    return sim


def snapshot(sim: Simulation) -> tuple[dict, dict]:
    """As a checkpoint holds it: JSON text and copies of the arrays."""
    body, tensors = capture(sim, copy_tensors=True)
    return json.loads(json.dumps(body)), tensors


@pytest.fixture
def two_snapshots(toy_dataset):
    sim = build(toy_dataset)
    sim.run(until="60us")
    first = snapshot(sim)
    sim.run(until="200us")
    return first, snapshot(sim)


def by_path(changes: list[Change]) -> dict[str, Change]:
    return {change.path: change for change in changes}


def test_identical_snapshots_have_no_differences(two_snapshots):
    (body, tensors), _ = two_snapshots
    assert diff(body, tensors, copy.deepcopy(body), {k: v.copy() for k, v in tensors.items()}) == []
    assert format_diff([]) == ""


def test_a_longer_run_changes_time_counters_enums_and_weights(two_snapshots):
    (a_body, a_tensors), (b_body, b_tensors) = two_snapshots
    changes = by_path(diff(a_body, a_tensors, b_body, b_tensors))

    assert changes["simulated_time_ps"] == Change(
        "simulated_time_ps", "changed", 60_000_000, 200_000_000
    )
    assert changes["<simulation>/now"].after == 200_000_000
    assert changes["controller/stats/training_steps"].kind == "changed"
    assert changes["loss/optimizer/iterations"].before < changes["loss/optimizer/iterations"].after
    assert changes["dense1/<clocks>/0/ticks"].kind == "changed"
    assert changes["dense1/<links>/forward_out/sent"].kind == "changed"

    weights = changes["dense1/weights"]
    expected = np.abs(
        a_tensors["dense1/weights"].astype(np.float64) - b_tensors["dense1/weights"]
    ).max()
    assert weights.kind == "tensor"
    assert weights.before == weights.after == "float32[784,8]"
    assert weights.max_abs_diff == pytest.approx(expected) and weights.max_abs_diff > 0


def test_scalars_enums_and_generators_are_shown_readably():
    a = {"components": {"c": {"state": {"state": {"__enum__": "m:State", "name": "TRAINING"}}}}}
    b = copy.deepcopy(a)
    b["components"]["c"]["state"]["state"]["name"] = "VALIDATION"
    a["components"]["c"]["state"]["lr"] = {"__np__": "<f4", "value": 0.5}
    b["components"]["c"]["state"]["lr"] = {"__np__": "<f4", "value": 0.25}
    rng = {"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}}
    a["components"]["c"]["state"]["rng"] = {"__rng__": rng}
    b["components"]["c"]["state"]["rng"] = {"__rng__": dict(rng, state={"state": 2, "inc": 3})}

    changes = by_path(diff(a, {}, b, {}))

    assert (changes["c/state"].before, changes["c/state"].after) == ("TRAINING", "VALIDATION")
    assert (changes["c/lr"].before, changes["c/lr"].after) == (0.5, 0.25)
    assert changes["c/rng"].before.startswith("PCG64 state #")
    assert changes["c/rng"].before != changes["c/rng"].after


def test_an_int_written_as_a_float_is_not_a_change_but_a_bool_is():
    a = {"components": {"c": {"state": {"x": 2, "flag": 1}}}}
    b = {"components": {"c": {"state": {"x": 2.0, "flag": True}}}}
    assert [change.path for change in diff(a, {}, b, {})] == ["c/flag"]


def test_tensors_of_other_shapes_report_both_shapes_and_equal_tensors_nothing():
    state = {"w": {"__tensor__": "c/w"}, "v": {"__tensor__": "c/v"}}
    a = {"components": {"c": {"state": state}}}
    b = copy.deepcopy(a)
    a_tensors = {"c/w": np.zeros((2, 3), np.float32), "c/v": np.ones(4)}
    b_tensors = {"c/w": np.zeros((3, 3), np.float32), "c/v": np.ones(4)}

    assert diff(a, a_tensors, b, b_tensors) == [
        Change("c/w", "tensor", "float32[2,3]", "float32[3,3]", None)
    ]


def test_tensors_are_matched_by_attribute_not_by_their_name_in_the_table():
    a = {"components": {"c": {"state": {"w": {"__tensor__": "c/w"}}}}}
    b = {"components": {"c": {"state": {"w": {"__tensor__": "<queue>/0/inputs"}}}}}
    same = np.arange(6.0).reshape(2, 3)
    assert diff(a, {"c/w": same}, b, {"<queue>/0/inputs": same.copy()}) == []


def test_nan_in_the_same_places_is_equal_and_a_new_nan_is_a_difference():
    a = {"components": {"c": {"state": {"w": {"__tensor__": "w"}, "loss": math.nan}}}}
    b = copy.deepcopy(a)
    assert diff(a, {"w": np.array([np.nan, 1.0])}, b, {"w": np.array([np.nan, 1.0])}) == []
    (change,) = diff(a, {"w": np.array([0.0, 1.0])}, b, {"w": np.array([np.nan, 1.0])})
    assert change.kind == "tensor" and math.isnan(change.max_abs_diff)


def test_keys_and_components_on_one_side_are_added_or_removed():
    a = {"components": {"c": {"state": {"old": 1, "items": [1, 2]}}, "gone": {"state": {}}}}
    b = {
        "components": {
            "c": {"state": {"new": {"__tensor__": "n"}, "items": [1, 2, 3]}},
            "fresh": {"state": {}},
        }
    }
    changes = diff(a, {}, b, {"n": np.zeros((5,), np.int64)})
    assert [(change.kind, change.path) for change in changes] == [
        ("removed", "c/old"),
        ("added", "c/items/2"),
        ("added", "c/new"),
        ("removed", "gone"),
        ("added", "fresh"),
    ]
    assert changes[2].after == "int64[5]"


def test_subcomponents_are_compared_under_their_slot():
    a = {"components": {"loss": {"state": {}, "subcomponents": {"optimizer": {"lr": 0.1}}}}}
    b = copy.deepcopy(a)
    b["components"]["loss"]["subcomponents"]["optimizer"]["lr"] = 0.2
    assert diff(a, {}, b, {}) == [Change("loss/optimizer/lr", "changed", 0.1, 0.2)]


def test_format_diff_aligns_the_columns():
    text = format_diff(
        [
            Change("simulated_time_ps", "changed", 1, 2),
            Change("dense1/weights", "tensor", "float32[2,2]", "float32[2,2]", 0.125),
            Change("c/state", "changed", "TRAINING", "VALIDATION"),
            Change("c/x", "added", after=3),
            Change("c/y", "removed", before="a"),
        ]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["changed", "simulated_time_ps", "1", "->", "2"]
    assert "float32[2,2]  max |a-b| = 0.125" in lines[1]
    assert lines[2].endswith("TRAINING -> VALIDATION")
    assert lines[3].endswith("+ 3") and lines[4].endswith("- a")
    columns = {line.index(line.split()[2]) for line in lines}
    assert len(columns) == 1  # every detail starts in the same column
