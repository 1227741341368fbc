"""A simulation from a training config: the builder's chain, or a model script's graph.

With ``model.hidden`` the model is ``Sequential([Input(784), (Dense, ReLU) per
hidden size, Dense(10), Softmax])`` with the configured optimizer and
controller, built with the configured link latency, clock and dtype. With
``model.script`` the script builds the graph (its layers, dtype, weight scale,
latencies and clocks are its own) and the config's training and dataset
values are then set on its batch controller and optimizer, so the config
still decides what is trained on, how long and how fast.
"""

from __future__ import annotations

from typing import Any, TextIO

from nnsim import nn
from nnsim.errors import NnsimError
from nnsim.sim import Component, Simulation
from nnsim.train.config import Config, ConfigError

INPUT_SIZE = 784
CLASSES = 10


def controller_params(config: Config) -> dict[str, Any]:
    dataset, training = config.dataset, config.training
    return {
        "batch_size": training.batch_size,
        "epochs": training.epochs,
        "class_image_limit": dataset.class_image_limit,
        "training_images": dataset.training,
        "test_images": dataset.test,
        "validation_split": 0.0 if dataset.validation == "test" else dataset.validation,
        "eval_images": dataset.eval,
        "invert_eval_images": dataset.invert_eval_images,
    }


DATASET_PATHS = ("training_images", "test_images", "eval_images")


def dataset_overrides(body: dict, config: Config) -> dict[str, str]:
    """``--set``-style overrides that point a checkpoint's controller at ``config``'s data folders.

    A resumed run reads its data where its ``config.toml`` says (resolved
    against the run folder), not where the folders were when the checkpoint
    was taken, so a run folder moved with its project still resumes.
    """
    names = [spec["name"] for spec in body["model"]["components"]]
    types = [spec["type"] for spec in body["model"]["components"]]
    if types.count("nn.BatchController") != 1:
        return {}
    name = names[types.index("nn.BatchController")]
    params = controller_params(config)
    return {f"{name}/{key}": params[key] for key in DATASET_PATHS}  # str parameters: paths


def run_folder_overrides(storage: Any, body: dict) -> dict[str, str]:
    """``dataset_overrides`` from the run folder's ``config.toml`` when ``storage`` is its
    ``checkpoints/`` (``nnsim run runs/x/checkpoints/best`` after the project moved), else none."""
    from nnsim.train.runfolder import open_run_folder, run_folder_of

    folder = run_folder_of(storage)
    if folder is None:
        return {}
    return dataset_overrides(body, open_run_folder(folder)[1])


def optimizer_params(config: Config) -> dict[str, Any]:
    """The optimizer's constructor parameters: every declared setting, typed as the config holds it."""
    return dict(config.training.optimizer.settings)


def sequential(config: Config) -> nn.Sequential:
    """The builder's model for ``model.hidden`` and the training section."""
    scale = config.training.weight_scale
    layers = [nn.Input(INPUT_SIZE)]
    for size in config.model.hidden:
        layers += [nn.Dense(size, weight_scale=scale), nn.ReLU()]
    layers += [nn.Dense(CLASSES, weight_scale=scale), nn.Softmax()]
    optimizer = config.training.optimizer
    return nn.Sequential(
        layers,
        loss=nn.CategoricalCrossEntropy(),
        optimizer=nn.Spec(optimizer.type_name, optimizer_params(config), "optimizer"),
        controller=nn.BatchController(**controller_params(config)),
    )


def find_controller(sim: Simulation) -> Component:
    """The one ``nn.BatchController`` of ``sim``."""
    found = [c for c in sim.components.values() if c.kind() == "nn.BatchController"]
    if len(found) != 1:
        raise NnsimError(
            f"training needs exactly one nn.BatchController in the model, found {len(found)}"
        )
    return found[0]


def _apply_to_script_model(sim: Simulation, config: Config) -> None:
    """Set the config's controller values on the script's controller, and give its optimizer
    slot a new optimizer built from the config's settings (typed values, no text between)."""
    controller = find_controller(sim)
    owners = [
        component
        for component in sim.components.values()
        for slot in component.subcomponents
        if slot == "optimizer"
    ]
    if len(owners) != 1:
        raise ConfigError(
            f"model script '{config.model.script}' has {len(owners)} optimizers; "
            "training from a config needs exactly one"
        )
    owner = owners[0]
    wanted = config.training.optimizer.type_name
    if owner.optimizer.kind() != wanted:
        raise ConfigError(
            f"model script '{config.model.script}' trains with {owner.optimizer.kind()} but "
            f"training.optimizer.name is '{config.training.optimizer.name}'; make them agree"
        )
    for name, value in controller_params(config).items():
        controller.set_param(name, value)
    owner.set_subcomponent("optimizer", wanted, **optimizer_params(config))


def build_simulation(config: Config, *, output: TextIO | None = None) -> Simulation:
    """A new, not yet started simulation of the configured model."""
    sim = Simulation(seed=config.training.seed, output=output)
    if config.model.script:
        from nnsim.script import build_from_script

        build_from_script(sim, config.model.script, list(config.model.script_args))
        _apply_to_script_model(sim, config)
    else:
        sequential(config).build(
            sim,
            latency=config.simulation.link_latency,
            clock=config.simulation.clock,
            dtype=config.training.dtype,
        )
    return sim
