"""ONNX -> sporeflow IR, for the ONNX ops the exporter writes (and Conv with a bias, which other
exporters write). Inputs that must be static in sporeflow (Reshape's shape, Slice's bounds, the
reduction axes, ...) are read from Constant nodes or initializers; initializers used as data
become the graph's weights (GraphCell Parameters), in order of first use. An op outside the
table raises an error naming it."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import SporeflowError
from ...ir import dtypes as D
from ...ir.graph import Graph, GraphBuilder, Value
from ...ir.types import ConstValue, TensorType
from ...ir.verify import verify
from .mindir import ExportedGraph
from .onnx_format import helper, read_tensor, require_onnx, sporeflow_dtype


class _Reader:
    def __init__(self, model):
        self.b = GraphBuilder(model.graph.name or "onnx")
        self.values: dict[str, Value] = {}
        self.static: dict[str, tuple[np.ndarray, D.DType]] = {}
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.parameters: list = []

    def value(self, name: str) -> Value:
        if name in self.values:
            return self.values[name]
        if name in self.initializers:   # a weight: a graph input after the user inputs
            arr, dt = read_tensor(self.initializers[name])
            v = self.b.add_input(TensorType(arr.shape, dt), name)
            self.parameters.append((name, arr, dt))
        elif name in self.static:       # a Constant used as data
            arr, dt = self.static[name]
            v = self.emit("constant", [], value=ConstValue(arr, dt))
        else:
            raise SporeflowError(f"ONNX import: value '{name}' is used before any node defines it")
        self.values[name] = v
        return v

    def ints(self, name: str, what: str) -> tuple[int, ...]:
        if name in self.static:
            arr = self.static[name][0]
        elif name in self.initializers:
            arr = read_tensor(self.initializers[name])[0]
        else:
            raise SporeflowError(f"ONNX import: {what} must be a constant (sporeflow shapes are static), "
                                 f"'{name}' is computed")
        return tuple(int(v) for v in np.asarray(arr).reshape(-1))

    def emit(self, op: str, inputs: list[Value], **attrs) -> Value:
        return self.b.emit(op, inputs, attrs)[0]

    def scalar(self, value, dt) -> Value:
        return self.emit("constant", [], value=ConstValue.of(value, dt))


Rule = Callable[[_Reader, object, dict], Value | None]


def _x(r: _Reader, n, i: int = 0) -> Value:
    return r.value(n.input[i])


def _op(op: str) -> Rule:
    return lambda r, n, a: r.emit(op, [r.value(i) for i in n.input])


def _axis(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def _slice(r, n, a):
    x = _x(r, n)
    starts, ends = r.ints(n.input[1], "Slice starts"), r.ints(n.input[2], "Slice ends")
    axes = r.ints(n.input[3], "Slice axes") if len(n.input) > 3 and n.input[3] else tuple(range(len(starts)))
    steps = r.ints(n.input[4], "Slice steps") if len(n.input) > 4 and n.input[4] else (1,) * len(starts)
    axes = tuple(_axis(ax, x.type.ndim) for ax in axes)
    if all(s == -1 for s in steps):
        if all(b == -1 for b in starts) and all(e <= -d for e, d in zip(ends, (x.shape[ax] for ax in axes))):
            return r.emit("rev", [x], axes=axes)
        raise SporeflowError("ONNX import: Slice with negative steps is read only as a full reversal")
    start, limit, strides = [0] * x.type.ndim, list(x.shape), [1] * x.type.ndim
    for ax, b, e, s in zip(axes, starts, ends, steps):
        d = x.shape[ax]
        start[ax] = min(max(b + d if b < 0 else b, 0), d)
        limit[ax] = min(max(e + d if e < 0 else e, start[ax]), d)
        strides[ax] = s
    return r.emit("slice", [x], start=tuple(start), limit=tuple(limit), strides=tuple(strides))


def _pad(r, n, a):
    if a.get("mode", b"constant") not in (b"constant", "constant"):
        raise SporeflowError(f"ONNX import: Pad mode {a['mode']!r} is not supported (constant only)")
    x = _x(r, n)
    pads = r.ints(n.input[1], "Pad pads")
    value = 0.0
    if len(n.input) > 2 and n.input[2]:
        arr, dt = r.static.get(n.input[2]) or read_tensor(r.initializers[n.input[2]])
        value = float(D.to_compute(arr, dt).reshape(-1)[0])
    k = x.type.ndim
    return r.emit("pad", [x], lo=pads[:k], hi=pads[k:], interior=(0,) * k, value=value)


def _reduce(op: str) -> Rule:
    def rule(r, n, a):
        x = _x(r, n)
        axes = r.ints(n.input[1], f"{n.op_type} axes") if len(n.input) > 1 and n.input[1] else ()
        if not axes and not a.get("noop_with_empty_axes", 0):
            axes = tuple(range(x.type.ndim))
        return r.emit(op, [x], axes=tuple(sorted(_axis(ax, x.type.ndim) for ax in axes)),
                      keepdims=bool(a.get("keepdims", 1)))
    return rule


def _arg(op: str) -> Rule:
    def rule(r, n, a):
        x = _x(r, n)
        return r.emit(op, [x], axis=_axis(a.get("axis", 0), x.type.ndim), keepdims=bool(a.get("keepdims", 1)))
    return rule


def _pads(a) -> tuple[int, int, int, int]:
    t, l, b, rr = a.get("pads", [0, 0, 0, 0])
    return (t, b, l, rr)


def _conv(r, n, a):
    x, w = _x(r, n), _x(r, n, 1)
    out = r.emit("conv2d", [x, w], stride=tuple(a.get("strides", (1, 1))), padding=_pads(a),
                 dilation=tuple(a.get("dilations", (1, 1))), groups=a.get("group", 1))
    if len(n.input) > 2 and n.input[2]:
        bias = r.emit("reshape", [_x(r, n, 2)], shape=(1, out.shape[1], 1, 1))
        out = r.emit("add", [out, bias])
    return out


def _pool(op: str) -> Rule:
    def rule(r, n, a):
        if op == "avg_pool2d" and any(a.get("pads", ())) and not a.get("count_include_pad", 0):
            raise SporeflowError("ONNX import: AveragePool with padding needs count_include_pad=1 (sporeflow's "
                                 "average counts the padding)")
        return r.emit(op, [_x(r, n)], kernel=tuple(a["kernel_shape"]), stride=tuple(a.get("strides", (1, 1))),
                      padding=_pads(a))
    return rule


def _clip(r, n, a):
    x = _x(r, n)
    if len(n.input) > 1 and n.input[1]:
        x = r.emit("maximum", [x, r.value(n.input[1])])
    if len(n.input) > 2 and n.input[2]:
        x = r.emit("minimum", [x, r.value(n.input[2])])
    return x


TABLE: dict[str, Rule] = {
    **{o: _op(op) for o, op in {
        "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "maximum", "Min": "minimum", "Pow": "pow",
        "Equal": "eq", "Less": "lt", "Greater": "gt", "LessOrEqual": "le", "GreaterOrEqual": "ge",
        "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor", "Not": "logical_not", "Abs": "abs",
        "Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Tanh": "tanh", "Sin": "sin", "Cos": "cos",
        "Erf": "erf", "Floor": "floor", "Ceil": "ceil", "Sign": "sign", "Where": "select"}.items()},
    "Identity": lambda r, n, a: _x(r, n),
    "Reciprocal": lambda r, n, a: r.emit("div", [r.scalar(1.0, _x(r, n).dtype), _x(r, n)]),
    "IsNaN": lambda r, n, a: r.emit("ne", [_x(r, n), _x(r, n)]),
    "IsInf": lambda r, n, a: r.emit("eq", [r.emit("abs", [_x(r, n)]), r.scalar(np.inf, _x(r, n).dtype)]),
    "Cast": lambda r, n, a: r.emit("cast", [_x(r, n)], dtype=sporeflow_dtype(a["to"])),
    "Reshape": lambda r, n, a: r.emit("reshape", [_x(r, n)], shape=r.ints(n.input[1], "Reshape shape")),
    "Expand": lambda r, n, a: r.emit("broadcast_to", [_x(r, n)], shape=r.ints(n.input[1], "Expand shape")),
    "Transpose": lambda r, n, a: r.emit("transpose", [_x(r, n)], perm=tuple(a["perm"])),
    "Slice": _slice,
    "Pad": _pad,
    "Concat": lambda r, n, a: r.emit("concatenate", [r.value(i) for i in n.input],
                                     axis=_axis(a["axis"], _x(r, n).type.ndim)),
    "Gather": lambda r, n, a: r.emit("take", [_x(r, n), _x(r, n, 1)], axis=_axis(a.get("axis", 0), _x(r, n).type.ndim)),
    "Clip": _clip,
    "ReduceSum": _reduce("reduce_sum"),
    "ReduceMax": _reduce("reduce_max"),
    "ReduceMin": _reduce("reduce_min"),
    "ArgMax": _arg("argmax"),
    "ArgMin": _arg("argmin"),
    "MatMul": lambda r, n, a: r.emit("matmul", [_x(r, n), _x(r, n, 1)], transpose_a=False, transpose_b=False),
    "Conv": _conv,
    "MaxPool": _pool("max_pool2d"),
    "AveragePool": _pool("avg_pool2d"),
}


def from_onnx(model) -> ExportedGraph:
    require_onnx("ONNX import")
    r = _Reader(model)
    init_names = set(r.initializers)
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if None in dims:
            raise SporeflowError(f"ONNX import: input '{vi.name}' has a dynamic dimension; sporeflow graphs have "
                                 "static shapes")
        r.values[vi.name] = r.b.add_input(TensorType(tuple(dims), sporeflow_dtype(tt.elem_type)), vi.name)
    n_inputs = len(r.b.inputs)
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            r.static[node.output[0]] = read_tensor(attrs["value"])
            continue
        if node.op_type not in TABLE:
            raise SporeflowError(f"ONNX import: op {node.op_type!r} (node '{node.name}') is not supported by "
                                 f"sporeflow's reader; it reads {sorted(TABLE)}")
        r.values[node.output[0]] = TABLE[node.op_type](r, node, attrs)
    # the user inputs were added first, the weights after them in order of first use
    g: Graph = r.b.finish([r.value(o.name) for o in model.graph.output])
    return ExportedGraph(verify(g), r.parameters, n_inputs)
