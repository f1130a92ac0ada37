"""Accuracy of the LLVM backend's polynomial math (backends/llvm/mathfns.py) against float64
references, and its special values (NaN, +-Inf, +-0, subnormals, overflow/underflow edges)
against numpy. Documented bound: float32 results within 1 ulp of the float64 reference
(measured: correctly rounded, 0.5 ulp, on these samples; numpy's own float32 functions are at
1.4-3.5 ulp), 2 ulp for the float32 fast tier (exp, tanh, erf: measured 0.96/1.13/1.07);
float64 within 8 ulp of libm (measured 1-5)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sporeflow.backends import get_backend
from sporeflow.backends.llvm.math_f32 import UNARY_F32
from sporeflow.ir import GraphBuilder, TensorType, dtypes as D

rng = np.random.default_rng(0)
SAMPLES = {
    "exp": np.concatenate([rng.uniform(-104, 88.7, 20000), rng.uniform(-1, 1, 5000)]),
    "log": np.concatenate([np.exp(rng.uniform(-100, 88, 20000)), rng.uniform(0.5, 2, 5000), [1e-45, 1e-40]]),
    "tanh": np.concatenate([rng.uniform(-10, 10, 20000), rng.uniform(-1e-3, 1e-3, 5000)]),
    "sin": np.concatenate([rng.uniform(-100, 100, 20000), rng.uniform(-1e5, 1e5, 5000), rng.uniform(-1e7, 1e7, 200)]),
    "cos": np.concatenate([rng.uniform(-100, 100, 20000), rng.uniform(-1e5, 1e5, 5000), rng.uniform(-1e7, 1e7, 200)]),
    "erf": np.concatenate([rng.uniform(-7, 7, 20000), rng.uniform(-1e-3, 1e-3, 5000)]),
}
REF = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "erf": np.vectorize(math.erf)}
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-40, 1.0, -1.0, 88.72, 88.73, -87.5,
                    -103.9, -104.0, 710.0, -746.0, 1e30, -1e30, 3.4e38, 0.5, 20.5, -20.5, 6.5, 1e7])


def run_unary(op, x, dt):
    b = GraphBuilder("m")
    v = b.add_input(TensorType(x.shape, dt))
    g = b.finish([b.emit(op, [v])[0]])
    return get_backend("llvm").compile(g)(x)[0]


def ulp_error_f32(got, exact):
    r = exact.astype(np.float32)
    sp = np.spacing(np.abs(r)).astype(np.float64)
    fin = np.isfinite(r)
    return np.max(np.abs(got[fin].astype(np.float64) - exact[fin]) / sp[fin], initial=0.0)


# float32 exp/tanh/erf/log take the single-precision fast tier (math_f32.py) in every kernel,
# fused or not; the rest widen to the double accurate tier.
F32_ULP = {op: 2.0 if op in UNARY_F32 else 1.0 for op in SAMPLES}


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_float32_ulp_bound(op):
    x = SAMPLES[op].astype(np.float32)
    with np.errstate(all="ignore"):
        exact = REF[op](x.astype(np.float64))
    assert ulp_error_f32(run_unary(op, x, D.float32), exact) <= F32_ULP[op]


def test_float32_erf_dense_and_at_its_piece_edges():
    """erf_f32 switches polynomial at 0.921875 and saturates at 3.921875: every float around
    both edges, and a dense sweep, stay within the fast tier's bound."""
    edges = [np.float32(e) for e in (0.921875, 3.921875)]
    near = np.concatenate([e + np.spacing(e) * np.arange(-300, 300, dtype=np.float32) for e in edges])
    x = np.concatenate([np.linspace(-5, 5, 400001, dtype=np.float32), near, -near])
    exact = np.vectorize(math.erf)(x.astype(np.float64))
    assert ulp_error_f32(run_unary("erf", x, D.float32), exact) <= F32_ULP["erf"]


def test_float32_log_over_a_whole_binade_subnormals_and_its_switch_point():
    """log_f32 splits x into 2^e m with m in [sqrt(1/2), sqrt(2)): every 5th float of [0.5, 2),
    every float within 300 ulp of sqrt(1/2) and sqrt(2), and subnormals (scaled before the split)."""
    bits = lambda v: np.float32(v).view(np.int32)     # noqa: E731
    edges = [np.arange(bits(e) - 300, bits(e) + 300, dtype=np.int32) for e in (np.sqrt(0.5), np.sqrt(2.0))]
    x = np.concatenate([np.arange(bits(0.5), bits(2.0), 5, dtype=np.int32), *edges,
                        np.arange(1, 1 << 23, 4099, dtype=np.int32)]).view(np.float32)
    exact = np.log(x.astype(np.float64))
    assert ulp_error_f32(run_unary("log", x, D.float32), exact) <= F32_ULP["log"]


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_float64_within_8_ulp(op):
    x = SAMPLES[op]
    got, want = run_unary(op, x, D.float64), REF[op](x)
    fin = np.isfinite(want) & (want != 0)
    assert np.max(np.abs(got[fin] - want[fin]) / np.spacing(np.abs(want[fin]))) <= 8


@pytest.mark.parametrize("dt", [D.float32, D.float64])
@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_special_values(op, dt):
    x = SPECIAL.astype(dt.storage)
    got = run_unary(op, x, dt)
    with np.errstate(all="ignore"):
        want = REF[op](x.astype(np.float64)).astype(dt.storage)
    assert (np.isnan(got) == np.isnan(want)).all(), (x, got, want)
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=4 * np.finfo(dt.storage).eps, atol=0)
    assert (np.signbit(got[ok]) == np.signbit(want[ok])).all(), (x, got, want)   # -0 stays -0


def test_pow_special_cases_match_numpy():
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1e-40, 1e30],
                    np.float32)
    xx, yy = (a.reshape(-1) for a in np.meshgrid(vals, vals, indexing="ij"))
    b = GraphBuilder("p")
    x, y = b.add_input(TensorType(xx.shape, D.float32)), b.add_input(TensorType(yy.shape, D.float32))
    g = b.finish([b.emit("pow", [x, y])[0]])
    got = get_backend("llvm").compile(g)(xx, yy)[0]
    with np.errstate(all="ignore"):
        want = np.power(xx, yy)
    assert (np.isnan(got) == np.isnan(want)).all(), [(a, c, d, e) for a, c, d, e in zip(xx, yy, got, want)
                                                      if np.isnan(d) != np.isnan(e)]
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=4e-7, atol=0)
    assert (np.signbit(got[ok]) == np.signbit(want[ok])).all()


def test_exp_kernel_is_vectorized_and_calls_no_libm():
    """The polynomial exp is inlined and vectorized: no scalar libm calls in the loop."""
    b = GraphBuilder("vexp")
    v = b.add_input(TensorType((4096,), D.float32))
    exe = get_backend("llvm").compile(b.finish([b.emit("exp", [v])[0]]))
    asm = exe.asm
    assert "exp" not in " ".join(l for l in asm.splitlines() if "call" in l)
    assert "ymm" in asm or "zmm" in asm
