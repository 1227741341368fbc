"""Declared parameters: conversion, validation, one error format, and inheritance."""

from __future__ import annotations

import pytest

from nnsim.errors import ParamError
from nnsim.sim import (
    REQUIRED,
    Component,
    Frequency,
    Param,
    Port,
    Simulation,
    Slot,
    Statistic,
    SubComponent,
    Time,
)


class Base(Component):
    type_name = "test.Base"
    params = (
        Param("width", int, 8, "how many lanes", min=1, max=64),
        Param("rate", float, 0.5, "a fraction", min=0.0, max=1.0),
    )
    ports = (Port("input", "data in", handler="on_input"),)
    statistics = (Statistic("items", "items handled"),)

    def on_input(self, event) -> None:
        pass


class Tuned(SubComponent):
    type_name = "test.Tuned"
    params = (Param("gain", float, 1.0, "multiplier"),)


class Derived(Base):
    type_name = "test.Derived"
    params = (
        Param("width", int, 16, "more lanes by default", min=1, max=64),
        Param("mode", str, "fast", "how to run", choices=("fast", "exact")),
        Param("verbose", bool, False, "print more"),
        Param("delay", Time, "1ns", "a time"),
        Param("clock", Frequency, "1GHz", "clock frequency"),
        Param("label", str, REQUIRED, "a name to print"),
    )
    ports = (Port("output", "data out"),)
    statistics = (Statistic("drops", "items dropped"),)
    slots = (Slot("tuning", "the tuning part", default=None),)


@pytest.mark.parametrize(
    ("param", "given", "expected"),
    [
        (Param("n", int), "12", 12),
        (Param("n", int), 3.0, 3),
        (Param("x", float), "2.5", 2.5),
        (Param("x", float), 4, 4.0),
        (Param("s", str), "hi", "hi"),
        (Param("t", Time), "2us", 2_000_000),
        (Param("t", Time), 5, 5),
        (Param("f", Frequency), "2.5GHz", "2.5GHz"),
    ],
)
def test_param_converts_values_to_its_type(param: Param, given, expected) -> None:
    result = param.convert(given)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        (1, True),
        (True, True),
        ("false", False),
        ("NO", False),
        (" off ", False),
        ("0", False),
        (0, False),
        (False, False),
    ],
)
def test_bool_param_reads_the_usual_true_and_false_strings(given, expected) -> None:
    assert Param("b", bool).convert(given) is expected


@pytest.mark.parametrize(
    ("param", "given"),
    [
        (Param("b", bool), "maybe"),
        (Param("b", bool), 2),
        (Param("n", int), "twelve"),
        (Param("n", int), 1.5),
        (Param("n", int), True),
        (Param("x", float), "fast"),
        (Param("x", float), False),
        (Param("s", str), 3),
        (Param("t", Time), "soon"),
        (Param("f", Frequency), "1us"),
        (Param("n", int, min=1), 0),
        (Param("n", int, max=10), 11),
        (Param("c", str, choices=("a", "b")), "c"),
    ],
)
def test_param_refuses_values_of_the_wrong_type_or_out_of_range(param: Param, given) -> None:
    with pytest.raises(ValueError):
        param.convert(given)


def test_param_range_bounds_are_inclusive() -> None:
    param = Param("n", int, min=1, max=10)
    assert param.convert(1) == 1
    assert param.convert(10) == 10


def test_declared_params_become_attributes_with_defaults_filled_in() -> None:
    sim = Simulation()
    component = sim.add(Derived, "d", label="hello", verbose="yes", delay="3ns")
    assert component.label == "hello"
    assert component.verbose is True
    assert component.delay == 3000
    assert component.width == 16
    assert component.rate == 0.5
    assert component.mode == "fast"
    assert component.clock == "1GHz"


def test_a_missing_required_param_names_the_component_and_the_param() -> None:
    sim = Simulation()
    with pytest.raises(ParamError, match=r"d \(test\.Derived\) needs parameter 'label'"):
        sim.add(Derived, "d")


def test_an_unknown_param_suggests_the_closest_name_and_nnsim_info() -> None:
    sim = Simulation()
    with pytest.raises(ParamError) as caught:
        sim.add(Derived, "d", label="x", widht=4)
    message = str(caught.value)
    assert "no parameter 'widht'" in message
    assert "did you mean 'width'?" in message
    assert "nnsim info test.Derived" in message


def test_an_unknown_param_with_no_close_match_still_names_nnsim_info() -> None:
    sim = Simulation()
    with pytest.raises(ParamError) as caught:
        sim.add(Derived, "d", label="x", zzzzzz=1)
    assert "did you mean" not in str(caught.value)
    assert "nnsim info test.Derived" in str(caught.value)


def test_a_bad_value_names_the_param_the_component_and_the_reason() -> None:
    sim = Simulation()
    with pytest.raises(
        ParamError, match=r"parameter 'width' of d \(test\.Derived\): must be <= 64"
    ):
        sim.add(Derived, "d", label="x", width=65)
    with pytest.raises(ParamError, match=r"parameter 'mode' of e .*expected one of fast, exact"):
        sim.add(Derived, "e", label="x", mode="slow")


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)


def test_declarations_are_merged_over_base_classes_with_subclass_overrides() -> None:
    params = Derived.declared_params()
    assert set(params) == {"width", "rate", "mode", "verbose", "delay", "clock", "label"}
    assert params["width"].default == 16
    assert list(params)[:2] == ["width", "rate"]  # base class declarations first
    assert set(Derived.declared_ports()) == {"input", "output"}
    assert set(Derived.declared_statistics()) == {"items", "drops"}
    assert set(Derived.declared_slots()) == {"tuning"}
    assert set(Base.declared_params()) == {"width", "rate"}  # the base is unchanged


def test_inherited_ports_and_statistics_exist_on_instances() -> None:
    sim = Simulation()
    component = sim.add(Derived, "d", label="x")
    assert set(component.links) == {"input", "output"}
    assert component.stats == {"items": 0, "drops": 0}


def test_subcomponent_params_are_validated_the_same_way() -> None:
    sim = Simulation()
    component = sim.add(Derived, "d", label="x")
    sub = component.set_subcomponent("tuning", Tuned, gain="2")
    assert sub.gain == 2.0
    assert component.tuning is sub
    assert sub.name == "d/tuning"
    with pytest.raises(ParamError, match="did you mean 'gain'"):
        component.set_subcomponent("tuning", Tuned, gian=2)


def test_an_unknown_slot_is_refused() -> None:
    sim = Simulation()
    component = sim.add(Derived, "d", label="x")
    with pytest.raises(ParamError, match="no subcomponent slot 'optimizer'"):
        component.set_subcomponent("optimizer", Tuned)
