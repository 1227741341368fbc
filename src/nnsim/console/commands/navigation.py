"""Navigating the object map (CONSOLE.md): ``pwd``, ``cd``, ``ls``, ``print``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsim.console.engine import Console, ConsoleError, command
from nnsim.console.objectmap import children, is_scalar, show_scalar, type_name


@command("pwd", "pwd", "pwd", "Show the current path and its type.")
def _pwd(console: Console, args: list[str], rest: str) -> None:
    place = console.place()
    console.emit(f"{place.path or '/'} ({type_name(place.value)})")


@command("cd", "chdir", "cd NAME|..|/|a/b", "Change the current object ('..' up, '/' to the root).")
def _cd(console: Console, args: list[str], rest: str) -> None:
    if len(args) != 1:
        raise ConsoleError("usage: cd NAME (one name, '..', '/', or a path such as loss/optimizer)")
    place = console.place(args[0])
    if is_scalar(place.value):
        raise ConsoleError(
            f"'{args[0]}' is a scalar ({type_name(place.value)}); cd goes into objects only"
        )
    if isinstance(place.value, np.ndarray):
        raise ConsoleError(f"'{args[0]}' is an array; print it, or elements with p NAME[i,j]")
    console.cwd = place.path


@command(
    "ls", "list", "ls [-l]", "List the current object: scalars as name = value, objects as name/."
)
def _ls(console: Console, args: list[str], rest: str) -> None:
    long = "-l" in args
    others = [arg for arg in args if arg != "-l"]
    if others:
        raise ConsoleError("usage: ls [-l]")
    for name, (value, _) in children(console.place().value).items():
        console.emit(_describe_entry(name, value, long))


@command(
    "print",
    "p",
    "print [-rN] [NAME]",
    "Print a value, an array (p w[0,:5]) or an object N levels deep.",
    "-r alone prints 4 levels. Large arrays are elided.",
)
def _print(console: Console, args: list[str], rest: str) -> None:
    depth = 1
    names = []
    for arg in args:
        if arg.startswith("-r"):
            try:
                depth = int(arg[2:]) if len(arg) > 2 else 4
            except ValueError:
                raise ConsoleError(f"'{arg}': write -r or -rN with a number N") from None
        else:
            names.append(arg)
    if len(names) > 1:
        raise ConsoleError("usage: print [-rN] [NAME]")
    place = console.place(names[0] if names else None)
    name = place.name if place.path else ""  # the root prints as "/", not "//"
    console.emit("\n".join(_print_value(name, place.value, depth)))


def _describe_entry(name: str, value: Any, long: bool) -> str:
    if is_scalar(value):
        return f"{name} = {show_scalar(value)} ({type_name(value)})"
    if long and isinstance(value, np.ndarray) and value.size and value.dtype.kind in "biuf":
        return (
            f"{name}/ ({type_name(value)}) min {value.min():.6g} max {value.max():.6g} "
            f"mean {value.mean():.6g}"
        )
    return f"{name}/ ({type_name(value)})"


def _print_value(name: str, value: Any, depth: int, indent: str = "") -> list[str]:
    if is_scalar(value):
        return [f"{indent}{name} = {show_scalar(value)} ({type_name(value)})"]
    if isinstance(value, np.ndarray):
        body = np.array2string(value, threshold=64, edgeitems=3, max_line_width=100)
        lines = body.splitlines()
        return [
            f"{indent}{name} ({type_name(value)}) = {lines[0]}",
            *(indent + "  " + line for line in lines[1:]),
        ]
    lines = [f"{indent}{name}/ ({type_name(value)})"]
    if depth <= 0:
        return lines
    for child, (item, _) in children(value).items():
        lines.extend(_print_value(child, item, depth - 1, indent + "  "))
    return lines
