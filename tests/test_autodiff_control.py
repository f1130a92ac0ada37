"""Autodiff through structured control flow: cond, scan (and ForiLoop), while_loop.
VJP and JVP against finite differences (float64), eagerly and through sf.jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import ops
from sporeflow.errors import SporeflowError
from test_autodiff_rules import check_rules


def vals(draw, shape, lo=-1.0, hi=1.0):
    r = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    return r.uniform(lo, hi, shape)


def cond_fn(x, w):
    """Branch on the sign of sum(x); both branches use x and the closed-over w."""
    return ops.cond(x.sum() > 0, lambda a: (a * a * w, ops.sin(a)), lambda a: (ops.exp(a) * w, a * 3.0), x)


def scan_fn(c0, xs, w):
    """A carry, a per-step input, a closed-over value, an integer counter carry."""
    def body(carry, xt):
        c, k = carry
        c2 = ops.tanh(c * xt + w) + ops.cast(k, sf.float64) * 0.1
        return (c2, k + 1), c2 * xt
    (c, _), ys = ops.Scan()(body, (c0, sf.Tensor(np.int32(0))), xs)
    return c, ys


def scan_rev_fn(c0, xs):
    c, ys = ops.Scan()(lambda c, xt: (ops.sin(c) * xt, c + xt), c0, xs, reverse=True)
    return c, ys


def fori_fn(x):
    return ops.ForiLoop()(0, 3, lambda i, v: v * ops.cos(v) + ops.cast(i, sf.float64), x)


def while_static_fn(x, w):
    def body(s):
        i, y = s
        return i + 1, y * 0.9 + ops.sin(y) * w
    _, y = ops.WhileLoop()(lambda s: s[0] < 4, body, (sf.Tensor(np.int32(0)), x))
    return y


def while_dynamic_fn(x):
    """The trip count depends on x: reverse mode differentiates a bounded masked scan."""
    _, y = ops.WhileLoop()(lambda s: s[1].sum() < 20.0, lambda s: (s[0] + 1, s[1] * 1.5), (sf.Tensor(0), x))
    return y


@pytest.mark.parametrize("jit", [False, True])
@given(data=st.data())
def test_cond(jit, data):
    n = data.draw(st.integers(1, 4))
    x = vals(data.draw, (n,))
    x = x + (0.2 + abs(x.sum())) / n * data.draw(st.sampled_from([-1, 1])) - x.sum() / n * 0  # |sum| >= 0.2
    check_rules(cond_fn, [x, vals(data.draw, (n,))], [True, True], 1e-6, jit=jit)


@pytest.mark.parametrize("jit", [False, True])
@given(data=st.data())
def test_scan(jit, data):
    n, length = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    check_rules(scan_fn, [vals(data.draw, (n,)), vals(data.draw, (length, n)), vals(data.draw, (n,))],
                [True, True, True], 1e-6, jit=jit)


@given(data=st.data())
def test_scan_reverse_and_fori(data):
    n, length = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    check_rules(scan_rev_fn, [vals(data.draw, (n,)), vals(data.draw, (length, n))], [True, True], 1e-6)
    check_rules(fori_fn, [vals(data.draw, (n,))], [True], 1e-6)


@pytest.mark.parametrize("jit", [False, True])
@given(data=st.data())
def test_while_static_trip_count(jit, data):
    n = data.draw(st.integers(1, 3))
    check_rules(while_static_fn, [vals(data.draw, (n,)), vals(data.draw, (n,))], [True, True], 1e-6, jit=jit)


def test_while_dynamic_forward_mode_works():
    x = sf.Tensor(np.array([1.0, 2.0]))
    y, t = sf.jvp(while_dynamic_fn, x, sf.Tensor(np.array([1.0, 0.0])))
    # 3 -> 4.5 -> 6.75 -> 10.125 -> 15.19 -> 22.78: five steps, scale 1.5**5
    np.testing.assert_allclose(y.asnumpy(), np.array([1.0, 2.0]) * 1.5 ** 5)
    np.testing.assert_allclose(t.asnumpy(), [1.5 ** 5, 0.0])
    np.testing.assert_allclose(sf.jacfwd(while_dynamic_fn)(x).asnumpy(), np.eye(2) * 1.5 ** 5)


def _central_difference(f, x: np.ndarray, eps=1e-6) -> np.ndarray:
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def _dynamic_loss(x):
    return (while_dynamic_fn(x) ** 2).sum()


@pytest.mark.parametrize("backend", ["interp", "llvm"])
@given(data=st.data())
def test_while_dynamic_reverse_mode_is_a_bounded_masked_scan(backend, data):
    """A data-dependent trip count: reverse mode tapes up to max_call_depth steps and matches
    float64 central differences (the trip count is locally constant)."""
    x = np.array(data.draw(st.lists(st.floats(0.2, 3.0), min_size=2, max_size=2)))
    g = sf.jit(sf.grad(_dynamic_loss), backend=backend)(sf.Tensor(x)).asnumpy()
    fd = _central_difference(lambda v: float(_dynamic_loss(sf.Tensor(v)).asnumpy()), x)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_while_running_past_the_taped_bound_has_a_nan_gradient():
    x = sf.Tensor(np.array([1.0, 2.0]))              # five steps
    g = sf.grad(lambda x: ops.while_loop(lambda v: v.sum() < 20.0, lambda v: v * 1.5, x, max_iter=5).sum())(x)
    np.testing.assert_allclose(g.asnumpy(), [1.5 ** 5] * 2)
    sf.set_context(max_call_depth=4)
    try:
        assert np.isnan(sf.grad(_dynamic_loss)(x).asnumpy()).all()
    finally:
        sf.set_context(max_call_depth=1000)
    with pytest.raises(ValueError, match="max_call_depth"):
        sf.set_context(max_call_depth=0)


def test_grad_of_grad_through_control_flow():
    x = sf.Tensor(np.array([0.3, -0.7]))
    w = sf.Tensor(np.array([0.5, 1.2]))
    for f in (lambda x: scan_fn(x, sf.Tensor(np.ones((3, 2)) * 0.7), w)[0].sum(),
              lambda x: cond_fn(x, w)[0].sum() + cond_fn(x, w)[1].sum(),
              lambda x: while_static_fn(x, w).sum()):
        hv = sf.grad(lambda x: (sf.grad(f)(x) * sf.Tensor(np.array([1.0, -2.0]))).sum())(x).asnumpy()
        eps = 1e-5
        fd = (sf.grad(f)(sf.Tensor(x.asnumpy() + eps * np.array([1.0, -2.0]))).asnumpy()
              - sf.grad(f)(sf.Tensor(x.asnumpy() - eps * np.array([1.0, -2.0]))).asnumpy()) / (2 * eps)
        np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)
