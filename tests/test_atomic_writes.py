"""Every file nnsim writes goes through `nnsim.files`: a write that fails half way loses nothing.

Each writer is made to fail after it has written some bytes (the helper's
file object runs out of space, or the library that wants a path writes a
few bytes and raises); the previous file must be intact, no temporary or
partial file may be left in the folder, and the error is one `NnsimError`.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_idx_dataset

from nnsim import files, nn
from nnsim.errors import NnsimError
from nnsim.sim import Simulation

PREVIOUS = b"the previous file, which must survive\n"


class HalfWay:
    """A file object that writes the first ``budget`` bytes, then fails as a full disk does."""

    def __init__(self, real, budget: int):
        self.real, self.budget, self.written = real, budget, 0

    def write(self, data):
        if len(data) > self.budget:
            self.real.write(data[: self.budget])
            self.real.flush()
            self.written += self.budget
            self.budget = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        self.written += len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def break_files(monkeypatch) -> list[HalfWay]:
    """Make the helper's file object fail after 16 bytes; the list collects the files opened."""
    opened: list[HalfWay] = []
    real_open = files._open_temporary

    def open_half_way(descriptor, mode, encoding, newline):
        opened.append(HalfWay(real_open(descriptor, mode, encoding, newline), 16))
        return opened[-1]

    monkeypatch.setattr(files, "_open_temporary", open_half_way)
    return opened


@pytest.fixture
def half_way_files(monkeypatch) -> list[HalfWay]:
    return break_files(monkeypatch)


def partial_then_raise(path) -> None:
    """What a library that wants a path does when the disk fills: some bytes, then an error."""
    Path(path).write_bytes(b"half a fi")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small network a few steps into training: its snapshot body and tensors."""
    from nnsim.state import capture

    dataset = make_idx_dataset(tmp_path_factory.mktemp("toy"), train_per_class=4)
    sim = Simulation(seed=7, output=io.StringIO())
    nn.Sequential(
        [nn.Input(784), nn.Dense(8), nn.ReLU(), nn.Dense(10), nn.Softmax()],
        optimizer=nn.SGD(learning_rate=0.1),
        controller=nn.BatchController(
            batch_size=8,
            epochs=1,
            training_images=str(dataset),
            test_images=str(dataset),
            progress=False,
        ),
    ).build(sim, dtype="float32")
    sim.run(until="60us")
    return capture(sim)


def small_sim() -> Simulation:
    from test_tracing import SlowListener, Ticker

    sim = Simulation(output=io.StringIO())
    sim.add(Ticker, "ticker", count=5)
    sim.add(SlowListener, "listener")
    sim.connect("ticker.out", "listener.in", latency="99500ps")
    return sim


@dataclass
class Case:
    """One writer: ``write(path)`` writes the file at ``path`` the way nnsim does."""

    name: str
    file_name: str
    write: Callable[..., object]
    #: how the write is broken: "file" (the helper's file object) or a patch of the library
    fail: str | Callable[[pytest.MonkeyPatch], None] = "file"
    needs: tuple[str, ...] = ()


def _export(kind: str):
    def write(path, trained):
        from nnsim.interop.export import EXPORTERS

        body, tensors = trained
        EXPORTERS[kind](body, tensors, path)

    return write


def _trace(path):
    from nnsim.sim.tracing import EventTracer

    sim = small_sim()
    with EventTracer(sim) as tracer:
        sim.run()
    tracer.write(path)


def _statistics(path):
    from nnsim.sim.report import write_statistics

    sim = small_sim()
    sim.run()
    write_statistics(sim, path)


def _graph(key: str):
    def write(path):
        from nnsim.cli.graph import write_graph

        write_graph(small_sim(), **{key: path})

    return write


def _run_output_dot(path):
    from nnsim.cli.main import cli

    script = Path(__file__).parent.parent / "examples" / "fashion_mnist" / "nn.py"
    dataset = Path(path).parent.parent / "toy_dot"
    if not dataset.exists():  # made before the writes are broken
        make_idx_dataset(dataset, train_per_class=2)
    result = CliRunner().invoke(
        cli,
        ["run", str(script), "--output-dot", str(path), "--stop-at", "1ns", "--"]
        + [f"--trainingImages={dataset}", f"--testImages={dataset}", "--evalImages="],
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    if result.exit_code != 0:
        assert result.output.count("\n") == 1, result.output  # one line, no traceback
        assert result.output.startswith(f"nnsim: error: cannot write '{path}'"), result.output
        raise NnsimError(result.output)


def _plot(path):
    from nnsim.train.plots import plot_training

    rows = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.5, "val_acc": 0.4},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9, "train_acc": 0.6, "val_acc": 0.5},
    ]
    plot_training(rows, path)


def _patch_savefig(monkeypatch):
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", lambda self, path, **_: partial_then_raise(path))


def _patch_save_file(monkeypatch):
    import safetensors.numpy

    monkeypatch.setattr(
        safetensors.numpy, "save_file", lambda _t, path, **_: partial_then_raise(path)
    )


def _patch_dot(monkeypatch, tmp_path):
    """A ``dot`` that writes part of its picture to ``-o FILE`` and then fails."""
    import nnsim.cli.graph

    program = tmp_path / "bin" / "dot"
    program.parent.mkdir()
    program.write_text(
        '#!/bin/sh\nwhile [ "$#" -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done\n'
        'printf "\\211PNG half" > "$out"\necho "Error: out of memory" >&2\nexit 1\n'
    )
    program.chmod(0o755)
    monkeypatch.setattr(nnsim.cli.graph, "dot_program", lambda: str(program))


def _predictions(path):
    from nnsim.train.predictions import write_predictions

    assert Path(path).name == "predictions.csv"
    write_predictions(Path(path).parent, ["/eval/TOP_1.png", "/eval/BAG_2.png"], ["TOP", "COAT"])


def _sweep(path):
    from nnsim.sweep import Prediction, RunResult, write_csv

    results = [
        RunResult(0, "0.1", val_acc=0.5, predictions=[Prediction("TOP_1.png", "TOP")]),
        RunResult(1, "0.2", error="diverged"),
    ]
    write_csv(results, path)


def _idx(path):
    from nnsim.data.idx import write_idx

    write_idx(path, np.arange(784 * 3, dtype=np.uint8).reshape(3, 28, 28))


CASES = [
    Case(
        "export safetensors",
        "w.safetensors",
        _export("safetensors"),
        _patch_save_file,
        ("trained",),
    ),
    Case("export npz", "w.npz", _export("npz"), needs=("trained",)),
    Case("export onnx", "w.onnx", _export("onnx"), needs=("trained",)),
    Case("trace", "trace.json", _trace),
    Case("statistics csv", "stats.csv", _statistics),
    Case("statistics json", "stats.json", _statistics),
    Case("graph dot", "graph.dot", _graph("dot")),
    Case("graph png", "graph.png", _graph("png"), "dot"),
    Case("graph svg", "graph.svg", _graph("svg"), "dot"),
    Case("run --output-dot", "model.dot", _run_output_dot),
    Case("plot", "training.png", _plot, _patch_savefig),
    Case("predictions.csv", "predictions.csv", _predictions),
    Case("sweep csv", "sweep.csv", _sweep),
    Case("idx", "images-idx3-ubyte", _idx),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_write_that_fails_half_way_leaves_the_previous_file_and_no_partial_file(
    case, tmp_path, monkeypatch, request
):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / case.file_name
    target.write_bytes(PREVIOUS)
    neighbour = folder / "neighbour.txt"
    neighbour.write_text("untouched\n")
    arguments = [request.getfixturevalue(name) for name in case.needs]

    case.write(target, *arguments)  # the writer works when nothing fails...
    assert target.read_bytes() != PREVIOUS
    target.write_bytes(PREVIOUS)

    opened = break_files(monkeypatch) if case.fail == "file" else None
    if case.fail == "dot":
        _patch_dot(monkeypatch, tmp_path)
    elif callable(case.fail):
        case.fail(monkeypatch)
    with pytest.raises(NnsimError) as raised:
        case.write(target, *arguments)

    if opened is not None:
        assert opened and opened[0].written > 0  # it did fail half way, not before writing
    assert "\n" not in str(raised.value).strip()
    assert target.read_bytes() == PREVIOUS
    assert sorted(path.name for path in folder.iterdir()) == sorted([target.name, neighbour.name])
    assert neighbour.read_text() == "untouched\n"


def test_config_toml_of_a_new_run_folder_is_whole_or_absent(tmp_path, monkeypatch):
    from nnsim.train.config import Config
    from nnsim.train.runfolder import CONFIG_FILE, create_run_folder

    config = Config()
    config.output.project_dir = str(tmp_path / "runs")
    config.output.run_name = "first"
    folder = create_run_folder(config)
    whole = (folder / CONFIG_FILE).read_text()
    assert whole.startswith("#")

    config.output.run_name = "second"
    half_way_files = break_files(monkeypatch)
    with pytest.raises(NnsimError, match="config.toml"):
        create_run_folder(config)
    assert half_way_files[0].written > 0
    assert list((tmp_path / "runs" / "second").iterdir()) == []  # no half config, no temporary
    assert (folder / CONFIG_FILE).read_text() == whole


def test_metrics_csv_that_fails_half_way_keeps_the_epochs_already_written(tmp_path, monkeypatch):
    from nnsim.train.metrics import METRICS_FILE, MetricsLog

    log = MetricsLog(tmp_path, Simulation())
    try:
        log.epoch_end(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=1.1, val_acc=0.4)
        previous = (tmp_path / METRICS_FILE).read_text()
        assert previous.count("\n") == 2  # the header and epoch 1
        opened = break_files(monkeypatch)
        with pytest.raises(NnsimError, match="metrics.csv"):
            log.epoch_end(epoch=2, train_loss=0.9, train_acc=0.6, val_loss=1.0, val_acc=0.5)
        assert opened[0].written > 0
    finally:
        log.close()
    assert (tmp_path / METRICS_FILE).read_text() == previous
    assert sorted(path.name for path in tmp_path.iterdir()) == [METRICS_FILE, "tensorboard"]


def test_a_png_export_that_fails_half_way_leaves_no_tree_and_no_partial_png(tmp_path, monkeypatch):
    from nnsim.data.export import export_png
    from nnsim.errors import DataError

    source = make_idx_dataset(tmp_path / "idx", train_per_class=2, test_per_class=1)
    out = tmp_path / "pngs"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    half_way_files = break_files(monkeypatch)
    with pytest.raises(DataError, match="No space left on device") as raised:
        export_png(out, source)
    assert half_way_files[0].written > 0
    assert str(out) in str(raised.value) and ".export-png-" not in str(raised.value)
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from conftest import example_args, run_nnsim

    root = tmp_path_factory.mktemp("predict")
    dataset = make_idx_dataset(root / "toy", train_per_class=4, test_per_class=2)
    checkpoints = root / "checkpoints"
    result = run_nnsim(
        "run",
        "examples/fashion_mnist/nn.py",
        "--checkpoint-enable",
        "--checkpoint-every-epochs=1",
        f"--checkpoint-dir={checkpoints}",
        "--",
        *example_args(dataset, None, "--epochs=1"),
    )
    assert result.returncode == 0, result.stderr
    return checkpoints


def test_predict_csv_that_fails_half_way_keeps_the_previous_csv(tmp_path, checkpoint, monkeypatch):
    from PIL import Image

    from nnsim.cli.main import cli

    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (28, 28), 200).save(images / "TOP_1.png")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "predictions.csv"
    arguments = ["predict", "--checkpoint", str(checkpoint), "--images", str(images)]
    arguments += ["--csv", str(target)]
    assert CliRunner().invoke(cli, arguments).exit_code == 0
    assert target.read_text().startswith("path,")
    target.write_bytes(PREVIOUS)

    opened = break_files(monkeypatch)
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code != 0
    assert opened[0].written > 0
    assert f"cannot write '{target}': No space left on device" in result.output
    assert "Traceback" not in result.output
    assert target.read_bytes() == PREVIOUS
    assert [path.name for path in out.iterdir()] == ["predictions.csv"]


# The helper itself ------------------------------------------------------------------


def test_an_interrupt_removes_the_temporary_file_and_keeps_the_previous_one(tmp_path):
    target = tmp_path / "file.txt"
    target.write_bytes(PREVIOUS)
    with pytest.raises(KeyboardInterrupt), files.atomic_write(target) as handle:
        handle.write("new text")
        raise KeyboardInterrupt

    def interrupted(path: str) -> None:
        Path(path).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_with(target, interrupted)
    assert target.read_bytes() == PREVIOUS
    assert [path.name for path in tmp_path.iterdir()] == ["file.txt"]


def test_a_missing_or_unwritable_folder_is_one_clear_line(tmp_path):
    missing = tmp_path / "nowhere" / "file.csv"
    with pytest.raises(NnsimError) as raised:
        files.write_text(missing, "x")
    assert str(raised.value) == (
        f"cannot write '{missing}': folder '{missing.parent}' does not exist; "
        "create it or choose another path"
    )
    with pytest.raises(NnsimError, match="it is a folder"):
        files.write_bytes(tmp_path, b"x")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(NnsimError, match="cannot write .*Permission denied"):
                files.write_text(locked / "file.txt", "x")
        finally:
            locked.chmod(0o700)


def test_the_new_file_has_the_umask_mode_even_when_a_library_writes_it_0600(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_text(tmp_path / "a.txt", "a")

        def private(path: str) -> None:
            os.unlink(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"b")
            os.close(fd)

        files.atomic_write_with(tmp_path / "b.bin", private)
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640


def test_a_symbolic_link_stays_a_link_to_the_rewritten_file(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real.name)
    files.write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_device_is_written_in_place(tmp_path):
    files.write_text("/dev/null", "discarded")  # no rename over /dev/null, no error
    assert Path("/dev/null").is_char_device()
