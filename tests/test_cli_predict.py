"""``nnsim predict`` through the real CLI: top classes, the accuracy line, the CSV, the help."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import test_cli_checkpoint as shared
from conftest import run_nnsim
from PIL import Image

from nnsim.data import CLASS_NAMES

run = shared.run  # the module-scoped checkpoints of a two-epoch toy run


def toy_image(label: int, size: int = 28) -> Image.Image:
    image = np.full((28, 28), 20, dtype=np.uint8)
    row, col = divmod(label, 5)
    image[4 + row * 12 : 12 + row * 12, 2 + col * 5 : 6 + col * 5] = 230
    return Image.fromarray(image, mode="L").resize((size, size), Image.Resampling.NEAREST)


@pytest.fixture
def named(tmp_path: Path) -> Path:
    """Images named after their class (one of them 56x56 RGB), a wrong name, and no name."""
    folder = tmp_path / "named"
    folder.mkdir()
    toy_image(0).save(folder / "tshirt.png")
    toy_image(1, size=56).convert("RGB").save(folder / "trouser-2.png")
    toy_image(7).save(folder / "sneaker.png")
    toy_image(7).save(folder / "bag.png")  # a sneaker whose name says bag: counted wrong
    toy_image(0).save(folder / "photo.png")
    return folder


def test_predict_shows_the_top_classes_and_the_accuracy_of_named_images(run, named):
    result = run_nnsim(
        "predict", "--checkpoint", str(run["dir"]), "--images", str(named), "--top", "3"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    survey = [line for line in lines if line.startswith("Prediction for")]
    assert len(survey) == 5
    predicted = {line.split()[2]: line.split("### ")[1] for line in survey}
    ranked = [line for line in lines if line.startswith(str(named)) and "  " in line]
    assert len(ranked) == 5
    for line in ranked:
        path, *pairs = line.split("  ")
        pairs = [pair for pair in pairs if pair]
        assert len(pairs) == 3
        names = [pair.split()[0] for pair in pairs]
        values = [float(pair.split()[1]) for pair in pairs]
        assert names[0] == predicted[path.strip()]  # the simulation's class is the most likely
        assert values == sorted(values, reverse=True) and 0 <= values[-1] <= values[0] <= 1
        assert set(names) <= set(CLASS_NAMES)
    right = sum(
        predicted[str(named / f)] == c
        for f, c in [
            ("tshirt.png", "TOP"),
            ("trouser-2.png", "TROUSER"),
            ("sneaker.png", "SNEAKER"),
            ("bag.png", "BAG"),
        ]
    )
    summary = next(line for line in lines if line.startswith("accuracy: "))
    assert (
        summary
        == f"accuracy: {right}/4 = {right / 4:.3f} (classes from file names; 1 image without one)"
    )
    if predicted[str(named / "bag.png")] != "BAG":
        assert f"bag.png (BAG) as {predicted[str(named / 'bag.png')]}" in result.stdout


def test_predict_writes_a_csv_with_every_probability(run, named, tmp_path):
    out = tmp_path / "predictions.csv"
    result = run_nnsim(
        "predict", "--checkpoint", str(run["last"]), "--images", str(named), "--csv", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"wrote {out}"
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "predicted", "probability", "true", "correct"] + [
        f"p_{name}" for name in CLASS_NAMES
    ]
    by_name = {Path(row["path"]).name: row for row in rows}
    assert set(by_name) == {"tshirt.png", "trouser-2.png", "sneaker.png", "bag.png", "photo.png"}
    assert by_name["tshirt.png"]["true"] == "TOP" and by_name["photo.png"]["true"] == ""
    assert by_name["photo.png"]["correct"] == ""
    for row in rows:
        probabilities = [float(row[f"p_{name}"]) for name in CLASS_NAMES]
        assert abs(sum(probabilities) - 1) < 1e-4
        assert float(row["probability"]) == max(probabilities)
        assert CLASS_NAMES[int(np.argmax(probabilities))] == row["predicted"]
        if row["true"]:
            assert row["correct"] == ("yes" if row["true"] == row["predicted"] else "no")
    survey = [line for line in result.stdout.splitlines() if line.startswith("Prediction for")]
    assert [line.split("### ")[1] for line in survey] == [row["predicted"] for row in rows]


def test_predict_without_named_images_prints_no_accuracy_and_refuses_bad_options(run, tmp_path):
    plain = run_nnsim("predict", "--checkpoint", str(run["last"]), "--images", str(run["eval"]))
    assert plain.returncode == 0, plain.stderr
    assert all(line.startswith("Prediction for") for line in plain.stdout.splitlines())
    bad_top = run_nnsim(
        "predict", "--checkpoint", str(run["last"]), "--images", str(run["eval"]), "--top", "11"
    )
    assert bad_top.returncode == 2 and "--top" in bad_top.stderr
    missing = tmp_path / "nope" / "p.csv"
    bad_csv = run_nnsim(
        "predict",
        "--checkpoint",
        str(run["last"]),
        "--images",
        str(run["eval"]),
        "--csv",
        str(missing),
    )
    assert bad_csv.returncode == 1
    assert bad_csv.stderr == f"nnsim: error: the folder of --csv '{missing}' does not exist\n"


def test_predict_help_says_any_size_not_28x28_pngs():
    result = run_nnsim("predict", "--help")
    assert "28x28 PNGs" not in result.stdout
    assert (
        "any size" in result.stdout and "--top K" in result.stdout and "--csv FILE" in result.stdout
    )
