"""``nnsim info``: what every registered component type declares, like ``sst-info``."""

from __future__ import annotations

import click

from nnsim.sim import Component, registered_types
from nnsim.sim.declare import REQUIRED


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns, two spaces apart, indented under their section title."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "    "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def describe_type(type_name: str, cls: type) -> str:
    """A plain-text description of one type, one aligned section each for its parameters
    (type, default, allowed values or ``-``, help), ports, subcomponent slots and statistics."""
    lines = [f"{type_name}: {_summary(cls)}"]
    sections: list[tuple[str, list[tuple[str, ...]]]] = []
    params = cls.declared_params()
    if params:
        rows = []
        for param in params.values():
            default = "(required)" if param.default is REQUIRED else f"= {param.default!r}"
            allowed = param.allowed or "-"  # "-": any value of the type
            rows.append((param.name, param.type_name, default, allowed, param.help))
        sections.append(("Parameters", rows))
    if issubclass(cls, Component) and cls.declared_ports():
        rows = [
            (port.name, "receives" if port.handler else "sends", port.help)
            for port in cls.declared_ports().values()
        ]
        sections.append(("Ports", rows))
    if cls.declared_slots():
        rows = [
            (slot.name, f"default {slot.default or '-'}", slot.help)
            for slot in cls.declared_slots().values()
        ]
        sections.append(("Subcomponent slots", rows))
    if cls.declared_statistics():
        rows = [(stat.name, stat.unit, stat.help) for stat in cls.declared_statistics().values()]
        sections.append(("Statistics", rows))
    for title, rows in sections:
        lines.append(f"  {title}:")
        lines.extend(_table(rows))
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's component table: one row per registered type."""
    rows = ["| type | what it is | parameters |", "|---|---|---|"]
    for type_name, cls in registered_types().items():
        names = ", ".join(f"`{name}`" for name in cls.declared_params())
        rows.append(f"| `{type_name}` | {_summary(cls)} | {names or '-'} |")
    return "\n".join(rows)


@click.command("info")
@click.argument("type_name", required=False)
@click.option(
    "--markdown", is_flag=True, help="Print the table of all types in Markdown (as in the README)."
)
def info(type_name: str | None, markdown: bool) -> None:
    """Describe registered component types: parameters, ports, slots, statistics.

    Each parameter shows its type, default, the values it accepts (a range
    such as ">= 1" or "0.0 to 1.0", or "one of ..."; "-" for any) and its help.
    With TYPE_NAME (e.g. nn.Dense) describe that type; without, all of them.
    """
    from nnsim.sim.registry import lookup

    if markdown:
        click.echo(markdown_table())
        return
    if type_name:
        click.echo(describe_type(type_name, lookup(type_name)))
        return
    click.echo("\n\n".join(describe_type(name, cls) for name, cls in registered_types().items()))
