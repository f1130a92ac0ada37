"""MindSpore's own `.ckpt` layout, encoded and decoded by the protobuf library.

A MindSpore checkpoint is a sequence of serialized `Checkpoint` messages (proto/checkpoint.proto):
each holds `Value`s of (tag, TensorProto(dims, tensor_type, tensor_content)). Consecutive values
with the same tag are slices of one tensor, concatenated. dims == [0] marks a scalar;
tensor_type is "Float32", "BFloat16", "UInt8", ... or "str" (content: numpy "U" bytes, i.e.
UTF-32-LE). Files written with crc_check end with b"crc_num" and a 10-byte big-endian CRC-32 of
everything before it (mindspore/train/serialization.py, MindSpore 2.x).

sporeflow writes this layout for save_checkpoint(format="ckpt") (the default), always with the
CRC trailer, which MindSpore 2.3+ reads; without it the layout has no integrity check (a file
cut exactly between two messages cannot be told from a whole one). Values are parsed one by one
(the outer framing is walked here), so a file may exceed protobuf's 2 GiB message limit; a
tensor over SLICE_BYTES is written as consecutive slices, as MindSpore does.
"""
from __future__ import annotations

import binascii
from typing import Iterable

import numpy as np
from google.protobuf.message import DecodeError

from ..errors import CheckpointError
from ..ir import dtypes as D
from .proto.checkpoint import Checkpoint, Value

_MS_TYPES = {"Float32": D.float32, "Float16": D.float16, "Float64": D.float64, "BFloat16": D.bfloat16,
             "Int8": D.int8, "Int16": D.int16, "Int32": D.int32, "Int64": D.int64, "UInt8": D.uint8,
             "Uint8": D.uint8, "UInt16": D.uint16, "UInt32": D.uint32, "Uint32": D.uint32,
             "UInt64": D.uint64, "Bool": D.bool_}
_MS_NAMES = {D.float32: "Float32", D.float16: "Float16", D.float64: "Float64", D.bfloat16: "BFloat16",
             D.int8: "Int8", D.int16: "Int16", D.int32: "Int32", D.int64: "Int64", D.uint8: "UInt8",
             D.uint16: "UInt16", D.uint32: "UInt32", D.uint64: "UInt64", D.bool_: "Bool"}
_CRC_TAG = b"crc_num"
SLICE_BYTES = 1 << 29  # content per message; protobuf refuses messages of 2 GiB and more
_VALUE_KEY = 0x0A      # field 1 (Checkpoint.value), wire type 2 (length-delimited)


def _value_spans(blob: bytes) -> Iterable[tuple[int, int]]:
    """(start, end) of each serialized Value: the file is Checkpoint messages back to back, i.e.
    one stream of `value` fields."""
    pos, end = 0, len(blob)
    while pos < end:
        if blob[pos] != _VALUE_KEY:
            raise ValueError(f"byte {pos}: expected a Checkpoint.value field, found key {blob[pos]:#x}")
        pos += 1
        n = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError("truncated length of a Checkpoint.value")
            b = blob[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if pos + n > end:
            raise ValueError(f"a Checkpoint.value of {n} bytes runs past the end of the file")
        yield pos, pos + n
        pos += n


# -- reading --------------------------------------------------------------------------------------
def read(path: str, blob: bytes) -> tuple[list, dict]:
    """-> ([(name, storage array, dtype)], {name: str}); CheckpointError on any damage."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"MindSpore checkpoint '{path}' is corrupt or truncated: {why}; it was not loaded")

    if blob[:1] != bytes([_VALUE_KEY]):
        raise CheckpointError(f"'{path}' is not a checkpoint: it is neither MindSpore's protobuf layout nor "
                              f"sporeflow's (it starts with {blob[:8]!r})")
    if len(blob) >= 17 and blob[-17:-10] == _CRC_TAG:
        want = int.from_bytes(blob[-10:], "big")
        blob = blob[:-17]
        if binascii.crc32(blob) != want:
            raise bad("the CRC-32 in its trailer does not match")
    entries: list[tuple[str, str, list, bytes]] = []
    try:
        for a, b in _value_spans(blob):
            v = Value.FromString(blob[a:b])
            if v.HasField("maptensor"):
                raise CheckpointError(f"MindSpore checkpoint '{path}': '{v.tag}' is a MapParameter, which sporeflow "
                                      "does not support")
            if not v.HasField("tensor"):
                raise ValueError(f"value '{v.tag}' holds no tensor")
            entries.append((v.tag, v.tensor.tensor_type, list(v.tensor.dims), v.tensor.tensor_content))
    except CheckpointError:
        raise
    except (ValueError, DecodeError, UnicodeDecodeError) as e:
        raise bad(str(e) or type(e).__name__) from None
    if not entries:
        raise bad("it holds nothing")
    tensors, strings, i = [], {}, 0
    while i < len(entries):  # merge slices: consecutive entries with one tag
        tag, ttype, dims, _ = entries[i]
        j = i
        while j + 1 < len(entries) and entries[j + 1][0] == tag:
            j += 1
        data = b"".join(e[3] for e in entries[i:j + 1])
        dims = entries[j][2]
        i = j + 1
        if ttype == "str":
            strings[tag] = str(np.frombuffer(data, f"<U{len(data) // 4}")[0]) if data else ""
            continue
        if ttype not in _MS_TYPES:
            raise CheckpointError(f"MindSpore checkpoint '{path}': '{tag}' has type {ttype}, which has no sporeflow "
                                  f"dtype (supported: {sorted(_MS_NAMES.values())})")
        dt = _MS_TYPES[ttype]
        # dims [0] means a scalar; with no bytes it can only be an empty 1-d tensor (same dims)
        shape = (() if data else (0,)) if list(dims) == [0] else tuple(dims)
        count = int(np.prod(shape, dtype=np.int64))
        if count * dt.storage.itemsize != len(data):
            raise bad(f"'{tag}' has {len(data)} bytes, but {ttype}{list(shape)} needs {count * dt.storage.itemsize}")
        arr = np.frombuffer(data, dtype=dt.storage.newbyteorder("<")).astype(dt.storage).reshape(shape)
        tensors.append((tag, arr, dt))
    return tensors, strings


# -- writing --------------------------------------------------------------------------------------
def _messages(name: str, dims: list[int], ttype: str, content: bytes) -> Iterable[bytes]:
    for start in range(0, max(len(content), 1), SLICE_BYTES):
        ckpt = Checkpoint()
        v = ckpt.value.add(tag=name)
        v.tensor.dims.extend(dims)
        v.tensor.tensor_type = ttype
        v.tensor.tensor_content = content[start:start + SLICE_BYTES]
        yield ckpt.SerializeToString()


def chunks(tensors: list, strings: dict) -> Iterable[bytes]:
    """One Checkpoint message per entry (per slice of a big one), then the CRC trailer."""
    crc = 0
    for name, arr, dt in tensors:
        if dt not in _MS_NAMES:
            raise TypeError(f"save_checkpoint(format='ckpt'): '{name}' has dtype {dt.name}, which MindSpore "
                            "checkpoints cannot hold")
        dims = list(arr.shape) if arr.ndim else [0]
        content = np.asarray(arr).astype(dt.storage.newbyteorder("<")).tobytes()
        for m in _messages(name, dims, _MS_NAMES[dt], content):
            crc = binascii.crc32(m, crc)
            yield m
    for name, s in strings.items():
        for m in _messages(name, [0], "str", np.array(s, dtype=f"<U{max(len(s), 1)}").tobytes() if s else b""):
            crc = binascii.crc32(m, crc)
            yield m
    yield _CRC_TAG + crc.to_bytes(10, "big")
