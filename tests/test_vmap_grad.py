"""vmap with autodiff: per-sample gradients of an MLP and a small CNN (MindSpore's pattern
`vmap(grad(loss, weights=...), in_axes=(None, 0, 0))`), and the compositions vmap(grad(f)),
grad(vmap(f)), vmap(vmap(grad)), vmap(jacrev), each eagerly and through sf.jit (interp)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.core import lax

from small_nets import CNN, MLP

T = sf.Tensor


def both(fn):
    return [("eager", fn), ("jit", sf.jit(fn))]


def _close_tree(got, want, rtol=1e-4, atol=1e-5, what=""):
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


def _per_sample_check(net, xs, ys, rtol=1e-4):
    """vmap(grad) == loop of single-sample grads; their mean == the batch gradient."""
    ce = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    params = net.trainable_params()

    def loss(scale, x, y):   # one example: add the batch axis the layers expect
        return ce(net(ops.expand_dims(x, 0)), ops.expand_dims(y, 0)) * scale
    grad_fn = sf.grad(loss, grad_position=None, weights=params)
    scale = T(np.float32(1.0))
    loop = [grad_fn(scale, T(xs[i]), T(ys[i])) for i in range(len(xs))]
    want = [np.stack([g[j].asnumpy() for g in loop]) for j in range(len(params))]
    batch_grad = sf.grad(lambda x, y: ce(net(x), y), grad_position=None, weights=params)(T(xs), T(ys))
    for mode, fn in both(sf.vmap(grad_fn, in_axes=(None, 0, 0))):
        got = fn(scale, T(xs), T(ys))
        assert len(got) == len(params)
        for g, w, p in zip(got, want, params, strict=True):
            assert g.shape == (len(xs),) + p.shape, mode
        _close_tree([g.asnumpy() for g in got], want, rtol=rtol, what=f"{mode} per-sample")
        _close_tree([g.asnumpy().mean(axis=0) for g in got], [b.asnumpy() for b in batch_grad], rtol=rtol,
                    what=f"{mode} mean vs batch")


def test_per_sample_gradients_mlp(rng):
    _per_sample_check(MLP(hidden=8), rng.normal(size=(5, 6)).astype(np.float32),
                      rng.integers(0, 4, 5).astype(np.int32))


def test_per_sample_gradients_cnn(rng):
    _per_sample_check(CNN(), rng.normal(size=(3, 2, 6, 6)).astype(np.float32),
                      rng.integers(0, 3, 3).astype(np.int32))


def test_per_sample_gradients_functional_params(rng):
    """Parameters passed explicitly (a pytree argument shared by every example, in_axes None)."""
    w1, b1, w2 = (rng.normal(size=s).astype(np.float32) for s in ((5, 7), (7,), (7, 2)))
    xs, ys = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)

    def loss(params, x, y):
        a, b, c = params
        h = ops.tanh(ops.matmul(ops.expand_dims(x, 0), a) + b)
        return ((ops.matmul(h, c)[0] - y) ** 2).sum()
    g = sf.grad(loss)
    params = (T(w1), T(b1), T(w2))
    loop = [g(params, T(xs[i]), T(ys[i])) for i in range(4)]
    for mode, fn in both(sf.vmap(g, in_axes=(None, 0, 0))):
        got = fn(params, T(xs), T(ys))
        _close_tree([x.asnumpy() for x in got], [np.stack([lp[j].asnumpy() for lp in loop]) for j in range(3)],
                    what=mode)


@given(st.integers(1, 4), st.integers(-2, 1))
def test_vmap_grad_and_grad_vmap(n, ax):
    """vmap(grad(f)) is the per-row gradient; grad(sum . vmap(f)) is the same thing; both agree
    with the analytic gradient of f(x) = sum(sin(x) * x^2)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)).astype(np.float64)
    xm = np.moveaxis(x, 0, ax % 2)

    def f(v):
        return (ops.sin(v) * v * v).sum()
    df = np.cos(x) * x * x + 2 * x * np.sin(x)
    for mode, fn in both(sf.vmap(sf.grad(f), in_axes=ax)):
        np.testing.assert_allclose(fn(T(xm)).asnumpy(), df, rtol=1e-10, err_msg=mode)
    for mode, fn in both(sf.grad(lambda v: sf.vmap(f, in_axes=ax)(v).sum())):
        np.testing.assert_allclose(fn(T(xm)).asnumpy(), np.moveaxis(df, 0, ax % 2), rtol=1e-10, err_msg=mode)
    # second order under vmap: per-row diagonal of the Hessian of sum(x^3) is 6x
    h = sf.vmap(sf.grad(lambda v: sf.grad(lambda u: (u * u * u).sum())(v).sum()))
    for mode, fn in both(h):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), 6 * x, rtol=1e-10, err_msg=mode)


def test_vmap_vmap_grad_and_vmap_jacrev(rng):
    x = rng.normal(size=(2, 3, 4))

    def f(v):
        return (ops.exp(v) * v).sum()
    for mode, fn in both(sf.vmap(sf.vmap(sf.grad(f)))):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), np.exp(x) * (x + 1), rtol=1e-10, err_msg=mode)
    a = rng.normal(size=(4, 4))
    jr = sf.vmap(sf.jacrev(lambda v: ops.tanh(ops.matmul(T(a), v))))
    for mode, fn in both(jr):
        got = fn(T(x[0])).asnumpy()
        for i in range(3):
            want = (1 - np.tanh(a @ x[0, i]) ** 2)[:, None] * a
            np.testing.assert_allclose(got[i], want, rtol=1e-8, err_msg=mode)


def test_grad_through_batched_control_flow(rng):
    """grad(vmap(f)) where vmap turned a cond into a select and batched a while_loop."""
    x = rng.normal(size=5)

    def f(v):
        y = ops.cond(v > 0, lambda t: t * t, lambda t: ops.sin(t), v)
        return ops.fori_loop(0, 3, lambda i, t: t * 1.5, y)
    g = sf.grad(lambda v: sf.vmap(f)(v).sum())
    want = np.where(x > 0, 2 * x, np.cos(x)) * 1.5 ** 3
    for mode, fn in both(g):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), want, rtol=1e-10, err_msg=mode)


@pytest.mark.parametrize("which", ["x", "w", "both"])
def test_conv_per_example_weights_gradients(which, rng):
    """grad of vmap over conv2d with the batch on x, on w, or on both (the group-folding rules)."""
    x = rng.normal(size=(3, 1, 2, 5, 5))
    w = rng.normal(size=(3, 4, 1, 3, 3))
    xa, wa = (x if which != "w" else x[0]), (w if which != "x" else w[0])
    axes = (0 if which != "w" else None, 0 if which != "x" else None)

    def conv(a, b):
        return lax.conv2d(a, b, stride=(2, 1), padding=(1, 0, 0, 1), dilation=(1, 2), groups=2)

    r = T(rng.normal(size=(3, 1, 4, 2, 2)))   # weights every output position differently

    def loss(a, b):
        return (sf.vmap(conv, in_axes=axes)(a, b) ** 2 * r).sum()
    gx, gw = sf.grad(loss, grad_position=(0, 1))(T(xa), T(wa))

    def ref_loss(a, b):
        total = 0.0
        for i in range(3):
            total = total + (conv(a[i] if axes[0] == 0 else a, b[i] if axes[1] == 0 else b) ** 2 * r[i]).sum()
        return total
    rx, rw = sf.grad(ref_loss, grad_position=(0, 1))(T(xa), T(wa))
    np.testing.assert_allclose(gx.asnumpy(), rx.asnumpy(), rtol=1e-9)
    np.testing.assert_allclose(gw.asnumpy(), rw.asnumpy(), rtol=1e-9)


class ClippedSquare(nn.Cell):
    """y = x^2 with a custom backward dout * 3 (so the custom rule is visible in the result)."""

    def construct(self, x):
        return x * x

    def bprop(self, x, out, dout):
        return (dout * 3.0,)


def test_custom_bprop_cell_under_vmap(rng):
    x = rng.normal(size=(4, 3))
    cell = ClippedSquare()
    for mode, fn in both(sf.vmap(sf.grad(lambda v: cell(v).sum()))):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), np.full_like(x, 3.0), err_msg=mode)
    for mode, fn in both(sf.grad(lambda v: sf.vmap(cell)(v).sum())):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), np.full_like(x, 3.0), err_msg=mode)
    np.testing.assert_allclose(sf.vmap(cell)(T(x)).asnumpy(), x * x)


def test_vmap_of_forward_mode_and_hessians(rng):
    """vmap(jvp), vmap(jacfwd) and per-example Hessians vmap(jacfwd(jacrev(f)))."""
    x, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def f(u):
        return (ops.sin(u) * u).sum()

    def jvp_f(u, t):
        return sf.jvp(f, (u,), (t,))[1]
    d1 = np.cos(x) * x + np.sin(x)
    for mode, fn in both(sf.vmap(jvp_f)):
        np.testing.assert_allclose(fn(T(x), T(v)).asnumpy(), (d1 * v).sum(axis=1), rtol=1e-10, err_msg=mode)
    for mode, fn in both(sf.vmap(sf.jacfwd(f))):
        np.testing.assert_allclose(fn(T(x)).asnumpy(), d1, rtol=1e-10, err_msg=mode)
    d2 = 2 * np.cos(x) - x * np.sin(x)
    for mode, fn in both(sf.vmap(sf.jacfwd(sf.jacrev(f)))):
        h = fn(T(x)).asnumpy()
        assert h.shape == (3, 4, 4)
        for i in range(3):
            np.testing.assert_allclose(h[i], np.diag(d2[i]), rtol=1e-10, atol=1e-12, err_msg=mode)
    for mode, fn in both(sf.jacrev(lambda u: sf.vmap(f)(u))):       # jacobian of a vmapped function
        j = fn(T(x)).asnumpy()
        for i in range(3):
            np.testing.assert_allclose(j[i, i], d1[i], rtol=1e-10, err_msg=mode)
            np.testing.assert_allclose(np.delete(j[i], i, axis=0), 0, atol=1e-12, err_msg=mode)
