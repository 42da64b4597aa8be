"""The package's layers stay true: every module's imports are read (``ast``, nothing is imported) and checked.

Layers, bottom to top (docs/ARCHITECTURE.md)::

    utils.version -> utils -> config -> sketch -> model -> data -> inference -> training | evaluation -> demo -> cli

and ``sketchheal/__init__.py``, the public API, on top. A module imports only from its own layer or below;
``training`` and ``evaluation`` never import each other; no two modules import each other, directly or round a
loop; imports are absolute and at the top of the module, except an import of an optional dependency (Gradio,
TensorBoard, Playwright) inside the function that needs it; nothing in the package imports the top-level
``sketchheal`` package (the version lives in ``sketchheal.utils.version``); no module is over 500 lines.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

import pytest

import sketchheal

PACKAGE = "sketchheal"
ROOT = Path(sketchheal.__file__).resolve().parent
# Rank of each layer: a module may import from ranks <= its own. training and evaluation share one rank but may not
# import each other (see test_training_and_evaluation_are_independent). cli sits above demo: `sketchheal demo` is
# registered by cli/demo.py, and the page never needs the command line.
RANKS = {
    "utils.version": 0,
    "utils": 1,
    "config": 2,
    "sketch": 3,
    "model": 4,
    "data": 5,
    "inference": 6,
    "training": 7,
    "evaluation": 7,
    "demo": 8,
    "cli": 9,
    "api": 10,
}
# Third-party packages that are optional extras: imported inside the function that needs them, so the rest of the
# package works without them.
OPTIONAL = {"gradio", "tensorboard", "playwright"}
OPTIONAL_MODULES = {"torch.utils.tensorboard"}  # torch's module that needs the tensorboard package
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. sketchheal.inference.heal
    target: str  # imported module (or package), e.g. sketchheal.model.pix2seq; a third-party name as written
    line: int
    in_function: bool
    relative: bool
    names: tuple[str, ...]  # the names of a `from ... import` (empty for `import x`)

    def where(self) -> str:
        return f"{module_path(self.source)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_path(name: str) -> str:
    rel = Path(*name.split("."))
    path = ROOT.parent / rel
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(ROOT.parent.parent))


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(name: str) -> str | None:
    """The layer of a module of the package (None for one outside every layer)."""
    if name == PACKAGE:
        return "api"
    rest = name[len(PACKAGE) + 1:]
    if rest == "utils.version":
        return "utils.version"
    top = rest.split(".")[0]
    return top if top in RANKS else None


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str:
    """The longest prefix of ``name`` that is a module of the package (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or name


def read_imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = _known(alias.name) if alias.name.split(".")[0] == PACKAGE else alias.name
                    found.append(Import(name, target, child.lineno, inside, False, ()))
            elif isinstance(child, ast.ImportFrom):
                module = _resolve(name, is_package, child)
                names = tuple(a.name for a in child.names)
                if module.split(".")[0] == PACKAGE:
                    # `from sketchheal.model import pix2seq` imports the module sketchheal.model.pix2seq
                    targets = {_known(f"{module}.{n}") for n in names} if module in MODULES else {_known(module)}
                else:
                    targets = {module}
                for target in sorted(targets):
                    found.append(Import(name, target, child.lineno, inside, bool(child.level), names))
            visit(child, inside)

    visit(tree, False)
    return found


IMPORTS = [imp for name, path in MODULES.items() for imp in read_imports(name, path)]
INTERNAL = [imp for imp in IMPORTS if imp.target.split(".")[0] == PACKAGE]


def _report(what: str, lines: list[str]) -> str:
    return f"{len(lines)} {what}:\n  " + "\n  ".join(lines)


# ------------------------------------------------------------------------------------------- the reader itself


def test_the_reader_sees_the_package():
    assert f"{PACKAGE}.utils.version" in MODULES and PACKAGE in MODULES and len(MODULES) > 20
    imports = read_imports(PACKAGE, MODULES[PACKAGE])
    assert any(imp.target == f"{PACKAGE}.utils.version" for imp in imports)


def test_the_reader_finds_function_level_relative_and_from_package_imports(tmp_path: Path):
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom sketchheal.utils import paths\n\ndef f():\n    import gradio as gr\n"
                   "    from . import config\n    from sketchheal import heal\n")
    got = read_imports(f"{PACKAGE}.utils.fake", src)
    assert [(i.target, i.in_function, i.relative) for i in got] == [
        ("os", False, False), (f"{PACKAGE}.utils.paths", False, False), ("gradio", True, False),
        (f"{PACKAGE}.utils", True, True), (PACKAGE, True, False)]


# ------------------------------------------------------------------------------------------- the rules


def test_every_module_belongs_to_a_layer():
    assert not [n for n in MODULES if layer(n) is None], "modules outside every layer"


def test_no_module_imports_a_higher_layer():
    bad = []
    for imp in INTERNAL:
        src, dst = layer(imp.source), layer(imp.target)
        if src == "api" or src is None or dst is None:
            continue
        if RANKS[dst] > RANKS[src]:
            bad.append(f"{imp.where()}: {imp.source} ({src}) imports {imp.target} ({dst})")
    assert not bad, _report("upward imports", bad)


def test_training_and_evaluation_are_independent():
    bad = [f"{imp.where()}: {imp.source} imports {imp.target}" for imp in INTERNAL
           if {layer(imp.source), layer(imp.target)} == {"training", "evaluation"}]
    assert not bad, _report("imports between training and evaluation", bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {n: set() for n in MODULES}
    for imp in INTERNAL:
        if imp.target in graph and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, _report("import cycles", [" <-> ".join(c) for c in cycles])


def test_imports_inside_functions_are_only_of_optional_dependencies():
    bad = [f"{imp.where()}: {imp.target}" for imp in IMPORTS
           if imp.in_function and imp.target.split(".")[0] not in OPTIONAL and imp.target not in OPTIONAL_MODULES]
    assert not bad, _report("imports inside functions (move them to the top of the module)", bad)


def test_nothing_imports_the_top_level_package():
    bad = [f"{imp.where()}: {'from sketchheal import ' + ', '.join(imp.names) if imp.names else 'import sketchheal'}"
           for imp in INTERNAL if imp.target == PACKAGE and imp.source != PACKAGE]
    assert not bad, _report("imports of the top-level package (import from the module that defines the name)", bad)


def test_imports_are_absolute():
    bad = [f"{imp.where()}: relative import of {imp.target}" for imp in IMPORTS if imp.relative]
    assert not bad, _report("relative imports", bad)


def test_no_module_is_over_500_lines():
    paths = sorted(ROOT.rglob("*.py"))
    long = {module_path(module_name(p)): len(p.read_text(encoding="utf-8").splitlines()) for p in paths}
    bad = [f"{path}: {n} lines" for path, n in sorted(long.items()) if n > MAX_LINES]
    assert not bad, _report(f"modules over {MAX_LINES} lines", bad)


def test_the_public_api_resolves():
    missing = [n for n in sketchheal.__all__ if not hasattr(sketchheal, n)]
    assert not missing, f"names in sketchheal.__all__ that do not exist: {missing}"
    assert callable(sketchheal.heal) and inspect.isfunction(sketchheal.heal)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (the package graph is small, recursion would do too)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    out.append(comp)
    return out


@pytest.mark.parametrize("graph, cycles", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder(graph, cycles):
    assert sorted(sorted(c) for c in _strongly_connected(graph) if len(c) > 1) == cycles
