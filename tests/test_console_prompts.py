"""The console's rough edges of issue 12: completion, questions, history, entries, traces."""

from __future__ import annotations

from pathlib import Path

import test_console_commands as shared

from nnsim.console import Console
from nnsim.console.complete import completions
from nnsim.console.history import History

sim, console = shared.sim, shared.console  # the fixtures of the command tests


def texts(console: Console, line: str) -> list[str]:
    return [text for text, _ in completions(console, line)]


def test_the_first_word_completes_to_commands(console):
    assert texts(console, "he") == ["help"]
    assert "watch" in texts(console, "w") and "watchlist" in texts(console, "w")
    assert completions(console, "") and all(text for text, _ in completions(console, ""))


def test_help_completes_command_names_not_paths(console):
    found = completions(console, "help w")
    assert ("watch", 1) in found and ("watchlist", 1) in found
    assert "w" in texts(console, "? w")  # the short form of watch, as `help` spells it
    assert texts(console, "help tr") == ["trace"]


def test_an_absolute_path_completes_from_the_root_wherever_one_is(console):
    console.execute("cd /loss/optimizer")
    assert "decay" in texts(console, "p de")  # relative: the current level
    assert texts(console, "cd /de") == ["dense1/", "dense2/"]
    assert completions(console, "cd /co") == [("controller/", 2)]
    assert sorted(texts(console, "p /controller/epo")) == ["epoch", "epochs"]
    assert texts(console, "cd /") == texts(Console(console.sim), "cd ")


def test_a_relative_path_completes_along_the_path(console):
    assert completions(console, "cd lo") == [("loss/", 2)]
    assert "optimizer/" in texts(console, "cd loss/o")
    console.execute("cd loss/optimizer")
    assert "controller/" in texts(console, "cd ../../co")
    assert texts(console, "p nothing/x") == []  # a bad path completes nothing, quietly


def test_confirm_asks_apart_from_the_prompt_and_re_asks_until_yes_or_no(console):
    console.execute("watch controller/epoch > 5")
    questions: list[str] = []
    answers = iter(["ls", "maybe", "", "n"])

    def read(question: str) -> str:
        questions.append(question)
        return next(answers)

    console.read_answer = read
    output = console.execute("unwatch")
    assert questions == ["Remove all watchpoints? (yes/no) "] * 4
    assert not questions[0].startswith("[")  # the command prompt is "[time] /path> "
    assert output.splitlines() == [
        "Please answer yes or no (y/n), not 'ls'.",
        "Please answer yes or no (y/n), not 'maybe'.",
        "Please answer yes or no (y/n), not ''.",
    ]
    assert console.execute("wl").startswith("0: ")  # "n": nothing removed, ls never ran
    console.read_answer = lambda question: "y"
    console.execute("unwatch")
    assert console.execute("wl") == "no watchpoints"


def test_a_replayed_answer_is_shown_after_the_question(console, tmp_path: Path):
    script = tmp_path / "answers.in"
    script.write_text("watch controller/epoch > 3\nunwatch\nwl\nYes\n")
    output = console.execute(f"replay {script}").splitlines()
    assert "Remove all watchpoints? (yes/no) wl" in output
    assert "Please answer yes or no (y/n), not 'wl'." in output
    assert "Remove all watchpoints? (yes/no) Yes" in output
    assert console.execute("wl") == "no watchpoints"


def test_history_loads_earlier_sessions_and_expands_their_references():
    history = History()
    history.load(["pwd", "cd loss", "!!", "!1:p", "# a comment", "!nothing", "time # now"])
    assert history.last() == [(1, "pwd"), (2, "cd loss"), (3, "cd loss"), (4, "time")]
    history.add("ls")
    assert history.expand("!2") == ("cd loss", False)


def test_exit_after_a_run_cut_short_by_a_watchpoint_runs_to_the_end_quietly(console, sim):
    console.execute("confirm false")
    console.execute("watch controller/step >= 3")  # holds at several handler points at once
    console.execute("run 1ms")
    assert "reason: watchpoint 0" in console.execute("run 1ms")
    output = console.execute("exit")
    assert sim.finished
    assert "Entering interactive mode" not in output and "reason: end" not in output
    assert output.startswith("Simulation ended at ")


def test_one_entry_when_a_watchpoint_holds_at_several_points_of_one_time(console, sim):
    console.execute("watch controller/step >= 3")
    first = console.execute("run")
    assert first.count("Entering interactive mode") == 1
    now = sim.now
    console.execute("uw 0")
    console.execute("run 1us")
    assert sim.now == now + 10**6  # no stale break left at the old time


def test_print_trace_after_the_action_ran_shows_that_firing(console):
    console.execute("trace controller/step >= 3 : 4 2 : controller/step : printStatus")
    console.execute("run 100us")
    trace = console.execute("prt 0").splitlines()
    assert trace[0].startswith("trigger: ") and "not yet" not in trace[0]
    assert "controller/step=" in trace[0] and "(fired; re-armed since" in trace[0]
    tags = [line.split("(")[1][0] for line in trace[1:]]
    assert "!" in tags and tags[-1] == "+"
    console.execute("rst 0")
    assert console.execute("prt 0") == "trigger: not yet"  # resetTrace forgets the firing too
