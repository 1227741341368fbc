"""Does the dataflow graph predict what a framework predicts on the same weights?

A *reference* is a function ``(model, pixels) -> outputs [N, classes]`` whose
argmax is the framework's prediction. Two are built in, registered by name
with `register_reference` (a user adds e.g. a PyTorch one the same way):

- ``onnxruntime``: the weights as an ONNX graph
  (`nnsim.interop.export.dense_model_onnx`), run by onnxruntime on the CPU;
- ``layer``: nnsim's layer-level math (`DenseModel.forward`, i.e.
  `nnsim.nn.functional`), what ``nnsim run`` computes layer by layer.

`compare` reports how many predictions agree, and which images do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnsim.errors import NnsimError, did_you_mean
from nnsim.interop.model import DenseModel

Reference = Callable[[DenseModel, np.ndarray], np.ndarray]

_REFERENCES: dict[str, Reference] = {}


def register_reference(name: str, reference: Reference) -> None:
    """Make ``--compare NAME`` run ``reference(model, pixels)`` (registering a name again replaces it)."""
    _REFERENCES[name] = reference


def references() -> tuple[str, ...]:
    return tuple(_REFERENCES)


def check_reference(name: str) -> Reference:
    """The reference registered as ``name``, or one clear line (with a did-you-mean)."""
    if name not in _REFERENCES:
        raise NnsimError(
            f"--compare: unknown reference '{name}'{did_you_mean(name, _REFERENCES)}; "
            f"use one of {', '.join(_REFERENCES)}"
        )
    return _REFERENCES[name]


def reference_outputs(name: str, model: DenseModel, pixels: np.ndarray) -> np.ndarray:
    """The outputs ``[N, classes]`` of reference ``name`` on ``pixels``."""
    return np.asarray(check_reference(name)(model, pixels))


@dataclass(frozen=True)
class Agreement:
    """How the dataflow predictions compare with a reference's, image by image."""

    reference: str
    total: int
    agree: int
    disagreeing: tuple[int, ...]  # image indices
    reference_predictions: np.ndarray
    wall_seconds: float

    @property
    def percent(self) -> float:
        return 100.0 * self.agree / self.total if self.total else 100.0

    def line(self, names: tuple[str, ...] | list[str] = ()) -> str:
        """``agreement with onnxruntime: 500/500 (100.00%)``, plus the images that differ."""
        text = f"agreement with {self.reference}: {self.agree}/{self.total} ({self.percent:.2f}%)"
        if self.disagreeing:
            shown = [names[i] if i < len(names) else str(i) for i in self.disagreeing[:20]]
            more = len(self.disagreeing) - len(shown)
            text += f"; differ: {', '.join(shown)}" + (f" and {more} more" if more else "")
        return text


def compare(
    name: str,
    model: DenseModel,
    pixels: np.ndarray,
    predictions: np.ndarray,
    *,
    answered: np.ndarray | None = None,
) -> Agreement:
    """Agreement of ``predictions`` with reference ``name`` on ``pixels``.

    ``answered`` (a mask) leaves out images the dataflow run could not
    classify (a crashed node): they are neither agreements nor disagreements.
    """
    start = time.perf_counter()
    outputs = reference_outputs(name, model, pixels)
    seconds = time.perf_counter() - start
    expected = np.argmax(outputs, axis=1)
    mask = np.ones(len(expected), dtype=bool) if answered is None else np.asarray(answered)
    differ = np.flatnonzero(mask & (np.asarray(predictions) != expected))
    total = int(mask.sum())
    return Agreement(name, total, total - len(differ), tuple(differ.tolist()), expected, seconds)


def onnxruntime_session(model: DenseModel):
    """An onnxruntime session of the model (CPU, one thread: the same on every machine)."""
    from nnsim.interop.export import dense_model_onnx

    try:
        import onnxruntime
    except ImportError:
        raise NnsimError(
            "--compare onnxruntime needs onnxruntime: pip install 'nnsim[onnx]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        dense_model_onnx(model).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def onnxruntime_outputs(model: DenseModel, pixels: np.ndarray, session=None) -> np.ndarray:
    """The model's outputs computed by onnxruntime (``session``: one made before, to reuse)."""
    session = session or onnxruntime_session(model)
    return session.run(None, {"images": np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def layer_outputs(model: DenseModel, pixels: np.ndarray) -> np.ndarray:
    """nnsim's layer-level forward math on the whole batch."""
    return model.forward(pixels)


register_reference("onnxruntime", onnxruntime_outputs)
register_reference("layer", layer_outputs)
