"""Logging and scripting (CONSOLE.md): ``logging``, ``replay``, ``history``."""

from __future__ import annotations

from pathlib import Path

from nnsim.console.engine import Console, ConsoleError, command


@command(
    "logging",
    "log",
    "logging [FILE]",
    "Append every command entered to FILE (default nnsim-console.out).",
)
def _logging(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: logging [FILE]")
    path = Path(args[0] if args else "nnsim-console.out")
    if path.is_fifo():  # opening it would wait for a reader
        raise ConsoleError(f"cannot log to '{path}': it is a named pipe; give a regular file")
    try:
        with path.open("a"):
            pass  # the file can be written: later commands will be
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "not a usable path"
        raise ConsoleError(
            f"cannot log to '{path}': {reason}; give a file in a folder that exists"
        ) from None
    console.log_file = path
    console.emit(f"logging commands to {console.log_file}")


@command("replay", "rep", "replay [FILE]", "Run the commands of FILE (default nnsim-console.in).")
def _replay(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: replay [FILE]")
    console.replay(Path(args[0] if args else "nnsim-console.in"))


@command(
    "history",
    "h",
    "history [N]",
    "Show the last N commands (200 kept); !! !n !-n !str ?str, :p prints.",
)
def _history(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise ConsoleError("usage: history [N]")
    for number, line in console.history.last(int(args[0]) if args else None):
        console.emit(f"{number:>4}  {line}")
