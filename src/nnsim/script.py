"""Model scripts (SST's SDL): a Python file that builds the simulation `nnsim run` prepared.

A script calls ``nnsim.simulation()`` to get that simulation, adds components
and links (by hand or with ``nnsim.nn.Sequential``), and returns; nnsim runs
it. Any exception the script raises becomes one clear line naming the script.
"""

from __future__ import annotations

import runpy
import sys
import traceback
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
