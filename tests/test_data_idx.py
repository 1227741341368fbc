"""read_idx / write_idx: the IDX format, and every way an IDX file can be bad."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnsim.data import read_idx, write_idx
from nnsim.errors import DataError

# tmp_path is shared by the examples of a hypothesis test; each example
# overwrites the same file, which is fine for these stateless readers.
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    header = bytes([0, 0, type_code, len(shape)])
    return header + b"".join(size.to_bytes(4, "big") for size in shape) + payload


def test_ubyte_images_round_trip_plain_and_gzipped(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in ("images-idx3-ubyte", "images-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        loaded = read_idx(tmp_path / name)
        assert loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded, images)


def test_gzip_is_recognised_by_content_not_by_file_name(tmp_path: Path) -> None:
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (3,), b"\x01\x02\x03")))
    np.testing.assert_array_equal(read_idx(path), [1, 2, 3])


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_every_idx_type_round_trips_in_native_byte_order(tmp_path: Path, dtype: str) -> None:
    values = np.array([[0, 1, -2 if dtype != "u1" else 2], [100, 3, 4]], dtype=dtype)
    write_idx(tmp_path / "values.idx", values)
    loaded = read_idx(tmp_path / "values.idx")
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, values)


def test_multibyte_values_are_read_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "shorts.idx"
    path.write_bytes(idx_bytes(0x0B, (2,), b"\x01\x02\xff\xfe"))
    np.testing.assert_array_equal(read_idx(path), np.array([0x0102, -2], dtype=np.int16))


def test_result_is_a_writable_copy(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.idx", np.zeros((2, 2), dtype=np.uint8))
    loaded = read_idx(tmp_path / "a.idx")
    loaded[0, 0] = 7
    assert loaded[0, 0] == 7


def test_zero_sized_dimension_gives_an_empty_array(tmp_path: Path) -> None:
    path = tmp_path / "empty.idx"
    path.write_bytes(idx_bytes(0x08, (0, 28, 28), b""))
    assert read_idx(path).shape == (0, 28, 28)


def test_missing_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'.*nope\.idx' does not exist"):
        read_idx(tmp_path / "nope.idx")


def test_folder_instead_of_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        read_idx(tmp_path)


def test_truncated_payload_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(0x08, (2, 28, 28), bytes(28 * 28 + 5)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_trailing_garbage_after_the_payload_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_bytes(0x08, (3,), b"\x01\x02\x03\x04"))
    with pytest.raises(DataError, match="holds 4 bytes of data but its header"):
        read_idx(path)


def test_truncated_header_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "images.idx"
    path.write_bytes(idx_bytes(0x08, (2, 28, 28), b"")[:9])
    with pytest.raises(DataError, match="ends inside its header"):
        read_idx(path)


def test_file_without_idx_magic_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(DataError, match=r"'.*picture\.png' is not an IDX file"):
        read_idx(path)


def test_unknown_type_code_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.idx"
    path.write_bytes(idx_bytes(0x0A, (1,), b"\x00"))
    with pytest.raises(DataError, match="unknown type code 0x0A"):
        read_idx(path)


def test_zero_dimensions_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "scalar.idx"
    path.write_bytes(bytes([0, 0, 8, 0, 5]))
    with pytest.raises(DataError, match="0 dimensions"):
        read_idx(path)


def test_corrupt_gzip_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    good = gzip.compress(idx_bytes(0x08, (64,), bytes(range(64))))
    path = tmp_path / "labels.gz"
    path.write_bytes(good[:10] + bytes(b ^ 0x5A for b in good[10:]))
    with pytest.raises(DataError, match=r"'.*labels\.gz' is not a valid gzip file"):
        read_idx(path)


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    good = gzip.compress(idx_bytes(0x08, (64,), bytes(range(64))))
    path = tmp_path / "labels.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_idx(path)


def test_writing_an_unsupported_dtype_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot write"):
        write_idx(tmp_path / "bad.idx", np.zeros(3, dtype=np.uint16))


@PROPERTY
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_an_array_or_a_data_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.idx"
    for payload in (data, gzip.compress(data), b"\x00\x00" + data, b"\x1f\x8b" + data):
        path.write_bytes(payload)
        try:
            result = read_idx(path)
        except DataError:
            continue
        assert isinstance(result, np.ndarray)


@PROPERTY
@given(
    array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6)),
    cut=st.integers(min_value=1),
    gzipped=st.booleans(),
)
def test_every_truncation_of_a_valid_file_is_a_data_error(
    tmp_path: Path, array: np.ndarray, cut: int, gzipped: bool
) -> None:
    path = tmp_path / ("cut.idx.gz" if gzipped else "cut.idx")
    write_idx(path, array)
    whole = path.read_bytes()
    path.write_bytes(whole[: max(0, len(whole) - cut)])
    with pytest.raises(DataError):
        read_idx(path)


@PROPERTY
@given(
    array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=8)),
    gzipped=st.booleans(),
)
def test_random_uint8_arrays_round_trip(tmp_path: Path, array: np.ndarray, gzipped: bool) -> None:
    path = tmp_path / ("round.idx.gz" if gzipped else "round.idx")
    write_idx(path, array)
    loaded = read_idx(path)
    assert loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
