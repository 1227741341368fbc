"""The training config: precedence, validation with suggestions, TOML round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import given
from hypothesis import strategies as st

from nnsim.train.binder import toml_value, tomllib
from nnsim.train.config import (
    Config,
    ConfigError,
    load_config,
    parse_set,
    to_toml,
)

EXAMPLE = REPO / "examples" / "fashion_mnist" / "train.toml"


def write(tmp_path: Path, text: str, name: str = "train.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_then_toml_then_flags_then_set(tmp_path):
    path = write(
        tmp_path,
        """
[training]
epochs = 5
batch_size = 32
[training.optimizer]
learning_rate = 0.01
beta_2 = 0.9
""",
    )
    assert Config().training.epochs == 10
    config = load_config(
        path,
        flags={"training.epochs": 3, "training.batch_size": None},
        sets=["training.epochs=2", "training.optimizer.beta_2=0.99"],
    )
    assert config.training.epochs == 2  # --set beats the flag, which beats the file
    assert config.training.batch_size == 32  # a flag that was not given changes nothing
    assert config.training.optimizer.learning_rate == 0.01  # from the file
    assert config.training.optimizer.beta_2 == 0.99
    assert config.training.optimizer.beta_1 == 0.9  # the default


def test_the_example_config_is_the_fashion_mnist_example():
    config = load_config(EXAMPLE)
    assert config.model.hidden == [128, 128]
    assert config.dataset.class_image_limit == 2000
    assert (config.training.epochs, config.training.batch_size) == (10, 128)
    optimizer = config.training.optimizer
    assert (optimizer.name, optimizer.learning_rate, optimizer.decay) == ("adam", 1e-3, 1e-3)
    checkpoint = config.checkpoint
    assert (checkpoint.every_epochs, checkpoint.keep_last, checkpoint.keep_best) == (1, 2, 1)
    assert checkpoint.monitor == "val_acc"
    assert Path(config.dataset.eval) == EXAMPLE.parent / "eval2"  # relative to the file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[training.optimzer]\nbeta_2 = 0.9\n",
            "unknown config key 'training.optimzer'; did you mean 'training.optimizer'?",
        ),
        (
            "[training.optimizer]\nbeta2 = 0.9\n",
            "unknown config key 'training.optimizer.beta2'; did you mean 'training.optimizer.beta_2'?",
        ),
        (
            "[training]\nlink_latency = '2us'\n",
            "unknown config key 'training.link_latency'; did you mean 'simulation.link_latency'?",
        ),
        ("[trainig]\nepochs = 1\n", "unknown config key 'trainig'; did you mean 'training'?"),
        ("[checkpoint]\nasync = 1\n", "checkpoint.async must be true or false, got 1"),
        ("[training]\nepochs = 'ten'\n", "training.epochs must be an integer, got 'ten'"),
        ("[training]\nepochs = 2.5\n", "training.epochs must be an integer, got 2.5"),
        ("[model]\nhidden = [64, 'x']\n", "model.hidden must be a list of integers"),
        ("training = 3\n", "training is a table; set its keys, e.g. training.epochs"),
        # nn.BatchController's declaration: 0 epochs only predicts (nnsim predict's way)
        ("[training]\nepochs = -1\n", "training.epochs must be >= 0, got -1"),
        ("[training]\nbatch_size = 0\n", "training.batch_size must be >= 1, got 0"),
        ("[model]\nhidden = [64, 0]\n", "model.hidden must be >= 1, got 0"),
        (
            "[training.optimizer]\nname = 'adma'\n",
            "training.optimizer.name must be one of adam, sgd",  # + any registered optimizer
        ),
        ("[training.optimizer]\nmomentum = 0.9\n", "training.optimizer.momentum is not a setting"),
        ("[checkpoint]\nmonitor = 'val_accuracy'\n", "did you mean 'val_acc'?"),
        ("[simulation]\nclock = '1Gz'\n", "simulation.clock: unknown frequency unit"),
        ("[dataset]\nname = 'cifar'\n", "dataset.name 'cifar' is not a built-in dataset"),
        ("[training\n", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_one_line_errors_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("training.optimizer.beta2=0.9", "did you mean 'training.optimizer.beta_2'?"),
        ("training.epochs=ten", "--set: training.epochs must be an integer, got 'ten'"),
        ("training.optimizer=adam", "training.optimizer is a table"),
        ("training.epochs", "--set takes KEY=VALUE"),
        ("nothing=1", "unknown config key 'nothing'"),
        ("training.epochs.x=1", "training.epochs is not a table"),
    ],
)
def test_bad_set_overrides_are_errors(pair, message):
    with pytest.raises(ConfigError) as caught:
        load_config(sets=[pair])
    assert message in str(caught.value)


def test_set_values_are_parsed_as_the_keys_type():
    assert parse_set("training.optimizer.beta_2=0.99") == ("training.optimizer.beta_2", 0.99)
    assert parse_set("training.optimizer.learning_rate=1e-3")[1] == 0.001
    assert parse_set("checkpoint.async=true")[1] is True
    assert parse_set("model.hidden=64,32")[1] == [64, 32]
    assert parse_set("model.hidden=[]")[1] == []
    assert parse_set("dataset.name=123")[1] == "123"  # a string key takes the text
    assert parse_set("model.script_args=--epochs,3")[1] == ["--epochs", "3"]
    config = load_config(sets=["training.optimizer.learning_rate=1"])
    assert config.training.optimizer.learning_rate == 1.0
    assert isinstance(config.training.optimizer.learning_rate, float)


def test_input_paths_are_relative_to_the_file_or_the_current_directory(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = write(folder, "[dataset]\nname = 'toy'\ntraining = 'data/train'\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(path, sets=["dataset.test=elsewhere"])
    assert config.dataset.training == str(folder / "data" / "train")
    assert config.dataset.test == str(tmp_path / "elsewhere")
    assert config.output.project_dir == "runs"  # output stays relative to where you run


def test_the_written_config_reads_back_equal(tmp_path):
    config = load_config(
        EXAMPLE,
        sets=[
            "model.hidden=[3, 5, 7]",
            "training.optimizer.epsilon=1e-9",
            'output.run_name=a "quoted" name',
            "model.script_args=--x,1",
            "checkpoint.async=true",
        ],
    )
    path = write(tmp_path, to_toml(config, "header line"), "config.toml")
    assert path.read_text().startswith("# header line\n")
    assert load_config(path) == config


@given(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",))),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.booleans(),
        st.lists(st.integers(min_value=0, max_value=10**6)),
        st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=5)),
    )
)
def test_every_value_the_writer_writes_is_read_back_exactly(value):
    read = tomllib.loads(f"value = {toml_value(value)}")["value"]
    assert read == value and type(read) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, read) == math.copysign(1, value)
