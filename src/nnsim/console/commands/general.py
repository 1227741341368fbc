"""General commands (CONSOLE.md): ``help``, ``confirm``, ``verbose``."""

from __future__ import annotations

from nnsim.console.engine import ALIASES, COMMANDS, Console, ConsoleError, command


@command("help", "?", "help [CMD]", "List the commands, or show one in detail.")
def _help(console: Console, args: list[str], rest: str) -> None:
    if args:
        name = ALIASES.get(args[0].lower())
        if name is None:
            raise ConsoleError(f"no command '{args[0]}'; type 'help' for the list")
        cmd = COMMANDS[name]
        console.emit(f"{cmd.name} | {cmd.short}: {cmd.usage}\n  {cmd.summary}")
        if cmd.details:
            console.emit("\n".join("  " + line for line in cmd.details.strip().splitlines()))
        return
    for cmd in COMMANDS.values():
        console.emit(f"  {cmd.name + ' | ' + cmd.short:<26} {cmd.summary}")


@command(
    "confirm",
    "cfm",
    "confirm true|false",
    "Ask yes/no before unwatch (all) and exit.",
    "The question is its own prompt, asked again until the answer is y, yes, n or no;\n"
    "answers come from the input stream, so a replay file can answer. Default true.",
)
def _confirm(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1 or args[0].lower() not in ("true", "false"):
        raise ConsoleError("usage: confirm true|false")
    console.confirm = args[0].lower() == "true"


@command(
    "verbose",
    "v",
    "verbose [MASK]",
    "Show trigger evaluation details (0 turns it off).",
    "MASK 1: print each check whose trigger holds; 2: print every check, with the\n"
    "values of the trigger's variables. Without MASK, show the current mask.",
)
def _verbose(console: Console, args: list[str], rest: str) -> None:
    if len(args) > 1:
        raise ConsoleError("usage: verbose [MASK]")
    if args:
        try:
            console.verbose = int(args[0], 0)
        except ValueError:
            raise ConsoleError(f"'{args[0]}' is not a number") from None
        console.hooks.report = console.report_check if console.verbose else None
    console.emit(f"verbose = {console.verbose}")
