"""``nnsim checkpoint``: list, inspect, verify, diff and export checkpoints.

Each command is a thin layer over a function that tests and notebooks can
call: ``format_listing``, ``format_manifest``, ``nnsim.state.diff`` and
``nnsim.interop.export``. ``inspect`` and ``list`` read manifests only, never tensors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import numpy as np

from nnsim.checkpoint.manager import Policy
from nnsim.errors import NnsimError
from nnsim.units import format_time

QUEUE_SHOWN = 5


# Formatting -----------------------------------------------------------------------
def format_bytes(count: int) -> str:
    """``52381`` -> ``'51.2 KiB'``."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:.1f} {unit}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _dtype(name: str) -> np.dtype:
    """A manifest's dtype: a safetensors code ("F32") or a numpy name."""
    from nnsim.checkpoint.tensorfile import DTYPES

    return DTYPES.get(str(name).upper()) or np.dtype(name)


def tensor_bytes(info: dict) -> int:
    return int(math.prod(info["shape"])) * _dtype(info["dtype"]).itemsize


def _shape(info: dict) -> str:
    return f"{_dtype(info['dtype']).name}[{','.join(str(n) for n in info['shape'])}]"


def _total_bytes(manifest: dict) -> int:
    return sum(int(entry.get("bytes", 0)) for entry in manifest.get("files", {}).values())


def _metrics_text(metrics: dict) -> str:
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in metrics.items()
    )


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def best_checkpoint(manifests: list[dict], monitor: str | None = None) -> tuple[str, str] | None:
    """``(name, monitor)`` of the best checkpoint by the monitored metric, or None.

    The metric is ``monitor`` if given, else the one the manifests were
    written under (their ``monitor``, the run's ``--checkpoint-monitor``),
    else ``val_loss``; its direction is the checkpoint policy's (max for
    accuracies, min otherwise; the earliest of equals), as the run's
    ``best`` link is chosen.
    """
    if monitor is None:
        written = [m["monitor"] for m in manifests if isinstance(m.get("monitor"), str)]
        monitor = written[-1] if written else "val_loss"
    policy = Policy(monitor=monitor)
    best, best_value = None, None
    for manifest in manifests:
        metrics = manifest.get("metrics")
        value = metrics.get(monitor) if isinstance(metrics, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            continue
        if best_value is None or policy.better(value, best_value):
            best, best_value = manifest["name"], value
    return None if best is None else (best, monitor)


def format_listing(
    manifests: list[dict],
    latest: str | None,
    monitor: str | None = None,
    problems: dict[str, str] | None = None,
) -> str:
    """One row per checkpoint: name, simulated time, reason, metrics, size, created, marks.

    The last column marks the ``latest`` and the ``best`` (see ``best_checkpoint``);
    a line under the table says by which metric the best was chosen.
    ``problems`` maps the names of entries that cannot be used to why; they
    get a row too, in commit order, marked ``UNUSABLE: <why>``.
    """
    from nnsim.checkpoint.manifest import order_key

    found = best_checkpoint(manifests, monitor)
    best = found[0] if found else None
    rows = [["NAME", "SIMULATED", "REASON", "VAL_LOSS", "VAL_ACC", "SIZE", "CREATED", ""]]
    items: list[tuple[str, dict | str]] = [(str(m.get("name")), m) for m in manifests]
    items += list((problems or {}).items())
    for name, manifest in sorted(items, key=lambda item: order_key(item[0])):
        if not isinstance(manifest, str):
            try:
                metrics = manifest.get("metrics") or {}
                marks = [
                    mark for mark, which in (("best", best), ("latest", latest)) if name == which
                ]
                rows.append(
                    [
                        name,
                        format_time(manifest.get("simulated_time_ps", 0)),
                        str(manifest.get("reason", "")),
                        _number(metrics.get("val_loss")),
                        _number(metrics.get("val_acc")),
                        format_bytes(_total_bytes(manifest)),
                        str(manifest.get("created_at", "")),
                        " ".join(marks),
                    ]
                )
                continue
            except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as error:
                manifest = f"its manifest is malformed ({type(error).__name__})"
        rows.append([name, "-", "-", "-", "-", "-", "-", f"UNUSABLE: {manifest}"])
    lines = _table(rows)
    if found:
        direction = "highest" if Policy(monitor=found[1]).better(1, 0) else "lowest"
        lines.append(f"best: {best} ({direction} {found[1]})")
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def format_manifest(manifest: dict) -> str:
    """Everything a manifest says, for people: header, graph, tensors, state tree, queue."""
    tensors = manifest.get("tensors", {})
    files = manifest.get("files", {})
    lines = [
        f"checkpoint  {manifest.get('name', '?')}",
        f"format      {manifest.get('format_version', '?')} "
        f"(written by nnsim {manifest.get('nnsim_version', '?')})",
        f"created     {manifest.get('created_at', '?')}",
        f"simulated   {format_time(manifest['simulated_time_ps'])} "
        f"({manifest['simulated_time_ps']} ps)",
    ]
    if manifest.get("reason"):
        lines.append(f"reason      {manifest['reason']}")
    if manifest.get("metrics"):
        lines.append(f"metrics     {_metrics_text(manifest['metrics'])}")
    lines.append(
        f"size        {format_bytes(_total_bytes(manifest))} in {_count(len(files), 'file')}, "
        f"{_count(len(tensors), 'tensor')}"
    )

    model = manifest["model"]
    lines += ["", f"model (seed {model['seed']}): {len(model['components'])} components"]
    rows = []
    for spec in model["components"]:
        rows.append(["  " + spec["name"], spec["type"]])
        rows += [
            [f"    {spec['name']}/{sub['slot']}", sub["type"]] for sub in spec["subcomponents"]
        ]
    lines += _table(rows)
    lines.append(f"links: {len(model['links'])}")
    if model["links"]:
        lines += _table(
            [
                [
                    f"  {left[0]}.{left[1]} ({format_time(left[2])})",
                    "<->",
                    f"{right[0]}.{right[1]} ({format_time(right[2])})",
                ]
                for left, right in ((link["left"], link["right"]) for link in model["links"])
            ]
        )

    total = sum(tensor_bytes(info) for info in tensors.values())
    lines += ["", f"tensors: {_count(len(tensors), 'tensor')}, {format_bytes(total)}"]
    if tensors:
        lines += _table(
            [
                [
                    "  " + name,
                    _dtype(info["dtype"]).name,
                    str(list(info["shape"])),
                    format_bytes(tensor_bytes(info)),
                    str(info.get("file", "")),
                ]
                for name, info in tensors.items()
            ]
        )

    lines += ["", "state:"]
    slot_types = {
        (spec["name"], sub["slot"]): sub["type"]
        for spec in model["components"]
        for sub in spec["subcomponents"]
    }
    components = manifest.get("components", {})
    for name in [spec["name"] for spec in model["components"] if spec["name"] in components]:
        component = components[name]
        lines.append(f"  {name}")
        lines += _tree(component.get("state", {}), tensors, 4)
        for slot, state in component.get("subcomponents", {}).items():
            lines.append(f"    {slot}/ ({slot_types.get((name, slot), '?')})")
            lines += _tree(state, tensors, 6)
        for index, clock in enumerate(component.get("clocks", [])):
            lines.append(
                f"    <clock {index}> {clock['frequency']}, "
                f"{'on' if clock['active'] else 'off'}, {clock['ticks']} ticks"
            )

    queue = manifest.get("queue", [])
    counts: dict[str, int] = {}
    for entry in queue:
        counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
    by_kind = ", ".join(f"{count} {kind}" for kind, count in counts.items())
    lines += ["", f"queue: {_count(len(queue), 'event')}" + (f" ({by_kind})" if by_kind else "")]
    lines += _table([_queue_row(entry) for entry in queue[:QUEUE_SHOWN]]) if queue else []
    if len(queue) > QUEUE_SHOWN:
        lines.append(f"  ... {len(queue) - QUEUE_SHOWN} more")
    return "\n".join(lines)


def _queue_row(entry: dict) -> list[str]:
    when = "  " + format_time(entry["time"])
    if entry["kind"] == "link":
        return [when, "link", f"from {entry['source']}", _event_text(entry.get("payload"))]
    if entry["kind"] == "clock":
        return [when, "clock", f"{entry['component']} clock {entry['clock']}", ""]
    return [when, entry["kind"], "", ""]


def _event_text(payload: Any) -> str:
    """``Batch TRAIN #3``: an event's class, and its mode and index when it has them."""
    if not (isinstance(payload, dict) and "__object__" in payload):
        return type(payload).__name__
    fields = payload.get("fields", {})
    words = [payload["__object__"].rpartition(":")[2]]
    mode = fields.get("mode")
    if isinstance(mode, dict) and "__enum__" in mode:
        words.append(mode["name"])
    if isinstance(fields.get("index"), int):
        words.append(f"#{fields['index']}")
    return " ".join(words)


def _tree(state: dict, tensors: dict, indent: int) -> list[str]:
    """Scalars as ``name = value``, arrays as ``name: float32[784,128]``, containers nested."""
    lines = []
    pad = " " * indent
    for key, value in state.items():
        shown = _scalar(value, tensors)
        if shown is not None:
            lines.append(f"{pad}{key}{shown}")
            continue
        if "__object__" in value:
            lines.append(f"{pad}{key}: {value['__object__'].rpartition(':')[2]}")
            lines += _tree(value["fields"], tensors, indent + 2)
            continue
        children = value.get("__tuple__", value) if isinstance(value, dict) else value
        if isinstance(children, list):
            children = {f"[{index}]": item for index, item in enumerate(children)}
        elif "__items__" in children:
            children = {repr(k): item for k, item in children["__items__"]}
        lines.append(f"{pad}{key}:")
        lines += _tree(children, tensors, indent + 2)
    return lines


def _scalar(value: Any, tensors: dict) -> str | None:
    """`` = 3`` or ``: float32[784,128]`` for a leaf; None for a container to expand."""
    if value is None or isinstance(value, bool | int | float | str):
        return f" = {value!r}" if isinstance(value, str) else f" = {value}"
    if isinstance(value, list):
        if not value:
            return " = []"
        if len(value) <= 8 and all(
            v is None or isinstance(v, bool | int | float | str) for v in value
        ):
            return f" = {value!r}"
        return None
    if not isinstance(value, dict):
        return f" = {value!r}"
    if not value:
        return " = {}"
    if "__tensor__" in value:
        info = tensors.get(value["__tensor__"])
        return f": {_shape(info)}" if info else f": tensor {value['__tensor__']}"
    if "__enum__" in value:
        return f" = {value['name']}"
    if "__np__" in value:
        return f" = {value['value']} ({_dtype(value['__np__']).name})"
    if "__rng__" in value:
        return f": {value['__rng__'].get('bit_generator', '?')} generator"
    if "__ref__" in value:
        return f" -> {value['__ref__']}"
    return None


# Commands -----------------------------------------------------------------------
@click.group("checkpoint")
def checkpoint() -> None:
    """List, inspect, verify, compare and export checkpoints.

    PATH is a checkpoint folder, a folder of checkpoints (its latest is used)
    or a URL such as memory://ckpt/checkpoint_2_1234.
    """


@checkpoint.command("list")
@click.argument("location", metavar="DIR|URL")
@click.option(
    "--monitor",
    metavar="METRIC",
    help="Choose the best by METRIC (default: the run's --checkpoint-monitor, else val_loss).",
)
def list_command(location: str, monitor: str | None) -> None:
    """Every checkpoint in DIR|URL; the latest and the best marked, the unusable ones with why.

    One row each, oldest first: name, simulated time, reason, validation
    metrics, size on disk, creation time. The best is the one with the best
    monitored metric (highest for accuracies, lowest otherwise). An entry
    that cannot be used (a newer format, a malformed or tampered manifest,
    an incomplete write, a link or FIFO in place of a file) is listed as
    UNUSABLE with the reason.
    """
    from nnsim.checkpoint import open_storage
    from nnsim.checkpoint.errors import warn

    if "://" not in location and not Path(location).is_dir():
        raise NnsimError(f"checkpoint folder '{location}' does not exist")
    storage = open_storage(location)
    entries = storage.scan()
    if not entries:
        click.echo(f"no checkpoints in {location}")
        return
    latest, skipped = storage.find_latest(entries)
    for entry in skipped:
        if entry.name == "latest":
            warn(entry.problem)
    manifests = [{**entry.manifest, "name": entry.name} for entry in entries if entry.usable]
    problems = {entry.name: entry.problem for entry in entries if not entry.usable}
    click.echo(format_listing(manifests, latest, monitor, problems))


@checkpoint.command("inspect")
@click.argument("location", metavar="PATH")
def inspect_command(location: str) -> None:
    """Graph, tensors, scalar state and queue of a checkpoint.

    Also its versions, creation and simulated time. Reads the manifest only
    (no tensor data).
    """
    from nnsim.checkpoint import open_checkpoint

    storage, name = open_checkpoint(location)
    manifest = storage.load_manifest(name)
    manifest.setdefault("name", name)
    click.echo(format_manifest(manifest))


@checkpoint.command("verify")
@click.argument("location", metavar="PATH")
def verify_command(location: str) -> None:
    """Check a checkpoint's files against their SHA-256.

    Every file is compared with the checksum its manifest records. Prints OK and exits 0, or prints what is wrong in one line and exits 1.
    """
    from nnsim.checkpoint import open_checkpoint

    storage, name = open_checkpoint(location)
    storage.verify(name)
    manifest = storage.load_manifest(name, verify=False)
    files = manifest.get("files", {})
    click.echo(
        f"OK: {name} ({_count(len(files), 'file')}, {format_bytes(_total_bytes(manifest))}, "
        "SHA-256 verified)"
    )


DIFF_SAME, DIFF_DIFFERENT, DIFF_TROUBLE = 0, 1, 2  # diff(1)'s exit statuses


@checkpoint.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--summary", is_flag=True, help="Counts per component instead of every value.")
@click.pass_context
def diff_command(ctx: click.Context, a: str, b: str, summary: bool) -> None:
    """What differs from checkpoint A to checkpoint B.

    Scalars as before -> after, tensors by their largest absolute difference,
    keys on one side only as added (+) or removed (-). As diff(1), the exit
    status is 0 when they are the same, 1 when they differ, 2 on trouble (a
    checkpoint that cannot be read).
    """
    from nnsim.checkpoint import open_checkpoint
    from nnsim.state.diff import diff, format_diff, format_summary

    try:
        loaded = []
        for location in (a, b):
            storage, name = open_checkpoint(location)
            loaded.append(storage.load(name))
        (a_body, a_tensors), (b_body, b_tensors) = loaded
        changes = diff(a_body, a_tensors, b_body, b_tensors)
    except NnsimError as error:
        if ctx.find_root().meta.get("debug"):
            raise
        click.echo(f"nnsim: error: {error}", err=True)
        ctx.exit(DIFF_TROUBLE)
    if not changes:
        click.echo("no differences")
        ctx.exit(DIFF_SAME)
    click.echo(format_summary(changes) if summary else format_diff(changes))
    ctx.exit(DIFF_DIFFERENT)


@checkpoint.command("export")
@click.argument("location", metavar="PATH")
@click.option(
    "--format",
    "kind",
    type=click.Choice(["safetensors", "npz", "onnx"]),
    help="File format (default: from the --out suffix).",
)
@click.option("--out", required=True, metavar="FILE", help="The file to write.")
def export_command(location: str, kind: str | None, out: str) -> None:
    """Trained weights as safetensors, npz or ONNX.

    safetensors and npz hold "<layer>.weights" [in, out] and "<layer>.biases"
    [out] of every dense layer in forward order; onnx is the inference network
    (images [N, 784] -> probabilities), which needs: pip install 'nnsim[onnx]'.
    """
    from nnsim.checkpoint import open_checkpoint
    from nnsim.interop.export import EXPORTERS, trained_parameters

    if kind is None:
        kind = Path(out).suffix.lstrip(".").lower()
        if kind not in EXPORTERS:
            raise NnsimError(
                f"cannot tell the format of {out!r} from its suffix; "
                "pass --format safetensors, npz or onnx"
            )
    storage, name = open_checkpoint(location)
    body, tensors = storage.load(name)
    path = EXPORTERS[kind](body, tensors, out)
    count = len(trained_parameters(body, tensors))
    click.echo(f"wrote {path} ({kind}, {count} tensors, {format_bytes(path.stat().st_size)})")
