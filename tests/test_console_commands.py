"""Every console command through Console(sim).execute, as CONSOLE.md specifies them."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from nnsim import nn
from nnsim.console import COMMANDS, Console
from nnsim.nn.controller import State
from nnsim.sim import Simulation
from nnsim.state import capture


@pytest.fixture
def sim(toy_dataset, eval_folder) -> Simulation:
    simulation = Simulation(seed=2, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(16), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01, decay=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=2,
            training_images=str(toy_dataset),
            test_images=str(toy_dataset),
            eval_images=str(eval_folder),
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


def test_every_command_has_a_long_and_short_form_and_help(console):
    names = {
        "help": "?",
        "confirm": "cfm",
        "verbose": "v",
        "pwd": "pwd",
        "cd": "chdir",
        "ls": "list",
        "print": "p",
        "time": "tm",
        "set": "s",
        "watch": "w",
        "trace": "t",
        "watchlist": "wl",
        "addTraceVar": "add",
        "printWatchPoint": "prw",
        "printTrace": "prt",
        "resetTrace": "rst",
        "setHandler": "shn",
        "unwatch": "uw",
        "run": "r",
        "continue": "c",
        "exit": "e",
        "quit": "q",
        "shutdown": "shutd",
        "checkpoint": "cpt",
        "logging": "log",
        "replay": "rep",
        "history": "h",
    }
    assert {cmd.name: cmd.short for cmd in COMMANDS.values()} == names
    listing = console.execute("help")
    for name in names:
        assert name in listing
        detail = console.execute(f"help {names[name]}")
        assert detail.startswith(f"{name} | {names[name]}:")


def test_commands_are_case_insensitive_and_comments_are_ignored(console):
    assert console.execute("PWD   # where am I") == "/ (Simulation)"
    assert console.execute("# only a comment") == ""


def test_navigation_pwd_cd_ls(console):
    assert "loss/ (nn.CategoricalCrossEntropy)" in console.execute("ls").splitlines()
    console.execute("cd loss")
    console.execute("cd optimizer")
    assert console.execute("pwd") == "loss/optimizer (nn.Adam)"
    console.execute("cd ..")
    assert console.execute("pwd") == "loss (nn.CategoricalCrossEntropy)"
    console.execute("cd /")
    console.execute("chdir loss/optimizer")
    listing = console.execute("list").splitlines()
    assert "learning_rate = 0.01 (float)" in listing
    assert "iterations = 0 (int)" in listing
    console.execute("cd /dense1")
    assert "weights/ (float32[784,16])" in console.execute("ls").splitlines()
    assert "weights/ (float32[784,16]) min" in console.execute("ls -l")


def test_cd_refuses_scalars_arrays_and_unknown_names(console):
    assert console.execute("cd controller/epoch").startswith(
        "Error: 'controller/epoch' is a scalar"
    )
    assert console.execute("cd dense1/weights").startswith("Error: 'dense1/weights' is an array")
    assert console.execute("cd lossy") == "Error: no 'lossy' in /; did you mean 'loss'?"
    assert console.execute("pwd") == "/ (Simulation)"


def test_base_class_members_are_visible(console):
    listing = console.execute("ls controller")
    assert listing.startswith("Error")  # ls takes no name; cd first
    console.execute("cd controller")
    names = [line.split(" ")[0].rstrip("/") for line in console.execute("ls").splitlines()]
    # `pending` is set by the Clocked base class, `clock` declared there too.
    assert "pending" in names and "clock" in names and "state" in names


def test_print_scalars_arrays_slices_elements_and_objects(console):
    assert console.execute("p controller/epochs") == "epochs = 2 (int)"
    assert console.execute("print controller/state") == "state = TRAINING (State)"
    row = console.execute("p dense1/weights[0,:5]")
    assert row.startswith("weights[0,:5] (float32[5]) = [")
    element = console.execute("p dense1/weights[3,4]")
    assert element.startswith("weights[3,4] = ") and element.endswith("(float32)")
    big = console.execute("p dense1/weights")
    assert "..." in big and len(big.splitlines()) < 20
    shallow = console.execute("p loss")
    assert shallow.splitlines()[0] == "loss/ (nn.CategoricalCrossEntropy)"
    deep = console.execute("p -r loss")
    assert "learning_rate = 0.01 (float)" in deep
    assert "learning_rate" not in console.execute("p -r1 loss")


def test_time_shows_ps_and_engineering_units(console, sim):
    sim.run(until="2500ns")
    assert console.execute("time") == "current time = 2500000 (2.5 us)"
    assert console.execute("tm") == console.execute("time")


def test_set_parses_as_the_current_type_and_bad_values_change_nothing(console, sim):
    optimizer = sim.components["loss"].optimizer
    assert console.execute("set loss/optimizer/learning_rate 0.001") == "learning_rate = 0.001"
    assert optimizer.learning_rate == 0.001
    before = state_json(sim)
    for line, fragment in [
        ("set loss/optimizer/learning_rate fast", "expected a number"),
        ("set loss/optimizer/iterations 1.5", "expected int"),
        ("set controller/state RUNNING", "TRAINING"),
        ("set loss/optimizer/beta_1 2", "must be <= 1.0"),
        ("set dense1/weights 0", "set works on scalars and array elements"),
        ("set nothing 1", "no 'nothing'"),
        ("set controller/epochs", "usage: set NAME VALUE"),
    ]:
        result = console.execute(line)
        assert result.startswith("Error: ") and fragment in result, (line, result)
    assert state_json(sim) == before


def test_set_enums_bools_strings_with_spaces_and_array_elements(console, sim):
    controller = sim.components["controller"]
    console.execute("set controller/state VALIDATION")
    assert controller.state == State.VALIDATION
    console.execute("set controller/pause_before_evaluation true")
    assert controller.pause_before_evaluation is True
    console.execute("set controller/eval_images  a folder with spaces")
    assert controller.eval_images == "a folder with spaces"
    console.execute("set dense1/weights[2,3] 0.25")
    assert sim.components["dense1"].weights[2, 3] == np.float32(0.25)


def test_repeated_set_never_corrupts_the_map(console, sim):
    for value in range(20):
        console.execute(f"set controller/epochs {value + 1}")
        console.execute(f"set dense1/weights[0,0] {value}")
    assert console.execute("p controller/epochs") == "epochs = 20 (int)"
    assert console.execute("p dense1/weights[0,0]") == "weights[0,0] = 19.0 (float32)"
    assert "weights/ (float32[784,16])" in console.execute("cd dense1") + console.execute("ls")


def test_watch_stops_when_the_trigger_holds_and_watchlist_shows_it(console, sim):
    console.execute("cd loss/optimizer")
    assert console.execute("watch iterations >= 3") == "Added watchpoint #0"
    assert console.execute("wl") == "0: BC AC BE AE : loss/optimizer/iterations >= 3 : interactive"
    output = console.execute("run")
    assert "Entering interactive mode at time" in output
    assert "reason: watchpoint 0 (loss/optimizer/iterations >= 3)" in output
    assert sim.components["loss"].optimizer.iterations == 3
    assert console.execute("prw 0") == console.execute("wl")


def test_triggers_join_left_to_right_with_changed_and_variable_comparisons(console, sim):
    console.execute("cd controller")
    console.execute("watch state changed || epoch > epochs")
    console.execute("run")
    assert sim.components["controller"].state == State.VALIDATION
    console.execute("confirm false")
    console.execute("unwatch")
    console.execute("watch step == 2 && epoch == 1")
    console.execute("run")
    controller = sim.components["controller"]
    assert (controller.epoch, controller.step) == (1, 2)


def test_trigger_errors_are_one_line_and_add_nothing(console):
    for line, fragment in [
        ("watch", "a trigger is needed"),
        ("watch controller/epoch", "needs 'changed' or an operator"),
        ("watch controller/epoch ~ 3", "unknown operator '~'"),
        ("watch controller/epoch > ", "needs a value"),
        ("watch controller/epoch > 1 &&", "must follow '&&'"),
        ("watch controller/epoch > 1 and controller/step > 1", "expected && or ||"),
        ("watch dense1/weights changed", "not a scalar"),
        ("watch controller/epoch > many", "expected int"),
        ("watch nowhere changed", "no 'nowhere'"),
    ]:
        result = console.execute(line)
        assert result.startswith("Error: ") and fragment in result, (line, result)
    assert console.execute("wl") == "no watchpoints"


def test_trace_keeps_samples_tags_them_and_prints_them(console, sim):
    line = "trace controller/state changed : 3 2 : controller/step controller/epoch : interactive"
    assert console.execute(line) == "Added watchpoint #0"
    assert console.execute("wl") == (
        "0: BC AC BE AE : controller/state changed : bufsize = 3 postDelay = 2 : "
        "controller/step controller/epoch : interactive"
    )
    console.execute("run")
    trace = console.execute("printTrace 0").splitlines()
    assert trace[0].startswith("trigger: ")
    tags = [entry.split("(")[1][0] for entry in trace[1:]]
    assert tags == ["-", "!", "+", "+"][-3:] or tags == ["!", "+", "+"]
    for entry in trace[1:]:
        assert entry.startswith("buf[") and " @" in entry and "controller/step=" in entry
    assert trace[1].split()[1] in ("BE", "AE", "BC", "AC")


def test_trace_overrun_when_post_delay_exceeds_the_buffer(console):
    console.execute("trace controller/state changed : 2 3 : controller/step : interactive")
    console.execute("run")
    tags = [entry.split("(")[1][0] for entry in console.execute("prt 0").splitlines()[1:]]
    assert tags[-1] == "o"


def test_reset_trace_add_trace_var_set_handler(console, sim):
    console.execute("trace controller/state changed : 4 1 : controller/step : printTrace")
    console.execute("add 0 controller/epoch loss/optimizer/iterations")
    assert "controller/step controller/epoch loss/optimizer/iterations" in console.execute("wl")
    console.execute("shn 0 ac ae")
    assert console.execute("wl").startswith("0: AC AE :")
    assert console.execute("shn 0 xx").startswith("Error: 'xx' is not a handler point")
    assert console.execute("shn 0 all").startswith("Error") is False
    console.execute("rst 0")
    assert console.execute("prt 0").splitlines() == ["trigger: not yet"]


def test_trace_actions_print_trace_set_and_print_status(console, sim):
    console.execute("trace controller/state changed : 2 0 : controller/step : printTrace")
    console.execute(
        "trace controller/epoch >= 1 : 1 0 : controller/epoch : set loss/optimizer/learning_rate 0.5"
    )
    console.execute(
        "trace loss/optimizer/learning_rate == 0.5 : 1 0 : controller/epoch : printStatus"
    )
    console.execute("watch controller/epoch >= 1 && controller/step >= 1")
    output = console.execute("run")
    assert "trigger: " in output and "buf[0]" in output
    assert sim.components["loss"].optimizer.learning_rate == 0.5
    assert (
        "controller (nn.BatchController): clock " in output
        and "state TRAINING, epoch 1/2" in output
    )


def test_actions_are_validated_when_the_trace_is_created(console):
    for line, fragment in [
        ("trace controller/step > 1 : 2 1 : controller/step : checkpoint", "--checkpoint-enable"),
        ("trace controller/step > 1 : 2 1 : controller/step : explode", "unknown action 'explode'"),
        (
            "trace controller/step > 1 : 2 1 : controller/step : set controller/epochs many",
            "expected an int",
        ),
        ("trace controller/step > 1 : 2 1 : controller/step", "four fields"),
        ("trace controller/step > 1 : x 1 : controller/step : interactive", "whole numbers"),
        ("trace controller/step > 1 : 2 1 : dense1/weights : interactive", "not a scalar"),
    ]:
        result = console.execute(line)
        assert result.startswith("Error: ") and fragment in result, (line, result)
    assert console.execute("wl") == "no watchpoints"


def test_shutdown_action_ends_the_run_cleanly(console, sim):
    console.execute("trace controller/epoch >= 1 : 1 0 : controller/epoch : shutdown")
    output = console.execute("run")
    assert sim.finished and sim.stop_reason == "shutdown"
    assert "Simulation ended" in output


def test_unwatch_one_or_all_with_confirmation(console, tmp_path):
    console.execute("watch controller/epoch > 5")
    console.execute("watch controller/step > 5")
    console.execute("uw 0")
    assert console.execute("wl").startswith("1: ")
    console.answers = iter(["no"])
    assert "Remove all watchpoints? (yes/no)" in console.execute("unwatch")
    assert console.execute("wl").startswith("1: ")
    console.answers = iter(["yes"])
    console.execute("unwatch")
    assert console.execute("wl") == "no watchpoints"
    assert console.execute("uw 7") == "Error: there is no watchpoint 7 (see watchlist)"


def test_watchpoints_cost_nothing_once_removed(console, sim):
    dense = sim.components["dense1"]
    clock_handler = dense.clocks[0]._handler
    console.execute("watch dense1/stats/forward_batches > 100")
    assert dense.clocks[0]._handler is not clock_handler
    console.execute("uw 0")
    assert dense.clocks[0]._handler == clock_handler
    assert sim.components["input"].links["forward_out"].send.target == dense.on_event


def test_run_time_continue_and_exit(console, sim):
    output = console.execute("run 5us")
    assert sim.now == 5_000_000 and "reason: run time elapsed" in output
    console.execute("c 1us")
    assert sim.now == 6_000_000
    console.execute("watch controller/epoch > 0")
    console.execute("confirm false")
    console.execute("exit")
    assert sim.finished
    assert console.execute("run").startswith("Error: the simulation has finished")


def test_logging_then_replay_gives_the_same_output(tmp_path, sim, toy_dataset, eval_folder):
    log = tmp_path / "session.log"
    first = Console(sim)
    outputs = [first.execute(f"logging {log}")]
    for line in [
        "cd loss/optimizer",
        "watch iterations >= 2",
        "run",
        "p iterations",
        "set learning_rate 0.02",
        "pwd",
    ]:
        outputs.append(first.execute(line))
    assert log.read_text().splitlines()[0] == "cd loss/optimizer"
    second_sim = Simulation(seed=2, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(16), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01, decay=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=2,
            training_images=str(toy_dataset),
            test_images=str(toy_dataset),
            eval_images=str(eval_folder),
            progress=False,
        ),
    ).build(second_sim)
    second_sim.start()
    replayed = Console(second_sim).execute(f"replay {log}").splitlines()
    # Each replayed command is echoed after the prompt, as if typed, then its output.
    assert replayed[0] == "[0 ps] /> cd loss/optimizer"
    assert replayed[1] == "[0 ps] /loss/optimizer> watch iterations >= 2"
    commands = [line for line in replayed if re.match(r"^\[[^\]]+\] /\S*> ", line)]
    assert len(commands) == 6 and commands[-1].endswith("/loss/optimizer> pwd")
    output = [line for line in replayed if line not in commands]
    assert output == "\n".join(part for part in outputs[1:] if part).splitlines()
    assert second_sim.now == sim.now


def test_replay_nested_and_self_inclusion_refused(console, tmp_path):
    inner = tmp_path / "inner.in"
    inner.write_text("cd loss\npwd\n")
    outer = tmp_path / "outer.in"
    outer.write_text(f"replay {inner}\ncd optimizer\npwd\n")
    assert console.execute(f"rep {outer}").splitlines() == [
        f"[0 ps] /> replay {inner}",
        "[0 ps] /> cd loss",
        "[0 ps] /loss> pwd",
        "loss (nn.CategoricalCrossEntropy)",
        "[0 ps] /loss> cd optimizer",
        "[0 ps] /loss/optimizer> pwd",
        "loss/optimizer (nn.Adam)",
    ]
    loop = tmp_path / "loop.in"
    loop.write_text(f"pwd\nreplay {loop}\n")
    assert "includes itself; refused" in console.execute(f"replay {loop}")
    assert console.execute(f"replay {tmp_path / 'missing.in'}").startswith(
        "Error: cannot read replay file"
    )


def test_confirm_answers_come_from_the_replay_file(console, tmp_path):
    script = tmp_path / "answers.in"
    script.write_text("watch controller/epoch > 3\nunwatch\nno\nwl\n")
    output = console.execute(f"replay {script}")
    assert "Remove all watchpoints? (yes/no)" in output
    assert output.splitlines()[-1].startswith("0: ")


def test_history_and_its_expansions(console):
    for line in ["pwd", "cd loss", "pwd", "time"]:
        console.execute(line)
    assert console.execute("history 3").splitlines() == [
        "   3  pwd",
        "   4  time",
        "   5  history 3",
    ]
    # Like bash, an expansion shows the command it runs, then its output.
    assert console.execute("!4").splitlines() == ["time", "current time = 0 (0 ps)"]
    assert console.execute("!!").splitlines() == ["time", "current time = 0 (0 ps)"]
    assert console.execute("!3") == "pwd\nloss (nn.CategoricalCrossEntropy)"
    assert console.execute("!-2:p") == "time"
    assert console.execute("!cd:p") == "cd loss"
    assert console.execute("?ime:p") == "time"
    assert console.execute("!nothing").startswith(
        "Error: !nothing: no command in the history starts with"
    )
    assert console.execute("!99").startswith("Error: !99: there is no command number 99")


def test_bad_commands_and_argument_counts_are_one_line_errors(console, sim):
    before = state_json(sim)
    for line in [
        "frobnicate",
        "cd a b",
        "ls x",
        "print a b",
        "confirm maybe",
        "history x",
        "run 1us 2us",
        "run soon",
        "prt x",
        "prw 3",
        "rst",
        "shn",
        "add 0",
        "uw 1 2",
        "checkpoint a b",
        "verbose x",
    ]:
        result = console.execute(line)
        assert result.startswith("Error: ") and "\n" not in result, (line, result)
    assert state_json(sim) == before


def test_checkpoint_command_needs_checkpoints_enabled(console, tmp_path, sim):
    assert "checkpoints are not enabled" in console.execute("checkpoint")
    from nnsim.checkpoint.manager import enable

    enable(sim, str(tmp_path / "ckpt"), announce=False)
    sim.run(until="3us")
    assert console.execute("cpt mine") == "wrote checkpoint mine"
    assert (tmp_path / "ckpt" / "mine" / "manifest.json").exists()


def test_verbose_shows_trigger_evaluations(console, sim):
    assert console.execute("verbose 1") == "verbose = 1"
    assert console.execute("v") == "verbose = 1"
    console.execute("watch controller/step >= 2")
    output = console.execute("run")
    checks = [line for line in output.splitlines() if line.startswith("  check wp 0 ")]
    assert checks and all("-> true (controller/step=" in line for line in checks)
    console.execute("verbose 2")
    console.execute("uw 0")
    console.execute("watch controller/epoch > 0")
    output = console.execute("run 40us")
    assert "-> false (controller/epoch=0)" in output
    console.execute("verbose 0")
    assert "check wp" not in console.execute("run 40us")


def test_prompt_shows_time_and_path(console):
    console.execute("cd loss")
    assert console.prompt() == "[0 ps] /loss> "


def test_console_works_after_a_restart(tmp_path, sim):
    from nnsim.state import restore

    sim.run(until="40us")
    restarted = restore(*capture(sim), output=io.StringIO())
    console = Console(restarted)
    console.execute("cd loss/optimizer")
    assert (
        console.execute("p iterations")
        == f"iterations = {sim.components['loss'].optimizer.iterations} (int)"
    )
    assert Path(tmp_path).exists()
