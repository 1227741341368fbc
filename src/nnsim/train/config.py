"""The training config: typed sections, read from TOML, overridden from the command line.

Precedence, lowest first: the defaults below < the TOML file < command-line
flags (``--max-epochs``, ``--learning-rate``, ...) < ``--set KEY=VALUE``::

    config = load_config("train.toml", flags={"training.epochs": 3},
                         sets=["training.optimizer.beta_2=0.99"])

Every key is checked: an unknown one is an error naming its dotted path and
the closest valid key, a value of the wrong type names the key, the type
wanted and the value given. Paths of input files (datasets, a model script)
in a TOML file are relative to that file; on the command line, to the
current directory. ``output.project_dir`` is relative to the current
directory. `to_toml` writes a config back (the run folder's ``config.toml``,
with its input paths relative to the run folder: see
``nnsim.train.runfolder``); reading that file gives the same config.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from nnsim.data.classes import CLASS_NAMES, IMAGE_SHAPE
from nnsim.errors import NnsimError, UnitError
from nnsim.nn.dtypes import DTYPES
from nnsim.nn.layers import MAX_UNITS, MAX_WEIGHTS
from nnsim.units import parse_frequency, parse_time

BUILTIN_DATASETS = ("fashion-mnist",)
OPTIMIZERS = ("adam", "sgd")
MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")


class ConfigError(NnsimError, ValueError):
    """A config key that does not exist, or a value of the wrong type or out of range."""


def _opt(default: Any, **rules: Any) -> Any:
    """A field with validation rules: ``min``, ``min_exclusive``, ``max``, ``choices``,
    ``path``, ``key``."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class ModelConfig:
    """The network: hidden dense layer sizes (784 inputs, 10 classes), or a model script."""

    hidden: list[int] = _opt([128, 128], min=1, max=MAX_UNITS)
    script: str = _opt("", path=True)
    script_args: list[str] = _opt([])


# ``dataset.validation``: "test" (validate on the test set) or a fraction of the training set.
Validation = str | float


@dataclass
class DatasetConfig:
    """``name`` labels the run; with no folders it must be a built-in dataset.

    ``validation`` is what the epochs validate on, and so what chooses the
    best checkpoint: ``"test"`` (the test set, as in SST's example) or a
    fraction of the training images held out (e.g. 0.1), which keeps the test
    set unseen until ``nnsim test``.
    """

    name: str = "fashion-mnist"
    training: str = _opt("", path=True)
    test: str = _opt("", path=True)
    validation: Validation = "test"
    eval: str = _opt("", path=True)
    class_image_limit: int = _opt(0, min=0)
    invert_eval_images: bool = False


@dataclass
class OptimizerConfig:
    name: str = _opt("adam", choices=OPTIMIZERS)
    learning_rate: float = _opt(0.001, min=0.0)
    decay: float = _opt(0.0, min=0.0)
    beta_1: float = _opt(0.9, min=0.0, max=1.0)
    beta_2: float = _opt(0.999, min=0.0, max=1.0)
    epsilon: float = _opt(1e-7, min=0.0, min_exclusive=True)
    momentum: float = _opt(0.0, min=0.0, max=1.0)


@dataclass
class TrainingConfig:
    epochs: int = _opt(10, min=1)
    batch_size: int = _opt(128, min=1)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = _opt(0, min=0)
    dtype: str = _opt("float32", choices=DTYPES)
    weight_scale: float = _opt(0.01, min=0.0)


@dataclass
class SimulationConfig:
    link_latency: str = "1us"
    clock: str = "1GHz"


@dataclass
class CheckpointConfig:
    every_epochs: int = _opt(1, min=0)
    every_steps: int = _opt(0, min=0)
    keep_last: int = _opt(2, min=0)
    keep_best: int = _opt(1, min=0)
    monitor: str = _opt("val_loss", choices=MONITORS)
    asynchronous: bool = _opt(False, key="async")


@dataclass
class OutputConfig:
    project_dir: str = "runs"
    run_name: str = ""


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# The schema, read off the dataclasses --------------------------------------------------
def _key(item: dataclasses.Field) -> str:
    return item.metadata.get("key", item.name)


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """``{toml key: (field, type)}`` of a section class."""
    hints = get_type_hints(cls)
    return {_key(item): (item, hints[item.name]) for item in dataclasses.fields(cls)}


def _all_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key, tables included: ``["model", "model.hidden", ...]``."""
    keys = []
    for key, (_, kind) in _fields(cls).items():
        keys.append(prefix + key)
        if dataclasses.is_dataclass(kind):
            keys += _all_keys(kind, f"{prefix}{key}.")
    return keys


def _unknown(path: str, here: Iterable[str], where: str) -> ConfigError:
    """'unknown config key X; did you mean Y?' (closest in its table, else anywhere)."""
    table, _, key = path.rpartition(".")
    prefix = f"{table}." if table else ""
    close = difflib.get_close_matches(key, list(here), n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean '{prefix}{close[0]}'?"
    else:
        close = difflib.get_close_matches(path, _all_keys(), n=1, cutoff=0.6)
        valid = ", ".join(here)
        hint = f"; did you mean '{close[0]}'?" if close else f" (valid keys there: {valid})"
    return ConfigError(f"{where}unknown config key '{path}'{hint}")


def _describe(kind: Any) -> str:
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        list[int]: "a list of integers",
        list[str]: "a list of strings",
        Validation: '"test" or a fraction of the training images (e.g. 0.1)',
    }[kind]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _typed(path: str, kind: Any, value: Any, where: str) -> Any:
    """``value`` (as TOML reads it) as ``kind``, or a ConfigError naming ``path``."""
    ok = {
        int: lambda v: type(v) is int,
        float: lambda v: type(v) in (int, float),
        bool: lambda v: type(v) is bool,
        str: lambda v: type(v) is str,
        list[int]: lambda v: type(v) is list and all(type(x) is int for x in v),
        list[str]: lambda v: type(v) is list and all(type(x) is str for x in v),
        Validation: lambda v: v == "test" or type(v) in (int, float),
    }[kind](value)
    if not ok:
        raise ConfigError(f"{where}{path} must be {_describe(kind)}, got {_show(value)}")
    if kind is Validation and value != "test":
        return float(value)
    return float(value) if kind is float else value


def _resolve(value: str, base: Path | None) -> str:
    """An input path made absolute against ``base`` (the config file's folder)."""
    if not value or base is None:
        return value
    return os.path.normpath(base / Path(value).expanduser())


def _set(config: Config, path: str, value: Any, *, base: Path | None, where: str) -> None:
    """Set dotted ``path`` of ``config`` to a TOML-typed ``value`` (a table for a section)."""
    parts = path.split(".")
    target: Any = config
    for depth, part in enumerate(parts):
        fields = _fields(type(target))
        done = ".".join(parts[: depth + 1])
        if part not in fields:
            raise _unknown(done, fields, where)
        item, kind = fields[part]
        if dataclasses.is_dataclass(kind):
            if depth == len(parts) - 1:
                if not isinstance(value, dict):
                    first = next(iter(_fields(kind)))
                    raise ConfigError(
                        f"{where}{done} is a table; set its keys, e.g. {done}.{first}"
                    )
                for key, inner in value.items():
                    _set(config, f"{done}.{key}", inner, base=base, where=where)
                return
            target = getattr(target, item.name)
            continue
        if depth != len(parts) - 1:
            raise ConfigError(f"{where}{done} is {_describe(kind)}, not a table")
        value = _typed(done, kind, value, where)
        if item.metadata.get("path"):
            value = _resolve(value, base)
        setattr(target, item.name, value)


def _kind_of(path: str) -> Any:
    """The type of the key at dotted ``path`` (a section class for a table)."""
    kind: Any = Config
    for depth, part in enumerate(path.split(".")):
        if not dataclasses.is_dataclass(kind):
            raise ConfigError(f"--set: {'.'.join(path.split('.')[:depth])} is not a table")
        fields = _fields(kind)
        if part not in fields:
            raise _unknown(".".join(path.split(".")[: depth + 1]), fields, "--set: ")
        kind = fields[part][1]
    return kind


def parse_set(pair: str) -> tuple[str, Any]:
    """``"training.optimizer.beta_2=0.99"`` -> ``("training.optimizer.beta_2", 0.99)``.

    The value is read as a TOML value (``3``, ``1e-3``, ``true``, ``[64, 32]``),
    except for string keys, which take the text as it is. A list may also be
    written without brackets: ``model.hidden=64,32``.
    """
    path, sep, text = pair.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ConfigError(f"--set takes KEY=VALUE (e.g. training.epochs=3), not {pair!r}")
    kind = _kind_of(path)
    if kind is str or dataclasses.is_dataclass(kind) or (kind is Validation and text == "test"):
        return path, text
    source = text
    if kind in (list[int], list[str]) and not text.strip().startswith("["):
        source = f"[{text}]"
    try:
        return path, tomllib.loads(f"value = {source}")["value"]
    except tomllib.TOMLDecodeError:
        if kind == list[str]:  # bare words: script_args=--epochs,3
            return path, [item.strip() for item in source.strip()[1:-1].split(",") if item.strip()]
        raise ConfigError(f"--set: {path} must be {_describe(kind)}, got {text!r}") from None


# Reading and checking -------------------------------------------------------------
def read_toml(path: str | os.PathLike) -> dict:
    """The TOML file at ``path`` as a dict; ConfigError (one line) if it is missing or malformed."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file '{path}' is a folder; pass a .toml file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file '{path}' is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not UTF-8 text") from None


def load_config(
    path: str | os.PathLike | None = None,
    *,
    flags: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> Config:
    """Defaults < the TOML at ``path`` < ``flags`` (dotted key -> value) < ``sets`` (``KEY=VALUE``)."""
    config = Config()
    if path is not None:
        table = read_toml(path)
        base = Path(path).absolute().parent
        for key, value in table.items():
            _set(config, key, value, base=base, where=f"{path}: ")
    cwd = Path.cwd()
    for key, value in (flags or {}).items():
        if value is not None:
            _set(config, key, value, base=cwd, where="")
    for pair in sets:
        key, value = parse_set(pair)
        _set(config, key, value, base=cwd, where="--set: ")
    validate(config)
    return config


def _check_ranges(section: Any, prefix: str) -> None:
    for key, (item, kind) in _fields(type(section)).items():
        value = getattr(section, item.name)
        path = prefix + key
        if dataclasses.is_dataclass(kind):
            _check_ranges(value, path + ".")
            continue
        rules = item.metadata
        values = value if isinstance(value, list) else [value]
        for each in values:
            if isinstance(each, float) and not math.isfinite(each):
                raise ConfigError(f"{path} must be a finite number, got {each}")
            if rules.get("min_exclusive") and each <= rules["min"]:
                raise ConfigError(f"{path} must be > {rules['min']}, got {_show(each)}")
            if "min" in rules and each < rules["min"]:
                raise ConfigError(f"{path} must be >= {rules['min']}, got {_show(each)}")
            if "max" in rules and each > rules["max"]:
                raise ConfigError(f"{path} must be <= {rules['max']}, got {_show(each)}")
            if "choices" in rules and each not in rules["choices"]:
                close = difflib.get_close_matches(str(each), rules["choices"], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{path} must be one of {', '.join(rules['choices'])}, got {_show(each)}{hint}"
                )


def validate(config: Config) -> None:
    """ConfigError for values out of range or that do not fit together."""
    _check_ranges(config, "")
    sizes = [math.prod(IMAGE_SHAPE), *config.model.hidden, len(CLASS_NAMES)]
    for inputs, outputs in zip(sizes, sizes[1:], strict=False):
        if inputs * outputs > MAX_WEIGHTS:
            raise ConfigError(
                f"model.hidden {config.model.hidden} needs a dense layer of {inputs} x {outputs}"
                f" weights, more than the {MAX_WEIGHTS} one layer may hold; use smaller layers"
            )
    dataset = config.dataset
    if not (dataset.training or dataset.test) and dataset.name not in BUILTIN_DATASETS:
        raise ConfigError(
            f"dataset.name '{dataset.name}' is not a built-in dataset "
            f"({', '.join(BUILTIN_DATASETS)}); give dataset.training and dataset.test folders"
        )
    if dataset.validation != "test" and not 0 < dataset.validation < 1:
        raise ConfigError(
            f'dataset.validation must be "test" or a fraction of the training images '
            f"between 0 and 1 (e.g. 0.1), got {_show(dataset.validation)}"
        )
    if not dataset.name or "/" in dataset.name:
        raise ConfigError(f"dataset.name must be a short label without '/', got {dataset.name!r}")
    optimizer = config.training.optimizer
    other = OptimizerConfig()
    foreign = ("momentum",) if optimizer.name == "adam" else ("beta_1", "beta_2", "epsilon")
    for key in foreign:
        if getattr(optimizer, key) != getattr(other, key):
            raise ConfigError(
                f"training.optimizer.{key} is not a setting of {optimizer.name}; "
                f"remove it or set training.optimizer.name to the optimizer it belongs to"
            )
    try:
        parse_time(config.simulation.link_latency)
    except UnitError as error:
        raise ConfigError(f"simulation.link_latency: {error}") from None
    try:
        parse_frequency(config.simulation.clock)
    except UnitError as error:
        raise ConfigError(f"simulation.clock: {error}") from None
    name = config.output.run_name
    if name and (name in (".", "..") or "/" in name or os.sep in name):
        raise ConfigError(f"output.run_name must be a folder name without '/', got {name!r}")


def map_paths(config: Config, function) -> Config:
    """A copy of ``config`` with ``function(path)`` applied to every input path (datasets, script)."""

    def walk(section: Any) -> Any:
        section = dataclasses.replace(section)
        for item, kind in _fields(type(section)).values():
            value = getattr(section, item.name)
            if dataclasses.is_dataclass(kind):
                setattr(section, item.name, walk(value))
            elif item.metadata.get("path"):
                setattr(section, item.name, function(value))
        return section

    return walk(config)


# Writing ------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; finite by validation
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes are TOML's; TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_table(section: Any, name: str, lines: list[str]) -> None:
    tables = []
    lines.append(f"[{name}]")
    for key, (item, kind) in _fields(type(section)).items():
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(kind):
            tables.append((f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    for table_name, table in tables:
        _toml_table(table, table_name, lines)


def to_toml(config: Config, header: str = "") -> str:
    """``config`` as TOML text that `load_config` reads back to an equal config."""
    lines = [f"# {line}" for line in header.splitlines()]
    if lines:
        lines.append("")
    for key, (item, _) in _fields(Config).items():
        _toml_table(getattr(config, item.name), key, lines)
    return "\n".join(lines)
