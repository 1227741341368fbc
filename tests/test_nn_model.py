"""The SST-style network as a simulation: wiring, timing, training, controller states."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from nnsim import nn
from nnsim.errors import ParamError
from nnsim.nn.controller import State
from nnsim.sim import Simulation

HOP = 1_000_000 + 1_000  # 1us link latency + one 1GHz clock period


def build(
    dataset: Path,
    eval_folder: Path | None = None,
    *,
    seed: int = 0,
    epochs: int = 2,
    batch_size: int = 32,
    hidden: int = 16,
    optimizer=None,
    dtype: str = "float32",
    stop_at=None,
    dense_params: dict | None = None,
    **controller,
) -> tuple[Simulation, dict, io.StringIO]:
    output = io.StringIO()
    sim = Simulation(seed=seed, output=output, stop_at=stop_at)
    model = nn.Sequential(
        [
            nn.Input(784),
            nn.Dense(hidden, **(dense_params or {})),
            nn.ReLU(),
            nn.Dense(10),
            nn.Softmax(),
        ],
        optimizer=optimizer or nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=batch_size,
            epochs=epochs,
            training_images=str(dataset),
            test_images=str(dataset),
            eval_images=str(eval_folder or ""),
            progress=False,
            **controller,
        ),
    )
    return sim, model.build(sim, dtype=dtype), output


def test_sequential_emits_the_named_chain_with_forward_backward_and_result_links(toy_dataset):
    sim, components, _ = build(toy_dataset)
    assert list(components) == [
        "controller",
        "input",
        "dense1",
        "relu1",
        "dense2",
        "softmax",
        "loss",
    ]
    links = {link.name for link in sim.link_list}
    assert "controller.forward_out--input.forward_in" in links
    assert "input.backward_out--controller.backward_in" in links
    assert "loss.result_out--controller.result_in" in links
    assert len(links) == 2 * 6 + 1
    assert components["loss"].optimizer.name == "loss/optimizer"
    assert components["dense1"].weights.shape == (784, 16)
    assert components["dense1"].propagate_gradient is False
    assert components["dense2"].propagate_gradient is True


def test_training_learns_the_toy_dataset_and_prints_epochs_and_predictions(
    toy_dataset, eval_folder
):
    sim, components, output = build(toy_dataset, eval_folder, epochs=4)
    assert sim.run() == "primaries done"
    lines = output.getvalue().splitlines()
    assert lines[0].startswith("epoch 0 training:\tacc: ")
    assert "(data_loss: " in lines[0] and "reg_loss: 0.000) lr: 0.0100000000" in lines[0]
    assert lines[1].startswith("epoch 0 validation:\tacc: ")
    final_accuracy = float(lines[7].split("acc: ")[1].split()[0])
    assert final_accuracy >= 0.9
    assert lines[8:] == [
        f"Prediction for {eval_folder / 'class0.png'} ...\tSurvey says ### TOP",
        f"Prediction for {eval_folder / 'class1.png'} ...\tSurvey says ### TROUSER",
    ]
    assert components["controller"].state == State.COMPLETE


def test_simulated_time_follows_the_hop_model(toy_dataset, eval_folder):
    """Training step 2L hops, validation and prediction L+1 hops (L = components - 1)."""
    epochs, batch = 2, 32
    sim, components, _ = build(toy_dataset, eval_folder, epochs=epochs, batch_size=batch)
    sim.run()
    chain = len(components) - 1
    train_batches, validation_batches = -(-200 // batch), -(-100 // batch)
    hops = epochs * (train_batches * 2 * chain + validation_batches * (chain + 1)) + 2 * (chain + 1)
    first_tick, precheck_tick = 1_000, 1_000
    assert sim.now == first_tick + hops * HOP + precheck_tick


def test_same_seed_gives_bitwise_identical_weights_and_output(toy_dataset):
    runs = []
    for _ in range(2):
        sim, components, output = build(toy_dataset, seed=7)
        sim.run()
        runs.append(
            (
                components["dense1"].weights.copy(),
                components["dense2"].biases.copy(),
                output.getvalue(),
            )
        )
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_different_seeds_give_different_initial_weights(toy_dataset):
    _, first, _ = build(toy_dataset, seed=1)
    _, second, _ = build(toy_dataset, seed=2)
    assert not np.array_equal(first["dense1"].weights, second["dense1"].weights)


def test_pausing_and_continuing_gives_the_same_bits_as_a_straight_run(toy_dataset):
    straight, straight_components, straight_output = build(toy_dataset, seed=3)
    straight.run()
    paused, components, output = build(toy_dataset, seed=3)
    for stop in ("37us", "38us", "120us", "121us"):
        assert paused.run(until=stop) == "paused"
    paused.run()
    assert paused.now == straight.now
    assert output.getvalue() == straight_output.getvalue()
    for name in ("dense1", "dense2"):
        assert np.array_equal(components[name].weights, straight_components[name].weights)


def test_changing_the_learning_rate_mid_run_changes_every_layers_updates(toy_dataset):
    sim, components, _ = build(toy_dataset, epochs=3)
    sim.run(until="100us")
    optimizer = components["loss"].optimizer
    optimizer.learning_rate = 0.0
    before = {name: components[name].weights.copy() for name in ("dense1", "dense2")}
    sim.run()
    for name, weights in before.items():
        assert np.array_equal(components[name].weights, weights), name
    assert optimizer.current_learning_rate == 0.0


def test_learning_rate_decays_as_lr_over_one_plus_decay_times_iterations(toy_dataset):
    sim, components, output = build(
        toy_dataset, epochs=1, optimizer=nn.Adam(learning_rate=0.01, decay=0.1)
    )
    sim.run()
    optimizer = components["loss"].optimizer
    assert optimizer.iterations == 7
    expected = 0.01 * (1.0 / (1.0 + 0.1 * 6))  # the last step used iteration 6
    assert f"lr: {expected:.10f}" in output.getvalue()


def test_sgd_with_momentum_trains_too(toy_dataset):
    sim, _, output = build(
        toy_dataset, epochs=4, optimizer=nn.SGD(learning_rate=0.05, momentum=0.9)
    )
    sim.run()
    last_validation = [line for line in output.getvalue().splitlines() if "validation" in line][-1]
    assert float(last_validation.split("acc: ")[1].split()[0]) >= 0.8


def test_regularization_adds_a_reported_penalty(toy_dataset):
    sim, _, output = build(
        toy_dataset, epochs=1, dense_params={"l2_weight": 0.01, "l1_bias": 0.001}
    )
    sim.run()
    first = output.getvalue().splitlines()[0]
    reg_loss = float(first.split("reg_loss: ")[1].split(")")[0])
    assert reg_loss > 0


def test_float64_on_request_keeps_weights_and_activations_float64(toy_dataset):
    sim, components, _ = build(toy_dataset, epochs=1, dtype="float64")
    sim.run()
    assert components["dense1"].weights.dtype == np.float64
    assert components["controller"].train_x.dtype == np.float64


def test_float32_is_the_default(toy_dataset):
    _, components, _ = build(toy_dataset)
    assert components["dense1"].weights.dtype == np.float32
    assert components["dense1"].weight_cache.dtype == np.float32


def test_pause_before_evaluation_holds_in_precheck_until_cleared(toy_dataset, eval_folder):
    sim, components, output = build(
        toy_dataset, eval_folder, epochs=1, pause_before_evaluation=True
    )
    controller = components["controller"]
    assert sim.run(until="2ms") == "paused"
    assert controller.state == State.PRECHECK_EVALUATION
    assert "Prediction" not in output.getvalue()
    assert not controller.clocks[0].active and sim.pending_events == 0  # waiting costs nothing
    controller.assign("pause_before_evaluation", False)  # what the console's set does
    assert sim.run() == "primaries done"
    assert output.getvalue().count("Prediction for") == 2


def test_reload_eval_images_reads_the_folder_set_while_paused(toy_dataset, eval_folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (eval_folder / "class1.png").rename(other / "only.png")
    sim, components, output = build(
        toy_dataset, eval_folder, epochs=4, pause_before_evaluation=True, reload_eval_images=True
    )
    controller = components["controller"]
    sim.run(until="5ms")
    controller.eval_images = str(other)
    controller.assign("pause_before_evaluation", False)
    sim.run()
    predictions = [line for line in output.getvalue().splitlines() if line.startswith("Prediction")]
    assert predictions == [f"Prediction for {other / 'only.png'} ...\tSurvey says ### TROUSER"]


def test_zero_epochs_goes_straight_to_predictions(toy_dataset, eval_folder):
    sim, _, output = build(toy_dataset, eval_folder, epochs=0)
    sim.run()
    assert output.getvalue().count("Prediction for") == 2
    assert "training:" not in output.getvalue()


def test_statistics_count_batches_per_layer(toy_dataset, eval_folder):
    sim, components, _ = build(toy_dataset, eval_folder, epochs=2)
    sim.run()
    stats = components["dense1"].stats
    assert stats["forward_batches"] == 2 * (7 + 4) + 2
    assert stats["backward_batches"] == 2 * 7
    assert components["controller"].stats["predictions"] == 2
    assert (
        components["dense1"].clocks[0].ticks == stats["forward_batches"] + stats["backward_batches"]
    )


def test_bad_controller_parameter_is_refused_with_its_name(toy_dataset):
    with pytest.raises(ParamError, match="parameter 'batch_size' of controller"):
        build(toy_dataset, batch_size=0)


def test_unknown_optimizer_parameter_suggests_the_right_one(toy_dataset):
    with pytest.raises(ParamError, match="did you mean 'learning_rate'"):
        build(toy_dataset, optimizer=nn.Adam(learning_rat=0.1))
