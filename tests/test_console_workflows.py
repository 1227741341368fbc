"""The console workflows of issue 4, through the real CLI, as a user runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE, REPO, example_args


def nnsim(*args: str, stdin: str = "", cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


PROMPT = re.compile(r"^\[[^\]]+\] /\S*> (?P<command>.*)$")


def without_prompts(stdout: str) -> str:
    """A replay's output without its echoed prompt lines: what the typed session printed."""
    return "".join(line for line in stdout.splitlines(True) if not PROMPT.match(line))


def final_validation_accuracy(stdout: str) -> float:
    lines = [
        line for line in stdout.splitlines() if line.startswith("epoch") and "validation" in line
    ]
    return float(lines[-1].split("acc: ")[1].split()[0])


STEER = """\
cd loss/optimizer
watch current_learning_rate changed
run
print current_learning_rate
run
set learning_rate 0.01
confirm false
unwatch
run
"""


def test_steering_the_learning_rate_beats_the_small_one_and_replays_identically(
    tmp_path, toy_dataset, eval_folder
):
    args = ["--", *example_args(toy_dataset, eval_folder, "--epochs=3", "--learningRate=0.0001")]
    untouched = nnsim("run", EXAMPLE, *args)
    assert untouched.returncode == 0, untouched.stderr

    log = tmp_path / "session.log"
    typed = nnsim("run", EXAMPLE, "--interactive-start=0", *args, stdin=f"logging {log}\n{STEER}")
    assert typed.returncode == 0, typed.stderr
    out = typed.stdout
    assert out.startswith("Entering interactive mode at time 0\n  reason: start\n")
    assert "reason: watchpoint 0 (loss/optimizer/current_learning_rate changed)" in out
    assert "current_learning_rate = 9.990009990009991e-05 (float)" in out
    assert "learning_rate = 0.01" in out
    assert out.count("Prediction for") == 2
    assert final_validation_accuracy(out) > final_validation_accuracy(untouched.stdout) + 0.2

    script = tmp_path / "steer.in"
    script.write_text(STEER)
    replayed = nnsim("run", EXAMPLE, "--replay", str(script), *args)
    assert replayed.returncode == 0, replayed.stderr
    without_logging_line = out.replace(f"logging commands to {log}\n", "")
    # The replay echoes each command after its prompt, so it reads as a typed session.
    echoed = [line for line in replayed.stdout.splitlines() if PROMPT.match(line)]
    assert [PROMPT.match(line)["command"] for line in echoed] == STEER.splitlines()
    assert echoed[1] == "[0 ps] /loss/optimizer> watch current_learning_rate changed"
    assert without_prompts(replayed.stdout) == without_logging_line

    assert log.read_text() == STEER
    from_log = nnsim("run", EXAMPLE, f"--replay={log}", *args)
    assert without_prompts(from_log.stdout) == without_logging_line


CHECKPOINT_AT_PRECHECK = """\
set controller/pause_before_evaluation true
set controller/reload_eval_images true
trace controller/state changed && controller/state == PRECHECK_EVALUATION : 2 0 : controller/epoch : checkpoint
watch controller/state changed && controller/state == PRECHECK_EVALUATION
run
print controller/state
set controller/pause_before_evaluation false
confirm false
exit
"""


def test_checkpoint_a_trained_model_at_a_safe_point_then_predict_new_images(
    tmp_path, toy_dataset, eval_folder
):
    ckpt = tmp_path / "ckpt"
    args = ["--", *example_args(toy_dataset, eval_folder, "--epochs=4", "--learningRate=0.01")]
    straight = nnsim("run", EXAMPLE, *args)
    straight_predictions = [
        line for line in straight.stdout.splitlines() if line.startswith("Prediction")
    ]
    assert len(straight_predictions) == 2

    session = nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        f"--checkpoint-dir={ckpt}",
        "--interactive-start=0",
        *args,
        stdin=CHECKPOINT_AT_PRECHECK,
    )
    assert session.returncode == 0, session.stderr
    out = session.stdout
    checkpoint_line = out.index("# Simulation Checkpoint: Simulated Time")
    entering = out.index("reason: watchpoint 1")
    assert checkpoint_line < entering  # written at the state change, before the console opens
    assert "state = PRECHECK_EVALUATION (State)" in out
    assert [
        line for line in out.splitlines() if line.startswith("Prediction")
    ] == straight_predictions
    names = [path.name for path in ckpt.iterdir() if path.is_dir()]
    assert len(names) == 1

    # Workflow 3: new predictions from that checkpoint.
    other = tmp_path / "other"
    other.mkdir()
    (other / "trousers.png").write_bytes((eval_folder / "class1.png").read_bytes())
    commands = (
        "print controller/pause_before_evaluation\n"
        "print controller/reload_eval_images\n"
        "print controller/eval_images\n"
        f"set controller/eval_images {other}\n"
        "set controller/pause_before_evaluation false\n"
        "run\n"
    )
    restarted = nnsim("run", str(ckpt / names[0]), "--interactive-start=0", stdin=commands)
    assert restarted.returncode == 0, restarted.stderr
    assert "pause_before_evaluation = True (bool)" in restarted.stdout
    assert "reload_eval_images = True (bool)" in restarted.stdout
    assert f"eval_images = {eval_folder} (str)" in restarted.stdout
    predictions = [line for line in restarted.stdout.splitlines() if line.startswith("Prediction")]
    assert predictions == [f"Prediction for {other / 'trousers.png'} ...\tSurvey says ### TROUSER"]

    same = nnsim("run", str(ckpt / names[0]), "--set", "controller/pause_before_evaluation=false")
    assert [
        line for line in same.stdout.splitlines() if line.startswith("Prediction")
    ] == straight_predictions


def test_bad_console_input_keeps_the_console_usable(toy_dataset, eval_folder):
    commands = "frobnicate\ncd controller/epoch\nset controller/epochs many\nwatch x ~ 1\ntrace a : b\nreplay /nope.in\npwd\ncontinue\n"
    result = nnsim(
        "run",
        EXAMPLE,
        "--interactive-start=0",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=1"),
        stdin=commands,
    )
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 6
    assert "/ (Simulation)" in result.stdout
    assert "Simulation is complete" in result.stdout


def test_end_of_input_continues_the_run_to_its_end(toy_dataset, eval_folder):
    result = nnsim(
        "run",
        EXAMPLE,
        "--interactive-start=20us",
        "--",
        *example_args(toy_dataset, eval_folder, "--epochs=1"),
        stdin="time\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Entering interactive mode at time 20000000" in result.stdout
    assert "current time = 20000000 (20 us)" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("Simulation is complete")


def test_ctrl_c_without_a_console_then_again_stops_the_run_cleanly(
    tmp_path, toy_dataset, eval_folder
):
    """Off a terminal with no input, the first Ctrl-C finds no commands; the second ends the run."""
    import signal
    import time

    stats = tmp_path / "stats.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnsim.cli",
            "run",
            EXAMPLE,
            f"--statistics={stats}",
            "--",
            *example_args(toy_dataset, eval_folder, "--epochs=20000"),
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Entering interactive mode" in stdout and "reason: interrupted (Ctrl-C)" in stdout
    assert stdout.rstrip().splitlines()[-1].startswith("Simulation is complete")
    assert "epoch 19999 validation" not in stdout
    assert stats.exists()  # finish ran and the outputs were written
