"""`nnsim info` prints what components declare, and the README's table is its output."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, run_nnsim

from nnsim.nn.optimizers import Adam
from nnsim.sim import Component, registered_types
from nnsim.sim.declare import REQUIRED


def read_info(text: str) -> dict[str, dict[str, dict[str, list[str]]]]:
    """What a reader of ``nnsim info`` sees: {type: {section: {name: [the other columns]}}}.

    A type starts at an unindented ``TYPE: summary`` line, a section at a
    two-space ``Title:`` line; each row is four spaces in, columns two or more
    spaces apart.
    """
    types: dict[str, dict[str, dict[str, list[str]]]] = {}
    section: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = types.setdefault(line.split(": ", 1)[0], {})
        elif not line.startswith("    "):
            assert line.endswith(":"), line
            section = current.setdefault(line.strip()[:-1], {})
        else:
            name, *columns = re.split(r"\s{2,}", line.strip())
            section[name] = columns
    return types


def test_info_of_one_type_shows_each_parameter_with_type_default_range_and_help():
    result = run_nnsim("info", "nn.Dense")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("nn.Dense: Fully connected layer")
    params = read_info(result.stdout)["nn.Dense"]["Parameters"]
    assert params["input_size"] == ["int", "(required)", "1 to 1048576", "inputs per sample"]
    assert params["weight_scale"] == [
        "float",
        "= 0.01",
        ">= 0.0",
        "initial weights are weight_scale * N(0, 1)",
    ]
    assert params["dtype"] == [
        "str",
        "= 'float32'",
        "one of float32, float64",
        "floating-point type of weights and math",
    ]
    assert params["propagate_gradient"][:3] == ["bool", "= True", "-"]
    assert params["clock"][:3] == ["frequency", "= '1GHz'", "-"]


def test_info_shows_a_range_with_both_bounds_as_the_values_set_accepts():
    adam = read_info(run_nnsim("info", "nn.Adam").stdout)["nn.Adam"]["Parameters"]
    assert adam["beta_1"] == ["float", "= 0.9", "0.0 to 1.0", "decay of the first moment"]
    beta_1 = Adam.declared_params()["beta_1"]
    assert beta_1.convert("1.0") == 1.0
    with pytest.raises(ValueError, match="must be <= 1.0"):
        beta_1.convert("1.01")


def test_info_shows_ports_with_their_direction_and_statistics_with_their_unit():
    dense = read_info(run_nnsim("info", "nn.Dense").stdout)["nn.Dense"]
    assert dense["Ports"] == {
        "forward_in": ["receives", "activations from the previous layer"],
        "forward_out": ["sends", "activations to the next layer"],
        "backward_in": ["receives", "gradients from the next layer"],
        "backward_out": ["sends", "gradients to the previous layer"],
    }
    assert dense["Statistics"] == {
        "forward_batches": ["count", "batches passed forward"],
        "backward_batches": ["count", "gradients passed backward"],
        "samples": ["samples", "samples passed forward"],
    }


def test_info_shows_subcomponent_slots_with_their_default_type():
    loss = read_info(run_nnsim("info", "nn.CategoricalCrossEntropy").stdout)
    assert loss["nn.CategoricalCrossEntropy"]["Subcomponent slots"] == {
        "optimizer": ["default nn.Adam", "optimizer that decides every layer's update"]
    }


def test_info_without_a_type_shows_every_declaration_of_every_registered_type():
    shown = read_info(run_nnsim("info").stdout)
    types = registered_types()
    assert (
        set(shown)
        == set(types)
        >= {
            "nn.BatchController",
            "nn.Input",
            "nn.Dense",
            "nn.ReLU",
            "nn.Softmax",
            "nn.CategoricalCrossEntropy",
            "nn.Adam",
            "nn.SGD",
        }
    )
    for type_name, cls in types.items():
        expected: dict[str, dict[str, list[str]]] = {}
        if cls.declared_params():
            expected["Parameters"] = {
                p.name: [
                    p.type_name,
                    "(required)" if p.default is REQUIRED else f"= {p.default!r}",
                    p.allowed or "-",
                    p.help,
                ]
                for p in cls.declared_params().values()
            }
        if issubclass(cls, Component) and cls.declared_ports():
            expected["Ports"] = {
                p.name: ["receives" if p.handler else "sends", p.help]
                for p in cls.declared_ports().values()
            }
        if cls.declared_slots():
            expected["Subcomponent slots"] = {
                s.name: [f"default {s.default or '-'}", s.help]
                for s in cls.declared_slots().values()
            }
        if cls.declared_statistics():
            expected["Statistics"] = {
                s.name: [s.unit, s.help] for s in cls.declared_statistics().values()
            }
        assert shown[type_name] == expected, type_name


def test_info_of_an_unknown_type_is_one_clear_line():
    result = run_nnsim("info", "nn.Dence")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "nnsim: error: unknown component type 'nn.Dence'; did you mean 'nn.Dense'? (run 'nnsim info' for the list)"
    )


def test_the_readme_component_table_is_the_output_of_info_markdown():
    table = run_nnsim("info", "--markdown").stdout.strip()
    assert table in (REPO / "README.md").read_text()


def test_the_readme_starts_with_the_two_make_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[2:6] if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_the_readme_info_transcript_is_the_output_of_info():
    readme = (REPO / "README.md").read_text()
    transcript = readme.split("$ nnsim info nn.Adam\n", 1)[1].split("```", 1)[0]
    assert run_nnsim("info", "nn.Adam").stdout == transcript
