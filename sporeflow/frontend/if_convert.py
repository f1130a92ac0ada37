"""Python `if` statements on traced tensors in a jit function become `ops.cond`.

MindSpore compiles `if is_finite: ...` in an `@ms.jit` function (its mixed-precision tutorial
skips the optimizer step that way); a tracer cannot branch on a value it does not know. So the
jit function's source is rewritten once: each `if` whose branches only assign names (no
return/break/continue/yield/del/global/nonlocal at its own level) becomes

    def __sf_then_K(a, b): <body>; return (a, b)
    def __sf_else_K(a, b): <orelse>; return (a, b)
    (a, b) = __sf_if(<test>, __sf_then_K, __sf_else_K, (<a or undefined>, <b or undefined>))

where a, b are the names either branch assigns. `__sf_if` runs the chosen branch as Python when
the test has a value (a Python value or an eager tensor: the program means what it meant) and
traces both branches into one `cond` when it is a traced tensor (Parameters a branch assigns
become outputs of the cond, as for ops.cond). The code keeps the user's file and line numbers,
and the function keeps its closure cells, so errors still point at the user's lines. Functions
whose source cannot be read (lambdas, REPL) or rewritten keep their original code, and an `if`
on a traced tensor there raises the usual error that names ops.cond.
"""
from __future__ import annotations

import ast
import functools
import inspect
import os
import textwrap
import types
from typing import Any, Callable

from ..errors import TracerError
from .functional.control_ops import cond
from .pytree import tree_flatten, tree_unflatten
from .source import user_line_description
from .tensor import Tensor, Tracer


class _Undefined:
    """A name the `if` assigns that had no value before it."""

    def __repr__(self) -> str:
        return "<undefined>"


UNDEFINED = _Undefined()
_IF, _UNDEF, _PREFIX = "__sf_if", "__sf_undef", "__sf_"
# statements that leave the branch or change scoping: an `if` holding one at its own level stays as it is
_BLOCKING = (ast.Return, ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal,
             ast.Match, ast.NamedExpr, ast.AsyncFor, ast.AsyncWith, ast.Try)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_cache: dict[types.CodeType, types.CodeType | None] = {}


def _branch_names(stmts: list[ast.stmt]) -> list[str] | None:
    """Names the statements assign (in order), or None when they cannot become a function body."""
    names: list[str] = []

    def add(n: str) -> None:
        if n not in names:
            names.append(n)

    def walk(node: ast.AST, loops: int) -> bool:
        if isinstance(node, _BLOCKING) or (isinstance(node, (ast.Break, ast.Continue)) and loops == 0):
            return False
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            add(node.name)
        if isinstance(node, _SCOPES):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                add(node.name)
            # defaults and decorators are evaluated here; the body is another scope
            outer = getattr(node, "decorator_list", []) + (node.args.defaults + node.args.kw_defaults
                                                            if hasattr(node, "args") else [])
            return all(walk(c, loops) for c in outer if c is not None)
        inner = loops + isinstance(node, (ast.For, ast.While))
        return all(walk(c, inner if c not in getattr(node, "orelse", []) else loops)
                   for c in ast.iter_child_nodes(node))

    return names if all(walk(s, 0) for s in stmts) else None


def _current(names: list[str]) -> list[ast.expr]:
    """`locals().get(name, __sf_undef)` for each name: its value, or undefined when unbound."""
    return [ast.Call(ast.Attribute(ast.Call(ast.Name("locals", ast.Load()), [], []), "get", ast.Load()),
                     [ast.Constant(n), ast.Name(_UNDEF, ast.Load())], []) for n in names]


class _IfToCond(ast.NodeTransformer):
    def __init__(self):
        self.count = 0

    def visit_If(self, node: ast.If):
        self.generic_visit(node)
        names_t, names_e = _branch_names(node.body), _branch_names(node.orelse)
        if names_t is None or names_e is None:
            return node
        names = names_t + [n for n in names_e if n not in names_t]
        k, self.count = self.count, self.count + 1
        def fn(name: str, body: list[ast.stmt]) -> ast.FunctionDef:
            args = ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in names], vararg=None, kwonlyargs=[],
                                 kw_defaults=[], kwarg=None, defaults=[])
            ret = ast.Return(ast.Tuple(_current(names), ast.Load()))   # `del` in a branch unbinds
            return ast.FunctionDef(name, args, body + [ret], [], None)

        then_fn, else_fn = fn(f"{_PREFIX}then_{k}", node.body), fn(f"{_PREFIX}else_{k}", node.orelse or [])
        current = _current(names)
        call = ast.Call(ast.Name(_IF, ast.Load()),
                        [node.test, ast.Name(then_fn.name, ast.Load()), ast.Name(else_fn.name, ast.Load()),
                         ast.Tuple(current, ast.Load()), ast.Constant(tuple(names))], [])
        out: list[ast.stmt] = [then_fn, else_fn]
        if names:
            out.append(ast.Assign([ast.Tuple([ast.Name(n, ast.Store()) for n in names], ast.Store())], call))
            # a name neither branch gave a value stays unbound, as after a Python `if`
            out += [ast.If(ast.Compare(ast.Name(n, ast.Load()), [ast.Is()], [ast.Name(_UNDEF, ast.Load())]),
                           [ast.Delete([ast.Name(n, ast.Del())])], []) for n in names]
        else:
            out.append(ast.Expr(call))
        for s in out:
            ast.copy_location(s, node)
            ast.fix_missing_locations(s)
        return out


def _mangled(tree: ast.AST) -> bool:
    """Private names (`self.__x`) are mangled by the class body; recompiled alone they would not be."""
    for n in ast.walk(tree):
        name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else None
        if name and name.startswith("__") and not name.endswith("__"):
            return True
    return False


def _rewritten_code(fn: types.FunctionType) -> types.CodeType | None:
    code = fn.__code__
    if code.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR) \
            or "__class__" in code.co_freevars or code.co_name == "<lambda>" \
            or os.path.abspath(code.co_filename).startswith(_PACKAGE_DIR):
        return None                               # sporeflow's own wrappers (grad, vmap...) stay as they are
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))   # the code's own source, not __wrapped__'s
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != code.co_name \
            or _mangled(tree):
        return None
    fdef = tree.body[0]
    fdef.decorator_list = []
    tr = _IfToCond()
    fdef = tr.visit(fdef)
    if tr.count == 0:
        return None
    params = ast.arguments(posonlyargs=[], args=[ast.arg(n) for n in code.co_freevars + (_IF, _UNDEF)],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    factory = ast.FunctionDef(f"{_PREFIX}factory", params, [fdef, ast.Return(ast.Name(fdef.name, ast.Load()))],
                              [], None)
    ast.copy_location(factory, fdef)
    module = ast.fix_missing_locations(ast.Module([factory], []))
    ast.increment_lineno(module, code.co_firstlineno - 1)
    compiled = compile(module, code.co_filename, "exec")
    outer = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in outer.co_consts if isinstance(c, types.CodeType) and c.co_name == code.co_name)
    return inner.replace(co_qualname=code.co_qualname)


def convert_ifs(fn: Callable) -> Callable:
    """`fn` with its convertible `if` statements running through `run_if` (else `fn` itself)."""
    if isinstance(fn, functools.partial):
        inner = convert_ifs(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    if isinstance(fn, types.MethodType):
        inner = convert_ifs(fn.__func__)
        return fn if inner is fn.__func__ else types.MethodType(inner, fn.__self__)
    if not isinstance(fn, types.FunctionType):
        return fn
    if fn.__code__ not in _cache:
        _cache[fn.__code__] = _rewritten_code(fn)
    new = _cache[fn.__code__]
    if new is None:
        return fn
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    cells[_IF], cells[_UNDEF] = types.CellType(run_if), types.CellType(UNDEFINED)
    out = types.FunctionType(new, fn.__globals__, fn.__name__, fn.__defaults__,
                             tuple(cells[n] for n in new.co_freevars))
    out.__kwdefaults__ = fn.__kwdefaults__
    return functools.update_wrapper(out, fn)


def _split(value) -> tuple[list[Tensor], Any, list]:
    leaves, td = tree_flatten(value)
    return [x for x in leaves if isinstance(x, Tensor)], td, [None if isinstance(x, Tensor) else x for x in leaves]


def run_if(test, then_fn: Callable, else_fn: Callable, current: tuple, names: tuple[str, ...]) -> tuple:
    """One converted `if`: Python when `test` has a value, one traced `cond` when it does not."""
    if not isinstance(test, Tracer):
        return then_fn(*current) if test else else_fn(*current)
    shapes: dict[str, list] = {}
    dropped: set[int] = set()                     # names only one branch binds: unbound after the if

    def branch(fn: Callable, key: str) -> Callable:
        def run():
            vals = [UNDEFINED if k in dropped else v for k, v in enumerate(fn(*current))]
            parts = [_split(v) for v in vals]
            shapes[key] = [(td, static) for _, td, static in parts]
            return [t for tensors, _, _ in parts for t in tensors]
        return run

    for _ in range(2):
        shapes.clear()
        try:
            outs = cond(test, branch(then_fn, "then"), branch(else_fn, "else"))
        except TypeError:
            if len(shapes) < 2 or not _check_agree(names, shapes, dropped):
                raise
            continue                              # again, without the one-branch names
        _check_agree(names, shapes, dropped)
        break
    result, i = [], 0
    for td, static in shapes["then"]:
        leaves = []
        for s in static:
            leaves.append(outs[i] if s is None else s)
            i += s is None
        result.append(tree_unflatten(td, leaves))
    return tuple(result)


def _check_agree(names: tuple[str, ...], shapes: dict, dropped: set[int]) -> bool:
    """Raise when the branches give a name different Python values; True when names were dropped."""
    more = False
    for k, (name, (td, static), (td_e, static_e)) in enumerate(zip(names, shapes["then"], shapes["else"])):
        if k not in dropped and UNDEFINED in (static[:1] + static_e[:1]) and len(static) == len(static_e) == 1:
            dropped.add(k)
            more = True
            continue
        if td != td_e or any((a is None) != (b is None) or (a is not None and not _same(a, b))
                             for a, b in zip(static, static_e)):
            show = lambda st: [("tensor" if v is None else v) for v in st]  # noqa: E731
            raise TracerError(
                f"`if` on a traced tensor: the branches give `{name}` different Python values or structures "
                f"({show(static)} vs {show(static_e)}); under jit both branches run, so give it a tensor "
                f"(or the same Python value) in both\n  at {user_line_description()}")
    return more


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False

