"""The one trace context: `bind` runs a primitive eagerly on numpy data, or records it into
the innermost active Trace.

While a Trace is active every primitive is recorded (concrete inputs are lifted: a Parameter
becomes an implicit graph input so the compiled graph reads its current value at each call,
any other concrete Tensor becomes a `constant` node, and a Tracer of an enclosing trace
becomes an implicit input: closure conversion). Transformations (grad, vmap, ...) trace into
a fresh Trace, transform the graph, then `inline` the result into whatever is current, which
is why they compose.

The eager array classes (Tensor, Tracer, Parameter) and the device executors belong to the
frontend; it hands them to this floor once with `install_arrays`, so the core never imports
upward. Until then (a bare `sporeflow.core` import) eager binds run on the host interpreter.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import OpTypeError, ShapeError, TracerError
from ..ir.graph import Graph, GraphBuilder, Value
from ..ir.interpret import run_graph
from ..ir.registry import get_op
from ..ir.types import Attrs, ConstValue, TensorType
from .source import user_line_description, user_loc
from .tracer import Tracer


def _host_op(opdef, arrays: list, attrs, in_types: list, out_types: list) -> list:
    return opdef.run(arrays, attrs, in_types, out_types)


@dataclass
class Arrays:
    """What the frontend installs: its array classes and how eager ops run (host or device)."""
    tensor: type = type(None)             # eager Tensor; `wrap(array, dtype)` builds one
    tracer: type = Tracer                 # the frontend Tracer (a core Tracer with Tensor methods)
    parameter: type = type(None)         # Parameter (a Tensor lifted as an implicit graph input)
    wrap: Callable = lambda arr, dtype: arr
    to_host: Callable[[Any], np.ndarray] = np.asarray
    run_op: Callable[..., list] = _host_op
    run_graph: Callable[[Graph, list], list] = run_graph


ARRAYS = Arrays()


def install_arrays(**fields) -> None:
    """Called once by the frontend when its Tensor module is imported."""
    for k, v in fields.items():
        if not hasattr(ARRAYS, k):
            raise TypeError(f"install_arrays: unknown field {k!r}")
        setattr(ARRAYS, k, v)

_STACK: list["Trace"] = []


class Trace:
    """Records primitives into a GraphBuilder."""

    def __init__(self, name: str = "main"):
        self.builder = GraphBuilder(name)
        self.captured: dict[int, tuple[Any, Value]] = {}   # id(obj) -> (Parameter|outer Tracer, input)
        self.consts: dict[int, tuple[Any, Value]] = {}     # id(Tensor) -> (Tensor, constant value)
        self.updates: dict[int, tuple[Any, Any]] = {}  # id(Parameter) -> (param, new value)
        outer = current_trace()
        # (cell, scope path) while tracing Cells; inner traces start from the outer scope so
        # that scopes recorded anywhere are absolute and `inline` can keep them verbatim.
        self.scopes: list[tuple[Any, str]] = list(outer.scopes) if outer else []
        self.scope_prefix = outer.scope_prefix if outer else ""  # e.g. "grad/" while emitting rules
        self.loc_override: str | None = None               # the forward op's loc while emitting rules
        self.in_amp = outer.in_amp if outer else False     # inside a Cell the amp pass rewrites (autocast)

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> "Trace":
        _STACK.append(self)
        return self

    def __exit__(self, *exc) -> None:
        popped = _STACK.pop()
        assert popped is self, "trace stack corrupted"

    @property
    def scope(self) -> str:
        return self.scope_prefix + (self.scopes[-1][1] if self.scopes else "")

    def new_input(self, type: TensorType, name: str = ""):
        return self.tracer(self.builder.add_input(type, name))

    def tracer(self, value: Value):
        """The (frontend) Tracer that stands for `value` of this trace."""
        return ARRAYS.tracer(self, value)

    # -- lifting values into this trace -----------------------------------------------------
    def lift(self, x) -> Value:
        if isinstance(x, Tracer):
            if x._trace is self:
                return x._value
            if x._trace not in _STACK:
                raise TracerError(
                    "a traced value escaped the function that produced it (it was stored in a global, "
                    "a Cell attribute or a list and used later). Return it from the function instead.\n  at "
                    + user_line_description())
            return self._capture(x)
        if isinstance(x, ARRAYS.parameter):
            upd = self.updates.get(id(x))
            if upd is not None:
                return self.lift(upd[1])
            return self._capture(x)
        if isinstance(x, ARRAYS.tensor):
            hit = self.consts.get(id(x))
            if hit is None:
                v = self.builder.emit("constant", [], {"value": ConstValue(ARRAYS.to_host(x._data), x.dtype)},
                                      loc=user_loc(), scope=self.scope)[0]
                hit = self.consts[id(x)] = (x, v)
            return hit[1]
        raise TypeError(f"cannot use {type(x).__name__} as a tensor")

    def _capture(self, x) -> Value:
        hit = self.captured.get(id(x))
        if hit is None:
            name = getattr(x, "name", "") if not hasattr(x, "_trace") else ""
            v = self.builder.add_input(x._type, name)
            hit = self.captured[id(x)] = (x, v)
        return hit[1]

    def record_update(self, param, value) -> None:
        self.updates[id(param)] = (param, value)

    def finish(self, outputs: Sequence[Any]) -> tuple[Graph, list, list]:
        """Seal the graph. Inputs: explicit inputs, then captured (in capture order).
        Outputs: `outputs`, then parameter updates. Returns (graph, captured objs, updated params)."""
        out_vals = [self.lift(o) for o in outputs]
        upd = list(self.updates.values())
        upd_vals = [self.lift(v) for _, v in upd]
        graph = self.builder.finish(out_vals + upd_vals)
        return graph, [obj for obj, _ in self.captured.values()], [p for p, _ in upd]


def current_trace() -> Trace | None:
    return _STACK[-1] if _STACK else None


def _type_error(op: str, err: Exception, ins: Sequence[TensorType]) -> ShapeError:
    shown = ", ".join(str(t) for t in ins)
    msg = str(err)
    return ShapeError(f"{msg}\n  op: {op}({shown})\n  at {user_line_description()}")


_INFER_CACHE: dict = {}


def _infer_cached(opdef, in_types: list, attrs: Attrs) -> list:
    """Eager ops repeat the same signatures; inference is pure, so remember its answers."""
    key = (opdef.name, tuple(in_types), attrs)
    try:
        hit = _INFER_CACHE.get(key)
    except TypeError:   # an unhashable attribute value: infer without the cache
        return opdef.infer_types(in_types, attrs)
    if hit is None:
        hit = opdef.infer_types(in_types, attrs)
        if len(_INFER_CACHE) > 4096:
            _INFER_CACHE.clear()
        _INFER_CACHE[key] = hit
    return hit


def bind(op: str, inputs: Sequence[Any], attrs: dict | None = None) -> list:
    """Apply primitive `op` to tensors `inputs` (Tensor or Tracer) with attributes `attrs`."""
    opdef = get_op(op)
    attrs = Attrs(attrs or {})
    trace = current_trace()
    if trace is None:
        in_types = [x._type for x in inputs]
        try:
            out_types = _infer_cached(opdef, in_types, attrs)
        except OpTypeError as e:
            raise _type_error(op, e, in_types) from None
        outs = ARRAYS.run_op(opdef, [x._data for x in inputs], attrs, in_types, out_types)
        return [ARRAYS.wrap(o, t.dtype) for o, t in zip(outs, out_types)]
    vals = [trace.lift(x) for x in inputs]
    loc = trace.loc_override if trace.loc_override is not None else user_loc()
    try:
        outs = trace.builder.emit(op, vals, attrs, loc=loc, scope=trace.scope)
    except OpTypeError as e:
        raise _type_error(op, e, [v.type for v in vals]) from None
    return [ARRAYS.tracer(trace, v) for v in outs]


# ---- retracing a graph: inline, and the transformations' replay of the nodes they keep -------
@contextmanager
def emitting_for(trace: Trace, node, prefix: str):
    """While a transformation's rule for `node` runs: the nodes it emits get scope
    `<prefix><node's scope>` and the node's loc."""
    saved = (trace.scopes, trace.scope_prefix, trace.loc_override)
    trace.scopes = [(None, node.scope)]
    trace.scope_prefix = prefix if node.scope else prefix.rstrip("/")
    trace.loc_override = node.loc
    try:
        yield
    finally:
        trace.scopes, trace.scope_prefix, trace.loc_override = saved


def emit_copy(trace: Trace, node, args: Sequence) -> list:
    """Re-emit `node` as it is (its loc and scope kept) into `trace` on `args`; its Tracers."""
    outs = trace.builder.emit(node.op, [trace.lift(a) for a in args], node.attrs, loc=node.loc, scope=node.scope)
    return [ARRAYS.tracer(trace, o) for o in outs]


def replay(trace: Trace, graph: Graph, args: Sequence) -> dict[int, Any]:
    """Emit `graph`'s nodes into `trace` on `args`; returns Value id -> Tracer for every value."""
    env: dict[int, Any] = {id(v): a for v, a in zip(graph.inputs, args)}
    for node in graph.nodes:
        for v, o in zip(node.outputs, emit_copy(trace, node, [env[id(v)] for v in node.inputs])):
            env[id(v)] = o
    return env


def inline(graph: Graph, args: Sequence[Any]) -> list:
    """Evaluate `graph` on tensors through `bind`: eager when args are concrete, recorded into
    the current trace otherwise. Keeps each node's loc and scope."""
    trace = current_trace()
    if trace is None:
        return _inline_eager(graph, args)
    env = replay(trace, graph, args)
    return [env[id(v)] for v in graph.outputs]


def _inline_eager(graph: Graph, args: Sequence[Any]) -> list:
    outs = ARRAYS.run_graph(graph, [a._data for a in args])
    return [ARRAYS.wrap(o, v.type.dtype) for o, v in zip(outs, graph.outputs)]
