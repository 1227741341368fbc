"""``nn.Dense(128)`` is a spec of the component type ``nn.Dense``, whose class is
``nnsim.nn.layers.Dense``: the two never pass for each other silently."""

from __future__ import annotations

import io

import pytest
from conftest import run_nnsim

from nnsim import nn
from nnsim.errors import ParamError
from nnsim.nn import layers, loss, optimizers
from nnsim.nn.controller import BatchController
from nnsim.sim import Component, Simulation, lookup

BUILDER_AND_CLASS = [
    (nn.Input, layers.Input),
    (nn.Dense, layers.Dense),
    (nn.ReLU, layers.ReLU),
    (nn.Softmax, layers.Softmax),
    (nn.CategoricalCrossEntropy, loss.CategoricalCrossEntropy),
    (nn.Adam, optimizers.Adam),
    (nn.SGD, optimizers.SGD),
    (nn.BatchController, BatchController),
]


@pytest.mark.parametrize(("factory", "cls"), BUILDER_AND_CLASS)
def test_each_builder_function_makes_a_spec_of_the_type_registered_under_its_name(factory, cls):
    spec = factory(10) if factory is nn.Dense else factory()
    assert isinstance(spec, nn.Spec)
    assert spec.type_name == f"nn.{factory.__name__}"
    assert lookup(spec.type_name) is cls
    assert f"nnsim.nn.{cls.__module__.rpartition('.')[2]}.{cls.__name__}" in factory.__doc__


def test_built_components_are_instances_of_the_classes_in_the_library_modules():
    sim = Simulation(output=io.StringIO())
    built = nn.Sequential([nn.Input(4), nn.Dense(3), nn.ReLU(), nn.Dense(2), nn.Softmax()]).build(
        sim
    )
    assert isinstance(built["dense1"], layers.Dense)
    assert isinstance(built["loss"].subcomponents["optimizer"], optimizers.Adam)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            lambda: nn.Sequential([nn.Input(4), nn.Dense, nn.Softmax()]),
            "Sequential's layers[1] is the function nn.Dense itself; call it: nn.Dense(...)",
        ),
        (
            lambda: nn.Sequential([nn.Input(4), layers.Dense, nn.Softmax()]),
            "Sequential's layers[1] is the component class nnsim.nn.layers.Dense; "
            "give its spec instead, nn.Dense(...), and the builder creates it",
        ),
        (
            lambda: nn.Sequential([nn.Input(4), nn.Dense(2)], optimizer=optimizers.SGD),
            "Sequential's optimizer is the component class nnsim.nn.optimizers.SGD; "
            "give its spec instead, nn.SGD(...), and the builder creates it",
        ),
        (
            lambda: nn.Sequential([nn.Input(4), nn.Dense(2)], controller=nn.BatchController),
            "Sequential's controller is the function nn.BatchController itself; "
            "call it: nn.BatchController(...)",
        ),
        (
            lambda: nn.Sequential([nn.Input(4), "nn.Dense"]),
            "Sequential's layers[1] must be a spec such as nn.Dense(128), not 'nn.Dense'",
        ),
        (
            lambda: nn.Sequential(nn.Input(4)),
            "Sequential takes a list of layers: Sequential([nn.Input(784), ...])",
        ),
    ],
)
def test_the_function_uncalled_or_the_class_instead_of_a_spec_is_named_in_one_line(model, message):
    with pytest.raises(ParamError) as error:
        model()
    assert str(error.value) == message


def test_another_component_class_passed_as_a_layer_is_named_without_a_made_up_builder():
    class Doubler(Component):
        """Doubles (not registered: the message cannot name a type)."""

    with pytest.raises(ParamError) as error:
        nn.Sequential([nn.Input(4), Doubler])
    assert ".Doubler;" in str(error.value)
    assert "nn.Doubler" not in str(error.value)
    assert "give its spec instead, a Spec of its registered type" in str(error.value)


def test_a_model_script_that_forgets_the_call_fails_in_one_line(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(
        "import nnsim\n"
        "from nnsim import nn\n"
        "sim = nnsim.simulation()\n"
        "nn.Sequential([nn.Input(784), nn.Dense, nn.Softmax()]).build(sim)\n"
    )
    result = run_nnsim("run", str(script))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "layers[1] is the function nn.Dense itself; call it: nn.Dense(...)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
