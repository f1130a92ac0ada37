"""Hypothesis-generated programs through the CUDA backend's emulator, forward AND gradient, in
float32, float16 and bfloat16, against the interpreter on the same program (both compute halves
in float32 and round after each primitive, so the tolerance is a few half ulps)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sporeflow as sf
from sporeflow import ops

UNARY = {"tanh": ops.tanh, "sigmoid": ops.sigmoid, "exp_neg_sq": lambda v: ops.exp(-v * v),
         "relu": ops.relu, "sin": ops.sin, "square": lambda v: v * v, "softplus": lambda v: ops.log(1 + ops.exp(v))}
REDUCE = {"sum": lambda v: v.sum(), "mean_rows_then_max": lambda v: v.mean(-1).max(),
          "softmax_pick": lambda v: ops.softmax(v, -1)[..., 0].sum()}
TOL = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 8e-2}


@st.composite
def programs(draw):
    chain = draw(st.lists(st.sampled_from(sorted(UNARY)), min_size=1, max_size=4))
    red = draw(st.sampled_from(sorted(REDUCE)))
    shape = draw(st.sampled_from([(3, 5), (2, 33), (4, 1)]))
    return chain, red, shape


@pytest.mark.parametrize("dtype", [sf.float32, sf.float16, sf.bfloat16])
@settings(max_examples=2)
@given(prog=programs(), seed=st.integers(0, 2 ** 16))
def test_generated_programs_forward_and_grad_match_interpreter(dtype, prog, seed):
    chain, red, shape = prog

    def f(x, w):
        h = x * w
        for name in chain:
            h = UNARY[name](h)
        return REDUCE[red](h)

    rng = np.random.default_rng(seed)
    x = sf.Tensor(rng.uniform(-1.5, 1.5, shape).astype(np.float32)).astype(dtype)
    w = sf.Tensor(rng.uniform(0.5, 1.5, shape[-1:]).astype(np.float32)).astype(dtype)
    vg = sf.value_and_grad(f, grad_position=(0, 1))
    (v_e, (gx_e, gw_e)) = sf.jit(vg, backend="cuda-emulated")(x, w)
    (v_i, (gx_i, gw_i)) = sf.jit(vg, backend="interp")(x, w)
    tol = TOL[dtype.name]
    for got, want in ((v_e, v_i), (gx_e, gx_i), (gw_e, gw_i)):
        assert got.dtype is want.dtype is dtype
        g, r = got.astype(sf.float32).asnumpy(), want.astype(sf.float32).asnumpy()
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * max(1.0, float(np.abs(r).max())))
