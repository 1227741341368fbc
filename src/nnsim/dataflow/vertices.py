"""The graph's vertices as the console sees them: ``source``, ``input/pK``, ``dense1/nJ``, ``sink``.

The hardware nodes (`nnsim.dataflow.node`) do all the work, but a person
looks for a neuron by its place in the network, not by the node a folding
put it on. So each layer of the graph is a component of its own that holds
what belongs to the layer whatever the folding and never changes while it
runs — its weights ``[in, out]`` and biases, which node hosts each neuron —
and shows every neuron as a view, ``dense1/n5``, whose sum, output and
inputs received are read live from the node that computes it; so do
``dense1/done_ps`` (when each image left the layer), ``source/inject_ps``
and the sink's results (``sink/classified``, ``sink/predictions``, ...).

A node changes only its own state: the nodes interact through their links
alone, so a parallel run can put each on its own rank (`nnsim.parallel`),
and every value is saved once, where it lives (DESIGN.md rules 1-2); the
views are never saved. These components have no ports, so a watchpoint on
``sink/classified`` is checked at the handlers of the node that hosts the
sink (`Component.watched_at`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsim.errors import DataError
from nnsim.nn.layers import MAX_UNITS
from nnsim.sim import Component, Param, StateView


class VertexHolder(Component):
    """A component that holds vertex state computed on the hardware nodes named in ``hosts``."""

    graph_drawn = False

    def build(self) -> None:
        self.hosts: list[str] = []  # names of the nodes hosting this component's vertices

    def watched_at(self) -> tuple[str, ...]:
        return tuple(self.hosts) or (self.name,)

    def restore(self) -> None:
        self.place()

    def place(self) -> None:
        """A parallel run puts this holder with node0: it has no links and does not change
        while the model runs, so any rank would do, and joining the first node keeps the
        nodes contiguous in build order (the ``linear`` partitioner's runs)."""
        self.sim.place(self.name, group="node0")

    def host(self, vertex: int) -> Any:
        """The node component hosting vertex ``vertex`` of this holder."""
        return self.sim.components[f"node{int(self.host_node[vertex])}"]


def _writer(array: np.ndarray, index: Any):
    def write(value: Any) -> None:
        array[index] = value

    return write


class NeuronView(StateView):
    """One neuron, ``dense1/n5``: its weights column and bias, and its latest result."""

    kind = "neuron"

    def __init__(self, layer: Layer, index: int):
        self.layer = layer
        self.index = index

    def fields(self) -> dict[str, tuple[Any, Any]]:
        layer, j = self.layer, self.index
        node = layer.host(j)
        group, position = int(layer.host_group[j]), int(layer.host_pos[j])
        sums, outputs = node.sums[group], node.outputs[group]
        return {
            "node": (node.name, None),
            "weights": (layer.weights[:, j], None),  # a view: weights[3] writes the layer's array
            "bias": (layer.biases[j], _writer(layer.biases, j)),
            "fan_in": (int(layer.input_size), None),
            "image": (node.last_image[group], None),
            "sum": (sums[position], _writer(sums, position)),
            "output": (outputs[position], _writer(outputs, position)),
            "computed": (node.computed[group], None),
            "inputs_received": (node.inputs_received(group), None),
        }


class Layer(VertexHolder):
    """One dense layer of the graph: weights, biases, and where each neuron runs.

    The weights ``[in, out]`` and biases are the model's float32 values,
    kept as float64 (the nodes compute in float64 and round to float32).
    """

    type_name = "dataflow.Layer"
    params = (
        Param("layer", int, 0, "index of the layer in the model (0: the first)", min=0),
        Param("input_size", int, help="inputs per neuron", min=1, max=MAX_UNITS, fixed=True),
        Param("output_size", int, help="neurons", min=1, max=MAX_UNITS, fixed=True),
        Param(
            "activation",
            str,
            "relu",
            "relu, linear or softmax",
            choices=("relu", "linear", "softmax"),
        ),
        Param("images", int, 0, "images in the run", min=0, fixed=True),
    )

    def build(self) -> None:
        super().build()
        # float64: the model's float32 values exactly, so that a task's dot products
        # need no conversion and round to the same float32 whatever the grouping.
        self.weights = np.zeros((self.input_size, self.output_size), dtype=np.float64)
        self.biases = np.zeros(self.output_size, dtype=np.float64)
        self.host_node = np.zeros(self.output_size, dtype=np.int32)
        self.host_group = np.zeros(self.output_size, dtype=np.int32)
        self.host_pos = np.zeros(self.output_size, dtype=np.int32)

    @property
    def done_ps(self) -> np.ndarray:
        """When each image left the layer (its last neuron's task ended; -1: not yet)."""
        done = np.full(self.images, -1, dtype=np.int64)
        for name in self.hosts:
            node = self.sim.components[name]
            for group in np.flatnonzero(node.group_layer == self.layer).tolist():
                np.maximum(done, node.done_ps[group], out=done)
        return done

    def views(self) -> dict[str, Any]:
        return {"done_ps": self.done_ps} | {
            f"n{j}": NeuronView(self, j) for j in range(self.output_size)
        }


class PixelView(StateView):
    """One input vertex, ``input/p17``: the node that forwards pixel 17."""

    kind = "pixel"

    def __init__(self, pixels: Pixels, index: int):
        self.pixels = pixels
        self.index = index

    def fields(self) -> dict[str, tuple[Any, Any]]:
        return {"node": (self.pixels.host(self.index).name, None)}


class Pixels(VertexHolder):
    """The input vertices of a ``pixel`` graph: each forwards one pixel to the first layer."""

    type_name = "dataflow.Pixels"
    params = (Param("size", int, help="pixels per image", min=1, max=MAX_UNITS, fixed=True),)

    def build(self) -> None:
        super().build()
        self.host_node = np.zeros(self.size, dtype=np.int32)

    def views(self) -> dict[str, Any]:
        return {f"p{k}": PixelView(self, k) for k in range(self.size)}


class Source(VertexHolder):
    """The source vertex: the images, and when each was injected.

    Images read from ``images_path`` (``test``: the Fashion-MNIST test set,
    or a folder of IDX files or class folders) are not saved: a restart
    reads them again. Images given as an array are saved with the state.
    """

    type_name = "dataflow.Source"
    params = (
        Param("size", int, help="values per image", min=1, max=MAX_UNITS, fixed=True),
        Param("count", int, 0, "images to inject", min=0, fixed=True),
        Param("images_path", str, "", "'test', or a folder of images ('': images in the state)"),
        Param(
            "interval",
            int,
            0,
            "ps between injections (0: as soon as the first nodes take it)",
            min=0,
        ),
    )

    def build(self) -> None:
        super().build()
        self.host_node = np.zeros(1, dtype=np.int32)
        self.given_images = np.zeros((0, self.size), dtype=np.float32)
        self._images = self.given_images

    def load(self) -> np.ndarray:
        """The images ([count, size] float32): the given ones, or read from ``images_path``."""
        if not self.images_path:
            self._images = self.given_images
        else:
            self._images, _ = read_images(self.images_path, self.count)
        if self._images.shape != (self.count, self.size):
            raise DataError(
                f"{self.name}: {self.images_path or 'the saved images'} hold "
                f"{list(self._images.shape)} values, not {self.count} images of {self.size}"
            )
        return self._images

    def restore(self) -> None:
        super().restore()
        self.load()

    def image(self, index: int) -> np.ndarray:
        return self._images[index]

    @property
    def inject_ps(self) -> np.ndarray:
        """When each image was injected (-1: not yet), as the hosting node keeps it."""
        return self.host(0).inject_ps

    @property
    def injected(self) -> int:
        return int(self.host(0).injected)

    def views(self) -> dict[str, Any]:
        return {"inject_ps": self.inject_ps, "injected": self.injected}


def read_images(location: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images [n, 784] float32 in [-1, 1], labels [n])`` from ``test`` or a folder.

    What `nnsim.dataflow.images.load_images` reads (the Fashion-MNIST test
    set, a folder of IDX files, of PNGs, or of class folders of PNGs);
    ``limit``: the first images only. Labels are -1 where unknown.
    """
    from nnsim.dataflow.images import load_images

    found = load_images(location, limit)
    return np.ascontiguousarray(found.pixels), found.labels


class Sink(VertexHolder):
    """The sink vertex: per image its logits, prediction (-1: missing), label and done time.

    It also keeps the graph's catalogue (vertex names, the node of every
    vertex, the producer of every value), so that a result and a critical
    path can be read from a restored simulation alone.
    """

    type_name = "dataflow.Sink"
    params = (
        Param("classes", int, help="logits per image", min=1, max=MAX_UNITS, fixed=True),
        Param("count", int, 0, "images in the run", min=0, fixed=True),
    )

    def build(self) -> None:
        super().build()
        self.host_node = np.zeros(1, dtype=np.int32)
        self.labels = np.full(self.count, -1, dtype=np.int64)
        # The graph's catalogue (set by build_dataflow).
        self.granularity = "neuron"
        self.vertex_names: list[str] = []
        self.node_of = np.zeros(0, dtype=np.int32)
        self.value_producer = np.zeros(0, dtype=np.int32)
        self.layer_names: list[str] = []
        self.layer_macs = np.zeros(0, dtype=np.int64)  # MACs per image of each layer

    # The results, as the hosting node keeps them (`RESULTS`: the node's attribute of each).
    RESULTS = {
        "logits": "sink_logits",
        "predictions": "sink_predictions",
        "done_ps": "sink_done_ps",
        "classified": "sink_classified",
        "correct": "sink_correct",
        "last_image": "sink_last_image",
        "last_prediction": "sink_last_prediction",
    }

    def views(self) -> dict[str, Any]:
        node = self.host(0)
        return {name: getattr(node, kept) for name, kept in self.RESULTS.items()}

    @property
    def logits(self) -> np.ndarray:
        """``[count, classes]`` float32; NaN rows for images not classified."""
        return self.host(0).sink_logits

    @property
    def predictions(self) -> np.ndarray:
        """Per image the class the sink picked (-1: not classified)."""
        return self.host(0).sink_predictions

    @property
    def done_ps(self) -> np.ndarray:
        """Per image when the sink classified it (-1: not yet)."""
        return self.host(0).sink_done_ps

    @property
    def classified(self) -> int:
        return int(self.host(0).sink_classified)
