"""The checkpoint format that every storage backend shares.

A checkpoint named ``<name>`` is a JSON manifest plus tensor files
``tensors-00000-of-0000N.safetensors`` (a parallel run: one set per rank,
``tensors-rank0000R-00000-of-0000N.safetensors``, `nnsim.parallel.checkpoint`;
readers need not know: the ``files`` and ``tensors`` tables say it all). The caller's manifest (any JSON-able
dict: large ints and NaN/inf floats round-trip exactly; non-finite floats are
written as ``{"__float__": "nan"}``, never as the non-standard ``NaN``
literal) gets these keys from the storage layer::

    "format": "nnsim-checkpoint", "format_version": FORMAT_VERSION,
    "nnsim_version": ..., "created_at": UTC ISO 8601 (kept if the caller gave one),
    "name": <name>,
    "files":   {file: {"sha256": hex, "bytes": n}},
    "tensors": {tensor: {"file": file, "dtype": "F32", "shape": [...]}},
    "manifest_sha256": SHA-256 of the canonical JSON (sorted keys, no spaces)
                       of the manifest without this key

This module builds and checks manifests, shards tensors into files, and
makes and parses checkpoint names; it does no I/O. Parsing is bounded before
anything is built: at most `MAX_MANIFEST_BYTES`, nesting at most `MAX_DEPTH`
deep (checked before ``json`` recurses), no duplicate keys, no non-finite
numbers; then `nnsim.checkpoint.schema` checks every field.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone

import numpy as np

import nnsim
from nnsim.checkpoint.errors import CheckpointError
from nnsim.checkpoint.tensorfile import DTYPES, Header, dtype_code

FORMAT = "nnsim-checkpoint"
#: 2: non-finite floats are tagged objects (version 1 wrote bare NaN literals).
FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"
#: Keys the storage layer owns: whatever the caller put there is replaced.
STORAGE_KEYS = ("format", "format_version", "nnsim_version", "name", "files", "tensors")
DIGEST_KEY = "manifest_sha256"

#: Checkpoints smaller than this go to one tensor file; larger ones are sharded.
SHARD_THRESHOLD = 64 << 20
#: Shards of a large checkpoint. Hashing a file is sequential, so a few more
#: files than cores balance the hash work better than one per core.
MAX_SHARDS = 4

#: Largest manifest.json read; real ones are tens of kilobytes.
MAX_MANIFEST_BYTES = 64 << 20
#: Deepest nesting of arrays and objects in a manifest; real ones are under 20.
MAX_DEPTH = 64
#: How a non-finite float is written: ``{"__float__": "nan" | "inf" | "-inf"}``.
FLOAT_TAG = "__float__"
_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,199}")
_NUMBERED = re.compile(r"(.+)_(\d+)_(\d+)")
_HEX64 = re.compile(r"[0-9a-f]{64}")


# Names ------------------------------------------------------------------------
def checkpoint_name(prefix: str, number: int, time_ps: int) -> str:
    """The name of checkpoint ``number`` taken at simulated time ``time_ps``: ``prefix_number_time``."""
    if type(number) is not int or type(time_ps) is not int or number < 0 or time_ps < 0:
        raise CheckpointError(
            f"checkpoint number and time must be integers >= 0, not {number!r} and {time_ps!r}"
        )
    name = f"{prefix}_{number}_{time_ps}"
    check_name(name)
    return name


def parse_checkpoint_name(name: str) -> tuple[str, int, int] | None:
    """``(prefix, number, time_ps)`` of a name made by `checkpoint_name`, else None."""
    match = _NUMBERED.fullmatch(name) if is_valid_name(name) else None
    if match is None:
        return None
    return match[1], int(match[2]), int(match[3])


def is_valid_name(name: object) -> bool:
    """A name a storage can hold: letters, digits, ``_ . + = -``; not hidden, not ``latest``."""
    return (
        isinstance(name, str)
        and _NAME.fullmatch(name) is not None
        and name != "latest"
        and not name.startswith("latest.tmp")
    )


def check_name(name: object) -> None:
    """CheckpointError unless `is_valid_name`."""
    if not is_valid_name(name):
        raise CheckpointError(
            f"invalid checkpoint name {name!r}: use up to 200 letters, digits and '_.+=-', "
            "not starting with '.', '-' and not 'latest'"
        )


def order_key(name: str) -> tuple:
    """Commit order: by number, then simulated time, then name; unnumbered names first."""
    parsed = parse_checkpoint_name(name)
    if parsed is None:
        return (-1, -1, name)
    return (parsed[1], parsed[2], name)


# Sharding -----------------------------------------------------------------------
def shard_tensors(
    tensors: Mapping[str, np.ndarray], prefix: str = "tensors"
) -> dict[str, dict[str, np.ndarray]]:
    """Split ``tensors`` into files ``{file name: {tensor: array}}`` of similar sizes.

    One file below `SHARD_THRESHOLD` bytes, else up to `MAX_SHARDS` (largest
    tensor first into the lightest file). Always at least one file.
    """
    for name, array in tensors.items():
        if not isinstance(name, str):
            raise CheckpointError(f"tensor name {name!r} is not a string")
        if not isinstance(array, np.ndarray):
            raise CheckpointError(f"tensor {name!r} is a {type(array).__name__}, not a numpy array")
        dtype_code(array.dtype, name)
    total = sum(array.nbytes for array in tensors.values())
    count = 1 if total < SHARD_THRESHOLD else max(1, min(MAX_SHARDS, len(tensors)))
    groups: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
    sizes = [0] * count
    for name in sorted(tensors, key=lambda n: (-tensors[n].nbytes, n)):
        lightest = sizes.index(min(sizes))
        groups[lightest][name] = tensors[name]
        sizes[lightest] += tensors[name].nbytes
    return {
        f"{prefix}-{index:05d}-of-{count:05d}.safetensors": group
        for index, group in enumerate(groups)
    }


# Building -----------------------------------------------------------------------
def _canonical(manifest: dict) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


class ManifestJSONError(ValueError):
    """JSON that a manifest must not be: too large, too deep, duplicate keys, non-finite numbers."""


def _tag_nonfinite(value):
    """``value`` with every non-finite float replaced by its `FLOAT_TAG` object."""
    if type(value) is float and not math.isfinite(value):
        return {FLOAT_TAG: "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {key: _tag_nonfinite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tag_nonfinite(item) for item in value]
    return value


def encode_json(manifest: Mapping) -> bytes:
    """The bytes of a manifest.json for ``manifest``, exactly as nnsim writes them.

    Standard JSON (non-finite floats tagged); ValueError/TypeError if a value
    is not JSON-able.
    """
    plain = json.loads(json.dumps(_tag_nonfinite(manifest), allow_nan=False))  # keys -> str
    text = json.dumps(plain, indent=1, sort_keys=True)
    return (text + "\n").encode()


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in ``data`` (brackets inside strings do not count).

    Counted without recursion, so a manifest nested 200,000 deep is refused
    before ``json`` (which recurses) ever sees it.
    """
    bare = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    brackets = bare[(bare == 0x5B) | (bare == 0x7B) | (bare == 0x5D) | (bare == 0x7D)]
    if brackets.size == 0:
        return 0
    steps = np.where((brackets == 0x5B) | (brackets == 0x7B), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _object(pairs: list[tuple[str, object]]) -> object:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ManifestJSONError(f"key {key[:80]!r} appears twice in one object")
        result[key] = value
    if len(result) == 1 and FLOAT_TAG in result:
        tagged = result[FLOAT_TAG]
        if tagged not in _NONFINITE:
            raise ManifestJSONError(f"{FLOAT_TAG} {str(tagged)[:40]!r} is not nan, inf or -inf")
        return _NONFINITE[tagged]
    return result


def _constant(name: str) -> object:
    raise ManifestJSONError(f"the non-standard number {name} (NaN and Infinity are not JSON)")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ManifestJSONError(f"the number {text[:40]} is too large for a float")
    return value


def decode_json(data: bytes) -> object:
    """The JSON value in ``data``, parsed within bounds; ManifestJSONError says what is wrong.

    Refused: more than `MAX_MANIFEST_BYTES`, nesting deeper than
    `MAX_DEPTH`, a key twice in one object, ``NaN``/``Infinity`` literals and
    numbers that overflow a float, integers of more than 4300 digits, and
    anything that is not UTF-8 JSON.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestJSONError(f"{len(data)} bytes, more than {MAX_MANIFEST_BYTES}")
    depth = json_depth(data)
    if depth > MAX_DEPTH:
        raise ManifestJSONError(f"nested {depth} deep, more than {MAX_DEPTH}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestJSONError("not UTF-8 text") from None
    try:
        return json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float
        )
    except ManifestJSONError:
        raise
    except (ValueError, RecursionError):
        raise ManifestJSONError("not a JSON object") from None


def reseal(manifest: dict) -> dict:
    """Set ``manifest``'s ``manifest_sha256`` to match its content, as nnsim does when it saves.

    For tests and fuzzers that forge manifests: only the checks of the
    content (`nnsim.checkpoint.schema`) can then refuse it. Returns ``manifest``.
    """
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    return manifest


def manifest_digest(manifest: Mapping) -> str:
    """SHA-256 of the canonical JSON of ``manifest`` without its ``manifest_sha256``."""
    body = {key: value for key, value in manifest.items() if key != DIGEST_KEY}
    return hashlib.sha256(_canonical(body)).hexdigest()


def utc_now() -> str:
    """Now, UTC, ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_manifest(
    manifest: Mapping,
    name: str,
    files: dict[str, dict],
    tensors: dict[str, dict],
    label: str,
) -> tuple[dict, bytes]:
    """The final manifest of checkpoint ``name`` and the bytes of its manifest.json.

    The returned dict is exactly what loading the file gives back (JSON
    turns tuples into lists and keys into strings). ``label`` names the
    checkpoint in errors.
    """
    if not isinstance(manifest, Mapping):
        raise CheckpointError(
            f"manifest of checkpoint '{label}' must be a dict, not {type(manifest).__name__}"
        )
    body = {key: value for key, value in manifest.items() if key != DIGEST_KEY}
    body.setdefault("created_at", utc_now())
    body.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        nnsim_version=nnsim.__version__,
        name=name,
        files=files,
        tensors=tensors,
    )
    try:
        body = decode_json(encode_json(body))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"manifest of checkpoint '{label}' cannot be saved as JSON ({error}); "
            "use only dict, list, str, int, float, bool and None in it"
        ) from None
    reseal(body)
    return body, encode_json(body)


def tensor_entries(file: str, header_entries: Mapping[str, dict]) -> dict[str, dict]:
    """The manifest's ``tensors`` entries for one file, from its plan's header entries."""
    return {
        name: {"file": file, "dtype": entry["dtype"], "shape": entry["shape"]}
        for name, entry in header_entries.items()
    }


# Reading ------------------------------------------------------------------------
def parse_manifest(data: bytes, label: str, *, verify: bool = True) -> dict:
    """The manifest in ``data``, checked; CheckpointError naming ``label`` if it cannot be used.

    Always refused: not JSON within the bounds of `decode_json`, not an
    nnsim manifest, a newer format, a malformed ``files``/``tensors``
    section, any field that `nnsim.checkpoint.schema.check_manifest` refuses.
    With ``verify``, also a ``manifest_sha256`` that does not match (the
    manifest was edited or is corrupt).
    """
    try:
        manifest = decode_json(data)
    except ManifestJSONError as error:
        raise CheckpointError(
            f"manifest of checkpoint '{label}' is corrupt ({error}); load another checkpoint"
        ) from None
    if not isinstance(manifest, dict):
        raise CheckpointError(
            f"manifest of checkpoint '{label}' is corrupt (not a JSON object); load another checkpoint"
        )
    if manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"'{label}' is not an nnsim checkpoint (its manifest has format "
            f"{manifest.get('format')!r}); pass a checkpoint written by nnsim"
        )
    version = manifest.get("format_version")
    if type(version) is not int:
        raise CheckpointError(
            f"manifest of checkpoint '{label}' is corrupt (format_version {version!r}); "
            "load another checkpoint"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{label}' was written by a newer nnsim (format {version}); "
            "upgrade nnsim to read it"
        )
    if verify and manifest.get(DIGEST_KEY) != manifest_digest(manifest):
        raise CheckpointError(
            f"manifest of checkpoint '{label}' was modified or is corrupt "
            "(manifest_sha256 does not match); load another checkpoint"
        )
    _check_sections(manifest, label)
    from nnsim.checkpoint.schema import check_manifest  # imports the kernel: only when reading

    check_manifest(manifest, label)
    return manifest


def _check_sections(manifest: dict, label: str) -> None:
    def malformed(why: str) -> CheckpointError:
        return CheckpointError(
            f"manifest of checkpoint '{label}' is malformed ({why}); load another checkpoint"
        )

    files, tensors = manifest.get("files"), manifest.get("tensors")
    if not isinstance(files, dict) or not isinstance(tensors, dict):
        raise malformed("no files or tensors section")
    for file, entry in files.items():
        if _FILE.fullmatch(file) is None or file == MANIFEST_FILE:
            raise malformed(f"file name {file!r}")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or _HEX64.fullmatch(entry["sha256"]) is None
            or type(entry.get("bytes")) is not int
            or entry["bytes"] < 0
        ):
            raise malformed(f"entry of file {file!r}")
    for tensor, entry in tensors.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("file"), str)
            or entry["file"] not in files
            or not isinstance(entry.get("dtype"), str)
            or entry["dtype"] not in DTYPES
            or not isinstance(entry.get("shape"), list)
            or not all(type(n) is int and n >= 0 for n in entry["shape"])
        ):
            raise malformed(f"entry of tensor {tensor!r}")


def check_header(manifest: dict, file: str, header: Header, label: str) -> None:
    """CheckpointError unless tensor file ``file``'s header lists exactly the manifest's tensors."""
    expected = {name: e for name, e in manifest["tensors"].items() if e["file"] == file}
    for name in sorted(expected.keys() | header.tensors.keys()):
        want, got = expected.get(name), header.tensors.get(name)
        if want is None or got is None:
            where = "the manifest" if want is None else "the file"
            why = f"tensor {name!r} is missing from {where}"
        elif want["dtype"] != got.dtype or tuple(want["shape"]) != got.shape:
            why = (
                f"tensor {name!r} is {got.dtype}{list(got.shape)} in the file, "
                f"{want['dtype']}{want['shape']} in the manifest"
            )
        else:
            continue
        raise CheckpointError(
            f"tensor file '{file}' of checkpoint '{label}' disagrees with the manifest ({why}); "
            "load another checkpoint"
        )


def size_error(file: str, label: str, size: int | None, expected: int) -> CheckpointError:
    """The error for a missing (``size`` None) or wrongly sized tensor file."""
    if size is None:
        return CheckpointError(
            f"tensor file '{file}' of checkpoint '{label}' is missing; load another checkpoint"
        )
    return CheckpointError(
        f"tensor file '{file}' of checkpoint '{label}' is truncated/corrupt "
        f"({size} bytes, expected {expected}); load another checkpoint"
    )


def digest_error(file: str, label: str) -> CheckpointError:
    """The error for a tensor file whose SHA-256 is not the manifest's."""
    return CheckpointError(
        f"tensor file '{file}' of checkpoint '{label}' is truncated/corrupt (SHA-256 mismatch); "
        "load another checkpoint"
    )


def hash_workers(count: int) -> int:
    """Threads to hash ``count`` files with: one per file, at most a few per core."""
    return max(1, min(count, 2 * (os.cpu_count() or 1)))
