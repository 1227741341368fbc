"""A paused controller costs nothing while it waits, and a run with nothing left but waiting ends
(or enters the console) saying why and how to go on — through the real CLI (issue 12, item 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE, REPO, example_args

from nnsim.sim import Component, Simulation, Wait

SCRIPT = str(REPO / EXAMPLE)
PAUSE = "controller/pause_before_evaluation"
WAITING = "controller is paused (pause_before_evaluation = true) and nothing else is scheduled"


def nnsim(*args: str, stdin: str = "", cwd: Path = REPO) -> subprocess.CompletedProcess:
    # A paused run that spun would hit the timeout: the test fails instead of hanging.
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def predictions(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Prediction")]


def test_a_paused_run_with_nothing_to_do_ends_with_one_line_saying_why(toy_dataset, eval_folder):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    result = nnsim("run", EXAMPLE, "--set", f"{PAUSE}=true", "--", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert predictions(result.stdout) == []
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Simulation stopped at ")
    assert WAITING in last
    assert "--checkpoint-enable" in last and f"--set {PAUSE}=false" in last
    assert "Simulation is complete" not in result.stdout


def test_the_line_names_the_checkpoint_to_restart_and_that_restart_predicts(
    tmp_path, toy_dataset, eval_folder
):
    args = example_args(toy_dataset, eval_folder, "--epochs=2")
    straight = nnsim("run", EXAMPLE, "--", *args)
    assert len(predictions(straight.stdout)) == 2

    paused = nnsim(
        "run",
        SCRIPT,
        "--checkpoint-enable",
        "--checkpoint-dir=ckpt",
        "--checkpoint-every-epochs=1",
        "--set",
        f"{PAUSE}=true",
        "--",
        *args,
        cwd=tmp_path,
    )
    assert paused.returncode == 0, paused.stderr
    last = paused.stdout.splitlines()[-1]
    assert WAITING in last
    command = re.search(r"continue from its checkpoint with: (nnsim run .*)$", last).group(1)
    assert re.fullmatch(rf"nnsim run ckpt/checkpoint_2_\d+ --set {PAUSE}=false", command)
    restarted = nnsim(*command.split()[1:], cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert predictions(restarted.stdout) == predictions(straight.stdout)
    assert restarted.stdout.splitlines()[-1] == straight.stdout.splitlines()[-1]


def test_a_checkpoint_period_does_not_keep_a_paused_run_alive(tmp_path, toy_dataset, eval_folder):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    paused = nnsim(
        "run",
        SCRIPT,
        "--checkpoint-enable",
        "--checkpoint-dir=ckpt",
        "--checkpoint-period=20us",
        "--set",
        f"{PAUSE}=true",
        "--",
        *args,
        cwd=tmp_path,
    )
    assert paused.returncode == 0, paused.stderr
    assert WAITING in paused.stdout.splitlines()[-1]
    written = paused.stdout.count("# Simulation Checkpoint")
    assert written == len([p for p in (tmp_path / "ckpt").iterdir() if p.is_dir()])
    # The newest was taken while paused (clock off, queue empty): setting the flag wakes it.
    restarted = nnsim("run", "ckpt", "--set", f"{PAUSE}=false", cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    assert len(predictions(restarted.stdout)) == 2
    assert restarted.stdout.splitlines()[-1].startswith("Simulation is complete")


def test_a_stalled_run_enters_the_console_and_set_then_run_continues(toy_dataset, eval_folder):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    commands = (
        f"set {PAUSE} true\n"
        "run\n"
        "print controller/state\n"
        "run\n"  # still paused: back to the console at once, not a spin
        f"set {PAUSE} false\n"
        "run\n"
    )
    result = nnsim("run", EXAMPLE, "--interactive-start=0", "--", *args, stdin=commands)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    reason = (
        f"  reason: {WAITING}; 'set {PAUSE} false' then 'run' continues, 'shutdown' ends the run"
    )
    assert out.count(reason) == 2
    assert out.index(reason) < out.index("state = PRECHECK_EVALUATION (State)")
    assert len(predictions(out)) == 2
    assert out.splitlines()[-1].startswith("Simulation is complete")


def test_exit_from_the_console_ends_a_stalled_run_with_the_line(toy_dataset, eval_folder):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    result = nnsim(
        "run",
        EXAMPLE,
        "--interactive-start=0",
        "--",
        *args,
        stdin=f"set {PAUSE} true\nconfirm false\nexit\n",
    )
    assert result.returncode == 0, result.stderr
    assert WAITING in result.stdout.splitlines()[-1]
    assert predictions(result.stdout) == []


class Waiter(Component):
    """A primary component that never says the run may end, and sends nothing."""

    type_name = "test.Waiter"

    def setup(self) -> None:
        self.register_as_primary()
        self.primary_component_do_not_end_sim()


def test_the_kernel_reports_a_stalled_run_and_can_keep_it_resumable():
    sim = Simulation()
    sim.add(Waiter, "waiter")
    assert sim.run(end_when_stalled=False) == "stalled"
    assert not sim.finished
    assert sim.waiting() == [Wait("waiter (test.Waiter) has not said the run may end")]
    assert sim.stalled
    assert sim.run() == "stalled"
    assert sim.finished and sim.stop_reason == "stalled" and sim.stalled


def test_a_stop_at_reached_while_paused_says_why_too(toy_dataset, eval_folder):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    result = nnsim("run", EXAMPLE, "--stop-at=1s", "--set", f"{PAUSE}=true", "--", *args)
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Simulation stopped at 1 s: ") and WAITING in last
    running = nnsim("run", EXAMPLE, "--stop-at=10us", "--", *args)
    assert running.stdout.splitlines()[-1] == "Simulation is complete, simulated time: 10 us"


def test_a_checkpoint_period_starts_again_when_the_console_wakes_the_run(
    tmp_path, toy_dataset, eval_folder
):
    args = example_args(toy_dataset, eval_folder, "--epochs=1")
    commands = f"set {PAUSE} true\nrun\nset {PAUSE} false\nrun\n"
    result = nnsim(
        "run",
        SCRIPT,
        "--checkpoint-enable",
        "--checkpoint-dir=ckpt",
        "--checkpoint-period=5us",
        "--interactive-start=0",
        "--",
        *args,
        stdin=commands,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    woken = out.index("pause_before_evaluation = False")
    assert out[:woken].count(WAITING) == 1
    assert "# Simulation Checkpoint" in out[woken:]  # the period goes on while it predicts
    assert len(predictions(out)) == 2


PRECHECK_RECIPE = """\
set controller/pause_before_evaluation true
set controller/reload_eval_images true
trace controller/state changed && controller/state == PRECHECK_EVALUATION : 2 0 : controller/epoch : checkpoint
run
"""


def test_the_readme_recipe_checkpoints_before_evaluation_and_predicts_later(
    tmp_path, toy_dataset, eval_folder
):
    (tmp_path / "precheck.in").write_text(PRECHECK_RECIPE)
    args = example_args(toy_dataset, eval_folder, "--epochs=4")
    result = nnsim(
        "run",
        SCRIPT,
        "--checkpoint-enable",
        "--checkpoint-dir",
        "ckpt",
        "--replay",
        "precheck.in",
        "--",
        *args,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-5].startswith("epoch 3 validation:")
    assert lines[-4].startswith("# Simulation Checkpoint: Simulated Time ")
    assert lines[-3].startswith("Entering interactive mode at time ")
    assert lines[-2] == (
        f"  reason: {WAITING}; 'set {PAUSE} false' then 'run' continues, 'shutdown' ends the run"
    )
    command = re.search(r"continue from its checkpoint with: (nnsim run .*)$", lines[-1]).group(1)
    assert re.fullmatch(rf"nnsim run ckpt/checkpoint_1_\d+ --set {PAUSE}=false", command)

    other = tmp_path / "other"
    other.mkdir()
    (other / "trousers.png").write_bytes((eval_folder / "class1.png").read_bytes())
    checkpoint = command.split()[2]
    later = nnsim(
        "run",
        checkpoint,
        "--set",
        f"controller/eval_images={other}",
        "--set",
        f"{PAUSE}=false",
        cwd=tmp_path,
    )
    assert later.returncode == 0, later.stderr
    assert predictions(later.stdout) == [
        f"Prediction for {other / 'trousers.png'} ...\tSurvey says ### TROUSER"
    ]
