"""MindSpore's own `.ckpt` layout, read and written without protobuf or pickle.

A MindSpore checkpoint is a sequence of serialized `Checkpoint` messages (protobuf, proto2):

    message Checkpoint { repeated Value value = 1; }
    message Value { required string tag = 1; optional TensorProto tensor = 2; optional MapTensorProto maptensor = 3; }
    message TensorProto { repeated int64 dims = 1; required string tensor_type = 2; required bytes tensor_content = 3; }

Consecutive values with the same tag are slices of one tensor, concatenated. dims == [0] marks
a scalar; tensor_type is "Float32", "BFloat16", "UInt8", ... or "str" (content: numpy "U" bytes,
i.e. UTF-32-LE). Files written with crc_check end with b"crc_num" and a 10-byte big-endian
CRC-32 of everything before it (mindspore/train/serialization.py, MindSpore 2.x).

sporeflow reads such files in load_checkpoint (detected by their first byte; a CRC trailer is
verified when present) and writes them with save_checkpoint(..., format="mindspore_ckpt"),
always with the CRC trailer, which MindSpore 2.3+ reads. Without that trailer the layout has
no integrity check: a file cut exactly between two messages cannot be told from a whole one.
"""
from __future__ import annotations

import binascii
from typing import Iterable

import numpy as np

from ..errors import CheckpointError
from ..ir import dtypes as D

_MS_TYPES = {"Float32": D.float32, "Float16": D.float16, "Float64": D.float64, "BFloat16": D.bfloat16,
             "Int8": D.int8, "Int16": D.int16, "Int32": D.int32, "Int64": D.int64, "UInt8": D.uint8,
             "Uint8": D.uint8, "UInt16": D.uint16, "UInt32": D.uint32, "Uint32": D.uint32,
             "UInt64": D.uint64, "Bool": D.bool_}
_MS_NAMES = {D.float32: "Float32", D.float16: "Float16", D.float64: "Float64", D.bfloat16: "BFloat16",
             D.int8: "Int8", D.int16: "Int16", D.int32: "Int32", D.int64: "Int64", D.uint8: "UInt8",
             D.uint16: "UInt16", D.uint32: "UInt32", D.uint64: "UInt64", D.bool_: "Bool"}
_CRC_TAG = b"crc_num"


# -- protobuf wire format (the three messages above need nothing more) ----------------------------
def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or malformed varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, pos: int, end: int):
    """Yield (field number, wire type, value) of one message; value is an int or a (start, end) span."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ValueError(f"field {field} of {n} bytes runs past the end")
            value, pos = (pos, pos + n), pos + n
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ValueError("truncated fixed-width field")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _key(field: int, wire: int) -> bytes:
    return _enc_varint(field << 3 | wire)


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # int64 fields: negatives as two's complement, as protobuf does
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _enc_varint(len(payload)) + payload


# -- reading --------------------------------------------------------------------------------------
def read(path: str, blob: bytes) -> tuple[list, dict]:
    """-> ([(name, storage array, dtype)], {name: str}); CheckpointError on any damage."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"MindSpore checkpoint '{path}' is corrupt or truncated: {why}; it was not loaded")

    if len(blob) >= 17 and blob[-17:-10] == _CRC_TAG:
        want = int.from_bytes(blob[-10:], "big")
        blob = blob[:-17]
        if binascii.crc32(blob) != want:
            raise bad("the CRC-32 in its trailer does not match")
    entries: list[tuple[str, str, list, bytes]] = []
    try:
        for field, wire, span in _fields(blob, 0, len(blob)):
            if field != 1 or wire != 2:
                continue
            tag, tensor, has_map = None, None, False
            for f2, w2, v2 in _fields(blob, *span):
                if f2 == 1 and w2 == 2:
                    tag = blob[v2[0]:v2[1]].decode("utf-8")
                elif f2 == 2 and w2 == 2:
                    tensor = v2
                elif f2 == 3:
                    has_map = True
            if tag is None:
                raise ValueError("a value without a tag")
            if has_map and tensor is None:
                raise CheckpointError(f"MindSpore checkpoint '{path}': '{tag}' is a MapParameter, which sporeflow "
                                      "does not support")
            dims, ttype, content = [], None, b""
            for f3, w3, v3 in _fields(blob, *(tensor or (0, 0))):
                if f3 == 1 and w3 == 0:
                    dims.append(v3 - (1 << 64) if v3 >= 1 << 63 else v3)
                elif f3 == 1 and w3 == 2:  # packed dims
                    p = v3[0]
                    while p < v3[1]:
                        d, p = _varint(blob, p, v3[1])
                        dims.append(d)
                elif f3 == 2 and w3 == 2:
                    ttype = blob[v3[0]:v3[1]].decode("utf-8")
                elif f3 == 3 and w3 == 2:
                    content = blob[v3[0]:v3[1]]
            if ttype is None:
                raise ValueError(f"'{tag}' has no tensor_type")
            entries.append((tag, ttype, dims, content))
    except CheckpointError:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(str(e)) from None
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
def chunks(tensors: list, strings: dict) -> Iterable[bytes]:
    """One Checkpoint message per entry, then the CRC trailer."""
    crc = 0

    def message(name: str, dims: list[int], ttype: str, content: bytes) -> bytes:
        tensor = b"".join(_key(1, 0) + _enc_varint(d) for d in dims) + _ld(2, ttype.encode()) + _ld(3, content)
        return _ld(1, _ld(1, name.encode("utf-8")) + _ld(2, tensor))

    for name, arr, dt in tensors:
        if dt not in _MS_NAMES:
            raise TypeError(f"save_checkpoint(format='mindspore_ckpt'): '{name}' has dtype {dt.name}, which MindSpore "
                            "checkpoints cannot hold")
        dims = list(arr.shape) if arr.ndim else [0]
        m = message(name, dims, _MS_NAMES[dt], np.asarray(arr).astype(dt.storage.newbyteorder("<")).tobytes())
        crc = binascii.crc32(m, crc)
        yield m
    for name, s in strings.items():
        m = message(name, [0], "str", np.array(s, dtype=f"<U{max(len(s), 1)}").tobytes() if s else b"")
        crc = binascii.crc32(m, crc)
        yield m
    yield _CRC_TAG + crc.to_bytes(10, "big")
