"""`load_model`: one door for weights trained anywhere, and the registry of importers behind it.

An importer is a function ``(path, **options) -> DenseModel`` registered by
name with `register_importer`, together with what its files look like (name
suffixes, the first bytes, whether it reads folders). A package can also
declare one in the ``nnsim.importers`` entry-point group: ``name =
"module:attribute"``, the attribute an `ImporterInfo` or a function (its
``suffixes`` and ``sniff`` attributes, if any, say what its files look
like); `register_importer` calls win over entry points. `load_model` picks
one:

1. ``format=NAME`` when the caller names it;
2. a folder or a URL is an nnsim checkpoint, a checkpoint folder or a
   ``nnsim train`` run folder (the ``nnsim`` importer);
3. the longest registered suffix the file name ends with (``.weights.h5``
   before ``.h5``);
4. the first importer whose ``sniff`` recognises the file's first bytes
   (zip, HDF5, a safetensors header), in registration order.

Every refusal is one `ModelError` line naming the file. A library that
chokes on a hostile file (a truncated zip, a protobuf that does not parse)
is turned into the same kind of line; ``--debug`` shows its traceback.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from nnsim.checkpoint import open_regular
from nnsim.errors import NnsimError
from nnsim.interop.model import OUTPUT_ACTIVATIONS, DenseModel, ModelError

ENTRY_POINT_GROUP = "nnsim.importers"
SNIFF_BYTES = 64
"""How much of a file the ``sniff`` functions see."""

Importer = Callable[..., DenseModel]


@dataclass(frozen=True)
class ImporterInfo:
    """A registered importer: its function and how its files are recognised."""

    name: str
    function: Importer
    suffixes: tuple[str, ...] = ()
    sniff: Callable[[bytes], bool] | None = None
    folders: bool = False
    extra: str | None = None  # the nnsim extra that installs its libraries ("onnx", "keras")


_IMPORTERS: dict[str, ImporterInfo] = {}


def register_importer(
    name: str,
    function: Importer,
    *,
    suffixes: Iterable[str] = (),
    sniff: Callable[[bytes], bool] | None = None,
    folders: bool = False,
    extra: str | None = None,
) -> None:
    """Make ``load_model(path, format=name)`` call ``function(path, **options)``.

    ``suffixes`` (``".onnx"``) and ``sniff`` (a test on the file's first
    `SNIFF_BYTES` bytes) let `load_model` pick it without ``format=``;
    ``folders`` says it reads folders. Registering a name again replaces it,
    so a user can also replace a built-in importer.
    """
    if not (isinstance(name, str) and name.strip()):
        raise TypeError(f"an importer needs a name, not {name!r}")
    if not callable(function):
        raise TypeError(f"importer '{name}' must be callable, not {function!r}")
    _IMPORTERS[name] = ImporterInfo(
        name, function, tuple(s.lower() for s in suffixes), sniff, folders, extra
    )


def importers() -> dict[str, ImporterInfo]:
    """The registered importers by name, in registration order (entry points after the rest)."""
    _load_entry_points()
    return dict(_IMPORTERS)


_LOADED_ENTRY_POINTS: set[str] = set()


def _load_entry_points() -> None:
    """Register the ``nnsim.importers`` entry points not registered yet (each loaded once)."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _IMPORTERS or entry.name in _LOADED_ENTRY_POINTS:
            continue
        _LOADED_ENTRY_POINTS.add(entry.name)
        try:
            target = entry.load()
        except Exception as error:
            raise ModelError(
                f"weights importer '{entry.name}' ({entry.value}) cannot be loaded ({error}); "
                "reinstall the package that provides it"
            ) from None
        if isinstance(target, ImporterInfo):
            _IMPORTERS[entry.name] = dataclasses.replace(target, name=entry.name)
        elif callable(target):
            register_importer(
                entry.name,
                target,
                suffixes=getattr(target, "suffixes", ()),
                sniff=getattr(target, "sniff", None),
                folders=bool(getattr(target, "folders", False)),
            )
        else:
            raise ModelError(
                f"weights importer '{entry.name}' ({entry.value}) is neither an ImporterInfo "
                "nor a function; fix the package that registers it"
            )


def load_model(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    output_activation: str | None = None,
    **options: object,
) -> DenseModel:
    """The dense network stored at ``path``, whatever framework wrote it.

    ``format`` names the importer (see `importers`; by default it is chosen
    from the file, as the module docstring says). ``output_activation``
    (``"linear"`` or ``"softmax"``) replaces the last layer's activation,
    for files that do not say it (npz, PyTorch tables). Other keyword
    options go to the importer: ``config=`` names the Keras model config
    of a ``.weights.h5`` file.
    """
    if output_activation is not None and output_activation not in OUTPUT_ACTIVATIONS:
        raise ModelError(
            f"output_activation '{output_activation}' is not one of {', '.join(OUTPUT_ACTIVATIONS)}"
        )
    location = os.fspath(path)
    _load_entry_points()
    importer = _IMPORTERS.get(format) if format else choose_importer(location)
    if importer is None:
        raise ModelError(
            f"unknown weights format '{format}' for '{location}'; "
            f"use one of {', '.join(_IMPORTERS)}"
        )
    accepted = inspect.signature(importer.function).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for option in options:
        if option not in accepted and not takes_any:
            raise ModelError(f"the {importer.name} importer takes no option '{option}'")
    model = _run(importer, location, options)
    if not isinstance(model, DenseModel):
        raise ModelError(
            f"importer '{importer.name}' returned {type(model).__name__}, not a DenseModel"
        )
    if output_activation is not None:
        last = dataclasses.replace(model.layers[-1], activation=output_activation)
        model = DenseModel((*model.layers[:-1], last), model.source)
    return model


def _run(importer: ImporterInfo, location: str, options: dict) -> DenseModel:
    """Call the importer; what its libraries raise on a bad file becomes one ModelError line."""
    try:
        return importer.function(Path(location) if "://" not in location else location, **options)
    except NnsimError:
        raise
    except ImportError as error:
        package = error.name or "a library"
        hint = f": pip install 'nnsim[{importer.extra}]'" if importer.extra else ""
        raise ModelError(
            f"reading {importer.name} files ('{location}') needs {package}{hint}"
        ) from error
    except FileNotFoundError:
        raise ModelError(f"'{location}' does not exist") from None
    except Exception as error:  # the libraries' own complaints about a damaged or hostile file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(
            f"'{location}' is not a readable {importer.name} file ({reason[:200]})"
        ) from error


def choose_importer(location: str) -> ImporterInfo:
    """The importer for ``location`` by folder, suffix, then first bytes (ModelError if none)."""
    path = Path(location)
    if "://" in location or path.is_dir():
        for importer in _IMPORTERS.values():
            if importer.folders:
                return importer
    name = path.name.lower()
    by_suffix = [
        (len(suffix), importer)
        for importer in _IMPORTERS.values()
        for suffix in importer.suffixes
        if name.endswith(suffix)
    ]
    if by_suffix:
        return max(by_suffix, key=lambda item: item[0])[1]
    if not path.exists():
        raise ModelError(f"'{location}' does not exist")
    fd = open_regular(path, f"weights file '{location}'", follow_links=True)  # no FIFO, no device
    try:
        head = os.read(fd, SNIFF_BYTES)
    finally:
        os.close(fd)
    for importer in _IMPORTERS.values():
        if importer.sniff is not None and importer.sniff(head):
            return importer
    raise ModelError(
        f"cannot tell what kind of weights file '{location}' is (no known suffix or signature); "
        f"pass format= one of {', '.join(_IMPORTERS)}"
    )


def _register_builtins() -> None:
    from nnsim.interop.from_keras import is_keras_file, load_keras
    from nnsim.interop.from_nnsim import load_nnsim
    from nnsim.interop.from_npz import is_npz, load_npz
    from nnsim.interop.from_onnx import load_onnx
    from nnsim.interop.from_safetensors import is_safetensors, load_safetensors

    register_importer("nnsim", load_nnsim, suffixes=("manifest.json",), folders=True)
    register_importer("npz", load_npz, suffixes=(".npz",), sniff=is_npz)
    register_importer(
        "keras", load_keras, suffixes=(".keras", ".h5", ".hdf5"), sniff=is_keras_file, extra="keras"
    )
    register_importer("onnx", load_onnx, suffixes=(".onnx",), extra="onnx")
    register_importer(
        "safetensors", load_safetensors, suffixes=(".safetensors",), sniff=is_safetensors
    )


_register_builtins()
