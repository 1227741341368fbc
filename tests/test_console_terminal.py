"""The console on a real terminal: `nnsim run --interactive-start` driven through tmux.

tmux gives the process a terminal of a fixed size; ``send-keys`` types and
``capture-pane`` reads the screen, so these tests see what a person sees:
the prompt, tab completion, arrow-key history, Ctrl-C during a run, and the
history file that persists across sessions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, example_args

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(
        subprocess.run(
            [sys.executable, "-c", "import prompt_toolkit"], capture_output=True
        ).returncode
        != 0,
        reason="prompt_toolkit (the console's terminal front end) is not installed",
    ),
]

TIMEOUT = 15.0  # seconds to wait for something to appear on the screen
EXITED = "[nnsim exited with status]"
PROMPT = re.compile(r"^\[(?P<time>[^\]]+)\] /(?P<path>[^>]*)> ?(?P<typed>.*)$")


class Terminal:
    """One nnsim process in a detached tmux session on its own server (socket)."""

    def __init__(self, folder: Path, home: Path, command: list[str]):
        self.socket = folder / "tmux.sock"
        self.home = home
        env = {
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "nnsim",
            "-x",
            "160",
            "-y",
            "50",
            "-c",
            str(REPO),
            # sh reports the exit status on the screen (tmux's own "Pane is dead (status N)"
            # may never come: it depends on tmux reaping the process); `trap : INT` keeps
            # sh alive through Ctrl-C while nnsim gets the default SIGINT handling.
            "sh",
            "-c",
            f'trap : INT; "$@"; echo "{EXITED} $?"',
            "sh",
            "env",
            *(f"{name}={value}" for name, value in env.items()),
            sys.executable,
            "-m",
            "nnsim.cli",
            *command,
            ";",
            "set-option",
            "-t",
            "nnsim",
            "remain-on-exit",
            "on",
        )

    def tmux(self, *args: str) -> str:
        environment = {key: value for key, value in os.environ.items() if key != "TMUX"}
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "nnsim", "-l", text)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "nnsim", *keys)

    def screen(self) -> str:
        """Everything on the screen and in the scrollback, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "nnsim")

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen().splitlines() if line.strip()]

    def wait_for(self, condition, what: str, timeout: float = TIMEOUT) -> str:
        """Poll the screen until ``condition(screen)`` holds; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; the screen shows:\n{screen}")
            time.sleep(0.05)

    def wait_for_text(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> str:
        return self.wait_for(lambda screen: screen.count(text) >= count, repr(text), timeout)

    def prompt_line(self) -> re.Match | None:
        """The prompt the cursor is on (the last prompt on the screen), if any."""
        for line in reversed(self.lines()):
            match = PROMPT.match(line.strip())
            if match:
                return match
        return None

    def wait_for_prompt(
        self, typed: str = "", path: str | None = None, timeout: float = TIMEOUT
    ) -> re.Match:
        def ready(_screen: str) -> bool:
            match = self.prompt_line()
            return bool(
                match
                and match["typed"].rstrip() == typed
                and (path is None or match["path"] == path)
            )

        self.wait_for(ready, f"a prompt at /{path or ''} showing {typed!r}", timeout)
        return self.prompt_line()

    def command(self, line: str, expect: str | None = None) -> None:
        """Type a command at the prompt and run it; wait for ``expect`` if given."""
        before = self.screen().count(expect) if expect else 0
        self.type(line)
        self.wait_for_prompt(typed=line)
        self.press("Enter")
        if expect:
            self.wait_for_text(expect, count=before + 1)

    def wait_for_exit(self, timeout: float = TIMEOUT) -> int:
        """Wait until nnsim has exited; return its exit status."""
        screen = self.wait_for(lambda s: EXITED in s, "nnsim to exit", timeout)
        return int(re.search(re.escape(EXITED) + r" (\d+)", screen).group(1))

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=TIMEOUT
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def terminals(tmp_path: Path, home: Path):
    """Start nnsim under tmux with ``start(*run_args)``; every session is killed at the end."""
    started: list[Terminal] = []

    def start(*run_args: str) -> Terminal:
        folder = tmp_path / f"tmux{len(started)}"
        folder.mkdir()
        terminal = Terminal(folder, home, ["run", EXAMPLE, *run_args])
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.kill()


def console_args(dataset: Path, epochs: int, *options: str) -> list[str]:
    # The progress bar is off: while the prompt waits, its refresh would overwrite it
    # (see test_the_progress_bar_does_not_overwrite_the_prompt).
    return [
        "--set",
        "controller/progress=false",
        *options,
        "--interactive-start=0",
        "--",
        *example_args(dataset, None, f"--epochs={epochs}"),
    ]


def test_prompt_completion_history_ctrl_c_and_exit_on_a_terminal(terminals, toy_dataset, home):
    terminal = terminals(*console_args(toy_dataset, 1_000_000))
    terminal.wait_for_text("Entering interactive mode at time 0")
    prompt = terminal.wait_for_prompt()
    assert (prompt["time"], prompt["path"]) == ("0 ps", "")  # simulated time and path
    assert "reason: start" in terminal.screen()

    # Tab completes a command ...
    terminal.type("he")
    terminal.wait_for(lambda s: re.search(r"^\s+help\s*$", s, re.M), "the completion menu")
    terminal.press("Tab")
    terminal.wait_for_prompt(typed="help")
    terminal.press("Enter")
    terminal.wait_for_text("confirm | cfm")

    # ... and a name at the current level, with a / for an object.
    terminal.type("cd lo")
    terminal.wait_for(lambda s: re.search(r"^\s+loss/\s*$", s, re.M), "the completion menu")
    terminal.press("Tab")
    terminal.wait_for_prompt(typed="cd loss/")
    terminal.press("Enter")
    terminal.wait_for_prompt(path="loss")
    terminal.command("pwd", expect="loss (nn.CategoricalCrossEntropy)")

    # Up recalls the previous command; Enter runs it again.
    terminal.wait_for_prompt(path="loss")
    terminal.press("Up")
    terminal.wait_for_prompt(typed="pwd", path="loss")
    terminal.press("Enter")
    terminal.wait_for_text("loss (nn.CategoricalCrossEntropy)", count=2)

    # Ctrl-C during a long run comes back to the prompt between events.
    terminal.wait_for_prompt(path="loss")
    terminal.command("run")
    terminal.wait_for_text("epoch 3 validation:")
    terminal.press("C-c")
    screen = terminal.wait_for_text("reason: interrupted (Ctrl-C)")
    assert re.search(r"Entering interactive mode at time [1-9]\d*\n\s*reason: interrupted", screen)
    prompt = terminal.wait_for_prompt(path="loss")
    assert prompt["time"] != "0 ps"

    # exit (without the question) runs to the end; one more epoch, then the predictions.
    terminal.command("confirm false")
    terminal.wait_for_prompt(path="loss")
    terminal.command("set /controller/epochs 1", expect="epochs = 1")
    terminal.wait_for_prompt(path="loss")
    terminal.command("exit")
    assert terminal.wait_for_exit() == 0
    screen = terminal.screen()
    assert "Survey says ### " in screen
    assert "Simulation is complete, simulated time: " in screen
    assert "Traceback" not in screen

    history = (home / "state" / "nnsim" / "console_history").read_text()
    assert "+cd loss/\n" in history and "+exit\n" in history
    assert not (home / ".local").exists()  # XDG_STATE_HOME wins over HOME


def test_completion_of_absolute_paths_and_of_help_on_a_terminal(terminals, toy_dataset):
    terminal = terminals(*console_args(toy_dataset, 1))
    terminal.wait_for_prompt()
    terminal.command("cd loss/optimizer")
    terminal.wait_for_prompt(path="loss/optimizer")

    # An absolute path completes from the root, not from the current level (decay).
    terminal.type("cd /de")
    screen = terminal.wait_for(
        lambda s: re.search(r"^\s+dense1/\s*$", s, re.M), "the root's names in the menu"
    )
    assert re.search(r"^\s+dense2/\s*$", screen, re.M)
    assert not re.search(r"^\s+decay\s*$", screen, re.M)
    terminal.press("C-u")
    terminal.type("cd /contr")
    # Tab once the menu shows: pressed while completions are still computed, it can be lost.
    terminal.wait_for(lambda s: re.search(r"^\s+controller/\s*$", s, re.M), "the menu")
    terminal.press("Tab")
    terminal.wait_for_prompt(typed="cd /controller/", path="loss/optimizer")
    terminal.press("Enter")
    terminal.wait_for_prompt(path="controller")

    # The word after help completes to a command name.
    terminal.type("help watchl")
    terminal.wait_for(lambda s: re.search(r"^\s+watchlist\s*$", s, re.M), "the menu")
    terminal.press("Tab")
    terminal.wait_for_prompt(typed="help watchlist", path="controller")
    terminal.press("Enter")
    terminal.wait_for_text("watchlist | wl: watchlist")
    terminal.wait_for_prompt(path="controller")
    terminal.command("exit")
    assert terminal.wait_for_exit() == 0


def test_the_yes_no_question_is_its_own_prompt_and_asks_again(terminals, toy_dataset):
    terminal = terminals(*console_args(toy_dataset, 1))
    terminal.wait_for_prompt()
    terminal.command("watch controller/epoch > 5", expect="Added watchpoint #0")
    terminal.wait_for_prompt()
    terminal.command("unwatch")
    question = "Remove all watchpoints? (yes/no)"
    terminal.wait_for(lambda s: s.rstrip().endswith(question), "the question as the prompt")
    assert PROMPT.match(terminal.lines()[-1].strip()) is None  # no time, no path: not "> "
    terminal.type("ls")
    terminal.press("Enter")
    terminal.wait_for_text("Please answer yes or no (y/n), not 'ls'.")
    terminal.wait_for(lambda s: s.rstrip().endswith(question), "the question asked again")
    terminal.type("n")
    terminal.press("Enter")
    terminal.wait_for_prompt()
    terminal.command("wl", expect="0: BC AC BE AE : controller/epoch > 5 : interactive")
    terminal.wait_for_prompt()
    terminal.command("confirm false")
    terminal.wait_for_prompt()
    terminal.command("exit")
    assert terminal.wait_for_exit() == 0
    assert "Traceback" not in terminal.screen()


def test_the_history_persists_across_sessions(terminals, toy_dataset):
    first = terminals(*console_args(toy_dataset, 1))
    first.wait_for_prompt()
    first.command("time", expect="current time = 0 (0 ps)")
    first.wait_for_prompt()
    first.command("cd controller")
    first.wait_for_prompt(path="controller")
    first.command("exit")
    assert first.wait_for_exit() == 0

    second = terminals(*console_args(toy_dataset, 1))
    second.wait_for_prompt()
    second.press("Up")
    second.wait_for_prompt(typed="exit")
    second.press("Up")
    second.wait_for_prompt(typed="cd controller")
    second.press("Enter")
    second.wait_for_prompt(path="controller")

    # `history` and `!n` see the earlier session too; an expansion shows what it runs.
    second.command("history", expect="   5  history")
    screen = second.screen()
    assert "   1  time\n   2  cd controller\n   3  exit\n   4  cd controller\n" in screen
    second.wait_for_prompt(path="controller")
    second.command("!1", expect="current time = 0 (0 ps)")
    assert re.search(r"/controller> !1\n\s*time\n\s*current time = 0", second.screen())
    second.wait_for_prompt(path="controller")
    second.command("!!", expect="current time = 0 (0 ps)")
    assert re.search(r"/controller> !!\n\s*time\n\s*current time = 0", second.screen())
    second.wait_for_prompt(path="controller")
    second.command("exit")
    assert second.wait_for_exit() == 0


def test_the_progress_bar_does_not_overwrite_the_prompt(terminals, toy_dataset):
    terminal = terminals(
        "--interactive-start=0", "--", *example_args(toy_dataset, None, "--epochs=1")
    )
    terminal.wait_for_text("Entering interactive mode at time 0")
    terminal.wait_for_prompt(timeout=3)
    terminal.type("time")
    terminal.wait_for_prompt(typed="time", timeout=3)
    # A bar refreshing 10 times a second would wipe it again soon: it must stay.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        prompt = terminal.prompt_line()
        assert prompt and prompt["typed"] == "time", terminal.screen()
        time.sleep(0.05)
