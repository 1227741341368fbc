"""`nnsim info` prints what components declare, and the README's table is its output."""

from __future__ import annotations

from conftest import REPO, run_nnsim


def test_info_of_one_type_lists_parameters_ports_and_statistics():
    result = run_nnsim("info", "nn.Dense")
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("nn.Dense: Fully connected layer")
    assert "input_size" in text and "(required)" in text
    assert "weight_scale" in text and "= 0.01" in text
    assert "forward_in" in text and "receives" in text
    assert "forward_batches" in text


def test_info_shows_subcomponent_slots():
    assert "optimizer" in run_nnsim("info", "nn.CategoricalCrossEntropy").stdout


def test_info_without_a_type_lists_every_registered_type():
    text = run_nnsim("info").stdout
    for type_name in (
        "nn.BatchController",
        "nn.Input",
        "nn.Dense",
        "nn.ReLU",
        "nn.Softmax",
        "nn.Adam",
        "nn.SGD",
    ):
        assert f"{type_name}: " in text


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
