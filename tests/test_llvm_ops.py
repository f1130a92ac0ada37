"""Every primitive on the LLVM backend equals the interpreter, over hypothesis-drawn shapes,
dtypes, attributes and data with special values (NaN, +-Inf, +-0, subnormals, large/small
magnitudes) mixed in.

Compile time dominates, so each hypothesis example puts several drawn cases of one op into one
graph and compiles it once. Tolerances (documented per dtype in `TOL`): integers, bools and
pure data movement are bit-exact; float arithmetic (+ - * /, casts, compares, select, min/max,
floor...) is bit-exact too (same IEEE operations, half types rounded once per primitive as
ir/dtypes.py does); transcendental functions are within 4 ulp of the float32 result (numpy's
own float32 exp/log/sin are within 1-4 ulp; ours are computed in double and rounded once),
1-2 half ulps for half types; sums, matmul and conv may reorder additions, so their error is
bounded by eps * (number of terms) * magnitude.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sporeflow.backends import get_backend
from sporeflow.backends.llvm import missing_lowerings
from sporeflow.ir import REGISTRY, GraphBuilder, run_graph
from sporeflow.ir import dtypes as D
from sporeflow.ir.types import Attrs

from test_ops_infer import GENERATORS, case, pooled  # the per-op-family generators (shapes, dtypes, attrs)

EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}
TRANSCENDENTAL = {"exp", "log", "tanh", "sin", "cos", "erf", "pow", "fused", "custom_vjp"}  # (the generated bodies use exp)
ACCUMULATING = {"reduce_sum", "matmul", "conv2d", "avg_pool2d", "scatter_add"}
# ulps allowed for transcendental functions, per dtype
TOL = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 64}
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-30, 1e30, -1e30, 1e-7, 88.5, -104.0, 710.0]
MILD_SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40]   # for ops that reassociate sums


def sprinkle(rng, arrays, types, op, attrs=None):
    """Replace some float elements by special values (stored in each dtype's format)."""
    specials = MILD_SPECIALS if op in ACCUMULATING else SPECIALS
    out = []
    for a, t in zip(arrays, types):
        if t.dtype.is_float and a.size:
            c = np.array(D.to_compute(np.asarray(a), t.dtype), dtype=np.float64)
            mask = rng.random(c.shape) < 0.3
            c[mask] = rng.choice(specials, size=int(mask.sum()))
            with np.errstate(all="ignore"):
                a = D.from_compute(c, t.dtype)
        out.append(np.asarray(a, dtype=t.dtype.storage))
    if op == "max_pool2d_grad":       # y must stay max_pool2d(x), specials included
        out[1] = pooled(out[0], types[0], attrs)
    return out


def as_float(a, dt):
    return np.array(D.to_compute(np.asarray(a), dt), dtype=np.float64)


def assert_close(op, got, ref, dt, scale=0.0, what=""):
    assert got.shape == ref.shape and got.dtype == ref.dtype, f"{what}: {got.dtype}{got.shape} vs {ref.dtype}{ref.shape}"
    if not dt.is_float or (op not in TRANSCENDENTAL and op not in ACCUMULATING):
        if dt.is_float:
            g, r = as_float(got, dt), as_float(ref, dt)
            same = ((g == r) & (np.signbit(g) == np.signbit(r))) | (np.isnan(g) & np.isnan(r))
            assert same.all(), f"{what}: not bit-exact at {np.argwhere(~same)[:5].tolist()}: {g[~same][:5]} vs {r[~same][:5]}"
        else:
            np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    g, r = as_float(got, dt), as_float(ref, dt)
    assert (np.isnan(g) == np.isnan(r)).all(), f"{what}: NaN positions differ: {g} vs {r}"
    fin = np.isfinite(r) & np.isfinite(g)
    assert ((g == r) | fin | np.isnan(r)).all(), f"{what}: infinities differ: {g} vs {r}"
    eps = EPS[dt.name]
    rtol = TOL[dt.name] * eps if op in TRANSCENDENTAL else 8 * eps
    atol = np.finfo(np.float32).tiny if op in TRANSCENDENTAL else 4 * eps * scale + 1e-300
    if op == "pow" and dt.name == "float64":
        rtol = 1e-12
    err = np.abs(g - r)[fin]
    bound = (atol + rtol * np.abs(r))[fin]
    assert (err <= bound).all(), f"{what}: max error {np.max(err - bound)} over bound; got {g[fin][err > bound][:5]} ref {r[fin][err > bound][:5]}"


def _scale(op, types, arrays, attrs) -> float:
    """Magnitude bound of an accumulating op's result: sum over the terms of |term|."""
    fl = [np.nan_to_num(as_float(a, t.dtype), nan=0, posinf=0, neginf=0) for a, t in zip(arrays, types)
          if t.dtype.is_float]
    if not fl:
        return 0.0
    m = max(float(np.max(np.abs(f))) if f.size else 0.0 for f in fl)
    n = max(int(np.prod(t.shape)) for t in types) or 1
    return (m * m if op in ("matmul", "conv2d") else m) * n


def build(op, cases):
    b = GraphBuilder(f"many_{op}")
    outs, feeds, meta = [], [], []
    for types, attrs, arrays in cases:
        ins = [b.add_input(t) for t in types]
        res = b.emit(op, ins, Attrs(attrs))
        outs += res
        feeds += arrays
        meta += [(types, attrs, arrays)] * len(res)
    return b.finish(outs), feeds, meta


def test_every_primitive_has_an_llvm_lowering():
    assert missing_lowerings() == []
    assert all("llvm" in REGISTRY[n].lower for n in GENERATORS)


def test_lowering_table_refuses_an_op_named_twice():
    """One entry per op: two kernel modules lowering the same op fail when the table is built
    (the winner used to be whichever dict was merged last)."""
    from sporeflow.backends.base import lowering_table
    from sporeflow.backends.llvm import LOWERINGS, conv, gemm, kernels_nn
    from sporeflow.errors import BackendError
    assert LOWERINGS["matmul"] is gemm.lower_matmul and LOWERINGS["conv2d"] is conv.lower_conv2d
    with pytest.raises(BackendError, match="two lowerings for 'matmul'"):
        lowering_table("llvm", gemm.RULES, {"matmul": kernels_nn.lower_matmul})


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_primitive_matches_interpreter(op):

    @settings(max_examples=2)
    @given(st.lists(case(op), min_size=6, max_size=10), st.integers(0, 2 ** 31))
    def check(cases, seed):
        rng = np.random.default_rng(seed)
        cases = [(t, a, sprinkle(rng, arr, t, op, a)) for t, a, arr in cases]
        g, feeds, meta = build(op, cases)
        ref = run_graph(g, feeds)
        got = get_backend("llvm").compile(g)(*feeds)
        if op == "max_pool2d_grad":    # the cases reach the gradient (not all windows miss)
            assert any(np.any(as_float(r, v.dtype) != 0) for r, v in zip(ref, g.outputs))
        for k, (r, x, v) in enumerate(zip(ref, got, g.outputs)):
            types, attrs, arrays = meta[k]
            what = f"{op} case {k}: {[str(t) for t in types]} {attrs} inputs={arrays}"
            assert_close(op, x, r, v.dtype, _scale(op, types, arrays, attrs), what)
    check()
