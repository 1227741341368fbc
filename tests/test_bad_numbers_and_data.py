"""Bad numbers and hostile data files (issue 8, item 7): refused in one line, never allocated.

Parameters are refused where they are declared (``Param``), so the same rule
holds for a model script, ``--set``, the console and a config; data files are
bounded by what their headers declare before anything is inflated.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import subprocess
import tracemalloc
import zlib

import numpy as np
import pytest
from conftest import EXAMPLE, example_args, run_nnsim

from nnsim import nn
from nnsim.checkpoint import open_storage
from nnsim.checkpoint.manager import enable
from nnsim.data import read_eval_folder, read_idx
from nnsim.data.idx import MAX_IDX_BYTES
from nnsim.errors import CheckpointError, DataError, ParamError, StateError
from nnsim.sim import Component, Param, Simulation
from nnsim.state import restore
from nnsim.state.paths import set_value


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnsim: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# Parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), "-inf", "NaN", "1e999", "Infinity"])
def test_float_params_refuse_non_finite_numbers(value):
    with pytest.raises(ValueError, match="finite number"):
        Param("rate", float, 0.5).convert(value)


@pytest.mark.parametrize("value", [2**63, -(2**63), "99999999999999999999"])
def test_int_params_refuse_numbers_past_64_bits(value):
    with pytest.raises(ValueError, match="out of range"):
        Param("count", int, 1).convert(value)
    assert Param("count", int, 1).convert(2**63 - 1) == 2**63 - 1


def test_an_exclusive_minimum_refuses_the_bound_itself():
    epsilon = Param("epsilon", float, 1e-7, min=0.0, min_exclusive=True)
    with pytest.raises(ValueError, match="must be > 0.0, got 0.0"):
        epsilon.convert("0")
    assert epsilon.convert("1e-300") == 1e-300


def test_str_params_refuse_nul_bytes():
    with pytest.raises(ValueError, match="NUL"):
        Param("path", str, "").convert("data\x00/etc")


def test_adam_with_epsilon_zero_and_nan_learning_rates_are_refused_at_construction():
    sim = Simulation(output=io.StringIO())
    with pytest.raises(ParamError, match="epsilon.*must be > 0.0"):
        nn.Sequential([nn.Input(4), nn.Dense(2)], optimizer=nn.Adam(epsilon=0.0)).build(sim)
    with pytest.raises(ParamError, match="learning_rate.*finite number"):
        nn.Sequential(
            [nn.Input(4), nn.Dense(2)], optimizer=nn.SGD(learning_rate=float("nan"))
        ).build(Simulation(output=io.StringIO()))


def test_a_dense_layer_too_large_to_hold_is_refused_before_anything_is_allocated():
    tracemalloc.start()
    try:
        with pytest.raises(ParamError, match=r"784 x 100000 weights are more than the 67108864"):
            nn.Sequential([nn.Input(784), nn.Dense(100000)]).build(Simulation(output=io.StringIO()))
        with pytest.raises(ParamError, match="output_size.*must be <= 1048576"):
            nn.Sequential([nn.Input(784), nn.Dense(10**9)]).build(Simulation(output=io.StringIO()))
        assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    finally:
        tracemalloc.stop()


class Shaped(Component):
    """A component whose array is shaped by a fixed parameter, and which guards a counter."""

    type_name = "test.Shaped"
    params = (
        Param("width", int, 4, "lanes", min=1, fixed=True),
        Param("gain", float, 1.0, "multiplier"),
    )

    def build(self) -> None:
        self.lanes = np.zeros(self.width)
        self.position = 0

    def check_change(self, name, value) -> None:
        super().check_change(name, value)
        if name == "position" and not 0 <= value < self.width:
            raise ValueError(f"position must be 0 to {self.width - 1}")


def test_set_value_asks_the_component_first_and_changes_nothing_when_refused():
    sim = Simulation(output=io.StringIO())
    shaped = sim.add(Shaped, "shaped")
    with pytest.raises(StateError, match="cannot set shaped/width: width is fixed once shaped"):
        set_value(sim, "shaped/width", "9")
    with pytest.raises(StateError, match="cannot set shaped/position: position must be 0 to 3"):
        set_value(sim, "shaped/position", "4")
    with pytest.raises(StateError, match="finite"):
        set_value(sim, "shaped/gain", "nan")
    assert (shaped.width, shaped.position, shaped.gain) == (4, 0, 1.0)
    assert set_value(sim, "shaped/position", "3") == 3
    assert set_value(sim, "shaped/width", "4") == 4  # the value it has: nothing changes


def test_nnsim_run_set_of_a_layer_size_is_one_line(toy_dataset):
    result = run_nnsim(
        "run", EXAMPLE, "--set", "dense1/input_size=5", "--", *example_args(toy_dataset)
    )
    assert_one_line_error(result, "cannot set dense1/input_size", "fixed")


def test_nnsim_run_set_of_a_step_beyond_the_epoch_is_one_line_instead_of_a_hang(toy_dataset):
    # 200 toy images in batches of 32: steps 0 to 6.
    result = run_nnsim(
        "run", EXAMPLE, "--set", "controller/step=50", "--", *example_args(toy_dataset), timeout=60
    )
    assert_one_line_error(result, "controller cannot start: epoch 0 training has steps 0 to 6")


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [
        ("--learningRate=nan", "argument --learningRate: expected a finite number, got 'nan'"),
        ("--initialWeightScaling=inf", "--initialWeightScaling: expected a finite number"),
        ("--decay=-inf", "--decay: expected a finite number"),
        ("--epochs=abc", "--epochs: expected a whole number, got 'abc'"),
        ("--batchSize=0", "--batchSize: expected a whole number >= 1, got '0'"),
        ("--hiddenLayers=-1", "--hiddenLayers: expected a whole number from 0 to 100"),
        ("--hiddenLayerSize=1000000000", "output_size of dense1"),
    ],
)
def test_model_script_arguments_out_of_range_are_one_line(toy_dataset, argument, fragment):
    result = run_nnsim("run", EXAMPLE, "--", *example_args(toy_dataset), argument)
    line = assert_one_line_error(result)
    assert fragment in line.replace("parameter 'output_size' of dense1", "output_size of dense1")


def test_a_restart_whose_position_does_not_fit_the_data_is_one_line(tmp_path, toy_dataset):
    sim = Simulation(seed=1, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(8), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        controller=nn.BatchController(
            batch_size=32,
            epochs=1,
            training_images=str(toy_dataset),
            test_images=str(toy_dataset),
            progress=False,
        ),
    ).build(sim)
    enable(sim, str(tmp_path / "ckpt"), announce=False)
    sim.run(until="60us")
    assert sim.components["controller"].step >= 2
    name = sim.checkpoint()
    body, tensors = open_storage(str(tmp_path / "ckpt")).load(name)
    # Two images per class leave one training step: the saved step cannot continue.
    with pytest.raises(CheckpointError, match="controller cannot continue from this checkpoint"):
        restore(body, tensors, overrides={"controller/class_image_limit": "2"})


# IDX files -----------------------------------------------------------------------------------
def idx_header(shape: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def test_an_idx_header_declaring_more_than_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((2**32 - 1, 2**32 - 1, 28)) + b"\x00" * 64))
    with pytest.raises(DataError, match=f"more than the {MAX_IDX_BYTES // 2**30} GiB"):
        read_idx(path)
    plain = tmp_path / "huge-idx1-ubyte"
    plain.write_bytes(idx_header((60000, 28, 28, 28, 28), code=0x0E))  # 7 TB of float64
    with pytest.raises(DataError, match="more than the 2 GiB nnsim reads"):
        read_idx(plain)


def test_a_gzip_that_inflates_past_its_declared_size_is_refused_without_inflating_it(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    # Declares 1000 images of 28x28 (784 kB) but inflates to 64 MiB.
    bomb = idx_header((1000, 28, 28)) + bytes(64 * 2**20)
    path.write_bytes(gzip.compress(bomb, compresslevel=9, mtime=0))
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(
            DataError, match=r"holds more than 784000 bytes \(inflated\) of data but its header"
        ):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the 64 MiB were never held


def test_a_bomb_in_a_training_folder_stops_the_run_with_one_line(tmp_path, toy_dataset):
    data = tmp_path / "bomb"
    data.mkdir()
    for file in toy_dataset.iterdir():
        (data / file.name).write_bytes(file.read_bytes())
    bomb = idx_header((200, 28, 28)) + bytes(32 * 2**20)
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bomb, mtime=0))
    result = run_nnsim("run", EXAMPLE, "--", *example_args(data, None, "--epochs=1"))
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "(inflated)")


# PNG files -----------------------------------------------------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header that claims ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(9000, 9000), (40000, 40000)])
def test_a_png_decompression_bomb_is_one_data_error(tmp_path, width, height, recwarn):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_claiming(width, height))
    with pytest.raises(DataError, match=r"bomb.png' has more than 67108864 pixels"):
        read_eval_folder(folder)
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_a_png_bomb_through_the_cli_is_one_line_and_no_pillow_warning(tmp_path, toy_dataset):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_claiming(9000, 9000))
    result = run_nnsim("run", EXAMPLE, "--", *example_args(toy_dataset, folder, "--epochs=1"))
    assert_one_line_error(result, "bomb.png", "decompression bomb")
    assert "DecompressionBombWarning" not in result.stderr


# nnsim train ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hidden", "fragment"),
    [
        ("[1000000000]", "model.hidden must be <= 1048576, got 1000000000"),
        ("[100000]", "needs a dense layer of 784 x 100000 weights, more than the 67108864"),
        ("[128, 1048576]", "128 x 1048576"),
    ],
)
def test_hidden_layers_too_large_for_memory_are_one_line_in_nnsim_train(
    tmp_path, toy_dataset, hidden, fragment
):
    config = tmp_path / "train.toml"
    config.write_text(
        f'[model]\nhidden = {hidden}\n[dataset]\ntraining = "{toy_dataset}"\n'
        f'test = "{toy_dataset}"\n'
    )
    result = run_nnsim("train", str(config), cwd=tmp_path)
    assert_one_line_error(result, fragment)


@pytest.mark.parametrize(
    ("pair", "fragment"),
    [
        ("training.optimizer.epsilon=0", "training.optimizer.epsilon must be > 0.0, got 0.0"),
        ("training.optimizer.learning_rate=nan", "must be a finite number, got nan"),
        ("training.weight_scale=inf", "must be a finite number, got inf"),
    ],
)
def test_config_values_out_of_range_are_config_errors(pair, fragment):
    from nnsim.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(sets=[pair])
