"""Scalar lowering table for the elementwise primitives: op name -> rule.

A rule maps compute-type SSA values to a compute-type SSA value:
    rule(b, args, in_dtypes, out_dtype, attrs) -> str
Compute types (irgen.COMPUTE): bool is i1, half types are float, the rest as stored. Loads
widen with `to_compute`, stores round with `from_compute` (half types round once per
primitive, exactly as ir/dtypes.py does, so LLVM and the interpreter agree bit for bit).
Plain arithmetic carries no fast-math flags at all: results must equal numpy's.
"""
from __future__ import annotations

from typing import Callable

from ...ir.dtypes import DType, as_dtype
from . import math_f32, mathfns
from .irgen import FnBuilder, compute_ty, is_unsigned, storage_ty

Rule = Callable[..., str]


# ---- storage <-> compute --------------------------------------------------------------------
def to_compute(b: FnBuilder, v: str, dt: DType) -> str:
    if dt.name == "bool":
        return b.op(f"icmp ne i8 {v}, 0")
    if dt.name == "float16":
        return b.op(f"fpext half {v} to float")
    if dt.name == "bfloat16":
        w = b.op(f"zext i16 {v} to i32")
        w = b.op(f"shl i32 {w}, 16")
        return b.op(f"bitcast i32 {w} to float")
    return v


def f32_to_bf16(b: FnBuilder, v: str) -> str:
    """Round to nearest even on the bits, NaN -> quiet NaN: ir/dtypes.f32_to_bf16_bits."""
    u = b.op(f"bitcast float {v} to i32")
    hi = b.op(f"lshr i32 {u}, 16")
    r = b.op(f"add i32 {b.op(f'and i32 {hi}, 1')}, 32767")
    rounded = b.op(f"lshr i32 {b.op(f'add i32 {u}, {r}')}, 16")
    nan = b.op(f"fcmp uno float {v}, 0.0")
    out = b.op(f"select i1 {nan}, i32 {b.op(f'or i32 {hi}, 64')}, i32 {rounded}")
    return b.op(f"trunc i32 {out} to i16")


def from_compute(b: FnBuilder, v: str, dt: DType) -> str:
    if dt.name == "bool":
        return b.op(f"zext i1 {v} to i8")
    if dt.name == "float16":
        return b.op(f"fptrunc float {v} to half")
    if dt.name == "bfloat16":
        return f32_to_bf16(b, v)
    return v


# ---- helpers ------------------------------------------------------------------------------------
def _via_double(fn) -> Rule:
    """Run a double-precision math routine; float results are rounded once at the end."""
    def rule(b, args, ins, out, attrs):
        ty = compute_ty(out)
        xs = [a if ty == "double" else b.op(f"fpext float {a} to double") for a in args]
        r = fn(b, *xs)
        return r if ty == "double" else b.op(f"fptrunc double {r} to float")
    return rule


def _arith(fop: str, iop: str) -> Rule:
    def rule(b, args, ins, out, attrs):
        ty = compute_ty(out)
        return b.op(f"{fop if out.is_float else iop} {ty} {args[0]}, {args[1]}")
    return rule


def _minmax(fname: str, spred: str, upred: str) -> Rule:
    def rule(b, args, ins, out, attrs):
        ty = compute_ty(out)
        if out.is_float:   # np.maximum(a, b) = a if (a > b or a is NaN) else b: NaN propagates from
            # either side and a tie (-0 vs +0) returns b, exactly as numpy does
            c = b.op(f"fcmp {'ugt' if fname == 'maximum' else 'ult'} {ty} {args[0]}, {args[1]}")
            nan_b = b.op(f"fcmp uno {ty} {args[1]}, 0.0")
            c = b.op(f"and i1 {c}, {b.op(f'xor i1 {nan_b}, true')}")
            return b.op(f"select i1 {c}, {ty} {args[0]}, {ty} {args[1]}")
        c = b.op(f"icmp {upred if is_unsigned(out) else spred} {ty} {args[0]}, {args[1]}")
        return b.op(f"select i1 {c}, {ty} {args[0]}, {ty} {args[1]}")
    return rule


_FCMP = {"eq": "oeq", "ne": "une", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}
_ICMP = {"eq": ("eq", "eq"), "ne": ("ne", "ne"), "lt": ("slt", "ult"), "le": ("sle", "ule"),
         "gt": ("sgt", "ugt"), "ge": ("sge", "uge")}


def _compare(name: str) -> Rule:
    def rule(b, args, ins, out, attrs):
        dt = ins[0]
        ty = compute_ty(dt)
        if dt.is_float:
            return b.op(f"fcmp {_FCMP[name]} {ty} {args[0]}, {args[1]}")
        s, u = _ICMP[name]
        return b.op(f"icmp {u if is_unsigned(dt) else s} {ty} {args[0]}, {args[1]}")
    return rule


def _neg(b, args, ins, out, attrs):
    ty = compute_ty(out)
    return b.op(f"fneg {ty} {args[0]}") if out.is_float else b.op(f"sub {ty} 0, {args[0]}")


def _abs(b, args, ins, out, attrs):
    ty = compute_ty(out)
    if out.is_float:
        return b.intrinsic("fabs", ty, args[0])
    if is_unsigned(out):
        return args[0]
    c = b.op(f"icmp slt {ty} {args[0]}, 0")
    return b.op(f"select i1 {c}, {ty} {b.op(f'sub {ty} 0, {args[0]}')}, {ty} {args[0]}")


def _sign(b, args, ins, out, attrs):
    ty, x = compute_ty(out), args[0]
    if out.is_float:   # +-1 for nonzero, +0 for +-0, NaN stays NaN (numpy's np.sign)
        pos = b.op(f"fcmp ogt {ty} {x}, 0.0")
        neg = b.op(f"fcmp olt {ty} {x}, 0.0")
        zero = b.op(f"fcmp oeq {ty} {x}, 0.0")
        r = b.op(f"select i1 {zero}, {ty} 0.0, {ty} {x}")
        r = b.op(f"select i1 {neg}, {ty} -1.0, {ty} {r}")
        return b.op(f"select i1 {pos}, {ty} 1.0, {ty} {r}")
    pos = b.op(f"icmp {'ugt' if is_unsigned(out) else 'sgt'} {ty} {x}, 0")
    if is_unsigned(out):
        return b.op(f"zext i1 {pos} to {ty}")
    neg = b.op(f"icmp slt {ty} {x}, 0")
    r = b.op(f"select i1 {neg}, {ty} -1, {ty} 0")
    return b.op(f"select i1 {pos}, {ty} 1, {ty} {r}")


def _simple_intrin(name: str) -> Rule:
    def rule(b, args, ins, out, attrs):
        return b.intrinsic(name, compute_ty(out), args[0])
    return rule


def _rsqrt(b, args, ins, out, attrs):
    ty = compute_ty(out)
    return b.op(f"fdiv {ty} 1.0, {b.intrinsic('sqrt', ty, args[0])}")


def _is_finite(b, args, ins, out, attrs):
    ty = compute_ty(ins[0])
    return b.op(f"fcmp one {ty} {b.intrinsic('fabs', ty, args[0])}, 0x7FF0000000000000")


def _logical(op: str) -> Rule:
    return lambda b, args, ins, out, attrs: b.op(f"{op} i1 {args[0]}, {args[1]}")


def _select(b, args, ins, out, attrs):
    ty = compute_ty(out)
    return b.op(f"select i1 {args[0]}, {ty} {args[1]}, {ty} {args[2]}")


def convert(b: FnBuilder, v: str, src: DType, dst: DType) -> str:
    """Compute value of `src` -> compute value of `dst`, as the `cast` primitive defines it:
    float->int truncates toward zero and saturates, NaN -> 0 (llvm.fpto[su]i.sat is exactly
    that); int->int wraps; anything->bool is `!= 0`; half targets go through float32."""
    st, dt_ = compute_ty(src), compute_ty(dst)
    if dst.name == "bool":
        if src.name == "bool":
            return v
        return b.op(f"fcmp une {st} {v}, 0.0") if src.is_float else b.op(f"icmp ne {st} {v}, 0")
    if src.is_float and dst.is_float:
        if st == dt_:
            return v
        return b.op(f"{'fpext' if dt_ == 'double' else 'fptrunc'} {st} {v} to {dt_}")
    if src.is_float:   # -> int
        sat = "fptoui.sat" if is_unsigned(dst) else "fptosi.sat"
        suf = {"float": "f32", "double": "f64"}[st]
        b.module.declare(f"declare {dt_} @llvm.{sat}.{dt_}.{suf}({st})")
        return b.op(f"call {dt_} @llvm.{sat}.{dt_}.{suf}({st} {v})")
    if dst.is_float:   # int/bool -> float (numpy: int -> float32 first for half targets)
        return b.op(f"{'uitofp' if is_unsigned(src) else 'sitofp'} {st} {v} to {dt_}")
    sb = 1 if src.name == "bool" else src.bits
    db = dst.bits
    if sb == db:
        return v
    if sb > db:
        return b.op(f"trunc {st} {v} to {dt_}")
    return b.op(f"{'zext' if is_unsigned(src) else 'sext'} {st} {v} to {dt_}")


def _cast(b, args, ins, out, attrs):
    return convert(b, args[0], ins[0], as_dtype(attrs["dtype"]))


def _identity(b, args, ins, out, attrs):
    return args[0]


SCALAR_RULES: dict[str, Rule] = {
    "add": _arith("fadd", "add"), "sub": _arith("fsub", "sub"), "mul": _arith("fmul", "mul"),
    "div": _arith("fdiv", "sdiv"),
    "maximum": _minmax("maximum", "sgt", "ugt"), "minimum": _minmax("minimum", "slt", "ult"),
    "neg": _neg, "abs": _abs, "sign": _sign,
    "floor": _simple_intrin("floor"), "ceil": _simple_intrin("ceil"), "sqrt": _simple_intrin("sqrt"),
    "rsqrt": _rsqrt, "is_finite": _is_finite,
    "logical_not": lambda b, args, ins, out, attrs: b.op(f"xor i1 {args[0]}, true"),
    "logical_and": _logical("and"), "logical_or": _logical("or"), "logical_xor": _logical("xor"),
    "select": _select, "cast": _cast, "stop_gradient": _identity,
    "pow": _via_double(mathfns.pow_),
    **{name: _compare(name) for name in _FCMP},
    **{name: _via_double(fn) for name, fn in mathfns.UNARY.items()},
}


def scalar_rule(op: str, dt: DType) -> Rule:
    """The rule for `op` producing `dt`: the float32 fast tier (math_f32) where one exists and
    the value is computed in float, else SCALAR_RULES (double-precision accurate tier)."""
    fast = math_f32.fast_rule(op) if compute_ty(dt) == "float" else None
    return fast or SCALAR_RULES[op]


__all__ = ["SCALAR_RULES", "scalar_rule", "to_compute", "from_compute", "convert", "storage_ty", "compute_ty"]
