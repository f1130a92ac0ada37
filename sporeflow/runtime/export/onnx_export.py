"""sporeflow IR -> ONNX (opset 18), one table entry per primitive.

Each entry turns one IR node into ONNX nodes through an `_Emitter`: most are one ONNX op with
renamed attributes; a few are short compositions (rsqrt = Reciprocal(Sqrt), ne = Not(Equal),
is_finite, take with clipped indices, matmul's transposes). Graph inputs are the user inputs;
the captured Parameters are initializers named as the Parameters; `constant`/`iota` values
become Constant nodes. Ops that ONNX cannot express this way (control flow, random bits,
scatter-add, fused kernels, custom vjps) raise an error naming the op and its source line.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import SporeflowError
from ...ir import dtypes as D
from ...ir.graph import Graph, Node, Value
from ...ir.registry import get_op
from ...ir.types import ConstValue, TensorType
from .onnx_format import DOMAIN, OPSET, helper, make_tensor, onnx_defs, onnx_dtype, require_onnx

PRODUCER = "sporeflow"


class _Emitter:
    def __init__(self):
        self.nodes, self.initializers, self._n = [], [], 0
        self.names: dict[int, str] = {}

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def one(self, op_type: str, inputs: list[str], **attrs) -> str:
        return self.op(op_type, inputs, **attrs)[0]

    def const(self, arr, dt=None) -> str:
        dt = dt or D.as_dtype(np.asarray(arr).dtype)
        name = self.fresh("const")
        self.nodes.append(helper.make_node("Constant", [], [name], value=make_tensor(name, np.asarray(arr), dt)))
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), np.int64), D.int64)


Rule = Callable[[_Emitter, Node, list], str | list]


def _same(op_type: str) -> Rule:
    return lambda e, n, x: e.one(op_type, x)


def _matmul(e, n, x):
    ops = list(x)
    for i, flag in enumerate(("transpose_a", "transpose_b")):
        if n.attrs[flag]:
            r = n.inputs[i].type.ndim
            ops[i] = e.one("Transpose", [ops[i]], perm=list(range(r - 2)) + [r - 1, r - 2])
    return e.one("MatMul", ops)


def _conv(e, n, x):
    t, b, l, r = n.attrs["padding"]
    return e.one("Conv", x, strides=list(n.attrs["stride"]), pads=[t, l, b, r], dilations=list(n.attrs["dilation"]),
                 group=n.attrs["groups"])


def _pool(op_type: str, **extra) -> Rule:
    def rule(e, n, x):
        t, b, l, r = n.attrs["padding"]
        return e.one(op_type, x, kernel_shape=list(n.attrs["kernel"]), strides=list(n.attrs["stride"]),
                     pads=[t, l, b, r], **extra)
    return rule


def _reduce(op_type: str) -> Rule:
    # axes=() reduces nothing in sporeflow; ONNX needs noop_with_empty_axes for that
    return lambda e, n, x: e.one(op_type, [x[0], e.ints(n.attrs["axes"])], keepdims=int(n.attrs["keepdims"]),
                                 noop_with_empty_axes=1)


def _arg(op_type: str) -> Rule:
    def rule(e, n, x):
        out = e.one(op_type, x, axis=n.attrs["axis"], keepdims=int(n.attrs["keepdims"]))
        return e.one("Cast", [out], to=onnx_dtype(n.outputs[0].dtype))
    return rule


def _constant(e, n, x):
    c = n.attrs["value"]
    return e.const(c.array, c.dtype)


def _iota(e, n, x):
    dt = n.outputs[0].dtype
    return e.const(ConstValue.of(get_op("iota").impl(**dict(n.attrs)), dt).array, dt)


def _slice(e, n, x):
    axes = range(n.inputs[0].type.ndim)
    if not axes:   # ONNX cannot slice a scalar; sporeflow's slice of one is the identity
        return e.one("Identity", x)
    return e.one("Slice", [x[0], e.ints(n.attrs["start"]), e.ints(n.attrs["limit"]), e.ints(axes),
                           e.ints(n.attrs["strides"])])


def _rev(e, n, x):
    axes = list(n.attrs["axes"])
    if not axes:
        return e.one("Identity", x)
    big = np.iinfo(np.int64).min
    return e.one("Slice", [x[0], e.ints([-1] * len(axes)), e.ints([big] * len(axes)), e.ints(axes),
                           e.ints([-1] * len(axes))])


def _pad(e, n, x):
    if any(n.attrs["interior"]):
        raise _unsupported(n, "interior padding (a dilation) has no ONNX Pad equivalent")
    dt = n.inputs[0].dtype
    value = e.const(ConstValue.of(n.attrs["value"], dt).array, dt)
    return e.one("Pad", [x[0], e.ints(list(n.attrs["lo"]) + list(n.attrs["hi"])), value])


def _take(e, n, x):
    size = n.inputs[0].type.shape[n.attrs["axis"]]
    idx = e.one("Cast", [x[1]], to=onnx_dtype(D.int64))
    idx = e.one("Clip", [idx, e.const(np.int64(0), D.int64), e.const(np.int64(max(size - 1, 0)), D.int64)])
    return e.one("Gather", [x[0], idx], axis=n.attrs["axis"])


def _is_finite(e, n, x):
    return e.one("Not", [e.one("Or", [e.one("IsInf", x), e.one("IsNaN", x)])])


_ONE_OP = {
        "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "maximum": "Max", "minimum": "Min", "pow": "Pow",
        "eq": "Equal", "lt": "Less", "gt": "Greater", "le": "LessOrEqual", "ge": "GreaterOrEqual",
        "logical_and": "And", "logical_or": "Or", "logical_xor": "Xor", "logical_not": "Not", "abs": "Abs",
        "neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh", "sin": "Sin", "cos": "Cos",
        "erf": "Erf", "floor": "Floor", "ceil": "Ceil", "sign": "Sign", "stop_gradient": "Identity",
        "select": "Where"}
TABLE: dict[str, Rule] = {
    **{op: _same(o) for op, o in _ONE_OP.items()},
    "ne": lambda e, n, x: e.one("Not", [e.one("Equal", x)]),
    "rsqrt": lambda e, n, x: e.one("Reciprocal", [e.one("Sqrt", x)]),
    "is_finite": _is_finite,
    "cast": lambda e, n, x: e.one("Cast", x, to=onnx_dtype(n.attrs["dtype"])),
    "constant": _constant,
    "iota": _iota,
    "reshape": lambda e, n, x: e.one("Reshape", [x[0], e.ints(n.attrs["shape"])]),
    "broadcast_to": lambda e, n, x: e.one("Expand", [x[0], e.ints(n.attrs["shape"])]),
    "transpose": lambda e, n, x: e.one("Transpose", x, perm=list(n.attrs["perm"])) if n.attrs["perm"] else
    e.one("Identity", x),
    "slice": _slice,
    "rev": _rev,
    "pad": _pad,
    "concatenate": lambda e, n, x: e.one("Concat", x, axis=n.attrs["axis"]),
    "take": _take,
    "reduce_sum": _reduce("ReduceSum"),
    "reduce_max": _reduce("ReduceMax"),
    "reduce_min": _reduce("ReduceMin"),
    "argmax": _arg("ArgMax"),
    "argmin": _arg("ArgMin"),
    "matmul": _matmul,
    "conv2d": _conv,
    "max_pool2d": _pool("MaxPool"),
    "avg_pool2d": _pool("AveragePool", count_include_pad=1),
}
# the ONNX op whose type constraints decide whether a node's data must be widened first
PRIMARY = {**_ONE_OP, "ne": "Equal", "rsqrt": "Sqrt", "is_finite": "IsInf", "matmul": "MatMul", "conv2d": "Conv",
           "max_pool2d": "MaxPool", "avg_pool2d": "AveragePool", "reduce_sum": "ReduceSum",
           "reduce_max": "ReduceMax", "reduce_min": "ReduceMin", "argmax": "ArgMax", "argmin": "ArgMin",
           "take": "Gather", "pad": "Pad", "slice": "Slice", "rev": "Slice", "concatenate": "Concat",
           "reshape": "Reshape", "broadcast_to": "Expand", "transpose": "Transpose"}
_ONNX_TYPE_NAMES = {"bool": "bool", "uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32",
                    "int64": "int64", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
                    "float16": "float16", "bfloat16": "bfloat16", "float32": "float", "float64": "double"}
# where a dtype ONNX does not take for an op goes instead (exact for every value of the dtype)
_WIDER = {"bool": ("int32",), "int8": ("int32", "int64"), "int16": ("int32", "int64"), "uint8": ("int32", "int64"),
          "uint16": ("int32", "int64"), "int32": ("int64", "double"), "uint32": ("int64", "uint64", "double"),
          "int64": ("double",), "uint64": ("double",), "float16": ("float",), "bfloat16": ("float",),
          "float32": ("double",)}


# Not expressible as plain ONNX ops (say why, so the error can)
NOT_EXPORTED = {
    "cond": "data-dependent control flow (ONNX If) is not exported; export the network in eval mode without "
            "tensor conditions",
    "while_loop": "loops (ONNX Loop) are not exported",
    "scan": "scans (ONNX Scan) are not exported",
    "fused": "fused kernels are a backend's; export the traced (unfused) graph",
    "custom_vjp": "custom gradients have no ONNX meaning",
    "random_bits": "random numbers: export in eval mode (set_train(False)) so Dropout is off",
    "random_uniform": "random numbers: export in eval mode (set_train(False)) so Dropout is off",
    "scatter_add": "scatter-add is not exported",
}


def _unsupported(n: Node, why: str) -> SporeflowError:
    where = f" at {n.loc}" if n.loc else ""
    ins = ", ".join(str(v.type) for v in n.inputs)
    return SporeflowError(f"ONNX export: op '{n.op}' ({ins}){where} in {n.scope or 'the network'} cannot be "
                          f"exported: {why}")


def _allowed(op_type: str, dt) -> bool:
    schema = onnx_defs().get_schema(op_type, OPSET, DOMAIN)
    if not schema.inputs:
        return True
    constraint = {c.type_param_str: c for c in schema.type_constraints}.get(schema.inputs[0].type_str)
    return constraint is None or f"tensor({_ONNX_TYPE_NAMES[dt.name]})" in constraint.allowed_type_strs


def _widened(node: Node):
    """The dtype to compute `node`'s data in, or None to emit it as it is. float16/bfloat16 data
    of ops that compute in float32 goes to float32 (the interpreter's rule: round after every
    primitive, so the result matches bit for bit); other dtypes an op's ONNX type constraints
    leave out go to the first wider type it takes."""
    if node.op not in PRIMARY or not node.inputs:
        return None
    data = node.inputs[1 if node.op == "select" else 0].dtype
    if data.is_half and get_op(node.op).compute_in_f32:
        return D.float32
    if _allowed(PRIMARY[node.op], data):
        return None
    onnx_names = {v: k for k, v in _ONNX_TYPE_NAMES.items()}
    for wide in _WIDER.get(data.name, ()):
        if _allowed(PRIMARY[node.op], D.BY_NAME[onnx_names[wide]]):
            return D.BY_NAME[onnx_names[wide]]
    raise _unsupported(node, f"ONNX's {PRIMARY[node.op]} takes no {data.name} (nor a wider type holding it)")


def _emit_node(e: _Emitter, node: Node) -> list[str]:
    """One IR node; when its data must be widened (see _widened): Cast -> op -> Cast back."""
    ins = [e.names[id(v)] for v in node.inputs]
    wide = _widened(node)
    if wide is None:
        outs = TABLE[node.op](e, node, ins)
        return outs if isinstance(outs, list) else [outs]
    data = node.inputs[1 if node.op == "select" else 0].dtype
    as_wide = lambda v: TensorType(v.shape, wide) if v.dtype is data else v.type  # noqa: E731
    shadow = Node(node.op, [Value(as_wide(v)) for v in node.inputs], node.attrs, [as_wide(v) for v in node.outputs],
                  node.loc, node.scope)
    ins = [e.one("Cast", [x], to=onnx_dtype(wide)) if v.dtype is data else x for x, v in zip(ins, node.inputs)]
    outs = TABLE[node.op](e, shadow, ins)
    outs = outs if isinstance(outs, list) else [outs]
    return [e.one("Cast", [o], to=onnx_dtype(v.dtype)) if v.dtype is data else o for o, v in zip(outs, node.outputs)]


def to_onnx(graph: Graph, num_inputs: int, parameters: list, name: str = "sporeflow"):
    """-> onnx.ModelProto. `parameters`: (name, array, dtype) of graph.inputs[num_inputs:]."""
    onnx = require_onnx("ONNX export")
    e = _Emitter()
    inputs = []
    for i, v in enumerate(graph.inputs[:num_inputs]):
        e.names[id(v)] = f"input_{i}"
        inputs.append(helper.make_tensor_value_info(f"input_{i}", onnx_dtype(v.dtype), list(v.shape)))
    for v, (pname, arr, dt) in zip(graph.inputs[num_inputs:], parameters):
        e.names[id(v)] = pname
        e.initializers.append(make_tensor(pname, arr, dt))
    for node in graph.nodes:
        if node.op not in TABLE:
            raise _unsupported(node, NOT_EXPORTED.get(node.op, "it has no ONNX lowering"))
        outs = _emit_node(e, node)
        for v, o in zip(node.outputs, outs):
            e.names[id(v)] = o
    outputs = []
    for i, v in enumerate(graph.outputs):
        out = f"output_{i}"
        e.nodes.append(helper.make_node("Identity", [e.names[id(v)]], [out]))
        outputs.append(helper.make_tensor_value_info(out, onnx_dtype(v.dtype), list(v.shape)))
    g = helper.make_graph(e.nodes, name, inputs, outputs, initializer=e.initializers)
    model = helper.make_model(g, producer_name=PRODUCER, opset_imports=[helper.make_opsetid(DOMAIN, OPSET)])
    model.ir_version = min(model.ir_version, 10)   # what onnxruntime releases of 2025-26 read
    onnx.checker.check_model(model, full_check=True)
    return model
