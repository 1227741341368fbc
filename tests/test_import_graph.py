"""nnsim's modules import each other without cycles (issue 9: modules along their seams).

The imports are read with ``ast`` from the source, not by importing, so a
cycle hidden by import order or by an import inside a function shows up too.
An edge goes to the module named (``from a.b import c`` goes to ``a.b.c``
when that is a module, else to ``a.b``); a package's ``__init__`` is only an
edge when it is named. Three kinds of import are told apart:

* module level: run when the module is imported;
* function level: run when the function is called;
* ``if TYPE_CHECKING:``: never run, for annotations only.

Module-level and function-level imports together have no cycle anywhere.
Type-only imports may close cycles inside the kernel's core files, whose
classes name each other in annotations, and nowhere else.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import nnsim

SOURCE = Path(nnsim.__file__).resolve().parent.parent

KERNEL_CORE = {
    "nnsim.sim.clock",
    "nnsim.sim.component",
    "nnsim.sim.hooks",
    "nnsim.sim.link",
    "nnsim.sim.simulation",
}
"""Kernel modules whose classes annotate with each other (a Component has a Simulation, ...)."""

Graph = dict[str, set[str]]


def modules(root: Path, package: str = "nnsim") -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package) for every ``.py`` under ``root/package``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


KINDS = ("module", "function", "type_checking")


def import_graphs(root: Path, package: str = "nnsim") -> dict[str, Graph]:
    """The edges between the package's modules, by kind: module, function, type_checking."""
    known = modules(root, package)
    graphs: dict[str, Graph] = {kind: defaultdict(set) for kind in KINDS}
    for name, (path, is_package) in known.items():
        here = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for kind, node in imports(tree, "module"):
            for target in targets(node, here, known):
                if target != name:
                    graphs[kind][name].add(target)
    return graphs


def imports(node: ast.AST, kind: str) -> list[tuple[str, ast.Import | ast.ImportFrom]]:
    """Every import statement under ``node`` with the kind of import it is."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append((kind, child))
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for statement in child.body:
                found.extend(imports(ast.Module([statement], []), "type_checking"))
            for statement in child.orelse:
                found.extend(imports(ast.Module([statement], []), kind))
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            found.extend(imports(child, "function" if kind == "module" else kind))
        else:
            found.extend(imports(child, kind))
    return found


def targets(node: ast.Import | ast.ImportFrom, here: str, known: Mapping[str, object]) -> list[str]:
    """The package's modules an import names; ``here`` is the package relative imports start in."""
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = here.split(".")[: len(here.split(".")) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        named = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            for alias in node.names
        ]
    return [target for target in named if target in known]


def merged(*graphs: Graph) -> Graph:
    union: Graph = defaultdict(set)
    for graph in graphs:
        for source, targets in graph.items():
            union[source] |= targets
    return union


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


GRAPHS = import_graphs(SOURCE)


def test_module_level_imports_have_no_cycle():
    assert cycles(GRAPHS["module"]) == []


def test_imports_inside_functions_close_no_cycle_either():
    assert cycles(merged(GRAPHS["module"], GRAPHS["function"])) == []


def test_type_only_imports_close_cycles_only_inside_the_kernel_core():
    everything = merged(*GRAPHS.values())
    outside = [group for group in cycles(everything) if not set(group) <= KERNEL_CORE]
    assert outside == []


def test_the_data_readers_and_the_console_commands_import_along_their_seams():
    """The two cycles issue 9 named stay gone: dataset <-> images, and engine <-> commands."""
    runtime = merged(GRAPHS["module"], GRAPHS["function"])
    assert "nnsim.data.images" in runtime["nnsim.data.dataset"]
    assert "nnsim.data.dataset" not in runtime["nnsim.data.images"]
    commands = [name for name in modules(SOURCE) if name.startswith("nnsim.console.commands.")]
    assert len(commands) >= 6
    for name in commands:
        assert "nnsim.console.engine" in runtime[name], name
    assert not any(
        name.startswith("nnsim.console.commands") for name in runtime["nnsim.console.engine"]
    )


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The checker itself: a lazy import that closes a cycle is found, and told apart."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from pkg import a\n    return a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import thing\n"
    )
    graphs = import_graphs(tmp_path, "pkg")
    assert cycles(graphs["module"]) == []
    assert cycles(merged(graphs["module"], graphs["function"])) == [["pkg.a", "pkg.b"]]
    assert graphs["type_checking"]["pkg.c"] == {"pkg.a"}
