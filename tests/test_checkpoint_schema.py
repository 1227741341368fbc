"""Forged checkpoints, resealed so their own hash matches: only validation can refuse them.

Each mutation starts from a real checkpoint of the Fashion-MNIST example,
changes the manifest as a careful forger would (`reseal` recomputes its
``manifest_sha256``), and is then given to every reader through the real
CLI: ``run``, ``checkpoint verify``, ``checkpoint inspect`` and ``predict``.
Each must answer with one line naming the checkpoint, the field and the
fault, exit non-zero, print no traceback, and do it within a time bound.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, REPO, checkpointed_run, example_args, make_idx_dataset, run_nnsim

from nnsim.checkpoint import CheckpointError, open_checkpoint
from nnsim.checkpoint.manifest import (
    MANIFEST_FILE,
    decode_json,
    encode_json,
    json_depth,
    parse_manifest,
    reseal,
)
from nnsim.checkpoint.tensorfile import read_safetensors, write_safetensors
from nnsim.cli.main import cli
from nnsim.sim import Array, Param

EVAL = REPO / "examples" / "fashion_mnist" / "eval"


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> dict:
    """One epoch of the example with a checkpoint after it, and the arguments that built it."""
    root = tmp_path_factory.mktemp("schema")
    dataset = make_idx_dataset(root / "toy", train_per_class=8, test_per_class=4)
    args = example_args(dataset, EVAL, "--epochs=2")
    checkpoints = root / "checkpoints"
    first = checkpoints / checkpointed_run(checkpoints, args)[0]
    return {"root": root, "checkpoint": first, "args": args}


def forge(original: dict, tmp_path: Path, change) -> Path:
    """A copy of the checkpoint whose manifest ``change`` edited, resealed."""
    copy = tmp_path / original["checkpoint"].name
    shutil.copytree(original["checkpoint"], copy)
    manifest = decode_json((copy / MANIFEST_FILE).read_bytes())
    data = change(manifest, copy)
    if not isinstance(data, bytes):  # the change edited the dict (and may have returned a value)
        data = encode_json(reseal(manifest))
    (copy / MANIFEST_FILE).write_bytes(data)
    return copy


def component(manifest: dict, name: str) -> dict:
    return next(spec for spec in manifest["model"]["components"] if spec["name"] == name)


def state(manifest: dict, name: str) -> dict:
    return manifest["components"][name]["state"]


def set_queue_time(value):
    def change(m, _):
        m["queue"][0]["time"] = value

    return change


def raw(text_change):
    """A change of the manifest's bytes (after resealing the unchanged content)."""

    def change(m, _):
        return text_change(encode_json(reseal(m)))

    return change


def add_clock_entry(component_name: str, clock: int):
    def change(m, _):
        now = m["simulation"]["now"]
        m["queue"].append(
            {
                "kind": "clock",
                "time": now + 1000,
                "priority": 40,
                "seq": 0,
                "component": component_name,
                "clock": clock,
            }
        )

    return change


def weights_as_float64(m: dict, folder: Path) -> None:
    """Rewrite the tensor file with float64 weights and make the manifest agree: a thorough forger."""
    (file,) = m["files"]
    tensors, _ = read_safetensors(folder / file)
    tensors = {name: np.array(array) for name, array in tensors.items()}
    tensors["dense1/weights"] = tensors["dense1/weights"].astype(np.float64)
    (folder / file).unlink()
    digest, size = write_safetensors(folder / file, tensors)
    m["files"][file] = {"sha256": digest, "bytes": size}
    m["tensors"]["dense1/weights"]["dtype"] = "F64"


#: (id, change, fragment of the one-line error, refused before anything is built)
MUTATIONS = [
    (
        "unknown enum member",
        lambda m, _: state(m, "controller")["state"].update(name="NOSUCH"),
        "'NOSUCH' is not a member of State",
        True,
    ),
    (
        "enum of an unregistered class",
        lambda m, _: state(m, "controller")["state"].update(__enum__="os:system"),
        "not a registered serializable type",
        True,
    ),
    (
        "queue entry naming a missing component",
        lambda m, _: m["queue"][0].update(source="ghost.forward_out"),
        "no port 'ghost.forward_out' in the model",
        True,
    ),
    (
        "queue entry naming a port without a peer handler",
        lambda m, _: m["queue"][0].update(source="input.forward_in"),
        "controller.forward_out has no handler for events",
        True,
    ),
    (
        "clock entry naming a missing component",
        add_clock_entry("ghost", 0),
        "queue/1/component: no component named 'ghost'",
        True,
    ),
    ("clock index out of range", add_clock_entry("dense1", 7), "queue/1/clock", True),
    (
        "NaN time (tagged)",
        set_queue_time(math.nan),
        "queue/0/time: expected integer, got nan",
        True,
    ),
    (
        "NaN time (literal)",
        raw(lambda b: b.replace(b'"time": ', b'"time": NaN, "x": ', 1)),
        "non-standard number NaN",
        True,
    ),
    (
        "Infinity time (literal)",
        raw(lambda b: b.replace(b'"time": ', b'"time": Infinity, "x": ', 1)),
        "non-standard number Infinity",
        True,
    ),
    ("negative time", set_queue_time(-5), "queue/0/time: -5 is below 0", True),
    ("time of 2**70", set_queue_time(2**70), "queue/0/time", True),
    ("float time", set_queue_time(1.5e9), "queue/0/time: expected integer", True),
    ("time before the checkpoint", set_queue_time(5), "is before the checkpoint's time", True),
    (
        "bad RNG state",
        lambda m, _: state(m, "dense1")["rng"]["__rng__"]["state"].update(inc=-1),
        "malformed PCG64 state",
        True,
    ),
    (
        "unknown bit generator",
        lambda m, _: state(m, "dense1")["rng"]["__rng__"].update(bit_generator="MT19937"),
        "unknown random bit generator 'MT19937'",
        True,
    ),
    (
        "batch_size as a string",
        lambda m, _: state(m, "controller").update(batch_size="64"),
        "components/controller/state/batch_size: expected a value of type int, got '64'",
        True,
    ),
    (
        "batch_size out of range",
        lambda m, _: state(m, "controller").update(batch_size=0),
        "components/controller/state/batch_size: must be >= 1",
        True,
    ),
    (
        "model parameter of the wrong type",
        lambda m, _: component(m, "controller")["params"].update(batch_size=[64]),
        "model/components/0/params",
        True,
    ),
    (
        "missing declared parameter",
        lambda m, _: state(m, "dense1").pop("input_size"),
        "components/dense1/state/input_size: missing",
        True,
    ),
    (
        "missing state attribute",
        lambda m, _: state(m, "controller").pop("epoch"),
        "components/controller/state/epoch: missing",
        False,
    ),
    ("missing queue", lambda m, _: m.pop("queue"), "'queue' is a required property", True),
    (
        "missing component",
        lambda m, _: m["components"].pop("relu1"),
        "components/relu1: the model has this component, but no state is saved for it",
        True,
    ),
    (
        "state of the wrong kind",
        lambda m, _: state(m, "controller").update(step="3"),
        "components/controller/state/step: a str where a nn.BatchController keeps a int",
        False,
    ),
    (
        "waiting events that are not events",
        lambda m, _: state(m, "dense1").update(pending=[1, 2]),
        "dense1/pending holds something that is not an event",
        False,
    ),
    (
        "state shadowing a method",
        lambda m, _: state(m, "controller").update(on_tick=1),
        "components/controller/state/on_tick: is not saved state",
        False,
    ),
    (
        "mismatched tensor shape",
        lambda m, _: m["tensors"]["dense1/weights"].update(shape=[16, 784]),
        "components/dense1/state/weights: has shape [16, 784], but the saved parameters make it [784, 16]",
        True,
    ),
    (
        "tensor larger than its file",
        lambda m, _: m["tensors"]["dense1/weights"].update(shape=[1000000, 1000000]),
        "tensors/dense1/weights/shape",
        True,
    ),
    (
        "negative link latency (model)",
        lambda m, _: m["model"]["links"][0]["left"].__setitem__(2, -1000),
        "model/links/0/left/2: -1000 is below 0",
        True,
    ),
    (
        "negative link latency (state)",
        lambda m, _: m["components"]["dense1"]["links"]["forward_out"].update(latency=-1),
        "components/dense1/links/forward_out/latency: -1 is below 0",
        True,
    ),
    (
        "float64 weights into a float32 model",
        weights_as_float64,
        "components/dense1/state/weights: is float64, but the saved parameters make it float32",
        True,
    ),
    (
        "duplicate keys",
        raw(lambda b: b.replace(b'"format": ', b'"format": "x", "format": ', 1)),
        "key 'format' appears twice",
        True,
    ),
    (
        "nesting 200,000 deep",
        raw(lambda b: b'{"deep": ' + b"[" * 200_000 + b"]" * 200_000 + b"," + b[1:]),
        "nested 200001 deep, more than 64",
        True,
    ),
    (
        "numpy scalar bomb",
        lambda m, _: state(m, "controller").update(
            loss_sum={"__np__": "V", "value": 2_000_000_000}
        ),
        "numpy scalar type 'V' is not one of",
        True,
    ),
    (
        "numpy scalar out of its range",
        lambda m, _: state(m, "controller").update(loss_sum={"__np__": "|i1", "value": 300}),
        "300 is not a value of numpy type int8",
        True,
    ),
    (
        "input_size 1000000 (model)",
        lambda m, _: component(m, "dense1")["params"].update(input_size=1_000_000),
        "but the model parameters make it [1000000, 16]",
        True,
    ),
    (
        "input_size 1000000 (state)",
        lambda m, _: state(m, "dense1").update(input_size=1_000_000),
        "but the saved parameters make it [1000000, 16]",
        True,
    ),
    (
        "unregistered component type",
        lambda m, _: component(m, "relu1").update(type="os.system"),
        "unknown component type 'os.system'",
        True,
    ),
    (
        "record with an unknown field",
        lambda m, _: m["queue"][0]["payload"]["fields"].update(extra=1),
        "unknown field 'extra'",
        True,
    ),
    (
        "record field of the wrong type",
        lambda m, _: m["queue"][0]["payload"]["fields"].update(inputs=5),
        "queue/0/payload/inputs: a int where a Batch holds ndarray",
        True,
    ),
    (
        "float targets in a batch in flight",
        lambda m, _: m["queue"][0]["payload"]["fields"].update(
            targets={"__tensor__": "<queue>/0/inputs"}
        ),
        "queue/0/payload/targets: must be int64, not float32",
        True,
    ),
    (
        "undeclared statistic",
        lambda m, _: state(m, "dense1")["stats"].update(flops=1),
        "components/dense1/state/stats: must count exactly",
        True,
    ),
    (
        "primaries that do not add up",
        lambda m, _: m["simulation"].update(primaries=5),
        "simulation/primaries",
        True,
    ),
]


def one_line_error(output: str, fragment: str, checkpoint: Path) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("nnsim: error: "), output
    assert "Traceback" not in output
    assert fragment in lines[0], (fragment, lines[0])
    assert f"checkpoint '{checkpoint}" in lines[0] or checkpoint.name in lines[0], lines[0]


@pytest.mark.parametrize(
    ("change", "fragment", "prebuild"),
    [pytest.param(c, f, p, id=i) for i, c, f, p in MUTATIONS],
)
def test_a_forged_checkpoint_is_refused_by_every_reader_with_one_line(
    original, tmp_path, change, fragment, prebuild
):
    forged = forge(original, tmp_path, change)
    result = run_nnsim("run", str(forged), timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    one_line_error(result.stderr, fragment, forged)
    assert "Prediction for" not in result.stdout
    runner = CliRunner()
    readers = [
        ["checkpoint", "verify", str(forged)],
        ["checkpoint", "inspect", str(forged)],
        ["predict", "--checkpoint", str(forged), "--images", str(EVAL)],
    ]
    for args in readers:
        outcome = runner.invoke(cli, args)
        assert not isinstance(outcome.exception, Exception) or isinstance(
            outcome.exception, SystemExit
        ), (args, outcome.exception)
        if prebuild:
            assert outcome.exit_code == 1, (args, outcome.output)
            one_line_error(outcome.output, fragment, forged)
        elif outcome.exit_code != 0:  # refused after the model is rebuilt, or not at all
            assert len(outcome.output.strip().splitlines()) == 1, outcome.output


def test_the_unchanged_copy_is_accepted_so_the_refusals_are_the_mutations(original, tmp_path):
    copy = forge(original, tmp_path, lambda m, _: None)
    result = run_nnsim("run", str(copy), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Prediction for" in result.stdout


def test_a_script_whose_arguments_change_the_model_is_refused_on_restart(original):
    result = run_nnsim(
        "run",
        EXAMPLE,
        f"--load-checkpoint={original['checkpoint']}",
        "--",
        *original["args"],
        "--hiddenLayerSize=64",
        "--epochs=3",
        timeout=120,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nnsim: error: the model script builds the checkpoint's model")
    assert "controller/epochs: 3 in the script, 2 in the checkpoint" in line
    assert "dense1/output_size: 64 in the script, 16 in the checkpoint" in line
    assert "--set NAME=VALUE" in line
    assert "Traceback" not in result.stderr


def test_a_script_with_the_same_arguments_restarts_and_set_changes_values(original):
    result = run_nnsim(
        "run",
        EXAMPLE,
        f"--load-checkpoint={original['checkpoint']}",
        "--set",
        "controller/epochs=3",
        "--",
        *original["args"],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Prediction for" in result.stdout


# The JSON layer on its own --------------------------------------------------------
def test_nesting_is_measured_without_recursion_and_brackets_in_strings_do_not_count():
    assert json_depth(b'{"a": [[1], {"b": "[[[[{{{"}}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"[" * 300_000) == 300_000


def test_non_finite_floats_round_trip_as_tagged_objects_not_literals():
    data = encode_json({"loss": math.nan, "best": math.inf, "worst": [-math.inf], "n": 2**100})
    assert b"NaN" not in data and b"Infinity" not in data
    value = decode_json(data)
    assert math.isnan(value["loss"]) and value["best"] == math.inf
    assert value["worst"] == [-math.inf] and value["n"] == 2**100
    with pytest.raises(ValueError, match="too large for a float"):
        decode_json(b'{"a": 1e999}')
    with pytest.raises(ValueError, match="is not nan, inf or -inf"):
        decode_json(b'{"a": {"__float__": "big"}}')


def test_a_diverged_run_with_nan_state_still_checkpoints_and_loads(original, tmp_path):
    def change(m, _):
        state(m, "controller")["loss_sum"] = math.nan
        m["metrics"]["val_loss"] = math.inf

    copy = forge(original, tmp_path, change)
    storage, name = open_checkpoint(str(copy))
    manifest = storage.load_manifest(name)
    assert math.isnan(manifest["components"]["controller"]["state"]["loss_sum"])
    assert manifest["metrics"]["val_loss"] == math.inf


def test_a_forged_manifest_is_refused_with_the_checkpoint_field_and_fault(original):
    manifest = decode_json((original["checkpoint"] / MANIFEST_FILE).read_bytes())
    state(manifest, "controller")["batch_size"] = "64"
    with pytest.raises(CheckpointError) as raised:
        parse_manifest(encode_json(reseal(manifest)), "C")
    assert str(raised.value) == (
        "manifest of checkpoint 'C' is invalid (components/controller/state/batch_size: "
        "expected a value of type int, got '64'); load another checkpoint"
    )


def test_reseal_makes_the_hash_match_so_an_unchanged_manifest_parses(original):
    manifest = decode_json((original["checkpoint"] / MANIFEST_FILE).read_bytes())
    manifest["created_at"] = "2000-01-01T00:00:00.000Z"
    with pytest.raises(CheckpointError, match="was modified"):
        parse_manifest(json.dumps(manifest).encode(), "C")
    assert parse_manifest(encode_json(reseal(manifest)), "C")["created_at"].startswith("2000")


# The declarations restored state is checked against ---------------------------------
def test_param_check_takes_typed_values_only_then_applies_range_and_choices():
    size = Param("batch_size", int, 128, min=1)
    assert size.check(64) == 64 and size.check(np.int64(64)) == 64
    for bad in ("64", 64.0, True, None, [64]):
        with pytest.raises(ValueError, match="expected a value of type int"):
            size.check(bad)
    with pytest.raises(ValueError, match="must be >= 1"):
        size.check(0)
    rate = Param("rate", float, 0.1, min=0.0)
    assert rate.check(1) == 1.0
    for bad in (math.nan, math.inf, "0.1"):
        with pytest.raises(ValueError):
            rate.check(bad)
    dtype = Param("dtype", str, "float32", choices=("float32", "float64"))
    with pytest.raises(ValueError, match="expected one of float32, float64"):
        dtype.check("float16")


def test_an_array_declaration_gives_the_shape_and_dtype_its_parameters_imply():
    weights = Array("weights", ("input_size", "output_size"), "dtype")
    shape, dtype = weights.expected({"input_size": 784, "output_size": 16, "dtype": "float32"})
    assert shape == (784, 16) and dtype == np.float32
    assert Array("order", (None,), "int64").expected({}) == ((None,), np.dtype("int64"))
    assert Array("inputs", (None, None), None).expected({}) == ((None, None), None)
