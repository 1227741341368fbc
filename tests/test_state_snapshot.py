"""Capture and restore a whole simulation: restarts are bit-for-bit the straight run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from nnsim import nn
from nnsim.errors import StateError
from nnsim.nn.controller import State
from nnsim.nn.events import Batch
from nnsim.sim import Component, Simulation
from nnsim.state import capture, restore

DENSE = ("dense1", "dense2")


def build(dataset: Path, eval_folder: Path | None = None, output=None, **controller) -> Simulation:
    # Seed 3: three epochs on the toy set learn both evaluation classes (validation acc 1.0).
    sim = Simulation(seed=3, output=output or io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(16, l2_weight=1e-4), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01, decay=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=controller.pop("epochs", 3),
            training_images=str(dataset),
            test_images=str(dataset),
            eval_images=str(eval_folder or ""),
            progress=False,
            **controller,
        ),
    ).build(sim)
    return sim


def through_json(body: dict, tensors: dict) -> tuple[dict, dict]:
    """What a checkpoint file holds: JSON text and copies of the arrays."""
    return json.loads(json.dumps(body)), {name: np.array(array) for name, array in tensors.items()}


def assert_same_end(restarted: Simulation, straight: Simulation) -> None:
    assert restarted.now == straight.now
    for name in DENSE:
        for attribute in ("weights", "biases", "weight_momentums", "weight_cache"):
            assert np.array_equal(
                getattr(restarted.components[name], attribute),
                getattr(straight.components[name], attribute),
            ), f"{name}.{attribute}"
    assert (
        restarted.components["controller"].predicted == straight.components["controller"].predicted
    )
    assert (
        restarted.components["loss"].optimizer.iterations
        == straight.components["loss"].optimizer.iterations
    )


@pytest.fixture
def straight(toy_dataset, eval_folder):
    output = io.StringIO()
    sim = build(toy_dataset, eval_folder, output)
    sim.run()
    return sim, output.getvalue()


def restart_at(cut: str | None, toy_dataset, eval_folder) -> tuple[Simulation, str, dict]:
    first_output = io.StringIO()
    sim = build(toy_dataset, eval_folder, first_output)
    if cut is None:
        sim.start()
    else:
        assert sim.run(until=cut) == "paused"
    body, tensors = through_json(*capture(sim))
    second_output = io.StringIO()
    restarted = restore(body, tensors, output=second_output)
    restarted.run()
    return restarted, first_output.getvalue() + second_output.getvalue(), body


@pytest.mark.parametrize(
    "cut",
    [None, "2500ns", "37us", "151us", "300us"],
    ids=[
        "before-training",
        "forward-pass-in-flight",
        "mid-epoch",
        "after-first-epoch",
        "later-epoch",
    ],
)
def test_restart_is_bitwise_identical_to_the_straight_run(cut, straight, toy_dataset, eval_folder):
    straight_sim, straight_output = straight
    restarted, output, _ = restart_at(cut, toy_dataset, eval_folder)
    assert output == straight_output
    assert_same_end(restarted, straight_sim)


def test_mid_batch_checkpoint_holds_the_batch_in_flight(toy_dataset, eval_folder):
    sim = build(toy_dataset, eval_folder)
    sim.run(until="2500ns")
    body, _ = capture(sim)
    links = [entry for entry in body["queue"] if entry["kind"] == "link"]
    assert len(links) == 1
    assert links[0]["source"] == "dense1.forward_out"
    assert links[0]["payload"]["__object__"] == f"{Batch.__module__}:Batch"
    assert body["components"]["dense1"]["state"]["inputs"] == {"__tensor__": "dense1/inputs"}


def test_restart_in_precheck_evaluation_then_predict(toy_dataset, eval_folder):
    def paused_run(output):
        sim = build(toy_dataset, eval_folder, output, pause_before_evaluation=True)
        sim.run(until="900us")
        assert sim.components["controller"].state == State.PRECHECK_EVALUATION
        return sim

    straight_output = io.StringIO()
    straight = paused_run(straight_output)
    straight.components["controller"].assign("pause_before_evaluation", False)
    straight.run()

    first_output = io.StringIO()
    body, tensors = through_json(*capture(paused_run(first_output)))
    second_output = io.StringIO()
    restarted = restore(
        body,
        tensors,
        output=second_output,
        overrides={"controller/pause_before_evaluation": "false"},
    )
    restarted.run()
    assert first_output.getvalue() + second_output.getvalue() == straight_output.getvalue()
    assert restarted.components["controller"].predicted == ["TOP", "TROUSER"]
    assert_same_end(restarted, straight)


def test_a_restarted_run_can_be_restarted_again(straight, toy_dataset, eval_folder):
    straight_sim, straight_output = straight
    first_output = io.StringIO()
    sim = build(toy_dataset, eval_folder, first_output)
    sim.run(until="40us")
    second_output = io.StringIO()
    again = restore(*through_json(*capture(sim)), output=second_output)
    again.run(until="180us")
    third_output = io.StringIO()
    final = restore(*through_json(*capture(again)), output=third_output)
    final.run()
    assert (
        first_output.getvalue() + second_output.getvalue() + third_output.getvalue()
        == straight_output
    )
    assert_same_end(final, straight_sim)


def test_overrides_change_parameters_on_restart(toy_dataset, eval_folder):
    sim = build(toy_dataset, eval_folder, epochs=1)
    sim.run(until="20us")
    output = io.StringIO()
    restarted = restore(*capture(sim), output=output, overrides={"controller/epochs": "2"})
    restarted.run()
    assert "epoch 1 validation" in output.getvalue()


def test_loading_into_a_different_model_is_refused(toy_dataset):
    sim = build(toy_dataset)
    sim.run(until="10us")
    body, tensors = capture(sim)
    other = Simulation(seed=11)
    nn.Sequential([nn.Input(784), nn.Dense(10), nn.Softmax()]).build(other)
    with pytest.raises(StateError, match="different model"):
        restore(body, tensors, sim=other)


def test_loading_into_the_same_model_built_again_works(toy_dataset, eval_folder, straight):
    straight_sim, straight_output = straight
    first_output = io.StringIO()
    sim = build(toy_dataset, eval_folder, first_output)
    sim.run(until="60us")
    body, tensors = through_json(*capture(sim))
    second_output = io.StringIO()
    fresh = build(toy_dataset, eval_folder, second_output)
    restore(body, tensors, sim=fresh).run()
    assert first_output.getvalue() + second_output.getvalue() == straight_output


class Holder(Component):
    """Holds whatever a test puts in it."""

    type_name = "test.Holder"


def test_unserializable_state_fails_at_checkpoint_time_naming_the_attribute():
    sim = Simulation()
    holder = sim.add(Holder, "holder")
    holder.callback = {"on_done": lambda: None}
    sim.start()
    with pytest.raises(StateError, match="holder/callback/on_done"):
        capture(sim)


def test_underscore_and_transient_attributes_are_not_saved(toy_dataset):
    sim = build(toy_dataset)
    sim.run(until="10us")
    body, _ = capture(sim)
    controller = body["components"]["controller"]["state"]
    assert "train_x" not in controller and "_bar" not in controller
    assert controller["state"] == {"__enum__": "nnsim.nn.controller:State", "name": "TRAINING"}
    assert "__rng__" in controller["rng"]


def test_a_file_cannot_name_a_class_that_is_not_registered(toy_dataset):
    sim = build(toy_dataset)
    sim.run(until="2500ns")
    body, tensors = capture(sim)
    link = next(entry for entry in body["queue"] if entry["kind"] == "link")
    link["payload"]["__object__"] = "os:system"
    with pytest.raises(
        StateError, match="'os:system', which is not a registered serializable type"
    ):
        restore(json.loads(json.dumps(body)), tensors)
