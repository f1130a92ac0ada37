"""Transcendental functions emitted as straight-line IR (no libm calls on the hot path).

LLVM's math intrinsics become scalar libm calls on x86 (backend-derisk.md 1b), so these are
written out. Every function works in double precision (float32/half inputs are widened and
the result rounded once), with classic range reductions and truncated Taylor/continued-fraction
series whose truncation error is below 1e-16 relative:

  exp     n = rint(x/ln2), Cody-Waite r, Taylor degree 13, 2^n applied in two halves
          (so overflow gives inf and underflow gives subnormals / 0 correctly)
  expm1   Taylor degree 15 for |x| < 0.34, else exp(x) - 1
  log     x = m 2^e, m in [sqrt(1/2), sqrt(2)), atanh series of (m-1)/(m+1) to s^11;
          double subnormals are prescaled by 2^54
  tanh    expm1(2|x|) / (expm1(2|x|) + 2), sign restored, +-1 beyond |x| > 20
  sin/cos n = rint(x 2/pi), three-part pi/2 (exact products for n < 2^20), Taylor degree
          21/20; |x| > 2^19 takes a branch to libm (rare, and it keeps full accuracy)
  erf     Taylor (34 terms) for |x| < 2, continued fraction of erfc (64 terms) above, +-1
          beyond 6
  pow     exp(y log|x|) with C99's special cases (signs, zeros, infinities, x = 1, y = 0)

Measured bound (tests/test_llvm_math.py): float32 results within 1 ulp of the correctly rounded
value (numpy's own float32 functions are within 1-4 ulp, so LLVM-vs-interpreter tolerance is
4 ulp); float64 within 8 ulp except pow, whose error grows as |y log x| * 2^-53.
Flags: only `contract` (measured safe in backend-derisk.md); NaN/inf/-0 are handled by
explicit selects, never by fast-math assumptions.
"""
from __future__ import annotations

import math

from .irgen import FnBuilder, fconst

F = "contract"
D = "double"


def _c(x: float) -> str:
    return fconst(x, D)


def _intrin(b: FnBuilder, name: str, *args: str) -> str:
    return b.intrinsic(name, D, *args)


def fma(b: FnBuilder, a: str, x: str, c: str) -> str:
    return _intrin(b, "fmuladd", a, x, c)


def horner(b: FnBuilder, coeffs: list[float], x: str) -> str:
    """coeffs[0] + coeffs[1] x + ... evaluated with fmuladd."""
    p = _c(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = fma(b, p, x, _c(c))
    return p


def fbin(b: FnBuilder, op: str, x: str, y: str) -> str:
    return b.op(f"{op} {F} {D} {x}, {y}")


def sel(b: FnBuilder, c: str, x: str, y: str, ty: str = D) -> str:
    return b.op(f"select i1 {c}, {ty} {x}, {ty} {y}")


def cmp(b: FnBuilder, pred: str, x: str, y: str) -> str:
    return b.op(f"fcmp {pred} {D} {x}, {y}")


def is_nan(b: FnBuilder, x: str) -> str:
    return b.op(f"fcmp uno {D} {x}, 0.0")


def pow2i(b: FnBuilder, n: str) -> str:
    """2^n for an i64 n in [-1022, 1023], as a double."""
    e = b.op(f"add i64 {n}, 1023")
    e = b.op(f"shl i64 {e}, 52")
    return b.op(f"bitcast i64 {e} to double")


_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_EXP_TAYLOR = [1.0 / math.factorial(k) for k in range(14)]


def exp(b: FnBuilder, x: str) -> str:
    xc = _intrin(b, "minnum", x, _c(710.0))
    xc = _intrin(b, "maxnum", xc, _c(-746.0))       # also turns NaN into a number (fixed below)
    n = _intrin(b, "rint", fbin(b, "fmul", xc, _c(1.4426950408889634)))
    r = fma(b, n, _c(-_LN2_HI), xc)
    r = fma(b, n, _c(-_LN2_LO), r)
    p = horner(b, _EXP_TAYLOR, r)
    ni = b.op(f"fptosi double {n} to i64")
    n1 = b.op(f"ashr i64 {ni}, 1")
    n2 = b.op(f"sub i64 {ni}, {n1}")
    y = fbin(b, "fmul", fbin(b, "fmul", p, pow2i(b, n1)), pow2i(b, n2))
    return sel(b, is_nan(b, x), x, y)


_EXPM1_TAYLOR = [0.0] + [1.0 / math.factorial(k) for k in range(1, 16)]


def expm1(b: FnBuilder, x: str) -> str:
    small = horner(b, _EXPM1_TAYLOR, x)
    big = fbin(b, "fsub", exp(b, x), _c(1.0))
    ax = _intrin(b, "fabs", x)
    return sel(b, cmp(b, "olt", ax, _c(0.34)), small, big)


def tanh(b: FnBuilder, x: str) -> str:
    ax = _intrin(b, "fabs", x)
    e = expm1(b, fbin(b, "fmul", ax, _c(2.0)))
    t = fbin(b, "fdiv", e, fbin(b, "fadd", e, _c(2.0)))
    t = sel(b, cmp(b, "ogt", ax, _c(20.0)), _c(1.0), t)
    return _intrin(b, "copysign", t, x)


_LOG_SERIES = [2.0 / (2 * k + 1) for k in range(12)]


def log(b: FnBuilder, x: str) -> str:
    tiny = cmp(b, "olt", x, _c(2.2250738585072014e-308))
    xs = sel(b, tiny, fbin(b, "fmul", x, _c(2.0 ** 54)), x)
    bits = b.op(f"bitcast double {xs} to i64")
    e = b.op(f"lshr i64 {bits}, 52")
    e = b.op(f"and i64 {e}, 2047")
    e = b.op(f"sub i64 {e}, 1023")
    e = b.op(f"select i1 {tiny}, i64 {b.op(f'sub i64 {e}, 54')}, i64 {e}")
    mb = b.op(f"and i64 {bits}, 4503599627370495")
    mb = b.op(f"or i64 {mb}, 4607182418800017408")
    m = b.op(f"bitcast i64 {mb} to double")
    big = cmp(b, "ogt", m, _c(math.sqrt(2.0)))
    m = sel(b, big, fbin(b, "fmul", m, _c(0.5)), m)
    e = b.op(f"select i1 {big}, i64 {b.op(f'add i64 {e}, 1')}, i64 {e}")
    f = fbin(b, "fdiv", fbin(b, "fsub", m, _c(1.0)), fbin(b, "fadd", m, _c(1.0)))
    s = fbin(b, "fmul", f, f)
    lm = fbin(b, "fmul", f, horner(b, _LOG_SERIES, s))
    ed = b.op(f"sitofp i64 {e} to double")
    y = fma(b, ed, _c(_LN2_HI), fma(b, ed, _c(_LN2_LO), lm))
    # special values: x<0 -> nan, 0 -> -inf, inf -> inf, nan -> nan
    y = sel(b, cmp(b, "oeq", x, _c(0.0)), _c(-math.inf), y)
    y = sel(b, cmp(b, "oeq", x, _c(math.inf)), x, y)
    return sel(b, cmp(b, "ult", x, _c(0.0)), _c(math.nan), y)


def _split_pio2() -> tuple[float, float, float]:
    """pi/2 as three doubles whose first two have 33 significant bits (n*P exact, n < 2^20)."""
    from fractions import Fraction
    pi = Fraction("3.14159265358979323846264338327950288419716939937510582097494459230781640628")
    rest = pi / 2
    parts = []
    for bits in (33, 33, 53):
        e = math.frexp(float(rest))[1]
        q = Fraction(round(rest * 2 ** (bits - e)), 2 ** (bits - e))
        parts.append(float(q))
        rest -= q
    return tuple(parts)


_P1, _P2, _P3 = _split_pio2()
_SIN = [((-1) ** (k // 2)) / math.factorial(k) if k % 2 else 0.0 for k in range(22)]
_COS = [((-1) ** (k // 2)) / math.factorial(k) if k % 2 == 0 else 0.0 for k in range(21)]
_SINCOS_LIMIT = 2.0 ** 19


def _sincos_poly(b: FnBuilder, x: str) -> tuple[str, str, str]:
    """(sin r, cos r, quadrant i64) for the reduced argument of x (|x| <= limit)."""
    n = _intrin(b, "rint", fbin(b, "fmul", x, _c(2 / math.pi)))
    r = fma(b, n, _c(-_P1), x)
    r = fma(b, n, _c(-_P2), r)
    r = fma(b, n, _c(-_P3), r)
    r2 = fbin(b, "fmul", r, r)
    s = fbin(b, "fmul", r, horner(b, [_SIN[k] for k in range(1, 22, 2)], r2))
    c = horner(b, [_COS[k] for k in range(0, 21, 2)], r2)
    q = b.op(f"and i64 {b.op(f'fptosi double {n} to i64')}, 3")
    return s, c, q


def _quadrant(b: FnBuilder, q: str, vals: list[str]) -> str:
    out = vals[3]
    for k in (2, 1, 0):
        out = sel(b, b.op(f"icmp eq i64 {q}, {k}"), vals[k], out)
    return out


def _sincos(b: FnBuilder, x: str, which: str) -> str:
    b.module.declare(f"declare double @{which}(double)")
    ax = _intrin(b, "fabs", x)
    ok = cmp(b, "ole", ax, _c(_SINCOS_LIMIT))
    xr = sel(b, ok, x, _c(0.0))
    s, c, q = _sincos_poly(b, xr)
    ns, nc = b.op(f"fneg {D} {s}"), b.op(f"fneg {D} {c}")
    vals = [s, c, ns, nc] if which == "sin" else [c, ns, nc, s]
    fast = _quadrant(b, q, vals)
    if which == "sin":     # sin(x) = x below 2^-26 (exactly rounded; keeps -0 and subnormals)
        fast = sel(b, cmp(b, "olt", ax, _c(2.0 ** -26)), x, fast)
    # rare huge/inf/nan arguments: libm (a branch, so the call only runs when needed)
    pre = b.block
    slow_l, join = b.label("trig_slow"), b.label("trig_join")
    b.emit(f"br i1 {ok}, label %{join}, label %{slow_l}")
    b.start_block(slow_l)
    slow = b.op(f"call double @{which}(double {x})")
    b.br(join)
    b.start_block(join)
    return b.op(f"phi double [{fast}, %{pre}], [{slow}, %{slow_l}]")


def sin(b: FnBuilder, x: str) -> str:
    return _sincos(b, x, "sin")


def cos(b: FnBuilder, x: str) -> str:
    return _sincos(b, x, "cos")


_ERF_TAYLOR = [2 / math.sqrt(math.pi) * (-1) ** k / (math.factorial(k) * (2 * k + 1)) for k in range(35)]


def erf(b: FnBuilder, x: str) -> str:
    ax = _intrin(b, "fabs", x)
    s = fbin(b, "fmul", x, x)
    small = fbin(b, "fmul", x, horner(b, _ERF_TAYLOR, s))
    axc = _intrin(b, "maxnum", ax, _c(2.0))          # keep the fraction finite on the unused lanes
    t = axc
    for k in range(64, 0, -1):
        t = fbin(b, "fadd", axc, fbin(b, "fdiv", _c(k / 2), t))
    e = exp(b, b.op(f"fneg {D} {fbin(b, 'fmul', axc, axc)}"))
    erfc = fbin(b, "fdiv", e, fbin(b, "fmul", t, _c(math.sqrt(math.pi))))
    big = _intrin(b, "copysign", fbin(b, "fsub", _c(1.0), erfc), x)
    big = sel(b, cmp(b, "ogt", ax, _c(6.0)), _intrin(b, "copysign", _c(1.0), x), big)
    return sel(b, cmp(b, "olt", ax, _c(2.0)), small, sel(b, is_nan(b, x), x, big))


def pow_(b: FnBuilder, x: str, y: str) -> str:
    ax = _intrin(b, "fabs", x)
    r = exp(b, fbin(b, "fmul", y, log(b, ax)))
    fy = _intrin(b, "floor", y)
    y_int = cmp(b, "oeq", fy, y)
    half = fbin(b, "fmul", y, _c(0.5))
    y_odd = b.op(f"and i1 {y_int}, {cmp(b, 'une', _intrin(b, 'floor', half), half)}")
    y_odd = b.op(f"and i1 {y_odd}, {cmp(b, 'olt', _intrin(b, 'fabs', y), _c(2.0 ** 53))}")
    xbits = b.op(f"bitcast double {x} to i64")
    xneg = b.op(f"icmp slt i64 {xbits}, 0")
    flip = b.op(f"and i1 {xneg}, {y_odd}")
    r = sel(b, flip, b.op(f"fneg {D} {r}"), r)
    bad = b.op(f"and i1 {cmp(b, 'olt', x, _c(0.0))}, {b.op(f'xor i1 {y_int}, true')}")
    bad = b.op(f"and i1 {bad}, {cmp(b, 'une', ax, _c(math.inf))}")   # (-inf)^y is never nan
    r = sel(b, bad, _c(math.nan), r)
    r = sel(b, cmp(b, "oeq", ax, _c(1.0)), sel(b, cmp(b, "oeq", x, _c(1.0)), _c(1.0),
                                              sel(b, y_int, r, _c(math.nan))), r)
    # x = -1 with y = +-inf is 1 (C99); y = 0 gives 1 even for nan x; x = 1 gives 1 even for nan y
    yinf = cmp(b, "oeq", _intrin(b, "fabs", y), _c(math.inf))
    r = sel(b, b.op(f"and i1 {yinf}, {cmp(b, 'oeq', ax, _c(1.0))}"), _c(1.0), r)
    return sel(b, cmp(b, "oeq", y, _c(0.0)), _c(1.0), r)


UNARY = {"exp": exp, "log": log, "tanh": tanh, "sin": sin, "cos": cos, "erf": erf}
