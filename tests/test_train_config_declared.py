"""The training config is derived from the declarations (issue 9, item 5).

Defaults, ranges and choices of the keys that become a component's
parameters are that parameter's `Param` declaration, and the optimizer's
name is any registered optimizer type, so the config and the components
cannot disagree. A third-party optimizer defined here, registered as a user
would, is named in a config and trained with.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import REPO

from nnsim.errors import ParamError
from nnsim.nn.optimizers import Optimizer
from nnsim.sim import Param, lookup, register, unregister
from nnsim.train import load_config, train
from nnsim.train.build import build_simulation, find_controller
from nnsim.train.config import BINDER, ConfigError, OptimizerConfig


class SignSGD(Optimizer):
    """signSGD (Bernstein et al., 2018): every weight steps by the learning rate, against its
    gradient's sign; ``dead_zone`` leaves gradients smaller than it alone."""

    params = (
        Param("learning_rate", float, 0.002, "step per weight", min=0.0),
        Param("dead_zone", float, 1e-9, "gradients below this are left alone", min=0.0),
        Param("sign_only", bool, True, "step by the sign (false: by the gradient)"),
    )

    def settings(self) -> dict[str, float]:
        return {"dead_zone": self.dead_zone, "sign_only": self.sign_only}

    @staticmethod
    def update(rule, param, grad, momentum, cache) -> None:
        step = np.sign(grad) if rule.settings["sign_only"] else grad
        step = np.where(np.abs(grad) > rule.settings["dead_zone"], step, 0)
        param -= (rule.learning_rate * step).astype(param.dtype)


@pytest.fixture(autouse=True)
def registered():
    """Registered as a user would, for these tests only (`nnsim info`'s test lists every type)."""
    register("test.SignSGD")(SignSGD)
    yield
    unregister("test.SignSGD")


# key in the config -> (registered type, parameter) it becomes
DECLARED = {
    "training.epochs": ("nn.BatchController", "epochs"),
    "training.batch_size": ("nn.BatchController", "batch_size"),
    "dataset.class_image_limit": ("nn.BatchController", "class_image_limit"),
    "dataset.invert_eval_images": ("nn.BatchController", "invert_eval_images"),
    "dataset.training": ("nn.BatchController", "training_images"),
    "dataset.test": ("nn.BatchController", "test_images"),
    "dataset.eval": ("nn.BatchController", "eval_images"),
    "training.dtype": ("nn.Dense", "dtype"),
    "training.weight_scale": ("nn.Dense", "weight_scale"),
}


def assert_rule_is_declared(key: str, param: Param) -> None:
    rule = BINDER.option_of(key).rule
    assert (rule.min, rule.max, rule.min_exclusive) == (param.min, param.max, param.min_exclusive)
    assert rule.allowed() == param.choices, key


@pytest.mark.parametrize("key", DECLARED)
def test_config_defaults_and_ranges_are_the_parameter_declarations(key):
    type_name, name = DECLARED[key]
    param = lookup(type_name).declared_params()[name]
    assert BINDER.option_of(key).default == param.default, key
    assert_rule_is_declared(key, param)


def test_hidden_sizes_range_is_the_dense_layers_output_size():
    assert_rule_is_declared("model.hidden", lookup("nn.Dense").declared_params()["output_size"])


def test_epochs_range_is_the_controllers_one_and_says_so():
    declared = lookup("nn.BatchController").declared_params()["epochs"]
    assert load_config(sets=[f"training.epochs={declared.min}"]).training.epochs == declared.min
    with pytest.raises(ConfigError, match=re.escape(f"training.epochs must be >= {declared.min}")):
        load_config(sets=[f"training.epochs={declared.min - 1}"])


def test_optimizer_names_are_the_registered_optimizer_types():
    names = BINDER.option_of("training.optimizer.name").rule.allowed()
    assert names[:2] == ("adam", "sgd")  # nnsim's own, by their short names
    assert "test.SignSGD" in names  # registered above, by its type name
    assert BINDER.option_of("training.optimizer.name").default == "adam"  # the loss's slot default
    assert lookup("nn.CategoricalCrossEntropy").declared_slots()["optimizer"].default == "nn.Adam"
    with pytest.raises(ConfigError) as caught:
        load_config(sets=["training.optimizer.name=adma"])
    message = str(caught.value)
    assert message.startswith("training.optimizer.name must be one of adam, sgd, ")
    assert "test.SignSGD" in message and message.endswith("got 'adma'; did you mean 'adam'?")


@pytest.mark.parametrize(("name", "type_name"), [("adam", "nn.Adam"), ("sgd", "nn.SGD")])
def test_optimizer_settings_are_the_named_types_parameters(name, type_name):
    declared = lookup(type_name).declared_params()
    config = load_config(sets=[f"training.optimizer.name={name}"])
    optimizer = config.training.optimizer
    assert optimizer.type_name == type_name
    assert optimizer.settings == {key: param.default for key, param in declared.items()}
    for key, param in declared.items():  # each bound, as the declaration words it
        named = [f"training.optimizer.name={name}"]
        if param.min is not None:
            below = param.min if param.min_exclusive else param.min - 1
            sign = ">" if param.min_exclusive else ">="
            with pytest.raises(ConfigError, match=f"{key} must be {sign} {param.min!r}, got"):
                load_config(sets=[*named, f"training.optimizer.{key}={below}"])
        if param.max is not None:
            with pytest.raises(ConfigError, match=f"{key} must be <= {param.max!r}, got"):
                load_config(sets=[*named, f"training.optimizer.{key}={param.max + 1}"])


def test_the_default_optimizers_settings_carry_its_declared_rules():
    for key, param in lookup("nn.Adam").declared_params().items():
        assert_rule_is_declared(f"training.optimizer.{key}", param)


def test_sgds_learning_rate_default_is_one_number_everywhere(tmp_path):
    declared = lookup("nn.SGD").declared_params()["learning_rate"].default
    from_python = OptimizerConfig(name="sgd").learning_rate
    path = tmp_path / "sgd.toml"
    path.write_text('[training.optimizer]\nname = "sgd"\n')
    from_file = load_config(path).training.optimizer.learning_rate
    sim = build_simulation(load_config(path))
    built = sim.components["loss"].optimizer
    assert built.kind() == "nn.SGD"
    assert declared == from_python == from_file == built.learning_rate == 1.0
    # Adam keeps its own: the base optimizer's 0.001
    assert load_config().training.optimizer.learning_rate == 0.001
    # the README says the same numbers
    readme = (REPO / "README.md").read_text()
    assert f"sgd's {declared}" in readme and "adam's 0.001" in readme


def test_a_setting_of_another_optimizer_is_refused_unless_it_is_that_ones_default(tmp_path):
    path = tmp_path / "old.toml"
    # what run folders' config.toml held before the settings followed the optimizer
    path.write_text("[training.optimizer]\nname = 'adam'\nmomentum = 0.0\n")
    assert "momentum" not in load_config(path).training.optimizer.settings
    with pytest.raises(ConfigError) as caught:
        load_config(path, sets=["training.optimizer.momentum=0.9"])
    assert str(caught.value) == (
        "--set: training.optimizer.momentum is not a setting of adam (but of sgd); "
        "remove it or set training.optimizer.name to the optimizer it belongs to"
    )
    # --set name=sgd makes the file's momentum a setting again, whatever the order
    config = load_config(
        path, sets=["training.optimizer.momentum=0.9", "training.optimizer.name=sgd"]
    )
    assert config.training.optimizer.settings == {
        "learning_rate": 1.0,
        "decay": 0.0,
        "momentum": 0.9,
    }


def test_a_registered_third_party_optimizer_is_named_in_a_config_and_trains(tmp_path, toy_dataset):
    path = tmp_path / "sign.toml"
    path.write_text(
        f"""
[model]
hidden = [16]
[dataset]
name = "toy"
training = "{toy_dataset}"
test = "{toy_dataset}"
[training]
epochs = 2
batch_size = 32
weight_scale = 0.1
[training.optimizer]
name = "test.SignSGD"
learning_rate = 0.001
[output]
project_dir = "{tmp_path / "runs"}"
"""
    )
    config = load_config(path, sets=["training.optimizer.sign_only=true"])
    assert config.training.optimizer.settings == {
        "learning_rate": 0.001,  # from the file
        "decay": 0.0,  # Optimizer's declaration
        "dead_zone": 1e-9,  # SignSGD's declared default
        "sign_only": True,
    }
    result = train(config, progress="quiet")
    optimizer = result.sim.components["loss"].optimizer
    assert optimizer.kind() == "test.SignSGD"
    assert (optimizer.learning_rate, optimizer.dead_zone, optimizer.sign_only) == (
        0.001,
        1e-9,
        True,
    )
    assert len(result.metrics) == 2 and result.metrics[-1]["val_acc"] > 0.3  # chance is 0.1
    written = (result.run_dir / "config.toml").read_text()
    assert 'name = "test.SignSGD"' in written and "dead_zone = 1e-09" in written
    assert load_config(result.run_dir / "config.toml") == config

    with pytest.raises(ConfigError, match="did you mean 'training.optimizer.dead_zone'"):
        load_config(path, sets=["training.optimizer.dead_zon=0"])
    with pytest.raises(ConfigError, match="training.optimizer.dead_zone must be >= 0.0, got -1.0"):
        load_config(path, sets=["training.optimizer.dead_zone=-1"])
    with pytest.raises(ConfigError, match="training.optimizer.sign_only must be true or false"):
        load_config(path, sets=["training.optimizer.sign_only=maybe"])
    with pytest.raises(ConfigError, match="dead_zone is not a setting of adam"):
        load_config(path, sets=["training.optimizer.name=adam", "training.optimizer.dead_zone=1"])


def test_configured_values_reach_the_components_typed(tmp_path):
    config = load_config(
        sets=["training.epochs=3", "training.optimizer.name=sgd", "training.optimizer.momentum=0.5"]
    )
    sim = build_simulation(config)
    controller = find_controller(sim)
    assert type(controller.epochs) is int and controller.epochs == 3
    optimizer = sim.components["loss"].optimizer
    assert type(optimizer.momentum) is float and optimizer.momentum == 0.5
    # the typed door a config uses on a script's model: values as they are, not text
    controller.set_param("epochs", 4)
    assert controller.epochs == 4
    with pytest.raises(ParamError, match="parameter 'epochs' of controller .*expected a value"):
        controller.set_param("epochs", "5")
    with pytest.raises(ParamError, match="must be >= 1, got 0"):
        controller.set_param("batch_size", 0)
    with pytest.raises(ParamError, match="has no parameter 'epoch'; did you mean 'epochs'"):
        controller.set_param("epoch", 1)
    assert controller.epochs == 4
