"""The generic TOML <-> dataclass binder, on a config of its own (nothing of nnsim's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nnsim.train.binder import (
    REQUIRED,
    Binder,
    BindError,
    Layer,
    Option,
    complete,
    extras,
    option,
    tomllib,
)

SHAPES = {
    "circle": {"radius": Option(float, 1.0), "filled": Option(bool, False)},
    "polygon": {"sides": Option(int, 3), "labels": Option(list[str], [])},
    "named": {"label": Option(str, REQUIRED)},
}


@dataclass
class Shape:
    kind: str = option("circle", choices=lambda: tuple(SHAPES))
    settings: dict[str, Any] = extras(lambda shape: SHAPES.get(shape.kind, {}))

    def __post_init__(self) -> None:
        complete(self)


@dataclass
class Paths:
    source: str = option("", path=True)
    sizes: list[int] = option([4, 8], min=1, max=64)
    ratio: float | str = option("auto")
    strict: bool = option(True, key="strict-mode")


@dataclass
class Drawing:
    title: str = "untitled"
    scale: float = option(1.0, min=0.0, min_exclusive=True)
    paths: Paths = field(default_factory=Paths)
    shape: Shape = field(default_factory=Shape)


BINDER = Binder(Drawing, example="scale=2")


def load(*layers: Layer) -> Drawing:
    drawing = BINDER.load(layers)
    BINDER.check_ranges(drawing)
    return drawing


def test_a_written_config_reads_back_equal_with_its_sections_and_extras(tmp_path):
    drawing = load(
        Layer({"title": 'a "quoted"\ttitle', "paths": {"sizes": [1, 64], "ratio": 0.5}}),
        Layer({"paths.strict-mode": False, "shape.kind": "polygon"}),
        Layer(["shape.sides=7", "shape.labels=a,b", "paths.source=in/put"], texts=True),
    )
    assert drawing.shape.settings == {"sides": 7, "labels": ["a", "b"]}
    text = BINDER.to_toml(drawing, "written by a test\nsecond line")
    assert text.startswith("# written by a test\n# second line\n\ntitle = ")
    assert "[paths]\n" in text and "strict-mode = false\n" in text and "[shape]\nkind =" in text
    assert load(Layer(tomllib.loads(text))) == drawing
    path = tmp_path / "drawing.toml"
    path.write_text(text)
    with path.open("rb") as file:
        assert load(Layer(tomllib.load(file))) == drawing


def test_later_layers_win_and_extras_follow_the_final_kind():
    drawing = load(
        Layer({"shape": {"kind": "circle", "radius": 2}}),  # an int read as a float
        Layer(["shape.filled=true"], texts=True),
    )
    assert drawing.shape.settings == {"radius": 2.0, "filled": True}
    assert type(drawing.shape.settings["radius"]) is float
    # a key of the kind named later is checked against that kind
    drawing = load(Layer({"shape": {"sides": 5}}), Layer({"shape.kind": "polygon"}))
    assert drawing.shape.settings == {"sides": 5, "labels": []}
    with pytest.raises(BindError, match="file: unknown config key 'shape.sides'"):
        load(Layer({"shape": {"sides": 5}}, "file: "))


def test_input_paths_are_relative_to_their_layers_base(tmp_path):
    drawing = load(Layer({"paths": {"source": "data"}}, base=tmp_path))
    assert drawing.paths.source == str(tmp_path / "data")
    moved = BINDER.map_paths(drawing, lambda path: Path(path).name)
    assert moved.paths.source == "data" and drawing.paths.source == str(tmp_path / "data")


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (Layer({"titel": "x"}, "f: "), "f: unknown config key 'titel'; did you mean 'title'?"),
        (Layer({"paths": {"size": [1]}}), "unknown config key 'paths.size'; did you mean"),
        (Layer({"shape": {"radias": 1.0}}), "did you mean 'shape.radius'?"),
        (Layer({"shape": {"radius": "big"}}), "shape.radius must be a number, got 'big'"),
        (Layer({"paths": 3}), "paths is a table; set its keys, e.g. paths.source"),
        (Layer(["scale.x=1"], texts=True), "scale is not a table: it is a number"),
        (Layer(["shape.radius.x=1"], texts=True), "shape.radius is not a table"),
        (Layer(["scale"], texts=True), "--set takes KEY=VALUE (e.g. scale=2), not 'scale'"),
        (Layer({"paths": {"sizes": [1, 65]}}), "paths.sizes must be <= 64, got 65"),
        (Layer({"scale": 0}), "scale must be > 0.0, got 0.0"),
        (Layer({"scale": float("nan")}), "scale must be a finite number, got nan"),
        (Layer({"shape": {"kind": "squre"}}), "shape.kind must be one of circle, polygon, named"),
        (Layer({"shape": {"kind": "named"}}), "shape.label has no default; set it"),
        (Layer({"paths": {"strict-mode": 1}}), "paths.strict-mode must be true or false, got 1"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(layer, message):
    with pytest.raises(BindError) as caught:
        load(layer)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_command_line_texts_are_parsed_as_their_keys_type():
    assert BINDER.parse_set("scale=2") == ("scale", 2)
    assert BINDER.parse_set("paths.sizes=3,5") == ("paths.sizes", [3, 5])
    assert BINDER.parse_set("paths.ratio=auto") == ("paths.ratio", "auto")  # float | str
    assert BINDER.parse_set("paths.ratio=0.25") == ("paths.ratio", 0.25)
    assert BINDER.parse_set('title="quoted"') == ("title", '"quoted"')  # strings: the text
    drawing = load(Layer(["title=123", "paths.ratio=1"], texts=True))
    assert drawing.title == "123" and drawing.paths.ratio == 1.0
    option_ = BINDER.option_of("paths.sizes")
    assert (option_.kind, option_.default, option_.rule.min, option_.rule.max) == (
        list[int],
        [4, 8],
        1,
        64,
    )
