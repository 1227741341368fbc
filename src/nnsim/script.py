"""Model scripts (SST's SDL): a Python file that builds the simulation `nnsim run` prepared.

A script calls ``nnsim.simulation()`` to get that simulation, adds components
and links (by hand or with ``nnsim.nn.Sequential``), and returns; nnsim runs
it. Any exception the script raises becomes one clear line naming the script.

Scripts read their own arguments; `ArgumentParser`, `finite_float` and
`int_between` make a bad one a single line too (``nn.py: argument
--learningRate: expected a finite number, got 'nan'``) instead of argparse's
usage text, and refuse nan, inf and out-of-range numbers that plain
``type=float`` lets through.
"""

from __future__ import annotations

import argparse
import math
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from nnsim.errors import ModelScriptError, NnsimError
from nnsim.sim import Simulation

_current: Simulation | None = None


def simulation() -> Simulation:
    """The simulation the running model script should build."""
    if _current is None:
        raise ModelScriptError(
            "no simulation is being built; run model scripts with 'nnsim run SCRIPT -- ARGS' "
            "(or build a nnsim.sim.Simulation yourself)"
        )
    return _current


class ArgumentParser(argparse.ArgumentParser):
    """argparse for model scripts: a bad argument raises ModelScriptError (one line, exit 1)."""

    def error(self, message: str):  # argparse's hook; it would print usage and exit 2
        raise ModelScriptError(f"{self.prog}: {message} ('-- --help' lists the arguments)")


def finite_float(text: str) -> float:
    """argparse ``type``: a finite number; nan and inf are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            wanted = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {wanted}, got {text!r}")
        return value

    parse.__name__ = "int"  # how argparse names the type in its messages
    return parse


def build_from_script(sim: Simulation, script: str | Path, args: list[str]) -> None:
    """Execute ``script`` with ``sys.argv = [script, *args]`` so that it builds ``sim``."""
    global _current
    path = Path(script)
    if not path.is_file():
        raise ModelScriptError(f"model script '{script}' does not exist")
    saved_argv = sys.argv
    sys.argv = [str(path), *args]
    _current = sim
    try:
        runpy.run_path(str(path), run_name="__main__")
    except (NnsimError, SystemExit):
        raise
    except Exception as error:  # the script's own bug: name it, keep the traceback for --debug
        line = _script_line(error, path)
        where = f" at line {line}" if line else ""
        raise ModelScriptError(
            f"model script '{script}' raised {type(error).__name__}{where}: {error}"
        ) from error
    finally:
        sys.argv = saved_argv
        _current = None


def _script_line(error: BaseException, path: Path) -> int | None:
    """The last line of the script in the traceback, if the script is in it."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line
