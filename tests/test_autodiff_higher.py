"""Second order and composition: Hessian-vector products of a small MLP and a small CNN against
finite differences of gradients, grad(grad(f)), jacfwd(jacrev(f)); eagerly and through sf.jit.
Gradient graphs print and parse back, and show `grad/<scope>` with the forward op's line."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.ir import parse, verify

MODES = ["eager", "jit"]


def run(mode, fn):
    return fn if mode == "eager" else sf.jit(fn)


def T(a):
    return sf.Tensor(np.asarray(a, dtype=np.float64))


def mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = ops.tanh(ops.matmul(x, w1) + b1)
    logits = ops.matmul(h, w2) + b2
    return ops.cross_entropy(logits, y) + 0.1 * (w1 * w1).sum()


def cnn_loss(params, x):
    k, w = params
    h = ops.conv2d(x, k, stride=1, pad_mode="pad", padding=1)
    h = ops.max_pool2d(ops.sigmoid(h), 2, 2)
    return (ops.matmul(h.reshape(x.shape[0], -1), w) ** 2).sum()


def _hvp_check(mode, loss, params, args, rng):
    v = [rng.normal(size=p.shape) for p in params]
    g = lambda ps: sf.grad(loss)(ps, *args)  # noqa: E731

    def hvp(ps, vs):
        return sf.grad(lambda ps: sum((a * b).sum() for a, b in zip(g(ps), vs)))(ps)
    hv = run(mode, hvp)([T(p) for p in params], [T(x) for x in v])
    eps = 1e-5
    gp = g([T(p + eps * d) for p, d in zip(params, v)])
    gm = g([T(p - eps * d) for p, d in zip(params, v)])
    for h, a, b in zip(hv, gp, gm, strict=True):
        np.testing.assert_allclose(h.asnumpy(), (a.asnumpy() - b.asnumpy()) / (2 * eps), rtol=1e-5, atol=1e-7)
    # forward-over-reverse gives the same product
    _, hv2 = sf.jvp(lambda *ps: tuple(g(list(ps))), tuple(T(p) for p in params), tuple(T(x) for x in v))
    for h, h2 in zip(hv, hv2, strict=True):
        np.testing.assert_allclose(h.asnumpy(), h2.asnumpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@given(seed=st.integers(0, 2 ** 31 - 1), batch=st.integers(1, 3))
def test_mlp_hessian_vector_product(mode, seed, batch):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(4, 5)) * 0.5, rng.normal(size=5) * 0.1, rng.normal(size=(5, 3)) * 0.5,
              rng.normal(size=3) * 0.1]
    x = T(rng.normal(size=(batch, 4)))
    y = sf.Tensor(rng.integers(0, 3, batch).astype(np.int32))
    _hvp_check(mode, mlp_loss, params, (x, y), rng)


@pytest.mark.parametrize("mode", MODES)
def test_cnn_hessian_vector_product(mode):
    rng = np.random.default_rng(0)
    x = T(rng.permutation(2 * 1 * 4 * 4).reshape(2, 1, 4, 4) * 0.1 - 1.5)
    params = [rng.normal(size=(2, 1, 3, 3)) * 0.3, rng.normal(size=(8, 2))]
    _hvp_check(mode, cnn_loss, params, (x,), rng)


@pytest.mark.parametrize("mode", MODES)
@given(x0=st.floats(-2, 2))
def test_grad_of_grad_scalar(mode, x0):
    f = lambda x: ops.exp(ops.sin(x) * x) + x ** 3  # noqa: E731
    ddf = run(mode, sf.grad(sf.grad(f)))(T(x0)).asnumpy()
    eps = 1e-5
    df = sf.grad(f)
    fd = (df(T(x0 + eps)).asnumpy() - df(T(x0 - eps)).asnumpy()) / (2 * eps)
    np.testing.assert_allclose(ddf, fd, rtol=1e-6, atol=1e-8)
    dddf = run(mode, sf.grad(sf.grad(sf.grad(f))))(T(x0)).asnumpy()
    fd3 = (sf.grad(df)(T(x0 + eps)).asnumpy() - sf.grad(df)(T(x0 - eps)).asnumpy()) / (2 * eps)
    np.testing.assert_allclose(dddf, fd3, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@given(seed=st.integers(0, 2 ** 31 - 1), n=st.integers(1, 4))
def test_hessians_agree(mode, seed, n):
    rng = np.random.default_rng(seed)
    a = T(rng.normal(size=(n, n)))
    f = lambda x: (ops.tanh(ops.matmul(a, x)) ** 2).sum() + (x ** 4).sum()  # noqa: E731
    x = T(rng.normal(size=n))
    h_fr = run(mode, sf.jacfwd(sf.jacrev(f)))(x).asnumpy()
    h_rr = run(mode, sf.jacrev(sf.jacrev(f)))(x).asnumpy()
    h_ff = sf.jacfwd(sf.jacfwd(f))(x).asnumpy()
    eps = 1e-5
    g = sf.grad(f)
    fd = np.stack([(g(T(x.asnumpy() + eps * e)).asnumpy() - g(T(x.asnumpy() - eps * e)).asnumpy()) / (2 * eps)
                   for e in np.eye(n)], axis=1)
    np.testing.assert_allclose(h_fr, fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h_rr, h_fr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h_ff, h_fr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h_fr, h_fr.T, rtol=1e-9, atol=1e-12)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(4, 3)
        self.fc2 = nn.Dense(3, 2)

    def construct(self, x):
        return self.fc2(ops.tanh(self.fc1(x)))


def test_gradient_ir_prints_parses_and_shows_grad_scopes():
    net = Net()

    def loss(x):
        return (net(x) ** 2).sum()
    grad_fn = sf.grad(loss, None, net.trainable_params())
    traced = sf.jit(grad_fn).trace(sf.Tensor(np.ones((5, 4), np.float32)))
    text = str(traced.graph)
    for scope in ("grad/Net.fc1", "grad/Net.fc2", "grad/Net "):
        assert scope in text, text
    grad_lines = [ln for ln in text.splitlines() if "# grad/" in ln]
    assert grad_lines and all("test_autodiff_higher.py:" in ln for ln in grad_lines)
    back = parse(text)
    verify(back)
    assert str(back) == text
    second = sf.jit(sf.grad(sf.grad(lambda x: ops.sin(x) * x))).trace(sf.Tensor(0.3))
    assert "grad/grad" in str(second.graph)
    assert str(parse(str(second.graph))) == str(second.graph)
