"""The safetensors reader and writer: exact round trips, compatibility with the library, safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim.checkpoint import CheckpointError, read_safetensors, write_safetensors
from nnsim.checkpoint.tensorfile import DTYPES, plan_file, safetensors_from_bytes

SHAPES = [(), (0,), (3,), (2, 3), (0, 4), (2, 0, 3), (1, 1, 1, 5)]


def random_array(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Any bit pattern at all (NaN payloads, subnormals, bool bytes 0/1)."""
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(
            np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8)
        )
    )


@pytest.mark.parametrize("code", sorted(DTYPES))
def test_every_dtype_and_shape_round_trips_bit_for_bit(tmp_path: Path, code: str):
    rng = np.random.default_rng(0)
    tensors = {f"t{i}": random_array(rng, DTYPES[code], shape) for i, shape in enumerate(SHAPES)}
    write_safetensors(tmp_path / "a.safetensors", tensors)
    loaded, _ = read_safetensors(tmp_path / "a.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, array in tensors.items():
        assert same_bits(loaded[name], array), name


tensor_sets = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda s: s != "__metadata__"),
    st.tuples(
        st.sampled_from(sorted(DTYPES)),
        st.lists(st.integers(0, 5), max_size=4).map(tuple),
        st.integers(0, 2**32 - 1),
    ),
    max_size=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=tensor_sets)
def test_random_tensor_sets_round_trip_here_and_in_the_safetensors_library(tmp_path: Path, spec):
    tensors = {
        name: random_array(np.random.default_rng(seed), DTYPES[code], shape)
        for name, (code, shape, seed) in spec.items()
    }
    path = tmp_path / "h.safetensors"
    digest, size = write_safetensors(path, tensors, {"origin": "hypothesis"})
    assert size == path.stat().st_size
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, metadata = read_safetensors(path)
    theirs = safetensors.numpy.load_file(str(path))
    assert metadata == {"origin": "hypothesis"}
    assert loaded.keys() == theirs.keys() == tensors.keys()
    for name, array in tensors.items():
        assert same_bits(loaded[name], array)
        assert same_bits(theirs[name], array)


def test_files_written_by_the_safetensors_library_load_here(tmp_path: Path):
    rng = np.random.default_rng(1)
    tensors = {
        f"{code.lower()}_{i}": random_array(rng, DTYPES[code], shape)
        for code in DTYPES
        for i, shape in enumerate(SHAPES)
    }
    path = tmp_path / "theirs.safetensors"
    safetensors.numpy.save_file(tensors, str(path), metadata={"format": "np", "note": "é"})
    loaded, metadata = read_safetensors(path)
    assert metadata == {"format": "np", "note": "é"}
    assert loaded.keys() == tensors.keys()
    for name, array in tensors.items():
        assert same_bits(loaded[name], array), name


def test_non_contiguous_fortran_and_big_endian_arrays_are_stored_by_value(tmp_path: Path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    tensors = {
        "strided": base[::2, 1::2],
        "fortran": np.asfortranarray(base),
        "transposed": base.T,
        "big_endian": base.astype(">i4"),
        "zero_d": np.array(7, dtype=">u2"),
    }
    path = tmp_path / "views.safetensors"
    write_safetensors(path, tensors)
    theirs = safetensors.numpy.load_file(str(path))
    ours, _ = read_safetensors(path)
    for name, array in tensors.items():
        np.testing.assert_array_equal(ours[name], array)
        np.testing.assert_array_equal(theirs[name], array)
        assert ours[name].dtype == array.dtype.newbyteorder("<")


@pytest.mark.parametrize(
    "array",
    [
        np.array([1, "a"], dtype=object),
        np.zeros(2, np.complex128),
        np.array(["x"]),
        np.zeros(1, "M8[s]"),
    ],
    ids=["object", "complex", "str", "datetime"],
)
def test_unsupported_dtypes_are_refused_naming_the_tensor(tmp_path: Path, array):
    with pytest.raises(CheckpointError, match="'layer.bad'"):
        write_safetensors(tmp_path / "x.safetensors", {"ok": np.zeros(2), "layer.bad": array})


def test_tensors_are_aligned_for_their_dtype_in_the_file():
    plan = plan_file(
        {"a": np.zeros(3, np.uint8), "b": np.zeros(3, np.float64), "c": np.zeros(1, np.int16)}
    )
    assert len(plan.header) % 8 == 0
    for entry in plan.entries.values():
        assert entry["data_offsets"][0] % DTYPES[entry["dtype"]].itemsize == 0


def test_memory_mapped_arrays_are_copy_on_write(tmp_path: Path):
    path = tmp_path / "cow.safetensors"
    write_safetensors(path, {"w": np.zeros((64, 64), np.float32)})
    before = path.read_bytes()
    loaded, _ = read_safetensors(path)
    loaded["w"] += 1.0
    assert loaded["w"].flags.writeable and loaded["w"].sum() == 64 * 64
    assert path.read_bytes() == before
    again, _ = read_safetensors(path)
    assert again["w"].sum() == 0


def test_arrays_from_bytes_are_read_only_and_from_bytearray_writable(tmp_path: Path):
    path = tmp_path / "b.safetensors"
    write_safetensors(path, {"w": np.arange(4, dtype=np.int32)})
    frozen, _ = safetensors_from_bytes(path.read_bytes())
    mutable, _ = safetensors_from_bytes(bytearray(path.read_bytes()))
    assert not frozen["w"].flags.writeable
    assert mutable["w"].flags.writeable
    np.testing.assert_array_equal(frozen["w"], mutable["w"])


def header_file(header, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x05\x00",
        (10**9).to_bytes(8, "little") + b"{}",
        header_file([1, 2]),
        b"\x04\x00\x00\x00\x00\x00\x00\x00nope",
        header_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
        header_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12),
        header_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        header_file({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
        header_file({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
        header_file(
            {
                "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
            },
            b"\0" * 6,
        ),
        header_file({"a": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, b"\0" * 6),
        header_file({"__metadata__": {"k": 1}}),
        header_file({"a": {"dtype": "U8", "shape": [1]}}, b"\0"),
    ],
    ids=[
        "empty",
        "short",
        "huge-header",
        "not-an-object",
        "not-json",
        "truncated-data",
        "trailing-bytes",
        "shape-vs-bytes",
        "unknown-dtype",
        "negative-shape",
        "overlap",
        "gap",
        "metadata-not-strings",
        "no-offsets",
    ],
)
def test_malformed_files_are_refused_with_one_line(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.safetensors") as error:
        read_safetensors(path)
    assert "\n" not in str(error.value)


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_a_damaged_file_is_refused_or_read_but_never_crashes_the_reader(position, value, cut):
    good = bytearray(
        header_file(
            {
                "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                "b": {"dtype": "I8", "shape": [3], "data_offsets": [16, 19]},
            },
            bytes(range(19)),
        )
    )
    position %= len(good)
    if cut:
        del good[position:]
    else:
        good[position] = value
    try:
        tensors, _ = safetensors_from_bytes(bytes(good))
    except CheckpointError:
        return
    assert sum(array.nbytes for array in tensors.values()) <= len(good)
