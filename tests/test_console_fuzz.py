"""Property tests: no command line breaks the console, and only a valid `set` changes state.

Random lines built from command names and short forms, names from the object
map, numbers, quotes, comments, history expansions and trigger punctuation
are thrown at ``Console(sim).execute``. Commands that run or end the
simulation, or touch files (run, continue, exit, quit, shutdown, replay,
logging, checkpoint), are left out: they change state by design.

Then hostile lines (issue 8) for those commands too: zero slice steps, huge
numbers, nan and inf, times past the kernel's int64 picoseconds, binary and
NUL bytes, replay chains deeper than the limit, paths that cannot be written,
bad checkpoint names, sets the running state cannot honour — as typed, inside
a replay file, and as raw bytes on standard input. Each is one ``Error:``
line that changes nothing, and afterwards the run still runs and checkpoints.
"""

from __future__ import annotations

import enum
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import make_idx_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_console_bad_input import without_echo

from nnsim import nn
from nnsim.checkpoint.manager import enable
from nnsim.console import Console
from nnsim.console.console import ALIASES, COMMANDS, MAX_REPLAY_DEPTH
from nnsim.console.objectmap import children, is_scalar
from nnsim.console.session import ConsoleSession
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


# Hostile lines (issue 8) --------------------------------------------------------------------------
@dataclass(frozen=True)
class Files:
    """Files the hostile lines name: binary replays, a chain deeper than the limit, a folder."""

    folder: Path
    binary: Path
    nul: Path
    chain: Path  # the head of a chain of MAX_REPLAY_DEPTH + 8 replays
    missing: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    folder = tmp_path_factory.mktemp("hostile")
    binary, nul = folder / "binary.in", folder / "nul.in"
    binary.write_bytes(bytes(range(256)) * 4)
    nul.write_bytes(b"pwd\n\x00\x00ls\n")
    depth = MAX_REPLAY_DEPTH + 8
    for index in range(depth):
        body = f"replay {folder / f'chain{index + 1}.in'}\n" if index < depth - 1 else "pwd\n"
        (folder / f"chain{index}.in").write_text(body)
    os.mkfifo(folder / "pipe")  # opening it for reading or writing would block
    return Files(folder, binary, nul, folder / "chain0.in", folder / "no" / "such.in")


HUGE_NUMBERS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1" + "0" * 400,
    "-1" + "0" * 400, "0x" + "f" * 40,
]  # fmt: skip
"""Refused by every scalar type: not finite as a float, past 64 bits as an int, not a name."""
ARRAY_NUMBERS = [*HUGE_NUMBERS, "1e39", "-3.5e38", str(2**63)]  # arrays hold float32 or int64
HUGE_TIMES = [
    "99999999999999999999999s", "9223372036854775808", "9223372036854775808ps", "1e7s",
    "10000000s", "1e99ps", "nan", "infs", "-1us", "1" + "0" * 60 + "us",
]  # fmt: skip
ZERO_STEPS = ["[::0]", "[0,::0]", "[1:5:0]", "[0,0:3:0]", "[::-0]"]
BAD_NAMES = ["../escape", "latest", ".hidden", "a/b", "x" * 201, "-dash", "bad\x00name", "'"]
JUNK = ["\x00", "\ufffd", "\udcff", "\x1b[2J", "\x7f", "\u202e", "\\x00"]


def hostile_line(names: Names, files: Files):
    """A line that must be refused: one ``Error:`` line, nothing changed."""
    scalar = st.sampled_from(
        [path for path in names.scalars if not path.endswith(("name", "images", "dtype"))]
    )
    bad_path = st.sampled_from(
        [
            "/",
            "/no/such/dir/f",
            str(files.folder),
            str(files.binary / "below"),
            "a\x00b",
            "/proc/self/mem/x",
            str(files.folder / "pipe"),
        ]
    )
    replayed = st.sampled_from(
        [files.binary, files.nul, files.chain, files.folder, files.missing, files.folder / "pipe"]
    ).map(str)
    running_state = st.sampled_from(
        [
            "set controller/step 50",
            "set controller/step -1",
            "set controller/step 99999999",
            "set controller/batch_size 0",
            "set controller/state EVALUATION",
            "set controller/order[0] 99999",
            "set dense1/input_size 5",
            "set dense1/output_size 9",
            "set input/size 5",
            "set dense2/dtype float64",
            "set loss/optimizer/epsilon 0",
            "set loss/optimizer/epsilon -1e-9",
            "set loss/optimizer/beta_1 1.5",
        ]
    )
    line = st.one_of(
        st.tuples(
            st.sampled_from(["p", "print"]),
            st.sampled_from(names.arrays),
            st.sampled_from(ZERO_STEPS),
        ).map(lambda t: f"{t[0]} {t[1]}{t[2]}"),
        st.tuples(st.sampled_from(["set", "s"]), scalar, st.sampled_from(HUGE_NUMBERS)).map(
            " ".join
        ),
        st.tuples(
            st.sampled_from(names.arrays),
            st.sampled_from(["[0]", "[0,0]"]),
            st.sampled_from(HUGE_NUMBERS),
        ).map(lambda t: f"set {t[0]}{t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["run", "r", "continue", "c"]), st.sampled_from(HUGE_TIMES)).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["replay", "rep"]), replayed).map(" ".join),
        st.tuples(st.sampled_from(["logging", "log"]), bad_path).map(" ".join),
        st.tuples(st.sampled_from(["checkpoint", "cpt"]), st.sampled_from(BAD_NAMES)).map(
            lambda t: f"{t[0]} {json.dumps(t[1])}"  # quoted, as one argument
        ),
        running_state,
    )
    # Any case for the command word, junk appended (never before the arguments: "run" alone runs).
    junk = st.one_of(
        st.just([]), st.just([]), st.just([]), st.lists(st.sampled_from(JUNK), max_size=2)
    )
    return st.tuples(line, st.booleans(), junk).map(
        lambda t: " ".join([_shout(t[0]) if t[1] else t[0], *t[2]])
    )


def _shout(line: str) -> str:
    word, _, rest = line.partition(" ")
    return f"{word.upper()} {rest}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_lines_are_one_error_line_and_the_run_still_runs_and_checkpoints(
    dataset, object_names, files, data
):
    sim = build(dataset)
    with tempfile.TemporaryDirectory() as folder:
        enable(sim, folder, announce=False)
        console = Console(sim)
        if data.draw(st.booleans(), label="mid-run"):
            console.execute("run 20us")  # a batch in the chain: the running state must hold
        for _ in range(data.draw(st.integers(1, 5), label="lines")):
            line = data.draw(hostile_line(object_names, files), label="line")
            if data.draw(st.booleans(), label="from a replay file"):
                script = Path(folder) / "hostile.in"
                script.write_text(line + "\n", errors="surrogateescape")
                line = f"replay {script}"
            before = state_json(sim)
            output = without_echo(console.execute(line))
            assert output.startswith("Error: ") and "\n" not in output, (line, output)
            assert state_json(sim) == before, (line, output)
            assert not sim.finished
        assert console.log_file is None
        assert console.execute("checkpoint").startswith("wrote checkpoint checkpoint_")
        assert console.execute("run 1us").startswith("Entering interactive mode")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"\xff\xfe", b"\x00", b"p dense1/weights[::0]", b"run 1e99s", b"\n"]),
        ),
        max_size=8,
    )
)
def test_raw_bytes_on_standard_input_never_break_the_console(dataset, chunks):
    sim = build(dataset)
    stdin = io.TextIOWrapper(io.BytesIO(b"".join(chunks) + b"\n"), encoding="utf-8")
    stdout = io.StringIO()
    ConsoleSession(sim, interactive_start=0, stdin=stdin, stdout=stdout).run()
    assert sim.finished  # the end of input ran the simulation to its end
    assert "Traceback" not in stdout.getvalue()
