"""The scalar table of the CUDA backend: elementwise primitive -> CUDA C expression.

    rule(args, in_dtypes, out_dtype, attrs) -> str

`args` are C expressions of compute type (ctypes_c.COMPUTE); the result is one too. The same
table serves fused bodies and single elementwise nodes (both are rendered by kernels.py). Plain
arithmetic is plain IEEE arithmetic (NVRTC is called with --fmad=false so a*b+c is not
contracted): results equal the interpreter's bit for bit; float32 math calls the CUDA
single-precision functions (expf, ...), float64 the double ones.
"""
from __future__ import annotations

from typing import Callable

from ...ir.dtypes import as_dtype
from .ctypes_c import compute

Rule = Callable[..., str]


def _fn(name: str) -> Rule:
    """A math function: `name` + f for float, `name` for double."""
    def rule(args, ins, out, attrs):
        suffix = "f" if compute(out) == "float" else ""
        return f"{name}{suffix}({', '.join(args)})"
    return rule


def _call(name: str) -> Rule:
    return lambda args, ins, out, attrs: f"{name}({', '.join(args)})"


def _infix(op: str) -> Rule:
    return lambda args, ins, out, attrs: f"({args[0]} {op} {args[1]})"


def _arith(op: str, helper: str) -> Rule:
    """Floats: the C operator; integers: wrapping helpers (signed overflow is UB in C)."""
    def rule(args, ins, out, attrs):
        return f"({args[0]} {op} {args[1]})" if out.is_float else f"{helper}({args[0]}, {args[1]})"
    return rule


def _rsqrt(args, ins, out, attrs):
    one = "1.0f" if compute(out) == "float" else "1.0"
    return f"({one} / {_fn('sqrt')(args, ins, out, attrs)})"


_SAT = {"int8": "sf_sat_i8", "int16": "sf_sat_i16", "int32": "sf_sat_i32", "int64": "sf_sat_i64",
        "uint8": "sf_sat_u8", "uint16": "sf_sat_u16", "uint32": "sf_sat_u32", "uint64": "sf_sat_u64"}


def convert(x: str, src, dst) -> str:
    """The `cast` primitive: float->int truncates toward zero and saturates, NaN -> 0; int->int
    wraps; anything->bool is != 0; half targets go through float32 (as numpy does)."""
    if dst.name == "bool":
        return x if src.name == "bool" else f"({x} != 0)"
    if src.is_float and not dst.is_float:
        return f"{_SAT[dst.name]}((double)({x}))"
    return f"(({compute(dst)})({x}))"


def _cast(args, ins, out, attrs):
    return convert(args[0], ins[0], as_dtype(attrs["dtype"]))


SCALAR: dict[str, Rule] = {
    "add": _arith("+", "sf_add"), "sub": _arith("-", "sf_sub"), "mul": _arith("*", "sf_mul"),
    "div": _infix("/"),
    "maximum": _call("sf_max"), "minimum": _call("sf_min"),
    "neg": lambda args, ins, out, attrs: f"(-{args[0]})" if out.is_float else f"sf_neg({args[0]})",
    "abs": _call("sf_abs"), "sign": _call("sf_sign"),
    "floor": _fn("floor"), "ceil": _fn("ceil"), "sqrt": _fn("sqrt"), "rsqrt": _rsqrt,
    "exp": _fn("exp"), "log": _fn("log"), "tanh": _fn("tanh"), "sin": _fn("sin"), "cos": _fn("cos"),
    "erf": _fn("erf"), "pow": _fn("pow"),
    "is_finite": _call("sf_isfinite"),
    "eq": _infix("=="), "ne": _infix("!="), "lt": _infix("<"), "le": _infix("<="), "gt": _infix(">"),
    "ge": _infix(">="),
    "logical_not": lambda args, ins, out, attrs: f"(!{args[0]})",
    "logical_and": _infix("&&"), "logical_or": _infix("||"), "logical_xor": _infix("!="),
    "select": lambda args, ins, out, attrs: f"({args[0]} ? {args[1]} : {args[2]})",
    "cast": _cast,
    "stop_gradient": lambda args, ins, out, attrs: args[0],
}
