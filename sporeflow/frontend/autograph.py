"""Python control flow on traced tensors: a source-to-source conversion, as TF's autograph and
MindSpore's parser do, written with `ast`.

When sporeflow traces a function or a Cell's `construct`, it runs a rewritten copy of it:
`if`/`while`/`for`, `break`/`continue`/early `return`, `a if c else b`, `and`/`or`/`not` and
calls go through `autograph_runtime` (`ag__`), which decides at trace time: a Python condition
keeps Python semantics, a traced one becomes `cond`/`while_loop`/`scan`. The rewrite keeps the
user's file name and line numbers (errors and IR `loc`s name the user's line) and is cached
per code object. Functions whose source cannot be read (REPL lambdas, builtins) run as written.

The conversion, in order:
1. jumps are lowered to flags: `break`/`continue` set `sf__brk_N`/`sf__cont_N`, a nested `return`
   sets `sf__ret`/`sf__rv`, and the statements after a jump are guarded by `if not flag:`;
2. each compound statement becomes functions of the variables it assigns, returning their new
   values, and one `ag__.*_stmt` call that assigns them back; a branch returns only the variables
   read anywhere else in the function (an over-approximation of liveness), so a temporary used
   only inside a branch may differ between branches.
"""
from __future__ import annotations

import ast
import copy
import functools
import inspect
import os
import sysconfig
import textwrap
import types
from collections import Counter
from typing import Any, Callable

from . import autograph_runtime as rt

AG = "ag__"
_SELF = "sf__converted"   # the name the rewritten function is compiled under
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIB_DIRS = tuple({sysconfig.get_paths()[k] + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib")})
_CODE_CACHE: dict[types.CodeType, types.CodeType | None] = {}


# ---- small AST builders ---------------------------------------------------------------------------
def _name(n: str, ctx=None) -> ast.Name:
    return ast.Name(id=n, ctx=ctx or ast.Load())


def _attr(n: str) -> ast.Attribute:
    return ast.Attribute(value=_name(AG), attr=n, ctx=ast.Load())


def _call(fn: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=fn, args=list(args), keywords=[])


def _assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[_name(target, ast.Store())], value=value)


def _tuple(elts: list, ctx=None) -> ast.Tuple:
    return ast.Tuple(elts=elts, ctx=ctx or ast.Load())


def _const(v) -> ast.Constant:
    return ast.Constant(value=v)


def _lambda(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=_args([]), body=body)


def _args(names: list[str]) -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in names], vararg=None, kwonlyargs=[],
                         kw_defaults=[], kwarg=None, defaults=[])


def _def(name: str, params: list[str], body: list[ast.stmt]) -> ast.FunctionDef:
    return ast.FunctionDef(name=name, args=_args(params), body=body or [ast.Pass()], decorator_list=[],
                           returns=None, type_comment=None)


def _not(e: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=e)


def _located(new, ref: ast.AST):
    """Give every generated node the location of the statement it replaces (the user's line)."""
    for n in (new if isinstance(new, list) else [new]):
        for sub in ast.walk(n):
            if isinstance(sub, (ast.stmt, ast.expr, ast.excepthandler, ast.arg, ast.keyword)) and \
                    not hasattr(sub, "lineno"):
                # one line: a multi-line span would make CPython report a call at its last line
                sub.lineno, sub.col_offset = ref.lineno, ref.col_offset
                sub.end_lineno = ref.lineno
                same = getattr(ref, "end_lineno", None) == ref.lineno
                sub.end_col_offset = ref.end_col_offset if same else ref.col_offset + 1
    return new


# ---- scope analysis ------------------------------------------------------------------------------
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _walk_scope(nodes):
    """Nodes of these statements without entering nested scopes (a def's name is still seen)."""
    todo = list(nodes)
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, _SCOPES):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                todo.extend(n.decorator_list)
            continue
        todo.extend(ast.iter_child_nodes(n))


def _stores(nodes) -> list[str]:
    """Names these statements assign in their own scope, in first-seen order."""
    out: dict[str, None] = {}
    for n in _walk_scope(nodes):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out[n.id] = None
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[n.name] = None
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                out[(a.asname or a.name).split(".")[0]] = None
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out[n.name] = None
    return sorted(out)


def _declared(fn: ast.FunctionDef) -> tuple[set, set]:
    glob, nonloc = set(), set()
    for n in _walk_scope(fn.body):
        if isinstance(n, ast.Global):
            glob.update(n.names)
        elif isinstance(n, ast.Nonlocal):
            nonloc.update(n.names)
    return glob, nonloc


def _loads(nodes) -> Counter:
    c: Counter = Counter()
    for root in nodes:
        for n in ast.walk(root):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                c[n.id] += 1
    return c


def _contains(nodes, kinds, stop_at_loops: bool) -> bool:
    todo = list(nodes)
    while todo:
        n = todo.pop()
        if isinstance(n, kinds):
            return True
        if isinstance(n, _SCOPES) or (stop_at_loops and isinstance(n, (ast.For, ast.While))):
            continue
        todo.extend(ast.iter_child_nodes(n))
    return False


# ---- 1. jumps to flags -------------------------------------------------------------------------------
class _Jumps:
    """break/continue/return inside compound statements -> flag assignments plus guards."""

    def __init__(self):
        self.n = 0

    def function(self, fn: ast.FunctionDef) -> None:
        nested_return = any(not isinstance(s, ast.Return) and _contains([s], ast.Return, False) for s in fn.body)
        ctx = {"ret": nested_return, "loop": None}
        body = self.block(fn.body, ctx)
        if nested_return:
            pre = [_assign("sf__ret", _const(False)), _assign("sf__rv", _attr("RETURN_UNDEF"))]
            end = [ast.Return(value=_name("sf__rv") if _always_returns(fn.body)
                              else _call(_attr("ret_value"), _name("sf__ret"), _name("sf__rv")))]
            body = _located(pre, fn.body[0]) + body + _located(end, fn.body[-1])
        fn.body = body

    def flags(self, s: ast.stmt, ctx) -> list[str]:
        out = []
        if ctx["ret"] and _contains([s], ast.Return, False):
            out.append("sf__ret")
        if ctx["loop"]:
            brk, cont = ctx["loop"]
            if brk and _contains([s], ast.Break, True):
                out.append(brk)
            if cont and _contains([s], ast.Continue, True):
                out.append(cont)
        return out

    def block(self, stmts: list, ctx) -> list:
        out: list = []
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Return) and ctx["ret"]:
                out += _located([_assign("sf__rv", s.value or _const(None)), _assign("sf__ret", _const(True))], s)
                return out
            if isinstance(s, ast.Break) and ctx["loop"] and ctx["loop"][0]:
                return out + _located([_assign(ctx["loop"][0], _const(True))], s)
            if isinstance(s, ast.Continue) and ctx["loop"] and ctx["loop"][1]:
                return out + _located([_assign(ctx["loop"][1], _const(True))], s)
            flags = self.flags(s, ctx)
            out += self.stmt(s, ctx)
            if flags and i + 1 < len(stmts):
                rest = self.block(stmts[i + 1:], ctx)
                if rest:
                    test = _name(flags[0]) if len(flags) == 1 else ast.BoolOp(op=ast.Or(), values=[_name(f) for f in flags])
                    out.append(_located(ast.If(test=_not(test), body=rest, orelse=[]), stmts[i + 1]))
                return out
        return out

    def stmt(self, s: ast.stmt, ctx) -> list:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _Jumps().function(s)
            return [s]
        if isinstance(s, ast.If):
            s.body = self.block(s.body, ctx) or [_located(ast.Pass(), s)]
            s.orelse = self.block(s.orelse, ctx)
            return [s]
        if isinstance(s, (ast.With, ast.AsyncWith)):
            s.body = self.block(s.body, ctx)
            return [s]
        if isinstance(s, ast.Try):
            s.body = self.block(s.body, ctx)
            for h in s.handlers:
                h.body = self.block(h.body, ctx) or [_located(ast.Pass(), h)]
            s.orelse, s.finalbody = self.block(s.orelse, ctx), self.block(s.finalbody, ctx)
            return [s]
        if isinstance(s, (ast.While, ast.For)):
            return self.loop(s, ctx)
        return [s]

    def loop(self, s, ctx) -> list:
        has_brk = _contains(s.body, ast.Break, True)
        has_cont = _contains(s.body, ast.Continue, True)
        has_ret = ctx["ret"] and _contains(s.body, ast.Return, False)
        self.n += 1
        brk = f"sf__brk_{self.n}" if has_brk else None
        cont = f"sf__cont_{self.n}" if has_cont else None
        inner = {"ret": ctx["ret"], "loop": (brk, cont)}
        body = self.block(s.body, inner)
        pre = []
        if cont:
            body = _located([_assign(cont, _const(False))], s) + body
            pre.append(_assign(cont, _const(False)))
        if brk:
            pre.append(_assign(brk, _const(False)))
        stops = [_name(f) for f in ([brk] if brk else []) + (["sf__ret"] if has_ret else [])]
        s.body = body or [_located(ast.Pass(), s)]
        if stops:
            keep_going = _located(_not(stops[0]) if len(stops) == 1 else
                                  _not(ast.BoolOp(op=ast.Or(), values=stops)), s)
            if isinstance(s, ast.While):
                s.test = ast.BoolOp(op=ast.And(), values=[keep_going, s.test])
            else:   # the test stops a Python loop early; the guard skips traced iterations after a break
                s.sf_extra_test = keep_going
                s.body = [_located(ast.If(test=copy.deepcopy(keep_going), body=s.body, orelse=[]), s)]
        orelse = self.block(s.orelse, ctx)
        s.orelse = []
        post = []
        if orelse:
            post = [ast.If(test=_not(_name(brk)), body=orelse, orelse=[])] if brk else orelse
        return _located(pre, s) + [_located(s, s)] + _located(post, s)


def _always_returns(stmts) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return False


# ---- 2. statements and expressions to runtime calls ------------------------------------------------
_MUTATING_STMT = (ast.Assign, ast.AugAssign, ast.AnnAssign)


class _Converter(ast.NodeTransformer):
    """Rewrites one function scope (nested defs get a converter of their own)."""

    def __init__(self, fn: ast.FunctionDef):
        self.fn = fn
        self.total = _loads(fn.body) + _loads([fn.args])
        self.glob, self.nonloc = _declared(fn)
        self.n = 0

    def run(self) -> ast.FunctionDef:
        self.fn.body = self.stmts(self.fn.body)
        return self.fn

    def stmts(self, body: list) -> list:
        out = []
        for s in body:
            r = self.visit(s)
            out.extend(r if isinstance(r, list) else [r])
        return out

    def _fresh(self, what: str) -> str:
        self.n += 1
        return f"sf__{what}_{self.n}"

    def _vars(self, nodes) -> list[str]:
        return [n for n in _stores(nodes) if n not in self.glob and n not in self.nonloc]

    def _live(self, names: list[str], inside: list) -> list[str]:
        inner = _loads(inside)
        return [n for n in names if self.total[n] - inner[n] > 0 or n.startswith("sf__")]

    def _decls(self) -> list[ast.stmt]:
        d = []
        if self.glob:
            d.append(ast.Global(names=sorted(self.glob)))
        if self.nonloc:
            d.append(ast.Nonlocal(names=sorted(self.nonloc)))
        return d

    def _current(self, names: list[str]) -> ast.Tuple:
        return _tuple([_call(_attr("ld"), _lambda(_name(n)), _const(n)) for n in names])

    def _assign_back(self, names: list[str], value: ast.expr) -> ast.stmt:
        if not names:
            return ast.Expr(value=value)
        return ast.Assign(targets=[_tuple([_name(n, ast.Store()) for n in names], ast.Store())], value=value)

    # -- nested scopes --------------------------------------------------------------------------
    def visit_FunctionDef(self, node):
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        return _Converter(node).run()

    def visit_AsyncFunctionDef(self, node):
        return node

    def visit_ClassDef(self, node):
        return node

    # -- statements -----------------------------------------------------------------------------
    def visit_If(self, node: ast.If):
        test = self.visit(node.test)
        params = self._vars(node.body + node.orelse)
        outs = self._live(params, node.body + node.orelse)
        ret = ast.Return(value=_tuple([_name(n) for n in outs]))
        t, f = self._fresh("if_true"), self._fresh("if_false")
        defs = [_def(t, params, self._decls() + self.stmts(node.body) + [ret]),
                _def(f, params, self._decls() + self.stmts(node.orelse) + [ret])]
        call = ast.Call(func=_attr("if_stmt"), args=[test, _name(t), _name(f), self._current(params),
                                                     _tuple([_const(n) for n in outs]), _const(node.lineno)],
                        keywords=[])
        return _located(defs + [self._assign_back(outs, call)], node)

    def visit_While(self, node: ast.While):
        params = self._vars(node.body)
        test_fn, body_fn = self._fresh("while_test"), self._fresh("while_body")
        ret = ast.Return(value=_tuple([_name(n) for n in params]))
        defs = [_def(test_fn, params, self._decls() + [ast.Return(value=self.visit(node.test))]),
                _def(body_fn, params, self._decls() + self.stmts(node.body) + [ret])]
        call = ast.Call(func=_attr("while_stmt"), args=[_name(test_fn), _name(body_fn), self._current(params),
                                                        _tuple([_const(n) for n in params]), _const(node.lineno)],
                        keywords=[])
        return _located(defs + [self._assign_back(params, call)] + self.stmts(node.orelse), node)

    def visit_For(self, node: ast.For):
        params = self._vars(node.body + [node.target])
        item = self._fresh("item")
        body_fn = self._fresh("for_body")
        ret = ast.Return(value=_tuple([_name(n) for n in params]))
        bind = ast.Assign(targets=[node.target], value=_name(item))
        defs = [_def(body_fn, [item] + params, self._decls() + [bind] + self.stmts(node.body) + [ret])]
        extra = getattr(node, "sf_extra_test", None)
        test_arg: ast.expr = _const(None)
        if extra is not None:
            test_fn = self._fresh("for_test")
            defs.insert(0, _def(test_fn, params, self._decls() + [ast.Return(value=self.visit(extra))]))
            test_arg = _name(test_fn)
        call = ast.Call(func=_attr("for_stmt"), args=[self.visit(node.iter), test_arg, _name(body_fn),
                                                      self._current(params), _tuple([_const(n) for n in params]),
                                                      _const(node.lineno)], keywords=[])
        return _located(defs + [self._assign_back(params, call)] + self.stmts(node.orelse), node)

    def visit_Assign(self, node: ast.Assign):
        node.value = self.visit(node.value)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute):
            t = node.targets[0]
            return _located(ast.Expr(value=_call(_attr("setattr_"), self.visit(t.value), _const(t.attr),
                                                 node.value)), node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
            t = node.targets[0]
            return _located(ast.Expr(value=_call(_attr("setitem_"), self.visit(t.value), self.visit(t.slice),
                                                 node.value)), node)
        node.targets = [self.visit(t) for t in node.targets]
        return self._guard_outer(node, node.targets)

    def _guard_outer(self, node: ast.stmt, targets: list) -> ast.stmt | list:
        """An assignment to a global/nonlocal name is checked at run time: inside a branch or
        loop on a traced condition it is a Python side effect, refused."""
        outer = sorted({n.id for t in targets for n in ast.walk(t)
                        if isinstance(n, ast.Name) and n.id in self.glob | self.nonloc})
        if not outer:
            return node
        return [_located(ast.Expr(value=_call(_attr("outer_assign"), _const(n))), node) for n in outer] + [node]

    def visit_AugAssign(self, node: ast.AugAssign):
        if isinstance(node.target, ast.Attribute):
            t = node.target
            read = ast.Attribute(value=t.value, attr=t.attr, ctx=ast.Load())
            new = ast.BinOp(left=read, op=node.op, right=node.value)
            return self.visit_Assign(_located(ast.Assign(targets=[t], value=new), node))
        return self._guard_outer(self.generic_visit(node), [node.target])

    # -- expressions ----------------------------------------------------------------------------
    def visit_IfExp(self, node: ast.IfExp):
        self.generic_visit(node)
        return _located(_call(_attr("ifexp"), node.test, _lambda(node.body), _lambda(node.orelse),
                              _const(node.lineno)), node)

    def visit_BoolOp(self, node: ast.BoolOp):
        self.generic_visit(node)
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        return _located(_call(_attr(fn), *[_lambda(v) for v in node.values]), node)

    def visit_UnaryOp(self, node: ast.UnaryOp):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return _located(_call(_attr("not_"), node.operand), node)
        return node

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "super":
            return node   # zero-argument super() needs to stay a direct call
        return _located(ast.Call(func=_attr("call"), args=[node.func] + node.args, keywords=node.keywords), node)


# ---- private names ------------------------------------------------------------------------------------
class _Mangle(ast.NodeTransformer):
    """`self.__x` inside class C is `self._C__x`: the compiler mangles it, and the rewritten
    function is compiled outside the class, so the rewrite mangles it itself."""

    def __init__(self, cls: str):
        self.prefix = "_" + cls.lstrip("_")

    def _m(self, n: str) -> str:
        return self.prefix + n if n.startswith("__") and not n.endswith("__") else n

    def visit_Attribute(self, node):
        self.generic_visit(node)
        node.attr = self._m(node.attr)
        return node

    def visit_Name(self, node):
        node.id = self._m(node.id)
        return node


class _ExplicitSuper(ast.NodeTransformer):
    """Zero-argument super() reads the frame's first argument, which inside a converted branch
    is a branch function's: spell it out as super(__class__, self)."""

    def __init__(self, first: str):
        self.first = first

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args and not node.keywords:
            node.args = [_located(_name("__class__"), node), _located(_name(self.first), node)]
        return node


# ---- compiling and caching ---------------------------------------------------------------------------
def _class_name(fn) -> str | None:
    parts = fn.__qualname__.split(".")
    return parts[-2] if len(parts) > 1 and parts[-2] != "<locals>" else None


def _parse(fn) -> ast.FunctionDef | None:
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    code = fn.__code__
    indented = src[:1].isspace()
    try:   # keep column offsets: an indented method parses inside an `if 1:` block
        tree = ast.parse("if 1:\n" + src if indented else textwrap.dedent(src))
    except SyntaxError:
        return None
    if indented:
        tree.body = tree.body[0].body
        ast.increment_lineno(tree, code.co_firstlineno - 2)
    else:
        ast.increment_lineno(tree, code.co_firstlineno - 1)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != fn.__name__:
        return None
    node.decorator_list = []   # @jit / @jit_class wrappers apply to the original, not the rewrite
    return node


def _rewrite(fn) -> ast.FunctionDef | None:
    node = _parse(fn)
    if node is None:
        return None
    cls = _class_name(fn)
    if cls:
        node = _Mangle(cls).visit(node)
    first = (node.args.posonlyargs + node.args.args)[:1]
    if "__class__" in fn.__code__.co_freevars and first:
        node = _ExplicitSuper(first[0].arg).visit(node)
    _Jumps().function(node)
    return _Converter(node).run()


def _transform(fn) -> types.CodeType | None:
    node = _rewrite(fn)
    if node is None:
        return None
    free = list(fn.__code__.co_freevars)
    # The rewrite is defined under a reserved name: were it defined under its own name inside
    # the factory, a recursive global function's calls to itself (from the nested functions the
    # branches become) would resolve to a factory cell instead of the module global.
    node.name = _SELF
    factory = _def("sf__factory", [AG] + free, [node, ast.Return(value=_name(_SELF))])
    factory = _located(factory, node)
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, fn.__code__.co_filename, "exec", dont_inherit=True)
    fac = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    body = next(c for c in fac.co_consts if isinstance(c, types.CodeType) and c.co_name == _SELF)
    return body.replace(co_name=fn.__code__.co_name, co_qualname=fn.__code__.co_qualname)


def _convertible(fn) -> bool:
    if not isinstance(fn, types.FunctionType) or fn.__name__ == "<lambda>":
        return False
    code = fn.__code__
    if code.co_flags & (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
        return False
    if AG in code.co_freevars:
        return False   # defined inside converted code: its body was converted with it
    f = code.co_filename
    if f.startswith("<"):
        return False
    f = os.path.abspath(f)   # a package imported through a path like bench/../sporeflow is still ours
    return not (f.startswith(_PKG_DIR) or f.startswith(_LIB_DIRS))


def convert_function(fn: types.FunctionType) -> Callable:
    """The rewritten `fn` (same globals, closure cells, defaults), or fn when not convertible."""
    if getattr(fn, "__sf_converted__", False) or not _convertible(fn):
        return fn
    code = fn.__code__
    if code not in _CODE_CACHE:
        _CODE_CACHE[code] = _transform(fn)
    new_code = _CODE_CACHE[code]
    if new_code is None:
        return fn
    cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
    cells[AG] = types.CellType(rt)
    closure = tuple(cells[n] for n in new_code.co_freevars)
    new = types.FunctionType(new_code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__, new.__module__, new.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    new.__sf_converted__ = True
    return new


def convert(f: Any) -> Callable:
    """What a traced call runs: user functions, bound methods, partials of them and instances of
    user classes with a `__call__` (jit_class objects) get the rewritten code; anything else,
    including Cells (whose __call__ converts construct), is called as is."""
    if isinstance(f, types.FunctionType):
        return convert_function(f)
    if isinstance(f, types.MethodType) and isinstance(f.__func__, types.FunctionType):
        g = convert_function(f.__func__)
        return f if g is f.__func__ else types.MethodType(g, f.__self__)
    if isinstance(f, functools.partial):
        g = convert(f.func)
        return f if g is f.func else functools.partial(g, *f.args, **f.keywords)
    if isinstance(f, type) or not callable(f) or _is_cell(f):
        return f
    call = getattr(type(f), "__call__", None)
    if isinstance(call, types.FunctionType) and _convertible(call):
        return types.MethodType(convert_function(call), f)
    return f


def _is_cell(f) -> bool:
    return bool(getattr(type(f), "__sf_self_converting__", False))


def convert_method(obj, name: str) -> Callable:
    """obj.<name> with its function rewritten (Cell.construct while tracing)."""
    fn = getattr(type(obj), name, None)
    bound = getattr(obj, name)
    if isinstance(fn, types.FunctionType) and isinstance(bound, types.MethodType) and bound.__func__ is fn:
        return types.MethodType(convert_function(fn), obj)
    return convert(bound)


def source_of(fn: Callable) -> str:
    """The rewritten source of `fn` (for debugging: what the converter made of it)."""
    node = _rewrite(fn)
    if node is None:
        raise ValueError(f"no source for {fn!r}")
    return ast.unparse(node)


rt._CONVERT.append(convert)
