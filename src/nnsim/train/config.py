"""The training config: nnsim's sections, bound to TOML by `nnsim.train.binder`.

Precedence, lowest first: the defaults below < the TOML file < command-line
flags (``--max-epochs``, ``--learning-rate``, ...) < ``--set KEY=VALUE``::

    config = load_config("train.toml", flags={"training.epochs": 3},
                         sets=["training.optimizer.beta_2=0.99"])

The defaults, ranges and choices of keys that become a component's
parameters are that parameter's declaration (`nnsim.sim.Param`), read here,
not copied: ``training.epochs`` is ``nn.BatchController``'s ``epochs``,
``training.weight_scale`` and ``training.dtype`` are ``nn.Dense``'s, and
``[training.optimizer]`` is whichever registered optimizer type ``name``
names, with that type's declared settings (SGD's learning rate defaults to
SGD's 1.0, Adam's to 0.001). Keys, types and did-you-mean messages are the
binder's; relations between keys are `validate`'s. Paths of input files
(datasets, a model script) in a TOML file are relative to that file; on the
command line, to the current directory. ``output.project_dir`` is relative
to the current directory. `to_toml` writes a config back (the run folder's
``config.toml``, with its input paths relative to the run folder: see
``nnsim.train.runfolder``); reading that file gives the same config.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsim.data.classes import CLASS_NAMES, IMAGE_SHAPE
from nnsim.errors import NnsimError, UnitError
from nnsim.nn.layers import MAX_WEIGHTS
from nnsim.sim import Param, lookup, registered_types
from nnsim.sim.declare import REQUIRED as PARAM_REQUIRED
from nnsim.sim.declare import Frequency, Time
from nnsim.train.binder import (
    IGNORE,
    REQUIRED,
    Binder,
    BindError,
    Layer,
    Option,
    Rule,
    complete,
    extras,
    option,
    show,
    tomllib,
)
from nnsim.units import parse_frequency, parse_time

BUILTIN_DATASETS = ("fashion-mnist",)
MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")
OPTIMIZER_SLOT = ("nn.CategoricalCrossEntropy", "optimizer")
"""Where the builder's model keeps its optimizer: the loss's slot (its default is the config's)."""


class ConfigError(NnsimError, BindError):
    """A config key that does not exist, or a value of the wrong type or out of range."""


# From the declarations ----------------------------------------------------------------
_KINDS = {int: int, float: float, bool: bool, str: str, Time: int | str, Frequency: str}


def param_rule(param: Param, **more: Any) -> Rule:
    """The binder's rule for a value that becomes ``param``: its range and choices."""
    check = None
    if param.type in (Time, Frequency):  # "1us", "1GHz": the declaration parses them

        def check(value: Any) -> None:
            param.convert(value)

    return Rule(
        min=param.min,
        max=param.max,
        min_exclusive=param.min_exclusive,
        choices=param.choices,
        check=check,
        **more,
    )


def declared(param: Param, **more: Any) -> Any:
    """A config field whose default and rule are ``param``'s declaration (``path=True``...)."""
    return option(param.default, rule=param_rule(param, **more))


def param_option(param: Param) -> Option:
    """A key of ``[training.optimizer]`` for ``param`` of the named optimizer type."""
    default = REQUIRED if param.default is PARAM_REQUIRED else param.default
    return Option(_KINDS[param.type], default, param_rule(param), param.help)


_DENSE = lookup("nn.Dense").declared_params()
_CONTROLLER = lookup("nn.BatchController").declared_params()


def optimizer_types() -> dict[str, type]:
    """``{config name: class}`` of every registered optimizer type.

    nnsim's own (``nn.Adam``, ``nn.SGD``) are named by their class in lower
    case (``adam``, ``sgd``); any other registered type (a plugin's, or one
    ``@register``-ed before the config is read) by its type name.
    """
    from nnsim.nn.optimizers import Optimizer

    found = {}
    for type_name, cls in registered_types().items():
        if isinstance(cls, type) and issubclass(cls, Optimizer):
            found[config_name(type_name)] = cls
    own = {name: cls for name, cls in found.items() if cls.type_name.startswith("nn.")}
    return {**own, **found}  # nnsim's first, then the others, each by name


def config_name(type_name: str) -> str:
    """``"nn.Adam"`` -> ``"adam"``; another library's type keeps its name."""
    return type_name[3:].lower() if type_name.startswith("nn.") else type_name


def optimizer_names() -> tuple[str, ...]:
    return tuple(optimizer_types())


def default_optimizer() -> str:
    """The config name of the optimizer the builder's loss uses when none is given."""
    owner, slot = OPTIMIZER_SLOT
    return config_name(lookup(owner).declared_slots()[slot].default)


def optimizer_options(section: OptimizerConfig) -> dict[str, Option]:
    """The settings of the optimizer ``section.name`` names: its type's declared params."""
    cls = optimizer_types().get(section.name)
    if cls is None:
        return {}
    return {name: param_option(param) for name, param in cls.declared_params().items()}


def _not_a_setting(section: OptimizerConfig, key: str, value: Any) -> Any:
    """Why ``key`` is not a setting of this optimizer, when it is another's.

    A setting of another optimizer at that optimizer's declared default is
    accepted and dropped: it changes nothing, and the ``config.toml`` of run
    folders written before the settings followed the optimizer list them all.
    """
    others = {
        name: cls.declared_params()[key]
        for name, cls in optimizer_types().items()
        if name != section.name and key in cls.declared_params()
    }
    if not others:
        return None
    # (a bool is no number here, though True == 1.0 in Python)
    if any(type(value) is not bool and value == param.default for param in others.values()):
        return IGNORE
    owners = list(others)
    return (
        f"is not a setting of {section.name} (but of {', '.join(owners)}); "
        f"remove it or set training.optimizer.name to the optimizer it belongs to"
    )


# The sections ---------------------------------------------------------------------------
@dataclass
class ModelConfig:
    """The network: hidden dense layer sizes (784 inputs, 10 classes), or a model script."""

    hidden: list[int] = option([128, 128], rule=param_rule(_DENSE["output_size"]))
    script: str = option("", path=True)
    script_args: list[str] = option([])


# ``dataset.validation``: "test" (validate on the test set) or a fraction of the training set.
Validation = str | float


def _fraction(value: Validation) -> None:
    """``dataset.validation`` becomes the controller's ``validation_split`` (0: the test set)."""
    if value != "test" and (isinstance(value, str) or not 0 < value < 1):
        raise ValueError(
            'must be "test" or a fraction of the training images '
            f"between 0 and 1 (e.g. 0.1), got {show(value)}"
        )


@dataclass
class DatasetConfig:
    """``name`` labels the run; with no folders it must be a built-in dataset.

    ``validation`` is what the epochs validate on, and so what chooses the
    best checkpoint: ``"test"`` (the test set, as in SST's example) or a
    fraction of the training images held out (e.g. 0.1), which keeps the test
    set unseen until ``nnsim test``. The folders, ``class_image_limit`` and
    ``invert_eval_images`` are the batch controller's parameters.
    """

    name: str = "fashion-mnist"
    training: str = declared(_CONTROLLER["training_images"], path=True)
    test: str = declared(_CONTROLLER["test_images"], path=True)
    validation: Validation = option(
        "test", describe='"test" or a fraction of the training images (e.g. 0.1)', check=_fraction
    )
    eval: str = declared(_CONTROLLER["eval_images"], path=True)
    class_image_limit: int = declared(_CONTROLLER["class_image_limit"])
    invert_eval_images: bool = declared(_CONTROLLER["invert_eval_images"])


@dataclass
class OptimizerConfig:
    """``name`` is a registered optimizer type; its settings are that type's parameters.

    ``settings`` always holds every declared parameter of the type, with its
    declared default where the config gives none; they read as attributes
    too (``config.training.optimizer.learning_rate``).
    """

    name: str = option(default_optimizer(), choices=optimizer_names)
    settings: dict[str, Any] = extras(optimizer_options, unknown=_not_a_setting)

    def __post_init__(self) -> None:
        complete(self)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(f"optimizer {self.__dict__.get('name')!r} has no setting {name!r}")

    @property
    def type_name(self) -> str:
        """The registered type (``nn.Adam``) that ``name`` names."""
        return optimizer_types()[self.name].type_name


@dataclass
class TrainingConfig:
    """``epochs`` and ``batch_size`` are the controller's; ``dtype`` and ``weight_scale`` every
    dense layer's."""

    epochs: int = declared(_CONTROLLER["epochs"])
    batch_size: int = declared(_CONTROLLER["batch_size"])
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = option(0, min=0)
    dtype: str = declared(_DENSE["dtype"])
    weight_scale: float = declared(_DENSE["weight_scale"])


@dataclass
class SimulationConfig:
    link_latency: str = "1us"
    clock: str = "1GHz"


@dataclass
class CheckpointConfig:
    every_epochs: int = option(1, min=0)
    every_steps: int = option(0, min=0)
    keep_last: int = option(2, min=0)
    keep_best: int = option(1, min=0)
    monitor: str = option("val_loss", choices=MONITORS)
    asynchronous: bool = option(False, key="async")


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


BINDER = Binder(Config, ConfigError, example="training.epochs=3")


def parse_set(pair: str) -> tuple[str, Any]:
    """``"training.optimizer.beta_2=0.99"`` -> ``("training.optimizer.beta_2", 0.99)``.

    The value is read as a TOML value (``3``, ``1e-3``, ``true``, ``[64, 32]``),
    except for string keys, which take the text as it is. A list may also be
    written without brackets: ``model.hidden=64,32``. (Optimizer settings are
    typed as the default optimizer's here; `load_config` types them as the
    named optimizer's.)
    """
    return BINDER.parse_set(pair)


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
    layers = []
    if path is not None:
        table = read_toml(path)
        layers.append(Layer(table, f"{path}: ", Path(path).absolute().parent))
    cwd = Path.cwd()
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    layers += [Layer(given, "", cwd), Layer(list(sets), "--set: ", cwd, texts=True)]
    config = BINDER.load(layers)
    validate(config)
    return config


def validate(config: Config) -> None:
    """ConfigError for values out of range or that do not fit together."""
    BINDER.check_ranges(config)
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
    if not dataset.name or "/" in dataset.name:
        raise ConfigError(f"dataset.name must be a short label without '/', got {dataset.name!r}")
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
    return BINDER.map_paths(config, function)


def to_toml(config: Config, header: str = "") -> str:
    """``config`` as TOML text that `load_config` reads back to an equal config."""
    return BINDER.to_toml(config, header)
