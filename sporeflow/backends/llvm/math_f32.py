"""Single-precision exp, tanh, erf and log for float32-computed kernels (the fast tier).

mathfns.py (the accurate tier) evaluates every function in double: within 1 ulp, but a zmm
register holds 8 doubles instead of 16 floats and the polynomials are degree 13+, which made
the gelu*sigmoid chain ~8x slower than a float32 polynomial (measured: 7.2 ms vs 0.9 ms for
1M elements on one core; a lone float32 erf took 41 ms per 1M in its continued fraction).
Every float32/half kernel, fused or a single op, uses these (scalar_ops.scalar_rule), so
fusing an op never changes its bits; float64 keeps the accurate tier (backend-derisk.md 1b):

  exp   Cephes expf: n = round(x log2 e) by adding 1.5*2^23 (n's integer bits come with it),
        r = x - n ln2 (two-part, FMA), the degree-5 polynomial by Estrin's scheme, then 2^n so
        overflow gives +inf and underflow subnormals/0. With AVX-512, 2^n is one `llvm.ldexp`
        (one vscalefps); elsewhere ldexp would be a libcall per element, so 2^n is applied in
        two halves built from exponent bits. The kernels it sits in are latency chains (see
        fused._latency_interleave), so depth counts more than op count: the chain at 1M on one
        AVX2 Zen 3 core went from 1.9-2.1 ms (Horner, float->int conversions, NaN select) to 1.5-1.6.
        Max error 1 ulp over normal results (tests/test_fusion_llvm.py checks <= 2 ulp); subnormal
        results within one subnormal step.
  tanh  |x| < 0.625: Cephes tanhf odd polynomial; else 1 - 2/(exp(2|x|) + 1); sign restored;
        +-1 for large |x|. Max error 1 ulp (same test).
  erf   x + x Q(x^2) below 0.92, 1 - exp(-x^2) R(1/x) up to 3.92, +-1 beyond (see _ERF_Q).
  log   Cephes logf: e and m from x's bits (subnormals scaled by 2^23 first), e ln2 in two
        parts plus log(1 + f), f = m - 1. Max error 0.80 ulp over 4.5M floats (every 7th float of
        [0.5, 2), log-uniform over the normal range, subnormals); 0.39 against 1.13 ms per 1M on
        one core (the accurate tier in double).
NaN, +-inf and -0 are handled with explicit selects or flow through (no fast-math assumptions); FMAs are
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


# 1.5 * 2^23: t = m + MAGIC (m = x*log2e) rounds m to an integer n (ties to even, as rint) and
# leaves n + 2^22 in t's low mantissa bits, so bitcast(t) = MAGIC_BITS + n: the integer n with
# no float->int conversion (fptosi of a NaN is poison; these integer ops are always defined).
_MAGIC = 12582912.0
_MAGIC_BITS = 0x4B400000


def _horner(b: FnBuilder, coeffs: list[float], t: str) -> str:
    """coeffs[0] + coeffs[1] t + ... with FMAs."""
    p = _c(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = _fma(b, p, t, _c(c))
    return p


def _clamp_keep_nan(b: FnBuilder, x: str, lo: float, hi: float) -> str:
    """min(max(x, lo), hi) with NaN passed through: each is one vmaxps/vminps with x as the
    operand x86 returns on NaN, where minnum/maxnum map NaN to the bound."""
    y = b.op(f"select i1 {b.op(f'fcmp olt float {x}, {_c(lo)}')}, float {_c(lo)}, float {x}")
    return b.op(f"select i1 {b.op(f'fcmp ogt float {y}, {_c(hi)}')}, float {_c(hi)}, float {y}")


def _scale_pow2(b: FnBuilder, q: str, tbits: str) -> str:
    """(1 + q) * 2^n for n in [-150, 128] (tbits = MAGIC_BITS + n), overflow to inf, underflow
    to subnormals. With AVX-512 it is one `llvm.ldexp` (one vscalefps: the gelu*sigmoid chain at
    1M on a Zen 4 went from 0.52 to 0.41 ms against the two-halves form); elsewhere ldexp is a
    libcall per element, so the value is scaled by 2^h and 2^(n-h), h = floor(n/2), both normal
    powers built from exponent bits. (1 + q) * 2^h is one exact-scaling FMA (its result stays
    normal), so the `1 +` costs no extra step of latency; one rounding in all. NaN stays NaN."""
    if hostcpu.host().has("avx512f"):
        b.module.declare("declare float @llvm.ldexp.f32.i32(float, i32)")
        y = b.op(f"fadd float {q}, {_c(1.0)}")
        return b.op(f"call float @llvm.ldexp.f32.i32(float {y}, i32 {b.op(f'sub i32 {tbits}, {_MAGIC_BITS}')})")
    # MAGIC_BITS and MAGIC_BITS/2 have their low 9 bits clear and the exponent field keeps only
    # those, so (tbits >> 1) + 127 and tbits - (tbits >> 1) + 127 need no MAGIC_BITS taken off
    h = b.op(f"lshr i32 {tbits}, 1")
    e1 = b.op(f"add i32 {h}, 127")
    e2 = b.op(f"sub i32 {b.op(f'add i32 {tbits}, 127')}, {h}")
    p1, p2 = (b.op(f"bitcast i32 {b.op(f'shl i32 {e}, 23')} to float") for e in (e1, e2))
    return b.op(f"fmul float {_fma(b, q, p1, p1)}, {p2}")


def exp_f32(b: FnBuilder, x: str) -> str:
    """NaN flows through every step (the clamp keeps it, float ops propagate it), so no select
    at the end: 23 vector ops on AVX2 where the Horner form with float->int conversions and the
    NaN select took 26.
    n = rint(m) is on the critical path and m + MAGIC (n's bits, ties to even as rint) beside it."""
    xc = _clamp_keep_nan(b, x, -104.0, 89.0)
    m = b.op(f"fmul float {xc}, {_c(1.44269504088896341)}")
    n = _intrin(b, "rint", m)
    tbits = b.op(f"bitcast float {b.op(f'fadd float {m}, {_c(_MAGIC)}')} to i32")
    r = _fma(b, n, _c(-0.693359375), xc)
    r = _fma(b, n, _c(2.12194440e-4), r)
    # Estrin's scheme: three dependent FMAs where Horner's has five (the chain is latency-bound)
    c = [_c(v) for v in reversed(_EXP_P)]          # c[k] multiplies r^k
    e01, e23, e45 = (_fma(b, c[k + 1], r, c[k]) for k in (0, 2, 4))
    r2 = b.op(f"fmul float {r}, {r}")
    p = _fma(b, e45, b.op(f"fmul float {r2}, {r2}"), _fma(b, e23, r2, e01))
    return _scale_pow2(b, _fma(b, p, r2, r), tbits)


def tanh_f32(b: FnBuilder, x: str) -> str:
    ax = _intrin(b, "fabs", x)
    # small: x + x^3 P(x^2)
    z = b.op(f"fmul float {x}, {x}")
    p = _horner(b, _TANH_P[::-1], z)
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


# erf: x + x Q(x^2) below 0.921875 (x + x Q in one FMA: writing it x P(x^2) rounds P near 1.128
# and cost 2.25 ulp); above, 1 - exp(-x^2) R(1/x) (one FMA), R a polynomial in t = 1/x on
# [0.25, 1.085] (erfc e^(x^2) ~ t/sqrt(pi) is smooth in t, where in x it behaves like 1/x and
# needs twice the degree); +-1 from 3.921875 on, where erf rounds to 1. Least-squares fits on
# Chebyshev nodes against mpmath, weighted by each piece's share of erf's error: 0.79 and 0.88
# ulp in a float32 emulation; the LLVM kernel is checked <= 2 ulp (tests/test_llvm_math.py).
_ERF_SMALL = 0.921875
_ERF_ONE = 3.921875
_ERF_Q = [0.12837916612625122, -0.37612634897232056, 0.11283708363771439, -0.026859957724809647,
          0.0052021765150129795, -0.0008153788512572646, 8.411055750912055e-05]
_ERF_R = [-9.787094313651323e-05, 0.562120795249939, 0.0331033393740654, -0.46630600094795227,
          0.5245421528816223, -0.31543615460395813, 0.1047864630818367, -0.015129147097468376]


def erf_f32(b: FnBuilder, x: str) -> str:
    """Both pieces are computed and one selected (vector code has no per-lane branch); the large
    piece's argument is clamped into its interval so its unused lanes stay finite."""
    ax = _intrin(b, "fabs", x)
    small = _fma(b, x, _horner(b, _ERF_Q, b.op(f"fmul float {x}, {x}")), x)
    a = _intrin(b, "maxnum", _intrin(b, "minnum", ax, _c(_ERF_ONE)), _c(_ERF_SMALL))
    e = exp_f32(b, b.op(f"fneg float {b.op(f'fmul float {a}, {a}')}"))
    r = _horner(b, _ERF_R, b.op(f"fdiv float {_c(1.0)}, {a}"))
    big = _fma(b, b.op(f"fneg float {e}"), r, _c(1.0))
    big = b.op(f"select i1 {b.op(f'fcmp oge float {ax}, {_c(_ERF_ONE)}')}, float {_c(1.0)}, float {big}")
    big = _intrin(b, "copysign", big, x)
    r = b.op(f"select i1 {b.op(f'fcmp olt float {ax}, {_c(_ERF_SMALL)}')}, float {small}, float {big}")
    nan = b.op(f"fcmp uno float {x}, 0.0")
    return b.op(f"select i1 {nan}, float {x}, float {r}")


# log: Cephes logf's polynomial, log(1 + f) = f - f^2/2 + f^3 P(f) for f = m - 1, m in
# [sqrt(1/2), sqrt(2)); the exponent and mantissa come from integer ops on the bits
_LOG_P = [3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1,
          -1.2420140846e-1, 1.1676998740e-1, -1.1514610310e-1, 7.0376836292e-2]
_SQRT_HALF_BITS = 0x3F3504F3
_SUBNORMAL_SCALE = 2.0 ** 23
_FLT_MIN = 2.0 ** -126


def log_f32(b: FnBuilder, x: str) -> str:
    """Subnormals are scaled by 2^23 first (their exponent field is 0). e = the exponent of x
    relative to sqrt(1/2), m = x / 2^e in [sqrt(1/2), sqrt(2)) (both from x's bits minus
    sqrt(1/2)'s), then e ln2 (two-part) + log(m). x < 0 and NaN give NaN, 0 gives -inf, +inf
    stays +inf: selects at the end, as no step below is defined for them."""
    tiny = b.op(f"fcmp olt float {x}, {_c(_FLT_MIN)}")
    xs = b.op(f"select i1 {tiny}, float {b.op(f'fmul float {x}, {_c(_SUBNORMAL_SCALE)}')}, float {x}")
    rel = b.op(f"sub i32 {b.op(f'bitcast float {xs} to i32')}, {_SQRT_HALF_BITS}")
    e_int = b.op(f"sub i32 {b.op(f'ashr i32 {rel}, 23')}, {b.op(f'select i1 {tiny}, i32 23, i32 0')}")
    m_bits = b.op(f"add i32 {b.op(f'and i32 {rel}, 8388607')}, {_SQRT_HALF_BITS}")
    f = b.op(f"fsub float {b.op(f'bitcast i32 {m_bits} to float')}, {_c(1.0)}")
    e = b.op(f"sitofp i32 {e_int} to float")
    z = b.op(f"fmul float {f}, {f}")
    y = b.op(f"fmul float {b.op(f'fmul float {_horner(b, _LOG_P, f)}, {f}')}, {z}")     # f^3 P(f)
    y = _fma(b, e, _c(-2.12194440e-4), y)
    y = _fma(b, z, _c(-0.5), y)
    r = _fma(b, e, _c(0.693359375), b.op(f"fadd float {f}, {y}"))
    inf, ninf, nan = _c(float("inf")), _c(float("-inf")), _c(float("nan"))
    r = b.op(f"select i1 {b.op(f'fcmp oeq float {x}, {inf}')}, float {x}, float {r}")
    r = b.op(f"select i1 {b.op(f'fcmp oeq float {x}, 0.0')}, float {ninf}, float {r}")
    bad = b.op(f"fcmp ult float {x}, 0.0")             # x < 0 or NaN
    return b.op(f"select i1 {bad}, float {nan}, float {r}")


UNARY_F32 = {"exp": exp_f32, "tanh": tanh_f32, "erf": erf_f32, "log": log_f32}


def fast_rule(op: str):
    """A scalar rule (scalar_ops signature) for float32-computed dtypes, or None."""
    fn = UNARY_F32.get(op)
    if fn is None:
        return None

    def rule(b, args, ins, out, attrs):
        return fn(b, args[0])
    return rule
