"""save_checkpoint / load_checkpoint with format="safetensors", through the `safetensors`
package (the 'safetensors' extra): the layout Hugging Face tools read. The format has no
checksum, so only structural damage is detected; str values of append_dict travel as
`__metadata__`."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import CheckpointError
from ..ir import dtypes as D

try:
    import safetensors
except ImportError:  # optional dependency: see _package()
    safetensors = None

_NAMES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "uint16",
          "uint32", "uint64", "bool")
_CODES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
          "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
          "U64": "uint64", "BOOL": "bool"}


def _package():
    if safetensors is None or not hasattr(safetensors, "TensorSpec"):
        raise ImportError("format='safetensors' needs the safetensors package (>= 0.8): pip install "
                          "'sporeflow[safetensors]'")
    return safetensors


def chunks(tensors: list, strings: dict) -> Iterable[bytes]:
    st = _package()
    keep, specs = [], {}
    for name, arr, dt in tensors:
        if dt.name not in _NAMES:
            raise TypeError(f"save_checkpoint(format='safetensors'): '{name}' has dtype {dt.name}, which safetensors "
                            "cannot hold")
        data = np.ascontiguousarray(arr, dtype=dt.storage.newbyteorder("<"))
        keep.append(data)  # the spec holds a raw pointer: the array must outlive serialize()
        specs[name] = st.TensorSpec(dtype=dt.name, shape=list(arr.shape), data_ptr=data.ctypes.data,
                                    data_len=data.nbytes)
    yield bytes(st.serialize(specs, metadata=dict(strings) or None))
    del keep


def read(path: str, blob: bytes) -> tuple[list, dict]:
    st = _package()
    try:
        entries = st.deserialize(blob)
        with st.safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 (the package raises SafetensorError, OSError, ValueError...)
        raise CheckpointError(f"'{path}' is not a valid safetensors file: {e}") from None
    out = []
    for name, e in entries:
        if e["dtype"] not in _CODES:
            raise CheckpointError(f"'{path}': '{name}' has safetensors dtype {e['dtype']}, which has no sporeflow "
                                  f"dtype (supported: {sorted(_CODES)})")
        dt = D.BY_NAME[_CODES[e["dtype"]]]
        shape = tuple(int(s) for s in e["shape"])
        arr = np.frombuffer(bytes(e["data"]), dtype=dt.storage.newbyteorder("<")).astype(dt.storage)
        out.append((name, arr.reshape(shape), dt))
    return out, {str(k): str(v) for k, v in meta.items()}
