"""Property tests: no command line breaks the console, and only a valid `set` changes state.

Random lines built from command names and short forms, names from the object
map, numbers, quotes, comments, history expansions and trigger punctuation
are thrown at ``Console(sim).execute``. Commands that run or end the
simulation, or touch files (run, continue, exit, quit, shutdown, replay,
logging, checkpoint), are left out: they change state by design.
"""

from __future__ import annotations

import enum
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import make_idx_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim import nn
from nnsim.console import Console
from nnsim.console.console import ALIASES, COMMANDS
from nnsim.console.objectmap import children, is_scalar
from nnsim.console.triggers import Trigger, TriggerError, Variable, parse_trigger
from nnsim.sim import Simulation
from nnsim.state import capture

# Numbers such as 1e400 read as float32 overflow to inf, with numpy's warning.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

EXCLUDED = {
    "run",
    "continue",
    "exit",
    "quit",
    "shutdown",
    "replay",
    "logging",
    "checkpoint",
}
FORBIDDEN_WORDS = {alias for alias, name in ALIASES.items() if name in EXCLUDED}
ALLOWED_WORDS = sorted(
    {alias for alias in ALIASES if alias not in FORBIDDEN_WORDS}
    | {COMMANDS[name].name for name in COMMANDS if name not in EXCLUDED}
    | {COMMANDS[name].short for name in COMMANDS if name not in EXCLUDED}
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_idx_dataset(tmp_path_factory.mktemp("fuzz") / "toy")


def build(dataset: Path) -> Simulation:
    sim = Simulation(seed=3, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(8), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.Adam(learning_rate=0.01, decay=0.01),
        controller=nn.BatchController(
            batch_size=32,
            epochs=1,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim)
    sim.start()
    return sim


def state_json(sim: Simulation) -> str:
    body, tensors = capture(sim)
    arrays = {
        name: (array.dtype.str, array.shape, array.tobytes()) for name, array in tensors.items()
    }
    return json.dumps(body, sort_keys=True) + repr(sorted(arrays.items()))


@dataclass(frozen=True)
class Names:
    """Names from the object map, three levels deep, to build command lines from."""

    paths: list[str]  # every path from the root, e.g. loss/optimizer/beta_1
    scalars: list[str]  # the paths of scalars (what set and watch take)
    arrays: list[str]  # the paths of arrays (what takes [i,j])
    leaves: list[str]  # bare names (valid after a cd) and made-up ones


@pytest.fixture(scope="module")
def object_names(dataset) -> Names:
    paths, scalars, arrays, leaves = [], [], [], set()

    def walk(value, prefix: str, depth: int) -> None:
        for name, (item, _) in children(value).items():
            leaves.add(name)
            paths.append(prefix + name)
            if is_scalar(item):
                scalars.append(prefix + name)
            elif isinstance(item, np.ndarray):
                arrays.append(prefix + name)
            elif depth:
                walk(item, prefix + name + "/", depth - 1)

    walk(build(dataset), "", 2)
    made_up = ["..", "/", ".", "../..", "nosuch", "loss/nosuch/x", "controller/", "//loss"]
    return Names(paths, scalars, arrays, sorted(leaves) + made_up)


def command_word():
    return st.sampled_from(ALLOWED_WORDS).flatmap(
        lambda word: st.sampled_from([word, word.upper(), word.capitalize()])
    )


INDICES = ["[0]", "[0,1]", "[3,4]", "[0,:5]", "[:,0]", "[0:2:1]", "[", "]", "[]", "[a]", "[-1]"]
PUNCTUATION = [
    "#", "!", "!!", "!1", "!-1", "!s", "?", "?s", ":", ":p", "'", '"', "\\", "-l", "-r", "-r2",
    "-rx", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "changed", "true", "false", "bc", "ac",
    "be", "ae", "all", "interactive", "printTrace", "printStatus", "set", ";", "$HOME", "*", "\t",
    "TRAINING", "VALIDATION",
]  # fmt: skip
OPERATORS = ["<", "<=", ">", ">=", "==", "!="]


def numbers():
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["0", "1", "2", "-1", "0x10", "1e-4", "nan", "inf", "4us", "yes", "3,4"]),
    )


def object_name(names: Names):
    """A path or name from the map (sometimes absolute, sometimes an array element)."""
    paths = st.sampled_from(names.paths)
    return st.one_of(
        paths,
        st.sampled_from(names.scalars),
        st.sampled_from(names.scalars),
        st.sampled_from(names.leaves),
        paths.map(lambda text: "/" + text),
        st.tuples(st.sampled_from(names.arrays), st.sampled_from(INDICES)).map("".join),
    )


def tokens(object_names: Names):
    junk = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
    return st.one_of(
        command_word(), object_name(object_names), numbers(), st.sampled_from(PUNCTUATION), junk
    )


def well_formed(object_names: Names):
    """Lines shaped like real commands, with random names and values in them."""
    name = object_name(object_names)
    value = st.one_of(numbers(), st.sampled_from(["true", "TRAINING", "VALIDATION", "abc", ""]))
    comparison = st.one_of(
        st.tuples(name, st.just("changed")).map(" ".join),
        st.tuples(name, st.sampled_from(OPERATORS), st.one_of(value, name)).map(" ".join),
    )
    trigger = st.lists(comparison, min_size=1, max_size=3).flatmap(
        lambda parts: st.lists(
            st.sampled_from(["&&", "||"]), min_size=len(parts) - 1, max_size=len(parts) - 1
        ).map(lambda joins: " ".join(_interleave(parts, joins)))
    )
    index = st.sampled_from(["0", "1", "2", "-1", "x", "99"])
    action = st.sampled_from(
        ["interactive", "printTrace", "printStatus", "shutdown", "checkpoint", "bogus"]
    )
    set_action = st.tuples(st.just("set"), name, value).map(" ".join)
    return st.one_of(
        st.tuples(st.sampled_from(["cd", "chdir"]), name).map(" ".join),
        st.sampled_from(["ls", "ls -l", "list", "pwd", "cd ..", "cd /", "time", "wl", "h", "?"]),
        st.tuples(st.sampled_from(["p", "print", "p -r", "p -r2", "p -r0"]), name).map(" ".join),
        st.tuples(st.sampled_from(["set", "s"]), name, value).map(" ".join),
        st.tuples(st.sampled_from(["watch", "w"]), trigger).map(" ".join),
        st.tuples(
            st.sampled_from(["trace", "t"]),
            trigger,
            st.tuples(index, index).map(" ".join),
            st.lists(name, min_size=1, max_size=3).map(" ".join),
            st.one_of(action, set_action),
        ).map(lambda t: f"{t[0]} {t[1]} : {t[2]} : {t[3]} : {t[4]}"),
        st.tuples(st.sampled_from(["prw", "prt", "rst", "uw", "printTrace", "unwatch"]), index).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["shn", "setHandler"]), index, st.sampled_from(PUNCTUATION)).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["add", "addTraceVar"]), index, name).map(" ".join),
        st.tuples(st.sampled_from(["confirm", "cfm"]), st.sampled_from(["true", "false", "x"])).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["verbose", "v", "history", "h"]), numbers()).map(" ".join),
        st.tuples(st.sampled_from(["help", "?"]), command_word()).map(" ".join),
        st.sampled_from(["!!", "!1", "!-1", "!-9", "!s", "!p", "?set", "?wl", "!!:p", "!w:p"]),
    )


def _interleave(parts: list[str], joins: list[str]) -> list[str]:
    out = [parts[0]]
    for joiner, part in zip(joins, parts[1:], strict=True):
        out += [joiner, part]
    return out


def mangled(line: str, extra: list[str], where: int, how: int) -> str:
    """A well-formed line with a token added, dropped, commented out or quoted."""
    words = line.split(" ")
    position = where % (len(words) + 1)
    if how == 0:
        return line
    if how == 1 and extra:
        return " ".join([*words[:position], extra[0], *words[position:]])
    if how == 2 and len(words) > 1:
        return " ".join(words[:position] + words[position + 1 :])
    if how == 3:
        return " ".join([*words[:position], "#", *words[position:]])
    if how == 4:
        return " ".join([*words[:position], '"' + " ".join(words[position:])])
    return line.upper() if how == 5 else line


def lines(object_names: Names):
    """Mostly real-looking commands (some mangled); sometimes random tokens or any text."""
    parts = tokens(object_names)
    real = st.tuples(
        well_formed(object_names),
        st.lists(parts, max_size=1),
        st.integers(0, 20),
        st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5]),
    ).map(lambda t: mangled(*t))
    random_tokens = st.tuples(st.one_of(command_word(), parts), st.lists(parts, max_size=6)).map(
        lambda t: " ".join([t[0], *t[1]])
    )
    return st.one_of(real, real, real, real, random_tokens, st.text(max_size=30))


def command_word_of(line: str) -> str | None:
    """The command a line runs, read the way the console reads it (None: nothing runs)."""
    stripped = line.split("#", 1)[0].strip()
    word = stripped.partition(" ")[0].lower()
    return ALIASES.get(word) if word else None


def runs_forbidden(line: str) -> bool:
    stripped = line.split("#", 1)[0].strip()
    return stripped.partition(" ")[0].lower() in FORBIDDEN_WORDS


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_command_lines_never_raise_and_only_a_valid_set_changes_state(
    dataset, object_names, data
):
    sim = build(dataset)
    console = Console(sim)
    count = data.draw(st.integers(1, 8), label="commands")
    for _ in range(count):
        line = data.draw(lines(object_names).filter(lambda text: not runs_forbidden(text)))
        before = state_json(sim)
        history_size = console.history.count
        output = console.execute(line)
        assert isinstance(output, str)
        ran = console.history.entries[-1][1] if console.history.count > history_size else None
        assert ran is None or not runs_forbidden(ran), "history expansion ran a forbidden command"
        valid_set = (
            ran is not None and command_word_of(ran) == "set" and not output.startswith("Error:")
        )
        if not valid_set:
            assert state_json(sim) == before, f"{line!r} changed the state:\n{output}"
        assert not sim.finished


# Triggers ----------------------------------------------------------------------------------------
class Mode(enum.Enum):
    TRAINING = 0
    VALIDATION = 1


VALUES = {
    "epoch": 3,
    "rate": 0.001,
    "flag": True,
    "name": "dense1",
    "state": Mode.TRAINING,
    "small": np.float32(0.5),
    "count": np.int64(7),
    "missing": None,
}


def resolve(name: str) -> Variable:
    if name not in VALUES:
        raise TriggerError(f"no '{name}' here")
    return Variable(name, lambda: VALUES[name], "controller")


def trigger_tokens():
    """Token lists: shaped like triggers (``a < 3 && b changed``) or anything at all."""
    anything = st.one_of(
        st.sampled_from(sorted(VALUES)),
        st.sampled_from(["<", "<=", ">", ">=", "==", "!=", "&&", "||", "changed", "=", "!"]),
        st.sampled_from(["0", "1", "-1", "1e400", "nan", "true", "TRAINING", "7", "0x3", ""]),
        st.integers(-(2**80), 2**80).map(str),
        st.floats().map(repr),
        st.text(max_size=5),
    )
    variable = st.sampled_from(sorted(VALUES))
    comparison = st.one_of(
        st.tuples(variable, st.just("changed")).map(list),
        st.tuples(variable, st.sampled_from(OPERATORS), st.one_of(variable, anything)).map(list),
    )
    shaped = st.lists(
        st.tuples(st.sampled_from(["&&", "||"]), comparison), min_size=1, max_size=4
    ).map(lambda parts: [token for _, tokens in parts for token in tokens] and _joined(parts))
    return st.one_of(st.lists(anything, max_size=9), shaped, shaped)


def _joined(parts: list[tuple[str, list[str]]]) -> list[str]:
    tokens = list(parts[0][1])
    for joiner, comparison in parts[1:]:
        tokens += [joiner, *comparison]
    return tokens


def parses_or_raises_trigger_error(tokens: list[str]) -> None:
    """parse_trigger returns a working Trigger or raises TriggerError, nothing else."""
    try:
        trigger = parse_trigger(tokens, resolve)
    except TriggerError:
        return
    assert isinstance(trigger, Trigger)
    assert isinstance(trigger.holds(), bool)
    assert isinstance(trigger.holds(), bool)  # again: "changed" now compares with the last check
    assert isinstance(trigger.describe(), str)
    assert len(trigger.comparisons()) == 1 + sum(token in ("&&", "||") for token in tokens[1:])


@settings(max_examples=400, deadline=None)
@given(trigger_tokens())
def test_random_triggers_parse_or_raise_trigger_error(tokens):
    parses_or_raises_trigger_error(tokens)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_random_trigger_text_parses_or_raises_trigger_error(text):
    parses_or_raises_trigger_error(text.split())
