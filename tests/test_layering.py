"""The package's floors: each module imports only from its own floor or the floors below it.

Bottom up: ir (with errors, context) < core < passes < primitives < backends < frontend <
runtime < the top-level re-exports. The walk reads every module's source with `ast`, resolves
each `import` of a sporeflow module (module level or inside a function) to the module it names,
and fails on an import that runs up a floor. An import inside a function or method of a
sporeflow module fails too, unless it is listed in LOCAL_IMPORTS with why it is not there to
dodge a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import sporeflow

PKG = Path(sporeflow.__file__).parent

FLOORS = ["ir", "core", "passes", "primitives", "backends", "frontend", "runtime", "top"]
BASE = {"sporeflow.errors": "ir", "sporeflow.context": "ir"}   # below everything, beside ir
TOP = "top"   # sporeflow/__init__, ops, numpy, common, train, dataset: re-exports of the public API

# (importing module, imported module) -> why the import is inside a function. Empty: the cycles
# inside the frontend (jit <-> cell, control_ops <-> jit, random <-> functional, tensor <->
# initializer) are module-level imports now; an entry needs a reason other than a cycle.
LOCAL_IMPORTS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def floor_of(mod: str) -> str:
    if mod in BASE:
        return BASE[mod]
    parts = mod.split(".")
    if len(parts) >= 2 and parts[1] in FLOORS:
        return parts[1]
    return TOP


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "sporeflow"]
    if node.level == 0:
        base = node.module or ""
        if base.split(".")[0] != "sporeflow":
            return []
    else:
        pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
        pkg = pkg[:len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    # `from pkg import sub` names the submodule sub when it is one
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        out.append(sub if _exists(sub) else base)
    return out


def _exists(mod: str) -> bool:
    p = PKG.parent.joinpath(*mod.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def imports():
    """(importer, imported, line, inside a function?) for every sporeflow import in the package."""
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        local: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                local.update(id(n) for n in ast.walk(fn) if n is not fn)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(mod, path.name == "__init__.py", node):
                    yield mod, target, node.lineno, id(node) in local


def test_the_walk_sees_the_package():
    found = list(imports())
    assert len({m for m, *_ in found}) > 100
    assert ("sporeflow.primitives.control", "sporeflow.passes.autodiff") in {(m, t) for m, t, *_ in found}
    assert floor_of("sporeflow.core.trace") == "core" and floor_of("sporeflow.ops") == TOP


def test_no_import_runs_up_a_floor():
    bad = [f"{m}:{line} imports {t} ({floor_of(m)} < {floor_of(t)})"
           for m, t, line, _ in imports() if FLOORS.index(floor_of(t)) > FLOORS.index(floor_of(m))]
    assert not bad, "imports from a floor above:\n  " + "\n  ".join(bad)


def test_no_function_local_imports():
    found = [(m, t, line) for m, t, line, local in imports() if local]
    bad = [f"{m}:{line} imports {t} inside a function" for m, t, line in found if (m, t) not in LOCAL_IMPORTS]
    assert not bad, "function-local imports of sporeflow modules:\n  " + "\n  ".join(bad)
    stale = set(LOCAL_IMPORTS) - {(m, t) for m, t, _ in found}
    assert not stale, f"LOCAL_IMPORTS lists imports that are gone; drop them: {sorted(stale)}"


def test_upward_import_is_caught(tmp_path):
    """The walk is not vacuous: a core module importing the frontend is reported."""
    node = ast.parse("from ..frontend.tensor import Tensor").body[0]
    (t,) = _resolve("sporeflow.core.trace", False, node)
    assert t == "sporeflow.frontend.tensor"
    assert FLOORS.index(floor_of(t)) > FLOORS.index(floor_of("sporeflow.core.trace"))
