"""Keras files: Keras 3 ``.keras`` and ``.weights.h5``, and the legacy (Keras 2) ``.h5``.

nnsim reads the HDF5 itself with h5py (``pip install 'nnsim[keras]'``);
Keras is not needed. The layouts, as Keras writes them:

* **``.keras``** (Keras 3, ``keras/src/saving/saving_lib.py``): a zip of
  ``metadata.json``, ``config.json`` (the model's serialized config) and
  ``model.weights.h5``. Zip members are checked before anything is read:
  only those names (and an ``assets/`` folder, never read), each within
  its size bound, none inflating more than `MAX_INFLATION` times.
* **``.weights.h5``** (Keras 3 ``save_weights``): the weights of the
  ``i``-th layer of class ``Dense`` are ``layers/dense/vars/0`` (kernel,
  ``[in, out]``) and ``vars/1`` (bias) for ``i = 0``, ``layers/dense_<i>/...``
  after, as Keras numbers a model's layers by class. The config (layer
  order and activations) comes from ``config=`` (a ``.keras`` file or a
  ``config.json`` / ``model.to_json()`` file) or from the ``.keras`` file
  beside it (``model.weights.h5`` -> ``model.keras``). Without one, the
  dense layers are taken in Keras's numbering (``dense``, ``dense_1``, ...)
  with ``relu`` after each hidden layer and a ``linear`` output.
* **legacy ``.h5``** (``keras/src/legacy/saving/legacy_h5_format.py``): the
  file attribute ``model_config`` (JSON) and ``model_weights/<layer>/``
  groups whose ``weight_names`` attribute names the datasets
  (``dense/kernel:0``, ``dense/bias:0``; Keras 3 writes ``dense/kernel``).
  The layer order is the model config's, never the order of the HDF5 keys
  (h5py lists them sorted by name, so ``dense_10`` would come before
  ``dense_2``).

From the config: ``Dense`` layers with activation ``relu``, ``linear`` or
``softmax``; ``Activation``, ``ReLU`` (plain: no max value, slope or
threshold) and ``Softmax`` layers apply to the dense layer before them;
``InputLayer``, ``Flatten`` and ``Dropout`` (an identity at inference) are
skipped. Functional models must be chains (each layer called on the one
before). Anything else is one line naming the layer and its class.

Every dataset is opened only through a hard link, must be a plain
(not virtual, not external) floating-point array, and its declared shape is
checked against nnsim's layer caps before it is read.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nnsim.checkpoint import open_regular, read_regular
from nnsim.interop.model import MAX_WEIGHTS_PER_LAYER, DenseLayer, DenseModel, ModelError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MAX_CONFIG_BYTES = 1 << 24
MAX_WEIGHTS_BYTES = 1 << 31
MAX_INFLATION = 100  # Keras's own bound on a zip member's expansion
KERAS_MEMBERS = {
    "metadata.json": MAX_CONFIG_BYTES,
    "config.json": MAX_CONFIG_BYTES,
    "model.weights.h5": MAX_WEIGHTS_BYTES,
}
SKIPPED = ("InputLayer", "Flatten", "Dropout")
ACTIVATIONS = ("relu", "linear", "softmax")
SUPPORTED = "Dense, Activation, ReLU, Softmax, Flatten, Dropout, InputLayer"


def is_keras_zip(head: bytes) -> bool:
    """A zip whose first member is one of a ``.keras`` file's."""
    length = int.from_bytes(head[26:28], "little")
    return head.startswith(ZIP_MAGIC) and head[30 : 30 + length].decode("latin-1") in KERAS_MEMBERS


def is_keras_file(head: bytes) -> bool:
    """A ``.keras`` zip or an HDF5 file (the only HDF5 files nnsim reads are Keras's)."""
    return head.startswith(HDF5_MAGIC) or is_keras_zip(head)


def load_keras(path: Path, config: str | Path | None = None) -> DenseModel:
    """The dense network of a ``.keras``, ``.weights.h5`` or legacy ``.h5`` file.

    ``config`` (for a ``.weights.h5``) is a ``.keras`` file or a JSON model
    config giving the layer order and activations.
    """
    import h5py

    source = str(path)
    fd = open_regular(path, f"Keras file '{source}'", follow_links=True)  # no FIFO, no device
    try:
        head = os.read(fd, 8)
    finally:
        os.close(fd)
    if head.startswith(ZIP_MAGIC):
        model_config, weights = _read_keras_zip(path)
        with h5py.File(io.BytesIO(weights), "r") as h5:
            return _keras3_model(h5, _layers(model_config, source), source)
    if not head.startswith(HDF5_MAGIC):
        raise ModelError(f"'{source}' is neither a .keras zip nor an HDF5 file")
    with h5py.File(path, "r") as h5:
        if "model_config" in h5.attrs or "layer_names" in h5.attrs:
            return _legacy_model(h5, config, source)
        layers = _config_layers(path, config, source)
        return _keras3_model(h5, layers, source)


# Configs ---------------------------------------------------------------------------
def _read_keras_zip(path: Path) -> tuple[dict, bytes]:
    """(model config, bytes of model.weights.h5) of a ``.keras`` zip, members checked first."""
    source = str(path)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > 64:
            raise ModelError(f"'{source}' holds {len(infos)} members; a .keras file holds three")
        for info in infos:
            name = info.filename
            if name.startswith("assets/"):
                continue
            if name not in KERAS_MEMBERS:
                hint = " (npz weights inside .keras are not read)" if name.endswith(".npz") else ""
                raise ModelError(
                    f"'{source}': member '{name}' is not one of a .keras file's "
                    f"({', '.join(KERAS_MEMBERS)}){hint}"
                )
            limit = KERAS_MEMBERS[name]
            if info.file_size > limit or (
                info.file_size > 1 << 20 and info.file_size > MAX_INFLATION * info.compress_size
            ):
                raise ModelError(
                    f"'{source}': member '{name}' declares {info.file_size} bytes from "
                    f"{info.compress_size} stored; refused (at most {limit}, {MAX_INFLATION}x)"
                )
        for needed in ("config.json", "model.weights.h5"):
            if needed not in archive.namelist():
                raise ModelError(f"'{source}' has no {needed}; it is not a complete .keras file")
        config = _parse_json(archive.read("config.json"), f"config.json of '{source}'")
        return config, archive.read("model.weights.h5")


def _parse_json(data: bytes | str, what: str) -> dict:
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ModelError(f"{what} is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ModelError(f"{what} is not a JSON object (a Keras model config)")
    return value


def _config_layers(path: Path, config: str | Path | None, source: str) -> list[dict] | None:
    """The layers of the config for a ``.weights.h5``: ``config=``, the sibling ``.keras``, or None."""
    if config is None:
        name = path.name
        stem = name[: -len(".weights.h5")] if name.endswith(".weights.h5") else path.stem
        sibling = path.with_name(f"{stem}.keras")
        if not sibling.is_file():
            return None
        config = sibling
    config = Path(config)
    data = read_regular(config, f"Keras config '{config}'", MAX_WEIGHTS_BYTES, follow_links=True)
    if data.startswith(ZIP_MAGIC):
        model_config, _ = _read_keras_zip(config)
    else:
        model_config = _parse_json(data[:MAX_CONFIG_BYTES], f"Keras config '{config}'")
    return _layers(model_config, str(config))


def _layers(model_config: dict, source: str) -> list[dict]:
    """``[{"class_name", "name", "config"}, ...]`` of a Sequential or chain-shaped Functional model."""
    kind = model_config.get("class_name")
    body = model_config.get("config")
    if kind not in ("Sequential", "Functional", "Model"):
        raise ModelError(
            f"'{source}': the model is a {kind!r}; nnsim reads Sequential and Functional models"
        )
    entries = body if isinstance(body, list) else (body or {}).get("layers")
    if not isinstance(entries, list):
        raise ModelError(f"'{source}': the model config has no list of layers")
    layers, previous = [], None
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ModelError(f"'{source}': layer {index} of the model config is malformed")
        config = entry["config"]
        name = entry.get("name") or config.get("name") or f"layer{index}"
        layer = {"class_name": str(entry.get("class_name")), "name": str(name), "config": config}
        if kind != "Sequential" and previous is not None:
            inbound = _inbound(entry.get("inbound_nodes", []))
            if inbound != {previous}:
                raise ModelError(
                    f"'{source}': layer '{name}' takes {sorted(inbound) or 'nothing'}, not "
                    f"'{previous}' alone; nnsim imports models that are a chain of layers"
                )
        layers.append(layer)
        previous = layer["name"]
    return layers


def _inbound(nodes: Any) -> set[str]:
    """The names of the layers a Functional layer's ``inbound_nodes`` call it on (Keras 2 and 3)."""
    found: set[str] = set()

    def visit(value: Any, depth: int = 0) -> None:
        if depth > 32:
            return
        if isinstance(value, dict):
            history = value.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                found.add(history[0])
                return
            for item in value.values():
                visit(item, depth + 1)
        elif isinstance(value, list):
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                found.add(value[0])  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
                return
            for item in value:
                visit(item, depth + 1)

    visit(nodes)
    return found


def _plan(layers: list[dict], source: str) -> list[dict]:
    """The dense layers of a config in order: ``{"name", "activation", "use_bias", "position"}``."""
    plan: list[dict] = []
    dense_seen = 0
    for layer in layers:
        kind, name, config = layer["class_name"], layer["name"], layer["config"]
        label = f"'{source}': layer '{name}' ({kind})"
        if kind in SKIPPED:
            continue
        if kind == "Dense":
            activation = _activation_name(config.get("activation"), label)
            plan.append(
                {
                    "name": name,
                    "activation": activation,
                    "use_bias": config.get("use_bias", True) is not False,
                    "position": dense_seen,
                }
            )
            dense_seen += 1
            continue
        if kind == "Activation":
            activation = _activation_name(config.get("activation"), label)
        elif kind == "ReLU":
            if (
                config.get("max_value") is not None
                or config.get("negative_slope", 0)
                or (config.get("threshold", 0))
            ):
                raise ModelError(
                    f"{label} has a max value, slope or threshold; nnsim imports plain ReLU only"
                )
            activation = "relu"
        elif kind == "Softmax":
            if config.get("axis", -1) not in (-1, [-1]):
                raise ModelError(f"{label} takes a softmax over axis {config.get('axis')}, not -1")
            activation = "softmax"
        else:
            raise ModelError(
                f"{label}: nnsim imports dense networks only ({SUPPORTED})"
                if kind
                else f"{label} has no class"
            )
        if activation == "linear":
            continue
        if not plan or plan[-1]["activation"] != "linear":
            raise ModelError(
                f"{label} does not follow a dense layer without activation; nnsim imports "
                "dense layers each followed by at most one activation"
            )
        plan[-1]["activation"] = activation
    return plan


def _activation_name(value: Any, label: str) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # a serialized activation object
        value = (value.get("config") or {}).get("name") or value.get("class_name")
    if value not in ACTIVATIONS:
        raise ModelError(
            f"{label} has activation {value!r}; nnsim imports {', '.join(ACTIVATIONS)}"
        )
    return str(value)


# Weights ---------------------------------------------------------------------------
def _member(group, name: str, where: str, default: Any = ModelError):
    """``group[name]`` reached through hard links only (no external or soft links out of the file)."""
    import h5py

    node = group
    for part in [p for p in name.split("/") if p]:
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        if link is None and default is not ModelError:
            return default
        if not isinstance(link, h5py.HardLink):
            what = "missing" if link is None else f"a {type(link).__name__}"
            raise ModelError(f"{where}: '{name}' is {what}, not part of this file")
        node = node[part]
    return node


def _dataset(group, name: str, where: str) -> np.ndarray:
    """The float array ``group[name]``, reached by hard links only, its shape checked first."""
    import h5py

    node = _member(group, name, where)
    if not isinstance(node, h5py.Dataset):
        raise ModelError(f"{where}: '{name}' is not an array")
    if node.is_virtual or node.external:
        raise ModelError(f"{where}: '{name}' is stored outside this file; nnsim reads one file")
    count = int(np.prod(node.shape, dtype=np.float64)) if node.shape is not None else 0
    if node.dtype.kind != "f" or len(node.shape or ()) > 2 or count > MAX_WEIGHTS_PER_LAYER:
        raise ModelError(
            f"{where}: '{name}' is {node.dtype} of shape {node.shape}; a dense layer's arrays "
            f"are floats of at most 2 dimensions and {MAX_WEIGHTS_PER_LAYER} values"
        )
    return np.asarray(node[()])


def _dense_layer(entry: dict, kernel: np.ndarray, bias: np.ndarray | None) -> DenseLayer:
    if bias is None:
        bias = np.zeros(kernel.shape[-1] if kernel.ndim else 0, dtype=np.float32)
    return DenseLayer(entry["name"], kernel, bias, entry["activation"])


def keras_path(position: int) -> str:
    """Where Keras 3 keeps the ``position``-th Dense layer's vars: ``layers/dense``, ``layers/dense_1``."""
    return "layers/dense" if position == 0 else f"layers/dense_{position}"


def _keras3_model(h5, layers: list[dict] | None, source: str) -> DenseModel:
    """A Keras 3 weights file (``layers/<class>[_i]/vars/<j>``) read by its config (or numbering)."""
    if _member(h5, "layers", f"'{source}'", default=None) is None:
        raise ModelError(
            f"'{source}' has neither a model_config (Keras 2) nor layers/ (Keras 3): "
            "it is not a Keras weights file"
        )
    if layers is None:
        numbered = []
        for key in h5["layers"]:
            match = re.fullmatch(r"dense(?:_(\d+))?", key)
            vars_ = _member(h5, f"layers/{key}/vars", f"'{source}'", default=None)
            if match is None:
                if vars_ is not None and len(vars_):
                    raise ModelError(
                        f"'{source}': layers/{key} holds weights of a layer nnsim does not import "
                        f"({SUPPORTED}); pass config= to name the model's layers"
                    )
                continue
            numbered.append((int(match.group(1) or 0), key))
        numbered.sort()
        plan = [
            {"name": key, "activation": "relu", "use_bias": True, "position": number}
            for number, key in numbered
        ]
        if plan:
            plan[-1]["activation"] = "linear"
    else:
        plan = _plan(layers, source)
    dense = []
    for entry in plan:
        group_path = f"{keras_path(entry['position'])}/vars"
        where = f"'{source}': layer '{entry['name']}'"
        group = _member(h5, group_path, where, default=None)
        if group is None:
            raise ModelError(f"{where} has no weights at {group_path}")
        kernel = _dataset(group, "0", f"{where} ({group_path})")
        bias = _dataset(group, "1", f"{where} ({group_path})") if "1" in group else None
        dense.append(_dense_layer(entry, kernel, bias))
    return DenseModel(tuple(dense), source)


def _attribute_list(group, name: str) -> list[str]:
    """A list attribute as legacy Keras writes it, possibly chunked (``name0``, ``name1``, ...)."""
    values: list = []
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        chunk = 0
        while f"{name}{chunk}" in group.attrs and chunk < 1024:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _legacy_model(h5, config: str | Path | None, source: str) -> DenseModel:
    """A legacy ``.h5``: the layer order and activations from its ``model_config``."""
    root = _member(h5, "model_weights", f"'{source}'", default=h5)
    if config is not None:
        layers = _config_layers(Path(source), config, source)
    elif "model_config" in h5.attrs:
        text = h5.attrs["model_config"]
        layers = _layers(_parse_json(text, f"the model_config of '{source}'"), source)
    else:  # weights only (save_weights): the file's own list of layers, in the model's order
        names = _attribute_list(root, "layer_names")
        layers = [{"class_name": "Dense", "name": n, "config": {}} for n in names]
        layers = [layer for layer in layers if _attribute_list(root[layer["name"]], "weight_names")]
        for layer in layers[:-1]:
            layer["config"]["activation"] = "relu"
    dense = []
    for entry in _plan(layers, source):
        where = f"'{source}': layer '{entry['name']}'"
        group = _member(root, entry["name"], where, default=None)
        if group is None:
            raise ModelError(f"{where} has no weights in the file")
        names = _attribute_list(group, "weight_names")
        kernel_name = _pick(names, "kernel", 0)
        bias_name = _pick(names, "bias", 1) if entry["use_bias"] else None
        if kernel_name is None:
            raise ModelError(f"{where} lists no kernel in its weight_names")
        kernel = _dataset(group, kernel_name, where)
        bias = _dataset(group, bias_name, where) if bias_name is not None else None
        dense.append(_dense_layer(entry, kernel, bias))
    return DenseModel(tuple(dense), source)


def _pick(names: list[str], role: str, position: int) -> str | None:
    """The weight name ending in ``role`` (``dense/kernel:0``), else the one at ``position``."""
    for name in names:
        if name.split("/")[-1].split(":")[0] == role:
            return name
    return names[position] if len(names) > position else None
