"""Single-precision exp and tanh for fused float32 kernels (the fast tier).

mathfns.py (the accurate tier) evaluates every function in double: within 1 ulp, but a zmm
register holds 8 doubles instead of 16 floats and the polynomials are degree 13+, which made
the gelu*sigmoid chain ~8x slower than a float32 polynomial (measured: 7.2 ms vs 0.9 ms for
1M elements on one core). Fused float32 kernels use these instead (backend-derisk.md 1b):

  exp   Cephes expf: n = rint(x log2 e), r = x - n ln2 (two-part, FMA), degree-5 polynomial,
        then 2^n so overflow gives +inf and underflow subnormals/0. With AVX-512, 2^n is one
        `llvm.ldexp` (one vscalefps, one rounding); elsewhere ldexp would be a libcall per
        element, so 2^n is applied in two halves (two roundings) built from exponent bits.
        Max error 1 ulp over normal results (tests/test_fusion_llvm.py checks <= 2 ulp); subnormal
        results within one subnormal step.
  tanh  |x| < 0.625: Cephes tanhf odd polynomial; else 1 - 2/(exp(2|x|) + 1); sign restored;
        +-1 for large |x|. Max error 1 ulp (same test).
NaN, +-inf and -0 are handled with explicit selects (no fast-math assumptions); FMAs are
explicit llvm.fma calls, no fast-math flags at all.
"""
from __future__ import annotations

from . import hostcpu
from .irgen import FnBuilder, fconst

F = "float"
_EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]
_TANH_P = [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1]


def _c(x: float) -> str:
    return fconst(x, F)


def _fma(b: FnBuilder, a: str, x: str, c: str) -> str:
    return b.intrinsic("fma", F, a, x, c)


def _intrin(b: FnBuilder, name: str, *args: str) -> str:
    return b.intrinsic(name, F, *args)


def _pow2(b: FnBuilder, n: str) -> str:
    """2^n for integer-valued float n in [-126, 127]."""
    i = b.op(f"fptosi float {n} to i32")
    bits = b.op(f"shl i32 {b.op(f'add i32 {i}, 127')}, 23")
    return b.op(f"bitcast i32 {bits} to float")


def _scale_pow2(b: FnBuilder, y: str, n: str) -> str:
    """y * 2^n for integer-valued float n in [-150, 128], overflow to inf, underflow to subnormals.
    One vscalefps instead of ten ops took the gelu*sigmoid chain (1M, Zen 4) from 0.52 to 0.41 ms."""
    if hostcpu.host().has("avx512f"):
        b.module.declare("declare float @llvm.ldexp.f32.i32(float, i32)")
        return b.op(f"call float @llvm.ldexp.f32.i32(float {y}, i32 {b.op(f'fptosi float {n} to i32')})")
    n1 = _intrin(b, "floor", b.op(f"fmul float {n}, {_c(0.5)}"))
    n2 = b.op(f"fsub float {n}, {n1}")
    return b.op(f"fmul float {b.op(f'fmul float {y}, {_pow2(b, n1)}')}, {_pow2(b, n2)}")


def exp_f32(b: FnBuilder, x: str) -> str:
    xc = _intrin(b, "minnum", _intrin(b, "maxnum", x, _c(-104.0)), _c(89.0))
    n = _intrin(b, "rint", b.op(f"fmul float {xc}, {_c(1.44269504088896341)}"))
    r = _fma(b, n, _c(-0.693359375), xc)
    r = _fma(b, n, _c(2.12194440e-4), r)
    p = _c(_EXP_P[0])
    for c in _EXP_P[1:]:
        p = _fma(b, p, r, _c(c))
    r2 = b.op(f"fmul float {r}, {r}")
    y = b.op(f"fadd float {_fma(b, p, r2, r)}, {_c(1.0)}")
    y = _scale_pow2(b, y, n)
    nan = b.op(f"fcmp uno float {x}, 0.0")
    return b.op(f"select i1 {nan}, float {x}, float {y}")


def tanh_f32(b: FnBuilder, x: str) -> str:
    ax = _intrin(b, "fabs", x)
    # small: x + x^3 P(x^2)
    z = b.op(f"fmul float {x}, {x}")
    p = _c(_TANH_P[0])
    for c in _TANH_P[1:]:
        p = _fma(b, p, z, _c(c))
    small = _fma(b, b.op(f"fmul float {p}, {z}"), x, x)
    # large: 1 - 2 / (exp(2|x|) + 1), sign of x
    e = exp_f32(b, b.op(f"fmul float {_intrin(b, 'minnum', ax, _c(10.0))}, {_c(2.0)}"))
    e1 = b.op(f"fadd float {e}, {_c(1.0)}")
    q = b.op(f"fdiv float {_c(2.0)}, {e1}")
    big = b.op(f"fsub float {_c(1.0)}, {q}")
    r = b.op(f"select i1 {b.op(f'fcmp olt float {ax}, {_c(0.625)}')}, float {small}, float {big}")
    r = _intrin(b, "copysign", r, x)      # odd function: -0 stays -0
    nan = b.op(f"fcmp uno float {x}, 0.0")
    return b.op(f"select i1 {nan}, float {x}, float {r}")


UNARY_F32 = {"exp": exp_f32, "tanh": tanh_f32}


def fast_rule(op: str):
    """A scalar rule (scalar_ops signature) for float32-computed dtypes, or None."""
    fn = UNARY_F32.get(op)
    if fn is None:
        return None

    def rule(b, args, ins, out, attrs):
        return fn(b, args[0])
    return rule
