"""``state_dict``-like tables (name -> array) as dense models: what npz and safetensors files hold.

Two naming styles are read:

* nnsim's own (`nnsim.interop.export`): ``dense1.weights [in, out]``,
  ``dense1.biases [out]``;
* PyTorch's ``nn.Linear``: ``fc1.weight [out, in]`` (transposed on the way
  in), ``fc1.bias [out]``; ``net.0.weight`` as ``nn.Sequential`` names it.

A layer without biases gets zeros (``nn.Linear(bias=False)``); any other
entry (a BatchNorm's ``running_mean``, an optimizer moment) is refused by
name, since nnsim could only guess what it means.

**Layer order**, first rule that applies:

1. an explicit chain (the ``layers`` metadata nnsim's safetensors export
   writes, ``input:nn.Input -> dense1:nn.Dense -> relu1:nn.ReLU -> ...``);
2. the numbers in the layer names, compared as numbers (``fc2`` before
   ``fc10``, ``net.0`` before ``net.2``) when every name has one and no two
   names have the same;
3. the order of the entries in the file.

**Activations**: from the chain when there is one (an ``nn.ReLU`` after a
dense layer makes it ``relu``, a final ``nn.Softmax`` makes the output
``softmax``); otherwise ``relu`` after every hidden layer and a ``linear``
output (logits), the shape of nearly every classifier saved this way.
``load_model(..., output_activation="softmax")`` changes the output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from nnsim.interop.model import MAX_WEIGHTS_PER_LAYER, DenseLayer, DenseModel, ModelError

NNSIM_NAMES = {"weights": "weights", "biases": "biases"}
TORCH_NAMES = {"weight": "weights", "bias": "biases"}
MAX_LAYERS = 4096
"""More dense layers than this in one file is not a network anyone trained."""

# nnsim layer types a chain may hold, and what each does to the dense layer before it.
CHAIN_DENSE = "nn.Dense"
CHAIN_SKIPPED = {"nn.Input"}
CHAIN_ACTIVATIONS = {"nn.ReLU": "relu", "nn.Softmax": "softmax"}


def parse_chain(text: str, source: str) -> list[tuple[str, str]]:
    """``[(name, type), ...]`` from ``"input:nn.Input -> dense1:nn.Dense -> ..."``."""
    chain = []
    for part in text.split("->"):
        name, sep, kind = part.strip().partition(":")
        if not sep or not name or not kind:
            raise ModelError(f"'{source}': its layer chain {text[:120]!r} does not parse")
        chain.append((name, kind))
    return chain


def dense_chain(chain: Sequence[tuple[str, str]], source: str) -> list[tuple[str, str]]:
    """``[(dense layer name, activation), ...]`` of an nnsim layer chain, in forward order.

    A ReLU or Softmax applies to the dense layer before it; an activation
    with no dense layer before it, two in a row, or a layer type that is not
    dense, an activation or the input is refused by name.
    """
    layers: list[list[str]] = []
    for name, kind in chain:
        if kind in CHAIN_SKIPPED:
            continue
        if kind == CHAIN_DENSE:
            layers.append([name, "linear"])
        elif kind in CHAIN_ACTIVATIONS:
            if not layers or layers[-1][1] != "linear":
                raise ModelError(
                    f"'{source}': layer '{name}' ({kind}) does not follow a dense layer; "
                    "nnsim imports dense layers each followed by at most one activation"
                )
            layers[-1][1] = CHAIN_ACTIVATIONS[kind]
        else:
            raise ModelError(
                f"'{source}': layer '{name}' is a {kind}; nnsim imports chains of "
                f"{CHAIN_DENSE} with {', '.join(CHAIN_ACTIVATIONS)} only"
            )
    return [(name, activation) for name, activation in layers]


def split_name(key: str) -> tuple[str, str, bool] | None:
    """``(layer, "weights"|"biases", transposed)`` for a table key, or None if it is neither."""
    layer, dot, array = key.rpartition(".")
    if not dot or not layer:
        return None
    if array in NNSIM_NAMES:
        return layer, NNSIM_NAMES[array], False
    if array in TORCH_NAMES:
        return layer, TORCH_NAMES[array], array == "weight"
    return None


def _numbers(name: str) -> tuple[int, ...]:
    return tuple(int(digits) for digits in re.findall(r"\d+", name))


def layer_order(names: Sequence[str]) -> list[str]:
    """Rule 2 of the module docstring when it applies, else ``names`` as they are (rule 3)."""
    keys = [_numbers(name) for name in names]
    if all(keys) and len(set(keys)) == len(keys):
        return [name for _, name in sorted(zip(keys, names, strict=True))]
    return list(names)


def model_from_table(
    tensors: Mapping[str, np.ndarray],
    source: str,
    chain: Sequence[tuple[str, str]] | None = None,
) -> DenseModel:
    """The dense model a table of weights and biases describes (see the module docstring)."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for key, array in tensors.items():
        parsed = split_name(key)
        if parsed is None:
            raise ModelError(
                f"'{source}': entry '{key}' is not a dense layer's weights or biases "
                "(nnsim reads <layer>.weights/<layer>.biases, or PyTorch's <layer>.weight/<layer>.bias)"
            )
        layer, role, transposed = parsed
        array = np.asarray(array)
        if role == "weights" and transposed:
            array = array.T if array.ndim == 2 else array
        if role in layers.setdefault(layer, {}):
            raise ModelError(f"'{source}': layer '{layer}' has two {role} entries")
        layers[layer][role] = array
        if len(layers) > MAX_LAYERS:
            raise ModelError(f"'{source}' holds more than {MAX_LAYERS} layers")
    if chain is not None:
        plan = dense_chain(chain, source)
        missing = [name for name, _ in plan if name not in layers]
        extra = sorted(set(layers) - {name for name, _ in plan})
        if missing or extra:
            what = f"no weights for {', '.join(missing)}" if missing else ""
            what += ("; " if what else "") + (
                f"weights of {', '.join(extra)} not in the chain" if extra else ""
            )
            raise ModelError(f"'{source}': its layer chain does not match its tensors ({what})")
    else:
        order = layer_order(list(layers))
        plan = [(name, "relu") for name in order[:-1]] + [(name, "linear") for name in order[-1:]]
    dense = []
    for name, activation in plan:
        arrays = layers[name]
        if "weights" not in arrays:
            raise ModelError(f"'{source}': layer '{name}' has biases but no weights")
        weights = arrays["weights"]
        biases = arrays.get("biases")
        if biases is None:
            width = weights.shape[-1] if weights.ndim else 0
            biases = np.zeros(min(width, MAX_WEIGHTS_PER_LAYER), dtype=np.float32)
        dense.append(DenseLayer(name, weights, biases, activation))
    return DenseModel(tuple(dense), source)
