"""What the ONNX exporter and importer share: the opset, dtype codes and tensor conversion."""
from __future__ import annotations

import numpy as np

from ...ir import dtypes as D

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # optional dependency: require_onnx() says how to get it
    onnx = TensorProto = helper = numpy_helper = None

OPSET = 18          # ReduceMax/ReduceMin take axes as an input from 18 on, like ReduceSum
DOMAIN = ""         # the default ONNX domain


def require_onnx(what: str):
    if onnx is None:
        raise ImportError(f"{what} needs the onnx package: pip install 'sporeflow[onnx]'")
    return onnx


def onnx_defs():
    return require_onnx("ONNX export").defs


def onnx_dtype(dt) -> int:
    require_onnx("ONNX export")
    return {"bool": TensorProto.BOOL, "uint8": TensorProto.UINT8, "int8": TensorProto.INT8,
            "int16": TensorProto.INT16, "int32": TensorProto.INT32, "int64": TensorProto.INT64,
            "uint16": TensorProto.UINT16, "uint32": TensorProto.UINT32, "uint64": TensorProto.UINT64,
            "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16, "float32": TensorProto.FLOAT,
            "float64": TensorProto.DOUBLE}[dt.name]


def sporeflow_dtype(code: int):
    for dt in D.ALL_DTYPES:
        if onnx_dtype(dt) == code:
            return dt
    raise ValueError(f"ONNX element type {code} ({TensorProto.DataType.Name(code)}) has no sporeflow dtype")


def make_tensor(name: str, arr: np.ndarray, dt) -> "TensorProto":
    """An initializer from sporeflow storage (bfloat16 as its bit pattern), raw little-endian."""
    data = np.ascontiguousarray(arr, dtype=dt.storage.newbyteorder("<"))
    return helper.make_tensor(name, onnx_dtype(dt), list(arr.shape), data.tobytes(), raw=True)


def read_tensor(t) -> tuple[np.ndarray, object]:
    """An initializer or Constant value -> (sporeflow storage array, dtype)."""
    dt = sporeflow_dtype(t.data_type)
    if dt is D.bfloat16:
        raw = t.raw_data if t.HasField("raw_data") else np.asarray(t.int32_data, np.uint16).tobytes()
        return np.frombuffer(raw, "<u2").astype(np.uint16).reshape(tuple(t.dims)), dt
    return np.ascontiguousarray(numpy_helper.to_array(t)).astype(dt.storage), dt
