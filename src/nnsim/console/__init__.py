"""The interactive debug console (CONSOLE.md): ``Console(sim).execute("cd loss/optimizer")``."""

from nnsim.console.console import COMMANDS, Console, ConsoleError

__all__ = ["COMMANDS", "Console", "ConsoleError"]
