"""Even help everywhere (issue 12, items 6 and 9), through the real CLI.

A bare number is not a time; ``--set`` typos get a did-you-mean in ``run``
and ``sweep``; a script option typed before ``--`` says where it goes;
Ctrl-C in ``train`` is an interruption (status 130), not an error; ``-vv``
shows the model's events only.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, example_args, run_nnsim

UNITS = "units: ps, ns, us, ms, s"


def fast(dataset: Path, *extra: str) -> list[str]:
    return ["--", *example_args(dataset, None, "--epochs=1", "--evalImages=", *extra)]


@pytest.mark.parametrize(
    ("option", "name"),
    [
        (["--stop-at", "5"], "--stop-at"),
        (["--stop-at=50"], "--stop-at"),
        (["--interactive-start=5"], "--interactive-start"),
        (["--checkpoint-enable", "--checkpoint-period", "5"], "--checkpoint-period"),
    ],
)
def test_a_time_option_without_a_unit_is_refused_with_the_units(
    option, name, toy_dataset, tmp_path
):
    result = run_nnsim("run", EXAMPLE, *option, *fast(toy_dataset), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"nnsim: error: {name}: time '")
    assert "has no unit; write e.g. '" in result.stderr and UNITS in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert not (tmp_path / "checkpoints").exists()


def test_zero_alone_means_the_start_and_a_unit_is_enough(toy_dataset):
    result = run_nnsim(
        "run", EXAMPLE, "--interactive-start=0", "--stop-at=20us", *fast(toy_dataset)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Entering interactive mode at time 0\n  reason: start\n")
    assert result.stdout.endswith("Simulation is complete, simulated time: 20 us\n")


def test_the_console_refuses_run_with_a_bare_number(toy_dataset):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnsim.cli",
            "run",
            EXAMPLE,
            "--interactive-start",
            *fast(toy_dataset),
        ],
        input="run 5\ntime\nrun 5us\ntime\nshutdown\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].startswith("Error: time '5' has no unit; write e.g. '5us' (units: ps, ns")
    assert lines[3] == "current time = 0 (0 ps)"
    assert "current time = 5000000 (5 us)" in lines


def test_run_set_typos_get_a_did_you_mean(toy_dataset):
    for value, suggestion in [
        ("controler/epochs=2", "no component named 'controler'; did you mean 'controller/epochs'?"),
        (
            "controller/epoks=2",
            "controller has no attribute 'epoks'; did you mean 'controller/epochs'?",
        ),
        (
            "loss/optimizer/learnin_rate=0.1",
            "did you mean 'loss/optimizer/learning_rate'?",
        ),
        ("loss/optimzer/learning_rate=0.1", "did you mean 'loss/optimizer/learning_rate'?"),
    ]:
        result = run_nnsim("run", EXAMPLE, "--set", value, *fast(toy_dataset))
        assert result.returncode == 1, value
        assert result.stderr.startswith("nnsim: error: ") and suggestion in result.stderr, value
        assert len(result.stderr.splitlines()) == 1


def test_sweep_set_typos_get_a_did_you_mean(toy_dataset):
    result = run_nnsim(
        "sweep",
        EXAMPLE,
        "--set",
        "loss/optimizer/learnin_rate=0.1,0.2",
        "--jobs",
        "1",
        *fast(toy_dataset),
    )
    assert result.returncode == 1
    assert result.stdout.count("did you mean 'loss/optimizer/learning_rate'?") == 2


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_script_option_before_the_double_dash_says_where_it_goes(command):
    result = run_nnsim(command, EXAMPLE, "--epochs", "2")
    assert result.returncode == 2
    assert (
        f"Error: No such option: --epochs. Script arguments go after '--': "
        f"nnsim {command} {EXAMPLE} -- --epochs …"
    ) in result.stderr
    typo = run_nnsim("run", "--seed", "1", EXAMPLE, "--stop-ta", "5us")
    assert "No such option: --stop-ta. Did you mean --stop-at? Script arguments go after" in (
        typo.stderr
    )
    assert f"nnsim run {EXAMPLE} -- --stop-ta" in typo.stderr


TOY_TRAIN = """
[model]
hidden = [16]

[dataset]
name = "toy"
training = "{dataset}"
test = "{dataset}"

[training]
epochs = 100000
batch_size = 32

[output]
project_dir = "{project}"
"""


def test_ctrl_c_in_train_is_an_interruption_with_status_130(tmp_path, toy_dataset):
    config = tmp_path / "toy.toml"
    config.write_text(TOY_TRAIN.format(dataset=toy_dataset, project=tmp_path / "runs"))
    process = subprocess.Popen(
        [sys.executable, "-m", "nnsim.cli", "train", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        for line in process.stdout:
            if line.startswith("epoch 1 training"):
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.startswith("nnsim: training interrupted in epoch ")
    assert "continue it with: nnsim train --resume " in stderr
    assert "error" not in stderr and "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1


def test_double_verbose_shows_the_models_events_and_no_internal_entries(toy_dataset, tmp_path):
    result = run_nnsim(
        "run",
        "-vv",
        EXAMPLE,
        "--stop-at=30us",
        "--checkpoint-enable",
        "--checkpoint-period=10us",
        "--checkpoint-dir",
        str(tmp_path / "ck"),
        *fast(toy_dataset),
    )
    assert result.returncode == 0, result.stderr
    events = [line for line in result.stdout.splitlines() if line.startswith("# @")]
    assert events and "# @1000 ps controller.on_tick (clock)" in events
    for line in events:
        assert "_StopMarker" not in line and "None." not in line and "NoneType" not in line, line
