"""sporeflow IR <-> MindIR protobuf (ModelProto), losslessly.

Each IR node becomes a NodeProto whose op_type is the sporeflow primitive (domain "sporeflow"),
with its attributes as AttributeProtos (ints, floats, strings, dtypes, tuples, constant tensors,
subgraphs as nested GraphProtos) and its source location and Cell scope in doc_string; the
Parameters the graph captured are GraphProto.parameter tensors (raw little-endian bytes).
Reading re-infers every node's output type through the op registry and verifies the graph, so
a damaged or foreign file fails with an error instead of producing a wrong graph.

MindSpore's own exporter writes its primitives (Conv2D, MatMul, ...) and its loader expects
them: a sporeflow MindIR file round-trips through sporeflow, not through MindSpore.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from ...errors import SporeflowError
from ...ir import dtypes as D
from ...ir.graph import Graph, GraphBuilder, Value
from ...ir.types import ConstValue, TensorType
from ...ir.verify import verify
from ..proto.mind_ir import ATTRIBUTE_TYPES, TENSOR_TYPES, AttributeProto, GraphProto, ModelProto, TensorProto

PRODUCER = "sporeflow"
DOMAIN = "sporeflow"
_DTYPE_OF_TENSOR_TYPE = {v: D.BY_NAME[k] for k, v in TENSOR_TYPES.items()}
_ATTR_TYPE_NAMES = {"float32": "FLOAT", "float64": "DOUBLE"}   # the others are the dtype's name upper-cased
_DTYPE_OF_ATTR_TYPE = {ATTRIBUTE_TYPES[_ATTR_TYPE_NAMES.get(k, k.upper())]: D.BY_NAME[k] for k in TENSOR_TYPES}
_ATTR_TYPE_OF_DTYPE = {d: t for t, d in _DTYPE_OF_ATTR_TYPE.items()}
A = AttributeProto


class MindIRError(SporeflowError):
    """A MindIR file sporeflow cannot read: damaged, or written by another producer."""


@dataclass
class ExportedGraph:
    """A loaded graph: `graph` takes the user inputs followed by the Parameters in `parameters`
    ((name, storage array, dtype), in graph-input order)."""
    graph: Graph
    parameters: list
    num_inputs: int


# -- writing ----------------------------------------------------------------------------------
def _tensor(arr: np.ndarray, dt, name: str = "") -> TensorProto:
    t = TensorProto(name=name, data_type=TENSOR_TYPES[dt.name])
    t.dims.extend(arr.shape)
    t.raw_data = np.ascontiguousarray(arr, dtype=dt.storage.newbyteorder("<")).tobytes()
    return t


def _type_proto(tt: TensorType) -> TensorProto:
    t = TensorProto(data_type=TENSOR_TYPES[tt.dtype.name])
    t.dims.extend(tt.shape)
    return t


def _attr(name: str, v) -> AttributeProto:
    a = A(name=name)
    if isinstance(v, bool):
        a.type, a.i = A.BOOL, int(v)
    elif isinstance(v, int):
        a.type, a.i = A.INT64, v
    elif isinstance(v, float):
        a.type, a.d = A.DOUBLE, v
    elif isinstance(v, str):
        a.type, a.s = A.STRING, v.encode("utf-8")
    elif v is None:
        a.type = A.NONE
    elif isinstance(v, D.DType):
        a.type, a.type_val = A.UNDEFINED, _ATTR_TYPE_OF_DTYPE[v]
    elif isinstance(v, tuple):
        a.type = A.TUPLE
        a.values.extend(_attr("", x) for x in v)
    elif isinstance(v, ConstValue):
        a.type = A.TENSOR
        a.t.CopyFrom(_tensor(v.array, v.dtype))
    elif isinstance(v, Graph):
        a.type = A.GRAPH
        a.g.CopyFrom(_graph_proto(v, {}))
    else:
        raise TypeError(f"MindIR export: attribute {name!r} has a value of type {type(v).__name__} that has no "
                        "MindIR encoding")
    return a


def _graph_proto(g: Graph, parameters: dict[int, tuple]):
    """`parameters`: id(input Value) -> (name, array, dtype) for inputs that are weights."""
    gp = GraphProto(name=g.name)
    names: dict[int, str] = {}
    for i, v in enumerate(g.inputs):
        if id(v) in parameters:
            pname, arr, dt = parameters[id(v)]
            names[id(v)] = pname
            gp.parameter.append(_tensor(arr, dt, pname))
        else:
            names[id(v)] = v.name or f"%input{i}"   # '%': an unnamed input, read back without a name
            info = gp.input.add(name=names[id(v)])
            info.tensor.append(_type_proto(v.type))
    for k, node in enumerate(g.nodes):
        for j, out in enumerate(node.outputs):
            names[id(out)] = f"{k}.{j}"
        n = gp.node.add(op_type=node.op, domain=DOMAIN, name=f"{node.op}-op{k}",
                        doc_string=json.dumps({"loc": node.loc, "scope": node.scope}))
        n.input.extend(names[id(v)] for v in node.inputs)
        n.output.extend(names[id(v)] for v in node.outputs)
        n.attribute.extend(_attr(key, node.attrs[key]) for key in node.attrs)
    for v in g.outputs:
        info = gp.output.add(name=names[id(v)])
        info.tensor.append(_type_proto(v.type))
    return gp


def to_model(exported: ExportedGraph) -> ModelProto:
    g = exported.graph
    params = {id(v): p for v, p in zip(g.inputs[exported.num_inputs:], exported.parameters)}
    m = ModelProto(ir_version="1", producer_name=PRODUCER, model_version="1", little_endian=True)
    m.graph.CopyFrom(_graph_proto(g, params))
    return m


# -- reading ----------------------------------------------------------------------------------
def _array(t: TensorProto, what: str) -> tuple[np.ndarray, D.DType]:
    if t.data_type not in _DTYPE_OF_TENSOR_TYPE:
        raise MindIRError(f"MindIR: {what} has data_type {t.data_type}, which sporeflow does not read")
    dt = _DTYPE_OF_TENSOR_TYPE[t.data_type]
    shape = tuple(t.dims)
    count = int(np.prod(shape, dtype=np.int64))
    if len(t.raw_data) != count * dt.storage.itemsize:
        raise MindIRError(f"MindIR: {what} ({dt.name}{list(shape)}) has {len(t.raw_data)} bytes of raw_data, "
                          f"expected {count * dt.storage.itemsize}")
    return np.frombuffer(t.raw_data, dtype=dt.storage.newbyteorder("<")).astype(dt.storage).reshape(shape), dt


def _type_of(info, what: str) -> TensorType:
    if len(info.tensor) != 1 or info.tensor[0].data_type not in _DTYPE_OF_TENSOR_TYPE:
        raise MindIRError(f"MindIR: {what} '{info.name}' has no tensor type sporeflow reads")
    t = info.tensor[0]
    return TensorType(tuple(t.dims), _DTYPE_OF_TENSOR_TYPE[t.data_type])


def _value(a: AttributeProto):
    readers = {A.BOOL: lambda: bool(a.i), A.INT64: lambda: int(a.i), A.DOUBLE: lambda: float(a.d),
               A.STRING: lambda: a.s.decode("utf-8"), A.NONE: lambda: None,
               A.TUPLE: lambda: tuple(_value(x) for x in a.values),
               A.TENSOR: lambda: ConstValue(*_array(a.t, f"attribute {a.name!r}")),
               A.GRAPH: lambda: _graph(a.g, [])[0]}
    if a.type == A.UNDEFINED and a.HasField("type_val"):
        return _DTYPE_OF_ATTR_TYPE[a.type_val]
    if a.type not in readers:
        raise MindIRError(f"MindIR: attribute {a.name!r} has type {A.AttributeType.Name(a.type)}, which sporeflow "
                          "does not read")
    return readers[a.type]()


def _graph(gp, parameters: list) -> tuple[Graph, int]:
    b = GraphBuilder(gp.name or "main")
    env: dict[str, Value] = {}
    for info in gp.input:
        env[info.name] = b.add_input(_type_of(info, "input"), "" if info.name.startswith("%") else info.name)
    for t in gp.parameter:
        arr, dt = _array(t, f"parameter '{t.name}'")
        env[t.name] = b.add_input(TensorType(arr.shape, dt), t.name)
        parameters.append((t.name, arr, dt))
    for n in gp.node:
        if n.domain != DOMAIN:
            raise MindIRError(f"MindIR: node '{n.name}' is the {n.domain or 'MindSpore'} op {n.op_type!r}; sporeflow "
                              "reads the MindIR files it writes (domain 'sporeflow'); export the model to ONNX "
                              "to move it between frameworks")
        missing = [x for x in n.input if x not in env]
        if missing:
            raise MindIRError(f"MindIR: node '{n.name}' uses {missing}, which no earlier node or input defines")
        where = json.loads(n.doc_string) if n.doc_string else {}
        outs = b.emit(n.op_type, [env[x] for x in n.input], {a.name: _value(a) for a in n.attribute},
                      loc=where.get("loc", ""), scope=where.get("scope", ""))
        if len(outs) != len(n.output):
            raise MindIRError(f"MindIR: node '{n.name}' names {len(n.output)} outputs, {n.op_type} has {len(outs)}")
        env.update(zip(n.output, outs))
    g = b.finish([env[o.name] for o in gp.output])
    for info, v in zip(gp.output, g.outputs):
        recorded = _type_of(info, "output")
        if recorded != v.type:
            raise MindIRError(f"MindIR: output '{info.name}' is recorded as {recorded} but computes {v.type}")
    return verify(g), len(gp.input)


def from_bytes(blob: bytes, path: str) -> ExportedGraph:
    try:
        m = ModelProto.FromString(blob)
    except DecodeError as e:
        raise MindIRError(f"'{path}' is not a MindIR file (protobuf decoding failed: {e})") from None
    if m.producer_name != PRODUCER:
        raise MindIRError(f"'{path}' was written by {m.producer_name or 'an unknown producer'!r}; sporeflow reads the "
                          "MindIR files it writes (MindSpore's own use MindSpore's primitives)")
    parameters: list = []
    try:
        graph, n_in = _graph(m.graph, parameters)
    except MindIRError:
        raise
    except SporeflowError as e:
        raise MindIRError(f"'{path}': the graph does not check: {e}") from None
    return ExportedGraph(graph, parameters, n_in)
