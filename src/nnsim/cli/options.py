"""Option types and command classes shared by the subcommands.

``TIME`` checks a simulated-time option when it is parsed, so ``--stop-at 5``
fails at once naming the option (a bare number is not a time: see
``nnsim.units.parse_time``). ``ScriptCommand`` is a command that passes
arguments after ``--`` to a model script; an unknown option tells the user
to put script arguments after ``--``, the usual slip.
"""

from __future__ import annotations

import difflib

import click

from nnsim.errors import UnitError
from nnsim.units import parse_time


class SimTime(click.ParamType):
    """A simulated time such as ``5ms`` or ``1GHz``; the option keeps the text as written."""

    name = "time"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        try:
            parse_time(str(value))
        except UnitError as error:
            option = param.opts[0] if param is not None and param.opts else "time"
            raise UnitError(f"{option}: {error}") from None
        return str(value)


TIME = SimTime()


class ScriptCommand(click.Command):
    """A command with a SCRIPT argument whose own arguments go after ``--``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        typed = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            # click's cutoff offers --csv for --epochs; only a near miss is worth naming here
            close = difflib.get_close_matches(
                error.option_name, sorted(error.possibilities or ()), n=1, cutoff=0.75
            )
            ours = f" Did you mean {' or '.join(close)}?" if close else ""
            raise click.UsageError(
                f"No such option: {error.option_name}.{ours} Script arguments go after '--': "
                f"nnsim {ctx.info_name} {self._script(typed)} -- {error.option_name} …",
                ctx,
            ) from None

    def _script(self, args: list[str]) -> str:
        """The first argument that is not an option or an option's value, as typed."""
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not (param.is_flag or param.count)
            for name in param.opts
        }
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg.startswith("-"):
                skip = arg in takes_value
            else:
                return arg
        return "SCRIPT"
