"""What code rewritten by `autograph` calls at trace time (the converted code names it `ag__`).

Each helper looks at its condition *when the code runs*: a Python value (or a concrete
Tensor) keeps plain Python semantics, so static flags and shapes branch and `for i in range(3)`
unrolls exactly as before; a traced tensor makes a structured op (`cond`, `while_loop`, `scan`)
whose branch outputs / loop carry are the variables the statement assigns. Branches and loop
bodies arrive as functions of those variables, returning their new values.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable, Sequence

from ..errors import SporeflowError, TracerError
from ..ir import dtypes as D
from ..core import lax
from ..core.source import concrete_error, user_line_description
from ..core.trace import Trace, current_trace
from .functional import control_ops as C
from .functional._core import tensor
from .functional.state_ops import assign
from .pytree import tree_flatten, tree_unflatten
from .tensor import Parameter, Tensor, Tracer


# ---- values that are not there ----------------------------------------------------------------
class Undefined:
    """A variable with no value on this path: any use raises, naming the variable and why."""

    def __init__(self, name: str, why: str = ""):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_why", why)

    def _fail(self, *args, **kwargs):
        why = object.__getattribute__(self, "_why")
        name = object.__getattribute__(self, "_name")
        if not why:
            raise UnboundLocalError(f"local variable '{name}' referenced before assignment")
        raise TracerError(f"variable `{name}` {why}\n  used at {user_line_description()}\n  Give it a value "
                          "before the statement, or on every path of it.")

    def __getattr__(self, item):
        self._fail()

    def __repr__(self) -> str:
        return f"<undefined {object.__getattribute__(self, '_name')}>"


for _op in ("__bool__", "__call__", "__iter__", "__len__", "__getitem__", "__setattr__", "__array__", "__index__",
            "__int__", "__float__", "__neg__", "__pos__", "__abs__", "__invert__", "__add__", "__radd__",
            "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__floordiv__",
            "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__",
            "__lt__", "__le__", "__gt__", "__ge__", "__and__", "__rand__", "__or__", "__ror__"):
    setattr(Undefined, _op, Undefined._fail)


class _ReturnSlot(Undefined):
    """The return value before a `return` ran: merged with a real value it takes that value's
    type (its own value is never returned: the return flag guards it)."""


RETURN_UNDEF = _ReturnSlot("<return value>")


def ld(get: Callable[[], Any], name: str) -> Any:
    """The variable's current value, or Undefined when it has none yet."""
    try:
        return get()
    except NameError:
        return Undefined(name)


# ---- conditions ---------------------------------------------------------------------------------
def is_traced(x) -> bool:
    """A value only known when the compiled code runs (a Parameter is read at run time too)."""
    return isinstance(x, Tracer) or (isinstance(x, Parameter) and current_trace() is not None)


def _pred(x, what: str):
    """A traced condition as the bool[] scalar the structured ops take."""
    t = tensor(x)
    if t.shape != ():
        raise TracerError(f"the condition of {what} is a tensor of shape {t.shape}; it must be a scalar "
                          f"(reduce it with .any() or .all())\n  at {user_line_description()}")
    return t if t.dtype is D.bool_ else lax.ne(t, lax.zeros_like(t))


def not_(x):
    return lax.logical_not(_pred(x, "`not`")) if is_traced(x) else not x


def and_(first: Callable, *rest: Callable):
    """`a and b ...`: Python's short circuit on Python values; on a traced value both sides are
    computed and combined with logical_and (the value of `and` is then a bool tensor)."""
    value = first()
    for nxt in rest:
        if is_traced(value):
            other = nxt()
            value = lax.logical_and(_pred(value, "`and`"), _pred(other, "`and`") if is_traced(other)
                                    else lax.full((), bool(other), D.bool_))
        elif not value:
            return value
        else:
            value = nxt()
    return value


def or_(first: Callable, *rest: Callable):
    value = first()
    for nxt in rest:
        if is_traced(value):
            other = nxt()
            value = lax.logical_or(_pred(value, "`or`"), _pred(other, "`or`") if is_traced(other)
                                   else lax.full((), bool(other), D.bool_))
        elif value:
            return value
        else:
            value = nxt()
    return value


# ---- branches -------------------------------------------------------------------------------------
_BRANCH_DEPTH = [0]   # > 0 while tracing a branch or loop body on a traced condition


def in_traced_branch() -> bool:
    return _BRANCH_DEPTH[0] > 0


def _in_branch(fn: Callable) -> Callable:
    def run(*args):
        _BRANCH_DEPTH[0] += 1
        try:
            return fn(*args)
        finally:
            _BRANCH_DEPTH[0] -= 1
    return run


def _probe(fn: Callable, args: Sequence) -> tuple:
    """Run fn in a scratch trace to see what it produces (types only; the trace is dropped)."""
    with Trace("probe"):
        return tuple(_in_branch(fn)(*args))


def _describe(x) -> str:
    if isinstance(x, Tensor):
        return f"a tensor {x._type}"
    if isinstance(x, Undefined):
        return "undefined"
    return f"{type(x).__name__} {x!r}"[:80]


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, Tensor)


def _number_dtype(*xs) -> D.DType:
    if all(isinstance(x, bool) for x in xs):
        return D.bool_
    return D.float32 if any(isinstance(x, float) for x in xs) else D.int64


def _as_type(x, like: Tensor | None, dtype: D.DType | None = None):
    """x as a tensor of like's type (a Python number is filled in), or of `dtype`."""
    if like is None:
        return lax.full((), x, dtype) if _is_number(x) else tensor(x)
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _ReturnSlot):   # never returned (the return flag guards it): any value of the type
        return lax.zeros_like(like)
    return lax.full(like.shape, x, like.dtype)


def _merge_plan(name: str, a, b, where: str, sides=("true", "false")):
    """How one variable leaves a two-way merge: ('static', value), ('undef', why),
    ('tensor', type-giving value or None, dtype) -- or an error naming it and both types."""
    if isinstance(a, _ReturnSlot) and isinstance(b, _ReturnSlot):
        return ("static", a)
    if isinstance(a, _ReturnSlot) or isinstance(b, _ReturnSlot):
        real = b if isinstance(a, _ReturnSlot) else a
        if isinstance(real, Tensor):
            return ("tensor", real, None)
        return ("static", real)
    if isinstance(a, Undefined) or isinstance(b, Undefined):
        side = sides[0] if isinstance(b, Undefined) else sides[1]
        if isinstance(a, Undefined) and isinstance(b, Undefined):
            return ("static", a)
        return ("undef", f"is defined only in the {side} branch of {where}, which depends on a traced value")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a._type != b._type:
            raise _mismatch(name, a, b, where, sides)
        return ("tensor", a, None)
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        t, other = (a, b) if isinstance(a, Tensor) else (b, a)
        if _is_number(other):
            return ("tensor", t, None)
        raise _mismatch(name, a, b, where, sides)
    if _is_number(a) and _is_number(b):
        if type(a) is type(b) and a == b:
            return ("static", a)
        return ("tensor", None, _number_dtype(a, b))
    if a is b or (type(a) is type(b) and _safe_eq(a, b)):
        return ("static", a)
    raise _mismatch(name, a, b, where, sides)


def _safe_eq(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:   # noqa: BLE001  (an object whose == is not a plain bool is not equal)
        return False


def _mismatch(name, a, b, where, sides) -> TracerError:
    return TracerError(
        f"{where} depends on a traced value, so both {sides[0]} and {sides[1]} sides are compiled and must "
        f"give variable `{name}` the same shape and dtype: it is {_describe(a)} on the {sides[0]} side and "
        f"{_describe(b)} on the {sides[1]} side\n  at {user_line_description()}\n  Cast or reshape one side "
        "(ops.cast, ops.broadcast_to), or compute it outside the branch.")


class _Flat:
    """Variables holding tuples/lists/dicts of tensors on both sides merge leaf by leaf
    (`grads[3]`); a variable whose two sides differ in structure stays one value (and errors)."""

    def __init__(self, names, a_vals, b_vals):
        self.tds, self.names = [], []
        for n, a, b in zip(names, a_vals, b_vals):
            la, ta = tree_flatten(a)
            lb, tb = tree_flatten(b)
            if isinstance(a, _ReturnSlot) and tb.kind != "leaf":
                ta = tb
            if isinstance(b, _ReturnSlot) and ta.kind != "leaf":
                tb = ta
            if ta == tb and ta.kind != "leaf":
                self.tds.append(ta)
                self.names += [f"{n}[{j}]" for j in range(ta.num_leaves)]
            else:
                self.tds.append(None)
                self.names.append(n)

    def flat(self, vals) -> list:
        out = []
        for td, v in zip(self.tds, vals):
            if td is None:
                out.append(v)
            elif isinstance(v, _ReturnSlot):
                out += [v] * td.num_leaves
            else:
                leaves, got = tree_flatten(v)
                out += leaves if got == td else [v] * td.num_leaves   # a mismatch shows in the merge
        return out

    def unflat(self, leaves) -> tuple:
        it, out = iter(leaves), []
        for td in self.tds:
            if td is None:
                out.append(next(it))
            else:
                out.append(tree_unflatten(td, [next(it) for _ in range(td.num_leaves)]))
        return tuple(out)


def if_stmt(test, body: Callable, orelse: Callable, args: tuple, names: tuple, line: int):
    """`if test:` -> Python's if, or one `cond` whose outputs are the variables named `names`."""
    if not is_traced(test):
        return body(*args) if test else orelse(*args)
    where = f"the `if` at line {line}"
    return _traced_cond(_pred(test, where), body, orelse, args, names, where)


def ifexp(test, body: Callable, orelse: Callable, line: int):
    """`a if test else b` (the lambdas compute each side)."""
    if not is_traced(test):
        return body() if test else orelse()
    where = f"the conditional expression at line {line}"
    return _traced_cond(_pred(test, where), lambda: (body(),), lambda: (orelse(),), (), ("<value>",), where)[0]


def _probe_branch(fn: Callable, args: Sequence, where: str, side: str) -> tuple:
    """_probe, where an exception the branch raises (a `raise`, a failing Python check) is
    refused: both sides of a traced condition are traced, so it would be raised whichever
    side runs."""
    try:
        return _probe(fn, args)
    except SporeflowError:
        raise
    except Exception as e:   # noqa: BLE001  (re-raised as a TracerError naming the branch)
        raise TracerError(
            f"the {side} branch of {where} raised {type(e).__name__}({e}) while it was traced; both "
            "branches of a condition on a tensor are compiled, so the exception would be raised "
            "whichever branch runs. Raise only under Python conditions (shapes, flags), or compute "
            f"a flag tensor and return it instead\n  at {user_line_description()}") from e


def _traced_cond(pred, body, orelse, args, names, where):
    t_out, f_out = _probe_branch(body, args, where, "true"), _probe_branch(orelse, args, where, "false")
    fl = _Flat(names, t_out, f_out)
    if fl.names != list(names):
        flat_body = lambda *a: fl.flat(body(*a))       # noqa: E731
        flat_else = lambda *a: fl.flat(orelse(*a))     # noqa: E731
        res = _traced_cond_leaves(pred, flat_body, flat_else, args, fl.names, where,
                                  fl.flat(t_out), fl.flat(f_out))
        return fl.unflat(res)
    return _traced_cond_leaves(pred, body, orelse, args, names, where, t_out, f_out)


def _traced_cond_leaves(pred, body, orelse, args, names, where, t_out, f_out):
    plans = [_merge_plan(n, a, b, where) for n, a, b in zip(names, t_out, f_out)]
    dyn = [i for i, p in enumerate(plans) if p[0] == "tensor"]

    def side(fn):
        def run():
            outs = _in_branch(fn)(*args)
            return [_as_type(outs[i], plans[i][1], plans[i][2]) for i in dyn]
        return run
    results = C.cond(pred, side(body), side(orelse)) if dyn else _cond_for_effects(pred, body, orelse, args)
    out = []
    it = iter(results or [])
    for n, p in zip(names, plans):
        out.append(next(it) if p[0] == "tensor" else p[1] if p[0] == "static" else Undefined(n, p[1]))
    return tuple(out)


def _cond_for_effects(pred, body, orelse, args):
    """A branch whose only results are Parameter assignments still needs its cond."""
    def side(fn):
        def run():
            _in_branch(fn)(*args)
            return []
        return run
    C.cond(pred, side(body), side(orelse))
    return []


# ---- calls and assignments --------------------------------------------------------------------------
_MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "add", "discard",
             "popitem", "sort", "reverse", "__setitem__", "__delitem__"}
_CONVERT: list[Callable] = []    # autograph.convert, registered by that module (it imports this one)


def call(f, *args, **kwargs):
    """A call in converted code: user functions and methods are converted too (as MindSpore
    parses what construct calls); print of a traced value and mutation of a Python container
    inside a traced branch are refused."""
    if f is builtins.print and any(isinstance(a, Tracer) for a in args):
        raise TracerError("print() of a traced tensor would only print its type while compiling; use "
                          "ops.Print(...) to print the value each time the compiled code runs\n  at "
                          + user_line_description())
    if in_traced_branch() and getattr(f, "__name__", "") in _MUTATORS and \
            isinstance(getattr(f, "__self__", None), (list, dict, set)):
        raise TracerError(_side_effect(f"{type(f.__self__).__name__}.{f.__name__}()"))
    if f is builtins.range and any(is_traced(a) for a in args):
        return TracedRange(*args)
    if f is builtins.len and len(args) == 1 and isinstance(args[0], Tensor):
        return args[0].shape[0] if args[0].shape else len(args[0])
    return _CONVERT[0](f)(*args, **kwargs)


def _side_effect(what: str) -> str:
    return (f"{what} changes a Python object inside a branch or loop on a traced condition: both sides are "
            f"compiled, so it would run regardless of the condition\n  at {user_line_description()}\n  "
            "Compute new values and assign them to variables (they become the branch outputs), or use "
            "Parameters with ops.assign.")


def outer_assign(name: str) -> None:
    """Before `name = ...` where name is declared global or nonlocal."""
    if in_traced_branch():
        raise TracerError(_side_effect(f"assigning the global/nonlocal variable `{name}`"))


def setattr_(obj, name: str, value) -> None:
    """`obj.name = value`: on a Parameter (under a trace) an assignment of its value, as in
    MindSpore's construct; other attributes keep Python semantics outside traced branches."""
    current = getattr(obj, name, None)
    if isinstance(current, Parameter) and current_trace() is not None and not isinstance(value, Parameter):
        assign(current, value)
        return
    if in_traced_branch():
        raise TracerError(_side_effect(f"setting {type(obj).__name__}.{name}"))
    setattr(obj, name, value)


def setitem_(obj, key, value) -> None:
    if in_traced_branch() and isinstance(obj, (list, dict)):
        raise TracerError(_side_effect(f"{type(obj).__name__}[...] = ..."))
    obj[key] = value


# ---- loops --------------------------------------------------------------------------------------------
class TracedRange:
    """range() with a traced bound: a `for` statement over it is a while_loop over a counter."""

    def __iter__(self):
        raise concrete_error("A range() bound", "Write the loop as a `for` statement (it compiles to a "
                             "while_loop), or pass a Python int.")

    def __init__(self, *args):
        if len(args) == 1:
            args = (0, args[0], 1)
        elif len(args) == 2:
            args = (*args, 1)
        dtype = next(tensor(a).dtype for a in args if is_traced(a))
        self.start, self.stop, self.step = (lax.convert(tensor(a), dtype) if isinstance(a, Tensor)
                                            else lax.full((), a, dtype) for a in args)


def _loop_plan(names, init, out, where):
    """Carry plan per loop variable: ('carry', type-giving value) / ('static', value) / ('temp',)."""
    plans = []
    for n, v, o in zip(names, init, out):
        if isinstance(v, Undefined):
            plans.append(("temp",))
        elif isinstance(v, Tensor):
            if isinstance(o, Tensor) and o._type != v._type:
                raise _loop_mismatch(n, v, o, where)
            if not (isinstance(o, Tensor) or _is_number(o)):
                raise _loop_mismatch(n, v, o, where)
            plans.append(("carry", tensor(v)))
        elif _is_number(v):
            if isinstance(o, Tensor):
                plans.append(("carry", lax.full(o.shape, v, o.dtype)))
            elif _is_number(o) and type(o) is type(v) and o == v:
                plans.append(("static", v))
            elif _is_number(o):
                plans.append(("carry", lax.full((), v, _number_dtype(v, o))))
            else:
                raise _loop_mismatch(n, v, o, where)
        elif o is v or (type(o) is type(v) and _safe_eq(o, v)):
            plans.append(("static", v))
        else:
            raise _loop_mismatch(n, v, o, where)
    return plans


def _loop_mismatch(name, v, o, where) -> TracerError:
    return TracerError(
        f"{where} depends on a traced value, so it is compiled as one loop whose variables keep their shape "
        f"and dtype: variable `{name}` enters it as {_describe(v)} and the body makes it {_describe(o)}\n  at "
        f"{user_line_description()}\n  Give it its final dtype before the loop (ops.cast), or keep Python "
        "objects out of the loop.")


def _carried(names, plans, vals):
    return [_as_type(v, p[1]) for p, v in zip(plans, vals) if p[0] == "carry"]


def _expand(names, plans, carry, temp_why: str):
    it = iter(carry)
    return tuple(next(it) if p[0] == "carry" else p[1] if p[0] == "static" else Undefined(n, temp_why)
                 for n, p in zip(names, plans))


def _settle(body_call, names, vals, where):
    """Probe the body until the carry types are stable (a Python 0 that the body adds a float
    tensor to becomes a float carry); returns the plans."""
    plans = _loop_plan(names, vals, _probe(body_call, vals), where)
    for _ in range(3):
        cur = _expand(names, plans, _carried(names, plans, vals), "")
        new = _loop_plan(names, cur, _probe(body_call, cur), where)
        if [p[0] for p in new] == [p[0] for p in plans] and all(
                p[0] != "carry" or p[1]._type == q[1]._type for p, q in zip(new, plans)):
            return plans
        plans = new
    return plans


def while_stmt(test: Callable, body: Callable, args: tuple, names: tuple, line: int):
    """`while test:` -> Python's while while the test is a Python value; from the first traced
    test on, one while_loop whose carry is the variables the body assigns."""
    vals = tuple(args)
    t = test(*vals)
    while not is_traced(t):
        if not t:
            return vals
        vals = tuple(body(*vals))
        t = test(*vals)
    where = f"the `while` at line {line}"
    plans = _settle(body, names, vals, where)
    init = _carried(names, plans, vals)

    def unpack(carry):
        return _expand(names, plans, carry, "")

    def cond_fn(carry):
        return _pred(_in_branch(test)(*unpack(carry)), where)

    def body_fn(carry):
        outs = _in_branch(body)(*unpack(carry))
        return [_as_type(o, p[1]) for o, p in zip(outs, plans) if p[0] == "carry"]
    final = C.while_loop(cond_fn, body_fn, init)
    return _expand(names, plans, final, f"is assigned only inside {where}, which may run zero times")


def for_stmt(iterable, extra_test: Callable | None, body: Callable, args: tuple, names: tuple, line: int):
    """`for x in iterable:` -> a Python loop over a Python iterable (unrolled when traced); a
    `scan` over the leading axis of a traced tensor; a while_loop for range() with a traced bound.
    `extra_test` is the loop's break/return flag test (None without one)."""
    where = f"the `for` at line {line}"
    if isinstance(iterable, TracedRange):
        return _range_loop(iterable, extra_test, body, args, names, where)
    if is_traced(iterable):
        return _scan_loop(tensor(iterable), extra_test, body, args, names, where)
    vals = tuple(args)
    for item in iterable:
        if extra_test is not None:
            t = extra_test(*vals)
            if not is_traced(t) and not t:
                break
        vals = tuple(body(item, *vals))
    return vals


def _scan_loop(xs: Tensor, extra_test, body, args, names, where):
    if xs.ndim == 0:
        raise TracerError(f"{where} iterates over a 0-d tensor\n  at {user_line_description()}")
    vals = tuple(args)
    item0 = xs[0]
    plans = _settle(lambda *v: body(item0, *v), names, vals, where)
    init = _carried(names, plans, vals)

    def step(carry, x):
        outs = _in_branch(body)(x, *_expand(names, plans, carry, ""))
        return [_as_type(o, p[1]) for o, p in zip(outs, plans) if p[0] == "carry"], None
    final, _ = C.scan(step, init, xs)
    return _expand(names, plans, final, f"is assigned only inside {where}")


def _range_loop(r: TracedRange, extra_test, body, args, names, where):
    """for i in range(traced): a while_loop carrying the counter first."""
    vals = tuple(args)
    start = tensor(r.start)
    plans = _settle(lambda *v: body(start, *v), names, vals, where)
    init = [start, *_carried(names, plans, vals)]
    stop, step = r.stop, r.step

    def cond_fn(carry):
        i = carry[0]
        going = lax.select(lax.gt(step, lax.zeros_like(step)), lax.lt(i, stop), lax.gt(i, stop))
        if extra_test is not None:
            t = _in_branch(extra_test)(*_expand(names, plans, carry[1:], ""))
            going = lax.logical_and(going, _pred(t, where) if is_traced(t) else lax.full((), bool(t), D.bool_))
        return going

    def body_fn(carry):
        outs = _in_branch(body)(carry[0], *_expand(names, plans, carry[1:], ""))
        return [lax.add(carry[0], step), *[_as_type(o, p[1]) for o, p in zip(outs, plans) if p[0] == "carry"]]
    final = C.while_loop(cond_fn, body_fn, init)
    return _expand(names, plans, final[1:], f"is assigned only inside {where}, which may run zero times")


def ret_value(flag, value):
    """The end of a function whose `return`s were lowered to a flag: None where none ran."""
    if is_traced(flag):
        if isinstance(value, _ReturnSlot):
            return None
        raise TracerError("the function returns a value on some paths of a traced condition and falls off its "
                          "end (returns None) on others\n  at " + user_line_description() +
                          "\n  Return a value on every path.")
    return value if flag else None
