"""read_class_folders and read_eval_folder: PNG trees in, uint8 arrays out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from nnsim.data import CLASS_NAMES, read_class_folders, read_eval_folder
from nnsim.errors import DataError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist"


def write_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8))
    (image.convert(mode) if mode else image).save(path)


def constant(value: int, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """Classes 0, 1 and 3 with 3 images each; pixel value = 10 * label + file number."""
    root = tmp_path / "train"
    for label in (3, 0, 1):
        for number in (2, 0, 1):
            write_png(root / str(label) / f"{number:04d}.png", constant(10 * label + number))
    return root


def test_class_folders_named_by_index_give_labels_class_by_class(class_tree: Path) -> None:
    data = read_class_folders(class_tree)
    assert data.images.dtype == np.uint8
    assert data.images.shape == (9, 28, 28)
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 3, 3, 3]
    assert data.images[:, 0, 0].tolist() == [0, 1, 2, 10, 11, 12, 30, 31, 32]
    assert data.source == str(class_tree)


def test_class_folders_named_by_class_name_in_any_case(tmp_path: Path) -> None:
    write_png(tmp_path / "ankle_boot" / "a.png", constant(9))
    write_png(tmp_path / "Trouser" / "a.png", constant(1))
    write_png(tmp_path / "TOP" / "a.png", constant(0))
    data = read_class_folders(tmp_path)
    assert data.labels.tolist() == [0, 1, 9]
    assert data.images[:, 5, 5].tolist() == [0, 1, 9]


def test_class_image_limit_takes_the_first_files_by_name(class_tree: Path) -> None:
    data = read_class_folders(class_tree, class_image_limit=2)
    assert data.labels.tolist() == [0, 0, 1, 1, 3, 3]
    assert data.images[:, 0, 0].tolist() == [0, 1, 10, 11, 30, 31]


def test_color_images_are_converted_to_grayscale(tmp_path: Path) -> None:
    write_png(tmp_path / "0" / "rgb.png", constant(200), mode="RGB")
    write_png(tmp_path / "0" / "rgba.png", constant(100), mode="RGBA")
    data = read_class_folders(tmp_path)
    assert data.images[:, 3, 3].tolist() == [200, 100]


def test_hidden_entries_and_other_files_are_ignored(class_tree: Path) -> None:
    (class_tree / "README.txt").write_text("notes")
    (class_tree / "0" / "notes.txt").write_text("notes")
    write_png(class_tree / ".cache" / "x.png", constant(1))
    write_png(class_tree / "0" / ".hidden.png", constant(1))
    assert len(read_class_folders(class_tree)) == 9


def test_wrong_image_size_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    write_png(tmp_path / "0" / "x.png", constant(0, (32, 32)))
    with pytest.raises(DataError, match=r"image '.*x\.png' is 32x32, expected 28x28"):
        read_class_folders(tmp_path)


def test_missing_root_is_a_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"images folder '.*nowhere' does not exist"):
        read_class_folders(tmp_path / "nowhere")


def test_root_that_is_a_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        read_class_folders(tmp_path / "file")


def test_root_without_class_folders_is_a_data_error(tmp_path: Path) -> None:
    write_png(tmp_path / "loose.png", constant(0))
    with pytest.raises(DataError, match="has no class folders"):
        read_class_folders(tmp_path)


def test_class_folders_without_any_png_is_a_data_error(tmp_path: Path) -> None:
    for name in CLASS_NAMES:
        (tmp_path / name).mkdir()
    with pytest.raises(DataError, match="no .png files"):
        read_class_folders(tmp_path)


def test_unknown_class_folder_name_is_a_data_error(tmp_path: Path) -> None:
    write_png(tmp_path / "hats" / "a.png", constant(0))
    with pytest.raises(DataError, match=r"'.*hats' is not a class folder"):
        read_class_folders(tmp_path)


def test_two_folders_for_the_same_class_are_a_data_error(tmp_path: Path) -> None:
    write_png(tmp_path / "1" / "a.png", constant(0))
    write_png(tmp_path / "trouser" / "a.png", constant(0))
    with pytest.raises(DataError, match=r"both class 1 \(TROUSER\)"):
        read_class_folders(tmp_path)


def test_non_image_png_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    write_png(tmp_path / "0" / "a.png", constant(0))
    (tmp_path / "0" / "b.png").write_text("this is not a picture")
    with pytest.raises(DataError, match=r"cannot read image '.*b\.png'"):
        read_class_folders(tmp_path)


def test_truncated_png_is_a_data_error(tmp_path: Path) -> None:
    write_png(tmp_path / "0" / "a.png", np.arange(784).reshape(28, 28) % 251)
    path = tmp_path / "0" / "a.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=r"cannot read image '.*a\.png'"):
        read_class_folders(tmp_path)


@pytest.mark.parametrize("limit", [0, -1, 2.5, "3"])
def test_class_image_limit_must_be_a_positive_whole_number(class_tree: Path, limit) -> None:
    with pytest.raises(DataError, match="class image limit"):
        read_class_folders(class_tree, class_image_limit=limit)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pixels=hnp.arrays(np.uint8, (3, 28, 28)))
def test_png_write_read_round_trip_is_exact(tmp_path: Path, pixels: np.ndarray) -> None:
    for number, image in enumerate(pixels):
        write_png(tmp_path / "SHIRT" / f"{number}.png", image)
    data = read_class_folders(tmp_path)
    np.testing.assert_array_equal(data.images, pixels)
    assert data.labels.tolist() == [6, 6, 6]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_damaged_png_gives_an_image_or_a_data_error(
    tmp_path: Path, position: int, value: int, cut: bool
) -> None:
    path = tmp_path / "x.png"
    write_png(path, np.arange(784).reshape(28, 28) % 253)
    raw = bytearray(path.read_bytes())
    position %= len(raw)
    if cut:
        del raw[position:]
    else:
        raw[position] = value
    path.write_bytes(bytes(raw))
    try:
        data = read_eval_folder(tmp_path)
    except DataError:
        return
    assert data.images.shape == (1, 28, 28)


def test_eval_folder_is_read_in_file_name_order_with_paths_as_given(tmp_path: Path) -> None:
    write_png(tmp_path / "b.png", constant(2))
    write_png(tmp_path / "a.png", constant(1))
    write_png(tmp_path / "sub" / "c.png", constant(3))
    data = read_eval_folder(tmp_path)
    assert data.paths == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert data.images.dtype == np.uint8
    assert data.images[:, 0, 0].tolist() == [1, 2]


def test_eval_images_of_another_size_are_resized_to_28x28(tmp_path: Path) -> None:
    write_png(tmp_path / "photo.png", constant(180, (120, 90)), mode="RGB")
    data = read_eval_folder(tmp_path)
    assert data.images.shape == (1, 28, 28)
    assert np.all(data.images == 180)


def test_eval_images_of_28x28_are_not_resampled(tmp_path: Path) -> None:
    pixels = (np.arange(784).reshape(28, 28) * 7 % 256).astype(np.uint8)
    write_png(tmp_path / "x.png", pixels)
    np.testing.assert_array_equal(read_eval_folder(tmp_path).images[0], pixels)


def test_invert_turns_dark_on_light_into_light_on_dark(tmp_path: Path) -> None:
    write_png(tmp_path / "x.png", constant(250))
    assert np.all(read_eval_folder(tmp_path, invert=True).images == 5)


def test_missing_eval_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"evaluation images folder '.*gone' does not exist"):
        read_eval_folder(tmp_path / "gone")


def test_empty_eval_folder_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="has no .png files"):
        read_eval_folder(tmp_path)


def test_non_image_png_in_eval_folder_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"cannot read image '.*x\.png'"):
        read_eval_folder(tmp_path)


def test_shipped_eval_images_are_28x28_grayscale() -> None:
    for folder, count in (("eval", 2), ("eval2", len(CLASS_NAMES))):
        files = sorted((EXAMPLES / folder).glob("*.png"))
        assert len(files) == count
        for path in files:
            with Image.open(path) as image:
                assert (image.mode, image.size) == ("L", (28, 28))
    names = [Path(p).stem for p in read_eval_folder(EXAMPLES / "eval2").paths]
    assert sorted(names) == sorted(name.lower() for name in CLASS_NAMES)
