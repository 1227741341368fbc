"""``nnsim info``: what every registered component type declares, like ``sst-info``."""

from __future__ import annotations

import click

from nnsim.sim import Component, registered_types
from nnsim.sim.declare import REQUIRED


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def describe_type(type_name: str, cls: type) -> str:
    """A plain-text description of one type's parameters, ports, slots and statistics."""
    lines = [f"{type_name}: {_summary(cls)}"]
    params = cls.declared_params()
    if params:
        lines.append("  Parameters:")
        for param in params.values():
            default = "(required)" if param.default is REQUIRED else f"= {param.default!r}"
            lines.append(f"    {param.name:<26} {param.type_name:<9} {default:<14} {param.help}")
    if issubclass(cls, Component) and cls.declared_ports():
        lines.append("  Ports:")
        for port in cls.declared_ports().values():
            direction = "receives" if port.handler else "sends"
            lines.append(f"    {port.name:<26} {direction:<9} {port.help}")
    if cls.declared_slots():
        lines.append("  Subcomponent slots:")
        for slot in cls.declared_slots().values():
            lines.append(f"    {slot.name:<26} default {slot.default or '-':<12} {slot.help}")
    if cls.declared_statistics():
        lines.append("  Statistics:")
        for stat in cls.declared_statistics().values():
            lines.append(f"    {stat.name:<26} {stat.unit:<9} {stat.help}")
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
