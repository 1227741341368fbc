"""Hostile console input (issue 8, item 7): one line each, nothing changed, the run goes on.

Through ``Console(sim).execute`` as a notebook drives it, and through the real
CLI (``--replay``, standard input) as a person at the prompt does.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest
from conftest import EXAMPLE, REPO, example_args

from nnsim import nn
from nnsim.checkpoint.manager import enable
from nnsim.console import Console
from nnsim.console.console import MAX_REPLAY_DEPTH
from nnsim.sim import Simulation
from nnsim.state import capture


@pytest.fixture
def sim(toy_dataset) -> Simulation:
    simulation = Simulation(seed=4, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(8), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=1,
            training_images=str(toy_dataset),
            test_images=str(toy_dataset),
            progress=False,
        ),
    ).build(simulation)
    simulation.start()
    return simulation


@pytest.fixture
def console(sim) -> Console:
    return Console(sim)


def state_json(sim: Simulation) -> str:
    body, tensors = capture(sim)
    return json.dumps(body, sort_keys=True) + repr({k: v.tobytes() for k, v in tensors.items()})


ECHO = re.compile(r"^\[[^\]]*\] /\S*> ")


def without_echo(output: str) -> str:
    """The output without the prompt-and-command lines a replay echoes (as a transcript)."""
    return "\n".join(line for line in output.splitlines() if not ECHO.match(line))


def assert_refused(console: Console, line: str, *fragments: str) -> str:
    """``line`` prints one ``Error:`` line holding ``fragments``, changes nothing, and the
    console still answers the next command."""
    before = state_json(console.sim)
    output = without_echo(console.execute(line))
    assert output.startswith("Error: ") and "\n" not in output, (line, output)
    for fragment in fragments:
        assert fragment in output, (line, output)
    assert state_json(console.sim) == before, line
    assert console.execute("time").startswith("current time = ")
    return output


def finishes(console: Console) -> None:
    console.execute("confirm false")
    output = console.execute("exit")
    assert "Simulation ended at" in output and console.sim.finished


def test_a_zero_slice_step_is_refused(console):
    assert_refused(console, "p dense1/weights[::0]", "slice step of 0")
    assert_refused(console, "p dense1/weights[0,1:5:0]", "slice step of 0")
    assert console.execute("p dense1/weights[0,0:4:2]").startswith("weights[0,0:4:2] (float32[2])")


def test_huge_indices_are_refused(console):
    assert_refused(console, "p dense1/weights[99999999999999999999999]", "index")
    assert_refused(console, "set dense1/weights[99999999999999999999999,0] 1", "index")


def test_a_binary_replay_file_is_refused(console, tmp_path):
    binary = tmp_path / "binary.in"
    binary.write_bytes(b"\xff\xfe\x00\x01pwd\n")
    assert_refused(console, f"replay {binary}", "is not UTF-8 text")
    nul = tmp_path / "nul.in"
    nul.write_bytes(b"pwd\n\x00ls\n")
    assert_refused(console, f"replay {nul}", "holds NUL bytes")
    assert_refused(console, "replay bad\x00name", "not a usable path")
    assert_refused(console, f"replay {tmp_path}", "cannot read replay file")


def test_named_pipes_are_refused_for_replay_and_logging_instead_of_blocking(console, tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_refused(console, f"replay {fifo}", "not a regular file")
    assert_refused(console, f"logging {fifo}", "it is a named pipe")


def test_a_chain_of_400_replays_is_cut_at_the_nesting_limit_in_one_line(console, tmp_path):
    for index in range(400):
        body = f"replay {tmp_path / f'r{index + 1}.in'}\n" if index < 399 else "pwd\n"
        (tmp_path / f"r{index}.in").write_text(body)
    output = assert_refused(console, f"replay {tmp_path / 'r0.in'}", "deeper than 32; refused")
    assert f"r{MAX_REPLAY_DEPTH}.in" in output
    # A chain within the limit runs to its end.
    (tmp_path / f"r{MAX_REPLAY_DEPTH - 1}.in").write_text("pwd\n")
    assert without_echo(console.execute(f"replay {tmp_path / 'r0.in'}")) == "/ (Simulation)"


@pytest.mark.parametrize(
    ("target", "reason"),
    [("/", "Is a directory"), ("/no/such/dir/f", "No such file or directory")],
)
def test_logging_to_a_path_that_cannot_be_written_is_refused_and_commands_go_on(
    console, target, reason
):
    assert_refused(console, f"logging {target}", f"cannot log to '{target}': {reason}")
    assert console.log_file is None
    assert console.execute("pwd") == "/ (Simulation)"
    assert_refused(console, "logging a\x00b", "not a usable path")


def test_logging_that_fails_later_stops_with_one_line(console, tmp_path):
    log = tmp_path / "folder" / "log.out"
    log.parent.mkdir()
    assert console.execute(f"logging {log}") == f"logging commands to {log}"
    log.unlink()
    log.parent.rmdir()  # the folder is gone: the next append fails
    output = console.execute("pwd")
    assert output.splitlines() == [
        f"Error: cannot log to '{log}': No such file or directory; logging stopped",
        "/ (Simulation)",
    ]
    assert console.execute("pwd") == "/ (Simulation)"


@pytest.mark.parametrize(
    "line", ["run 99999999999999999999999s", "run 9223372036854775808ps", "run 1e7s"]
)
def test_a_run_time_past_the_kernels_int64_picoseconds_is_refused(console, line):
    assert_refused(console, line, "too far: simulated time ends at 9.22337e+06 s")
    assert console.sim.now == 0
    finishes(console)


def test_a_run_that_would_end_past_the_last_time_is_refused(console, sim):
    console.execute("run 3us")
    assert_refused(console, "run 9223372036854775807ps", "past the end of simulated time")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_numbers_are_refused_for_parameters_scalars_and_array_elements(console, value):
    assert_refused(console, f"set loss/optimizer/learning_rate {value}", "finite")
    assert_refused(console, f"set controller/loss_sum {value}", "finite")
    assert_refused(console, f"set dense1/weights[0,0] {value}", "finite")


def test_numbers_beyond_their_type_are_refused(console):
    assert_refused(console, "set dense1/weights[0,0] 1e39", "finite float32 that fits")
    assert_refused(console, "set controller/epochs 99999999999999999999", "out of range")
    assert_refused(console, "set controller/epoch 99999999999999999999", "out of range")
    assert console.execute("set dense1/weights[0,0] 3e38") == "weights[0,0] = 3e+38"


def test_adams_epsilon_must_be_above_zero(console):
    assert_refused(console, "set loss/optimizer/epsilon 0", "must be > 0.0")
    assert_refused(console, "set loss/optimizer/epsilon -1e-9", "must be > 0.0")
    assert console.execute("set loss/optimizer/epsilon 1e-8") == "epsilon = 1e-08"


def test_a_layer_size_that_contradicts_the_weights_is_refused(console):
    assert_refused(console, "set dense1/input_size 5", "input_size is fixed once dense1 is built")
    assert_refused(console, "set dense1/output_size 9", "fixed")
    assert_refused(console, "set input/size 5", "fixed")
    assert_refused(console, "set dense1/dtype float64", "fixed")
    assert_refused(console, "set dense1/clock 2GHz", "fixed")
    assert console.execute("set dense1/input_size 784") == "input_size = 784"  # unchanged: fine
    assert console.execute("run 30us").startswith("Entering interactive mode")
    finishes(console)


def test_a_step_beyond_the_epoch_is_refused_during_a_run_instead_of_hanging(console, sim):
    console.execute("run 20us")
    controller = sim.components["controller"]
    assert controller.awaiting and controller.step == 1  # mid-epoch, a batch in the chain
    # 200 toy images in batches of 32: steps 0 to 6.
    assert_refused(console, "set controller/step 50", "epoch 0 training has steps 0 to 6")
    assert_refused(console, "set controller/step 7", "steps 0 to 6")
    assert_refused(console, "set controller/step -1", "step must be >= 0")
    assert_refused(console, "set controller/batch_size 500", "steps 0 to 0")
    assert_refused(console, "set controller/state EVALUATION", "evaluation has no steps")
    assert_refused(console, "set controller/awaiting false", "kept by the controller")
    assert_refused(console, "set controller/order[3] 200", "indices of the 200 training images")
    assert console.execute("set controller/step 5") == "step = 5"
    finishes(console)
    assert "epoch 0 training:" in sim.output.getvalue()


def test_a_trace_set_action_the_state_cannot_honour_is_refused_when_it_fires(console, sim):
    # Valid when created (training has 7 steps), not once validation (4 steps) begins.
    line = "trace controller/state changed : 1 0 : controller/step : set controller/step 6"
    assert console.execute(line) == "Added watchpoint #0"
    output = console.execute("run 200us")
    assert (
        "Error: watchpoint 0: cannot set controller/step: epoch 0 validation has steps 0 to 3"
        in output
    )
    assert "Simulation ended at" in output and sim.finished  # the run went on to its end


def test_a_bad_checkpoint_name_is_refused_and_checkpoints_keep_working(console, sim, tmp_path):
    enable(sim, str(tmp_path / "ckpt"), announce=False)
    console.execute("run 3us")
    for bad in ["../escape", "latest", ".hidden", "a/b", "x" * 201, "bad\x00name"]:
        assert_refused(console, f"checkpoint {bad!r}", "invalid checkpoint name")
    assert console.execute("checkpoint good") == "wrote checkpoint good"
    assert_refused(console, "checkpoint good", "already exists")
    assert console.execute("checkpoint").startswith("wrote checkpoint checkpoint_")
    console.execute("run 3us")
    assert console.execute("checkpoint later") == "wrote checkpoint later"
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir() if path.is_dir()) == [
        "checkpoint_2_3000000",
        "good",
        "later",
    ]
    finishes(console)


# Through the real CLI -----------------------------------------------------------------------
def nnsim(*args: str, stdin: bytes = b"", env_extra: dict | None = None):
    import os

    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "nnsim.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=300,
        env=env,
    )


def test_bad_lines_through_the_cli_each_give_one_error_and_the_run_completes(tmp_path, toy_dataset):
    chain = tmp_path / "chain"
    chain.mkdir()
    for index in range(400):
        body = f"replay {chain / f'{index + 1}.in'}\n" if index < 399 else "pwd\n"
        (chain / f"{index}.in").write_text(body)
    binary = tmp_path / "binary.in"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    lines = [
        "p dense1/weights[::0]",
        f"replay {binary}",
        "logging /",
        "logging /no/such/dir/f",
        f"replay {chain / '0.in'}",
        "run 99999999999999999999999s",
        "set loss/optimizer/learning_rate nan",
        "set loss/optimizer/epsilon 0",
        "set dense1/input_size 5",
        "checkpoint ../bad",
        "run 20us",
        "set controller/step 50",
        "checkpoint good",
    ]
    script = tmp_path / "bad.in"
    script.write_text("\n".join(lines) + "\n")
    args = example_args(toy_dataset, None, "--epochs=1")
    result = nnsim(
        "run",
        EXAMPLE,
        "--checkpoint-enable",
        f"--checkpoint-dir={tmp_path / 'ckpt'}",
        "--replay",
        str(script),
        "--",
        *args,
        stdin=b"pwd\n\xff\xfe\x00junk\nls\n",
    )
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stdout + stderr
    errors = [line for line in stdout.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 12, "\n".join(errors)  # one per bad line, then the junk from stdin
    assert errors[-1].startswith("Error: unknown command '\ufffd\ufffd\\x00junk'")
    assert "wrote checkpoint good" in stdout
    assert (tmp_path / "ckpt" / "good" / "manifest.json").exists()
    assert stdout.rstrip().splitlines()[-1].startswith("Simulation is complete")


def test_a_binary_replay_file_given_to_nnsim_run_is_one_error_line(tmp_path, toy_dataset):
    binary = tmp_path / "binary.in"
    binary.write_bytes(bytes(range(256)))
    args = example_args(toy_dataset, None, "--epochs=1")
    result = nnsim("run", EXAMPLE, "--replay", str(binary), "--", *args)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert [line for line in stdout.splitlines() if line.startswith("Error: ")] == [
        f"Error: replay file '{binary}' is not UTF-8 text (byte 128); "
        "a replay file holds console commands"
    ]
