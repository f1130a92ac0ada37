"""Functional ops beyond the primitives: ordering (sort/topk/cumsum), linear algebra helpers,
rounding and activations, MindSpore's functional random ops; eager and under jit vs numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import ops


def both(fn, *arrays):
    ts = [sf.Tensor(a) for a in arrays]
    return fn(*ts), sf.jit(fn)(*ts)


@given(st.lists(st.lists(st.integers(-4, 4), min_size=5, max_size=5), min_size=1, max_size=3),
       st.booleans(), st.integers(0, 1))
def test_sort_and_topk_match_a_stable_numpy_sort(rows, descending, axis):
    x = np.array(rows, np.float32)
    if axis >= x.ndim:
        axis = 0
    order = np.argsort(-x if descending else x, axis=axis, kind="stable")
    for v, i in both(lambda t: ops.sort(t, axis, descending), x):
        np.testing.assert_array_equal(i.asnumpy(), order)
        np.testing.assert_array_equal(v.asnumpy(), np.take_along_axis(x, order, axis))
        assert i.dtype is sf.int32
    k = min(3, x.shape[-1])
    for v, i in both(lambda t: ops.topk(t, k), x):
        want = np.argsort(-x, axis=-1, kind="stable")[..., :k]
        np.testing.assert_array_equal(i.asnumpy(), want)
        np.testing.assert_array_equal(v.asnumpy(), np.take_along_axis(x, want, -1))


def test_cumsum_tril_triu_diag_norm_outer_inner_dot():
    x = np.array([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0]], np.float32)
    cases = [
        (lambda t: ops.cumsum(t, 1), np.cumsum(x, 1)), (lambda t: ops.cumsum(t, 0), np.cumsum(x, 0)),
        (lambda t: ops.tril(t), np.tril(x)), (lambda t: ops.triu(t, 1), np.triu(x, 1)),
        (lambda t: ops.tril(t, -1), np.tril(x, -1)), (lambda t: ops.diag(t), np.diag(x)),
        (lambda t: ops.diag(t[0]), np.diag(x[0])), (lambda t: ops.norm(t), np.linalg.norm(x)),
        (lambda t: ops.norm(t, 1, 1), np.linalg.norm(x, 1, 1)),
        (lambda t: ops.norm(t, math.inf, 0, True), np.linalg.norm(x, np.inf, 0, True)),
        (lambda t: ops.norm(t, 3.0, 1), np.sum(np.abs(x) ** 3, 1) ** (1 / 3)),
        (lambda t: ops.outer(t[0], t[1]), np.outer(x[0], x[1])), (lambda t: ops.inner(t, t), np.inner(x, x)),
        (lambda t: ops.dot(t, t.T), x @ x.T),
    ]
    for fn, want in cases:
        for got in both(fn, x):
            np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-5, atol=1e-6)
    ints = np.array([[1, 2, 3]], np.int32)
    c = ops.cumsum(sf.Tensor(ints), 1)
    assert c.dtype is sf.int32 and c.asnumpy().tolist() == [[1, 3, 6]]
    with pytest.raises(NotImplementedError, match="SVD"):
        ops.norm(sf.Tensor(x), 2, (0, 1))


def test_round_half_to_even_and_activations():
    x = np.array([-2.5, -1.5, -0.4, 0.5, 1.5, 2.5, 2.6, 3.49], np.float32)
    for got in both(ops.round, x):
        np.testing.assert_array_equal(np.abs(got.asnumpy()), np.abs(np.round(x)))
    np.testing.assert_allclose(ops.round(sf.Tensor(np.float32(1.2345)), decimals=2).asnumpy(), 1.23, rtol=1e-6)
    np.testing.assert_allclose(ops.elu(sf.Tensor(x)).asnumpy(), np.where(x > 0, x, np.expm1(x)), rtol=1e-6)
    np.testing.assert_allclose(ops.hardswish(sf.Tensor(x)).asnumpy(), x * np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
    np.testing.assert_allclose(ops.hardsigmoid(sf.Tensor(x)).asnumpy(), np.clip(x + 3, 0, 6) / 6, rtol=1e-6)
    np.testing.assert_allclose(ops.mish(sf.Tensor(x)).asnumpy(), x * np.tanh(np.log1p(np.exp(x))), rtol=1e-5)
    np.testing.assert_allclose(ops.linspace(-1, 1, 5).asnumpy(), np.linspace(-1, 1, 5, dtype=np.float32))
    assert ops.linspace(0, 1, 0).shape == (0,)


def test_functional_random_ops():
    sf.set_seed(3)
    a = ops.rand(2, 3)
    b = ops.randn((4,))
    sf.set_seed(3)
    np.testing.assert_array_equal(ops.rand(2, 3).asnumpy(), a.asnumpy())
    assert a.shape == (2, 3) and b.shape == (4,) and a.dtype is sf.float32
    np.testing.assert_array_equal(ops.rand(3, seed=5).asnumpy(), ops.rand(3, seed=5).asnumpy())
    k = ops.randint(-2, 3, (2000,)).asnumpy()
    assert k.min() == -2 and k.max() == 2 and k.dtype == np.int64
    u = ops.uniform((2000,), sf.Tensor(1.0), sf.Tensor(3.0)).asnumpy()
    assert 1.0 <= u.min() and u.max() < 3.0 and abs(u.mean() - 2.0) < 0.1
    n = ops.normal((4000,), 5.0, 2.0).asnumpy()
    assert abs(n.mean() - 5) < 0.15 and abs(n.std() - 2) < 0.15
    like = ops.randn_like(sf.Tensor(np.zeros((2, 2), np.float64)))
    assert like.dtype is sf.float64 and ops.rand_like(sf.Tensor(np.zeros(3, np.int32))).dtype is sf.float32
    assert ops.randint_like(sf.Tensor(np.zeros(3, np.int32)), 0, 5).dtype is sf.int32
    f = sf.jit(lambda x: x + ops.rand(2))
    z = sf.Tensor(np.zeros(2, np.float32))
    assert not np.array_equal(f(z).asnumpy(), f(z).asnumpy())   # the state advances between steps
    with pytest.raises(ValueError, match="high"):
        ops.randint(3, 3, (2,))
