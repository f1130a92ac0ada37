"""Element types of the IR and their numpy storage.

bfloat16 (tested in tests/test_bf16.py):
  * storage: numpy has no bfloat16, so a bf16 array is a uint16 array holding the upper 16 bits
    of the float32 bit pattern (sign, 8 exponent bits, 7 mantissa bits).
  * bf16 -> float32 is exact (a 16-bit shift): `bf16_bits_to_f32`.
  * float -> bf16 rounds to nearest, ties to even, once: float32/float16 inputs directly;
    float64 inputs go through float32 with round-to-odd first, which keeps the final rounding
    correct (no double rounding). Overflow rounds to +-inf, +-inf stays +-inf, NaN becomes a
    quiet NaN with its sign kept (bit 6 of the mantissa set). Subnormals are kept.
  * `Tensor(x, sf.bfloat16).asnumpy()` returns float32 values (the exact bf16 values);
    `Tensor._data` holds the uint16 bits. A uint16 numpy array given with dtype=bfloat16 is
    taken as bits already (that is how checkpoints and executables hand bf16 data back).
float16 uses numpy's float16. Arithmetic on both half types is done in float32 and rounded
once after every primitive, which is what the LLVM and CUDA backends do too, so all backends
agree bit for bit on arithmetic, comparisons, casts and data movement. Transcendental functions
(exp, log, tanh, ...) are within 1 float32 ulp on each backend but not the same polynomial, so a
result on a half-type rounding boundary can differ by one half-type ulp between backends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str          # the MindSpore-style long name, e.g. "float32"
    short: str         # the IR text name, e.g. "f32"
    storage: np.dtype  # how numpy holds it
    is_float: bool
    is_signed: bool
    bits: int

    def __repr__(self) -> str:
        return f"sporeflow.{self.name}"

    __str__ = lambda self: self.name  # noqa: E731 (MindSpore prints "Float32"-ish names; we keep plain ones)

    @property
    def is_int(self) -> bool:
        return not self.is_float and self.name != "bool"

    @property
    def is_half(self) -> bool:
        return self.name in ("float16", "bfloat16")


bool_ = DType("bool", "bool", np.dtype(np.bool_), False, False, 8)
uint8 = DType("uint8", "u8", np.dtype(np.uint8), False, False, 8)
int8 = DType("int8", "i8", np.dtype(np.int8), False, True, 8)
int16 = DType("int16", "i16", np.dtype(np.int16), False, True, 16)
int32 = DType("int32", "i32", np.dtype(np.int32), False, True, 32)
int64 = DType("int64", "i64", np.dtype(np.int64), False, True, 64)
uint16 = DType("uint16", "u16", np.dtype(np.uint16), False, False, 16)
uint32 = DType("uint32", "u32", np.dtype(np.uint32), False, False, 32)
uint64 = DType("uint64", "u64", np.dtype(np.uint64), False, False, 64)
float16 = DType("float16", "f16", np.dtype(np.float16), True, True, 16)
bfloat16 = DType("bfloat16", "bf16", np.dtype(np.uint16), True, True, 16)
float32 = DType("float32", "f32", np.dtype(np.float32), True, True, 32)
float64 = DType("float64", "f64", np.dtype(np.float64), True, True, 64)

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, uint16, uint32, uint64, float16, bfloat16, float32, float64)
FLOAT_DTYPES = (float16, bfloat16, float32, float64)
INT_DTYPES = (uint8, int8, int16, int32, int64, uint16, uint32, uint64)
BY_SHORT = {d.short: d for d in ALL_DTYPES}
BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NUMPY = {d.storage: d for d in ALL_DTYPES if d is not bfloat16}

# MindSpore aliases
float_ = float32
half = float16
double = float64
int_ = int32


def from_numpy(dt: np.dtype | type) -> DType:
    """The DType numpy data of dtype `dt` is read as (uint16 is uint16, never bfloat16, here)."""
    dt = np.dtype(dt)
    if dt in _BY_NUMPY:
        return _BY_NUMPY[dt]
    if dt.kind == "U" or dt.kind == "O":
        raise TypeError(f"cannot make a tensor of numpy dtype {dt}")
    raise TypeError(f"numpy dtype {dt} has no sporeflow equivalent")


def as_dtype(x) -> DType:
    """Accept a DType, its name ('float32', 'f32'), a numpy dtype or a Python type."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        if x in BY_SHORT:
            return BY_SHORT[x]
        if x in BY_NAME:
            return BY_NAME[x]
        raise TypeError(f"unknown dtype name {x!r}")
    if x is float:
        return float32
    if x is int:
        return int64
    if x is bool:
        return bool_
    return from_numpy(x)


def _f64_to_f32_round_to_odd(x: np.ndarray) -> np.ndarray:
    """float64 -> float32 truncated toward zero with the last bit set when inexact ("round to
    odd"): rounding that to bf16 (16 fewer mantissa bits) equals rounding x directly."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = x.astype(np.float32)
    with np.errstate(invalid="ignore"):
        too_big = np.abs(r.astype(np.float64)) > np.abs(x)
    r = np.where(too_big, np.nextafter(r, np.float32(0)), r).astype(np.float32)
    with np.errstate(invalid="ignore"):
        inexact = r.astype(np.float64) != x
    bits = r.view(np.uint32) | np.where(inexact & ~np.isnan(x), np.uint32(1), np.uint32(0))
    return bits.astype(np.uint32).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float (float32, float16 or float64) -> bfloat16 bits (uint16), round to nearest even
    once; NaN -> quiet NaN."""
    x = np.asarray(x)
    if x.dtype == np.float64 or x.dtype.kind in "iu":
        x = _f64_to_f32_round_to_odd(x.astype(np.float64))
    x = np.array(x, dtype=np.float32, order="C")
    u = x.view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    out = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out = np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), out)
    return out


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32, exact."""
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def to_compute(a: np.ndarray, dt: DType) -> np.ndarray:
    """Storage array -> the array arithmetic runs on (half types widen to float32)."""
    if dt is bfloat16:
        return bf16_bits_to_f32(a)
    if dt is float16:
        return np.asarray(a, dtype=np.float16).astype(np.float32)
    return a


def from_compute(a, dt: DType) -> np.ndarray:
    """Result of arithmetic -> storage array of dtype `dt` (rounding half types once)."""
    a = np.asarray(a)
    if dt is bfloat16:
        return f32_to_bf16_bits(a)
    if a.dtype != dt.storage:
        with np.errstate(invalid="ignore", over="ignore"):
            return a.astype(dt.storage)
    return a


def result_type(a: DType, b: DType) -> DType:
    """Promotion for mixed-dtype binary operators in the frontend (the IR itself is strict)."""
    if a is b:
        return a
    if a.is_float and b.is_float:
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.bits >= b.bits else b
    if a.is_float:
        return a
    if b.is_float:
        return b
    if a is bool_:
        return b
    if b is bool_:
        return a
    return from_numpy(np.promote_types(a.storage, b.storage))


def dtype_to_nptype(type_) -> type:
    """MindSpore's dtype_to_nptype: the numpy scalar type of a dtype (bfloat16 has none in
    numpy; its storage, uint16 bits, is returned, as Tensor._data holds it)."""
    return as_dtype(type_).storage.type


def dtype_to_pytype(type_) -> type:
    """MindSpore's dtype_to_pytype: bool, int or float."""
    dt = as_dtype(type_)
    return bool if dt is bool_ else (float if dt.is_float else int)
