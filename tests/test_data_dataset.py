"""load_split, scale_pixels, export_png and `nnsim data export-png`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from nnsim.cli.data import data as data_group
from nnsim.data import (
    CLASS_NAMES,
    FASHION_MNIST_DIR_ENV,
    default_dataset_dir,
    export_png,
    load_split,
    scale_pixels,
    select_per_class,
    write_idx,
)
from nnsim.errors import DataError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist is not installed",
)

# The tiny dataset's labels: every class, unevenly, interleaved.
TRAIN_LABELS = np.array([3, 0, 3, 1, 0, 9, 3, 2, 4, 5, 6, 7, 8, 0, 1, 9, 3, 5], dtype=np.uint8)
TEST_LABELS = np.array([1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0], dtype=np.uint8)


def fake_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def write_split(folder: Path, prefix: str, labels: np.ndarray, seed: int, suffix: str) -> None:
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", fake_images(len(labels), seed))
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST in Debian's layout (gzipped IDX files)."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_split(folder, "train", TRAIN_LABELS, seed=1, suffix=".gz")
    write_split(folder, "t10k", TEST_LABELS, seed=2, suffix=".gz")
    return folder


def test_idx_split_without_limit_keeps_file_order(idx_folder: Path) -> None:
    data = load_split("train", idx_folder)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images, fake_images(len(TRAIN_LABELS), seed=1))
    np.testing.assert_array_equal(data.labels, TRAIN_LABELS)
    assert data.source.endswith("train-images-idx3-ubyte.gz")


def test_test_split_reads_the_t10k_files(idx_folder: Path) -> None:
    np.testing.assert_array_equal(load_split("test", idx_folder).labels, TEST_LABELS)


def test_uncompressed_idx_files_are_accepted(tmp_path: Path) -> None:
    write_split(tmp_path, "train", TRAIN_LABELS, seed=1, suffix="")
    np.testing.assert_array_equal(load_split("train", tmp_path).labels, TRAIN_LABELS)


def test_class_image_limit_takes_the_first_of_each_class_in_class_order(idx_folder: Path) -> None:
    data = load_split("train", idx_folder, class_image_limit=2)
    assert data.labels.tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 9]
    expected = [1, 4, 3, 14, 7, 0, 2, 8, 9, 17, 10, 11, 12, 5, 15]
    np.testing.assert_array_equal(data.images, fake_images(len(TRAIN_LABELS), seed=1)[expected])


@given(
    labels=st.lists(st.integers(0, 9), max_size=60).map(lambda v: np.array(v, dtype=np.int64)),
    limit=st.integers(1, 8),
)
def test_select_per_class_is_the_first_n_of_each_class_by_class(
    labels: np.ndarray, limit: int
) -> None:
    expected = [i for c in range(10) for i in np.flatnonzero(labels == c)[:limit]]
    assert select_per_class(labels, limit).tolist() == expected


def test_exported_pngs_load_bit_identical_to_the_idx_files(
    idx_folder: Path, tmp_path: Path
) -> None:
    written = export_png(tmp_path / "png", idx_folder, class_image_limit=2)
    assert written == 15 + len(TEST_LABELS)
    for split in ("train", "test"):
        from_idx = load_split(split, idx_folder, class_image_limit=2)
        from_png = load_split(split, tmp_path / "png" / split, class_image_limit=2)
        np.testing.assert_array_equal(from_png.images, from_idx.images)
        np.testing.assert_array_equal(from_png.labels, from_idx.labels)
        assert from_png.source == str(tmp_path / "png" / split)


def test_export_names_files_by_class_and_idx_position(idx_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    export_png(out, idx_folder)
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(CLASS_NAMES)
    top = sorted(p.name for p in (out / "train" / "TOP").iterdir())
    assert top == ["00001.png", "00004.png", "00013.png"]
    assert len(list((out / "test").rglob("*.png"))) == len(TEST_LABELS)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_export_refuses_to_overwrite_an_earlier_export(idx_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "png" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match=r"'.*test' already exists"):
        export_png(tmp_path / "png", idx_folder)
    assert not (tmp_path / "png" / "train").exists()


def test_failed_export_leaves_nothing_behind(idx_folder: Path, tmp_path: Path) -> None:
    (idx_folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bbroken")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        export_png(tmp_path / "png", idx_folder)
    assert not (tmp_path / "png").exists()


def test_export_into_a_file_is_a_data_error(idx_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(DataError, match=r"export folder '.*out' is a file"):
        export_png(tmp_path / "out", idx_folder)


def test_export_from_a_folder_without_idx_files_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"IDX files for the train split not found in '.*empty'"):
        export_png(tmp_path / "png", tmp_path / "empty")


def test_cli_export_png_prints_the_count(idx_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "png"
    args = ["export-png", "--out", str(out), "--source", str(idx_folder), "--classImageLimit", "1"]
    result = CliRunner().invoke(data_group, args)
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote 20 images to {out}\n"
    assert len(list(out.rglob("*.png"))) == 20


def test_cli_export_png_lets_data_errors_through(tmp_path: Path) -> None:
    args = ["export-png", "--out", str(tmp_path / "png"), "--source", str(tmp_path / "none")]
    result = CliRunner().invoke(data_group, args)
    assert isinstance(result.exception, DataError)


def test_folder_without_idx_files_is_read_as_class_folders(tmp_path: Path, idx_folder) -> None:
    export_png(tmp_path / "png", idx_folder)
    data = load_split("test", tmp_path / "png" / "test")
    assert sorted(data.labels.tolist()) == sorted(TEST_LABELS.tolist())


def test_default_folder_comes_from_the_environment(idx_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv(FASHION_MNIST_DIR_ENV, str(idx_folder))
    assert default_dataset_dir() == idx_folder
    np.testing.assert_array_equal(load_split("test").labels, TEST_LABELS)


def test_missing_default_dataset_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(FASHION_MNIST_DIR_ENV, str(tmp_path / "absent"))
    message = r"Fashion-MNIST not found in .*absent; install the Debian package dataset-fashion"
    with pytest.raises(DataError, match=message):
        load_split("train")


@pytest.mark.parametrize(
    ("split", "flag"), [("train", "--trainingImages"), ("test", "--testImages")]
)
def test_missing_folder_names_it_and_the_option(tmp_path: Path, split: str, flag: str) -> None:
    with pytest.raises(
        DataError, match=rf"images folder '.*data/{split}' does not exist; pass {flag}"
    ):
        load_split(split, tmp_path / "data" / split)


def test_empty_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no class folders"):
        load_split("train", tmp_path)


def test_images_file_without_labels_file_is_a_data_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", fake_images(2, seed=0))
    with pytest.raises(DataError, match=r"not train-labels-idx1-ubyte\[\.gz\]"):
        load_split("train", tmp_path)


def test_truncated_idx_in_a_dataset_folder_is_a_data_error(idx_folder: Path) -> None:
    path = idx_folder / "train-images-idx3-ubyte"
    write_idx(path, fake_images(3, seed=0))
    (idx_folder / "train-images-idx3-ubyte.gz").unlink()
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        load_split("train", idx_folder)


def test_images_of_the_wrong_shape_in_idx_are_a_data_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 32, 32), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds uint8 \[2, 32, 32\], expected uint8 \[N, 28, 28\]"):
        load_split("train", tmp_path)


def test_label_count_mismatch_is_a_data_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", fake_images(3, seed=0))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(DataError, match="to match"):
        load_split("train", tmp_path)


def test_label_out_of_range_is_a_data_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", fake_images(2, seed=0))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 10], dtype=np.uint8))
    with pytest.raises(DataError, match="has label 10"):
        load_split("train", tmp_path)


def test_unknown_split_is_a_data_error(idx_folder: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset split 'validation'"):
        load_split("validation", idx_folder)  # type: ignore[arg-type]


def test_scale_pixels_maps_0_255_to_minus_1_1_in_flat_rows() -> None:
    images = np.stack([np.zeros((28, 28)), np.full((28, 28), 255)]).astype(np.uint8)
    images[0, 0, 1] = 51
    scaled = scale_pixels(images)
    assert scaled.dtype == np.float32
    assert scaled.shape == (2, 784)
    assert scaled[0, 0] == -1.0 and scaled[1, 0] == 1.0
    assert scaled[0, 1] == (np.float32(51) - np.float32(127.5)) / np.float32(127.5)


def test_scale_pixels_computes_in_the_requested_dtype() -> None:
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    scaled = scale_pixels(images, np.float64)
    assert scaled.dtype == np.float64
    np.testing.assert_array_equal(scaled[0], (np.arange(256) - 127.5) / 127.5)


@needs_fashion_mnist
def test_real_fashion_mnist_with_limit_gives_5_per_class_in_class_order(monkeypatch) -> None:
    monkeypatch.delenv(FASHION_MNIST_DIR_ENV, raising=False)
    data = load_split("train", class_image_limit=5)
    assert data.images.shape == (50, 28, 28)
    assert data.labels.tolist() == [label for label in range(10) for _ in range(5)]


@needs_fashion_mnist
def test_real_fashion_mnist_exported_pngs_match_the_idx_files(tmp_path: Path) -> None:
    assert export_png(tmp_path, FASHION_MNIST, class_image_limit=3) == 60
    for split in ("train", "test"):
        from_idx = load_split(split, FASHION_MNIST, class_image_limit=3)
        from_png = load_split(split, tmp_path / split)
        np.testing.assert_array_equal(from_png.images, from_idx.images)
        np.testing.assert_array_equal(from_png.labels, from_idx.labels)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eval2/ankle_boot.png", "ANKLE_BOOT"),
        ("eval/tshirt.png", "TOP"),
        ("eval/pants.png", "TROUSER"),
        ("photos/T-Shirt 2.png", "TOP"),
        ("sneaker3.png", "SNEAKER"),
        ("holiday.png", None),
    ],
)
def test_class_from_file_name_reads_the_class_an_evaluation_file_names(name, expected):
    from nnsim.data import class_from_file_name

    assert class_from_file_name(name) == expected
