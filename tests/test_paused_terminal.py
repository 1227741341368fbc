"""On a terminal, a run that stalls on a paused controller opens the console (issue 12, item 1).

Uses the tmux harness of ``test_console_terminal``.
"""

from __future__ import annotations

from conftest import example_args
from test_console_terminal import home, pytestmark, terminals  # noqa: F401 - fixtures, skips

WAITING = (
    "reason: controller is paused (pause_before_evaluation = true) and nothing else is scheduled"
)


def test_a_paused_run_on_a_terminal_opens_the_console_and_set_continues(
    terminals,  # noqa: F811
    toy_dataset,
):
    terminal = terminals(
        "--set",
        "controller/progress=false",
        "--set",
        "controller/pause_before_evaluation=true",
        "--",
        *example_args(toy_dataset, None, "--epochs=1"),
    )
    screen = terminal.wait_for_text(WAITING, timeout=60)
    assert "epoch 0 validation:" in screen
    assert "Simulation is complete" not in screen
    terminal.wait_for_prompt()
    terminal.command("run", expect=WAITING)  # still paused: straight back, no spinning
    terminal.wait_for_prompt()
    terminal.command("set controller/pause_before_evaluation false")
    terminal.wait_for_prompt()
    terminal.command("run")
    assert terminal.wait_for_exit(timeout=60) == 0
    screen = terminal.screen()
    assert screen.count("Survey says ### ") == 2
    assert "Simulation is complete, simulated time: " in screen
    assert "Traceback" not in screen
