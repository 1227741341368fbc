"""Progress bars observe the run: the controller notifies, `nnsim.progress` draws."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from nnsim import nn
from nnsim.progress import ProgressDisplay, progress_wanted
from nnsim.runner import attach_progress
from nnsim.sim import Simulation
from nnsim.state import capture, restore

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def build(dataset: Path, output: io.StringIO, **controller) -> Simulation:
    sim = Simulation(seed=3, output=output)
    nn.Sequential(
        [nn.Input(784), nn.Dense(16), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=2,
            training_images=str(dataset),
            test_images=str(dataset),
            **controller,
        ),
    ).build(sim)
    return sim


def record(sim: Simulation) -> list[tuple]:
    """Every phase and step notification, in order."""
    seen: list[tuple] = []
    sim.observe("phase", lambda **data: seen.append(("phase", data)))
    sim.observe("step", lambda **data: seen.append(("step", data)))
    return seen


def terminal() -> tuple[io.StringIO, Console]:
    screen = io.StringIO()
    return screen, Console(file=screen, force_terminal=True, width=120, color_system=None)


def test_the_element_library_does_not_import_rich():
    code = (
        "import sys, nnsim.nn, nnsim.nn.controller\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    nn_sources = Path(nn.__file__).parent.glob("*.py")
    assert not any("rich" in path.read_text() or "_bar" in path.read_text() for path in nn_sources)


def test_the_controller_notifies_each_phase_and_step(toy_dataset):
    sim = build(toy_dataset, io.StringIO())
    seen = record(sim)
    sim.run()
    phases = [data for topic, data in seen if topic == "phase"]
    # 200 training and 100 test images in batches of 32.
    assert phases == [
        {"name": "epoch 0 training", "total": 7, "done": 0},
        {"name": "epoch 0 validation", "total": 4, "done": 0},
        {"name": "epoch 1 training", "total": 7, "done": 0},
        {"name": "epoch 1 validation", "total": 4, "done": 0},
    ]
    first_steps = [data["done"] for topic, data in seen[1:8]]
    assert first_steps == [1, 2, 3, 4, 5, 6, 7] and seen[8][0] == "phase"


def test_a_restarted_run_announces_the_phase_it_is_in(toy_dataset):
    sim = build(toy_dataset, io.StringIO())
    assert sim.run(until="37us") == "paused"  # mid-way through epoch 0's training
    step = sim.components["controller"].step
    assert 0 < step < 7
    restarted = restore(*capture(sim), output=io.StringIO())
    seen = record(restarted)
    restarted.run()
    assert seen[0] == ("phase", {"name": "epoch 0 training", "total": 7, "done": step})
    assert seen[1] == ("step", {"done": step + 1})


def test_the_display_draws_bars_and_prints_the_lines_above_them(toy_dataset):
    output = io.StringIO()
    sim = build(toy_dataset, output)
    screen, console = terminal()
    display = ProgressDisplay("rich", epochs=2, console=console).attach(sim)
    sim.run()
    display.close()
    shown = ESCAPES.sub("", screen.getvalue())
    assert "\x1b[" in screen.getvalue()  # drawn and redrawn in place
    # Each phase's bar appears as it begins; the last frame shows both bars full.
    assert "epoch 0 training " in shown and "0/7" in shown and "epoch 1 validation " in shown
    last_frame = shown.rstrip().splitlines()[-2:]
    assert last_frame[0].startswith("epochs ") and "2/2" in last_frame[0]
    assert last_frame[1].startswith("epoch 1 validation ") and "4/4" in last_frame[1]
    assert re.search(r"epoch 1 validation:\s+acc: ", shown)  # the run's lines, above the bars
    assert output.getvalue() == ""  # ... and only there
    assert sim.printer is None  # closed: lines print as usual again


def test_off_a_terminal_the_output_is_only_the_runs_lines(toy_dataset):
    plain_output, drawn_output = io.StringIO(), io.StringIO()
    build(toy_dataset, plain_output, progress=False).run()
    sim = build(toy_dataset, drawn_output)
    display = attach_progress(sim)  # auto: stdout under pytest is not a terminal
    assert display is not None and display.mode == "plain"
    sim.run()
    display.close()
    assert drawn_output.getvalue() == plain_output.getvalue()
    assert plain_output.getvalue().startswith("epoch 0 training:\tacc: ")


def test_the_progress_parameter_keeps_the_bars_away(toy_dataset):
    sim = build(toy_dataset, io.StringIO(), progress=False)
    assert not progress_wanted(sim)
    assert attach_progress(sim) is None
    assert progress_wanted(build(toy_dataset, io.StringIO()))


def test_the_display_stops_drawing_while_the_console_prompt_is_open(toy_dataset):
    sim = build(toy_dataset, io.StringIO())
    screen, console = terminal()
    display = ProgressDisplay("rich", console=console).attach(sim)
    sim.run(until="37us")
    assert display.drawing and sim.printer is not None
    sim.notify("console_prompt", active=True)
    assert not display.drawing and sim.printer is None
    sim.notify("console_prompt", active=False)
    assert display.drawing and sim.printer is not None
    sim.run()
    display.close()
    assert not display.drawing
