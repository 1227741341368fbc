"""The console's commands, grouped as CONSOLE.md groups them; importing registers them all.

Each module registers its commands on the engine's registry
(``nnsim.console.engine.command``) when imported. ``help`` lists commands in
registration order, so the imports below keep CONSOLE.md's order rather than
the alphabet's.
"""

# isort: off
from nnsim.console.commands import general
from nnsim.console.commands import navigation
from nnsim.console.commands import state
from nnsim.console.commands import watchpoints
from nnsim.console.commands import simulation
from nnsim.console.commands import scripting
# isort: on

__all__ = ["general", "navigation", "state", "watchpoints", "simulation", "scripting"]
