"""Train steps and per-sample gradients compiled by LLVM equal the interpreter's: forward, loss,
value_and_grad and a Momentum update in one sf.jit, for an MLP and a small CNN (conv, pool,
tanh, dense), three steps from the same initialization; and jit(vmap(grad)) per-sample
gradients. Float32 sums are reordered (BLAS, double accumulators), hence rtol 1e-4."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn, ops

from small_nets import CNN, MLP, train_momentum

T = sf.Tensor


@pytest.mark.parametrize("make_net,xshape,ncls", [(MLP, (8, 6), 4), (CNN, (3, 2, 6, 6), 3)], ids=["mlp", "cnn"])
def test_train_step_llvm_equals_interp(make_net, xshape, ncls, rng):
    x = rng.normal(size=xshape).astype(np.float32)
    y = rng.integers(0, ncls, xshape[0]).astype(np.int32)
    l_llvm, p_llvm, _ = train_momentum(make_net, x, y, "llvm")
    l_ref, p_ref, _ = train_momentum(make_net, x, y, "interp")
    np.testing.assert_allclose(l_llvm, l_ref, rtol=1e-4)
    assert l_ref[2] < l_ref[0]
    for a, b in zip(p_llvm, p_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make_net,xshape,ncls", [(MLP, (5, 6), 4), (CNN, (3, 2, 6, 6), 3)], ids=["mlp", "cnn"])
def test_per_sample_grads_llvm_equal_interp(make_net, xshape, ncls, rng):
    sf.set_seed(5)
    net = make_net()
    ce = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    params = net.trainable_params()

    def loss(x, y):
        return ce(net(ops.expand_dims(x, 0)), ops.expand_dims(y, 0))
    per_sample = sf.vmap(sf.grad(loss, grad_position=None, weights=params), in_axes=(0, 0))
    x = T(rng.normal(size=xshape).astype(np.float32))
    y = T(rng.integers(0, ncls, xshape[0]).astype(np.int32))
    got = sf.jit(per_sample, backend="llvm")(x, y)
    want = sf.jit(per_sample, backend="interp")(x, y)
    assert len(got) == len(params)
    for g, w, p in zip(got, want, params, strict=True):
        assert g.shape == (xshape[0],) + p.shape
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ret", ["scaled", "same", "other"])
def test_parameter_update_that_is_also_returned(ret):
    """A donated update that is also a user output (after simplify, `p * 1.0` is the update
    itself) is written into the Parameter and into the returned array."""
    p = sf.Parameter(T(np.zeros(3, np.float32)), name="acc")

    @sf.jit(backend="llvm")
    def step(x):
        ops.assign_add(p, x)
        return {"scaled": lambda: p * 1.0, "same": lambda: p + 0.0 * x, "other": lambda: p * 2.0}[ret]()

    for k in (1, 2):
        out = step(T(np.ones(3, np.float32)))
        np.testing.assert_array_equal(p.asnumpy(), [k] * 3)
        np.testing.assert_array_equal(out.asnumpy(), [k * (2 if ret == "other" else 1)] * 3)


def test_scan_reads_a_captured_value_in_place_when_its_final_value_is_unused():
    """A value the scan body closes over (the weights of a gradient-accumulation scan) is a carry
    the body returns unchanged; nothing reads its final value, so the loop reads the original
    buffer and never copies it into the carry output. The result equals the interpreter's."""
    import re
    import sporeflow as sf
    from sporeflow import ops
    w = sf.Parameter(sf.Tensor(np.arange(21, dtype=np.float32).reshape(3, 7) / 10), name="w_captured")

    def f(init, xs):
        return ops.Scan()(lambda c, x: (c + ops.matmul(x, w), c.sum()), init, xs)

    init, xs = sf.Tensor(np.zeros((2, 7), np.float32)), sf.Tensor(np.ones((5, 2, 3), np.float32))
    got = sf.jit(f, backend="llvm")
    want = sf.jit(f, backend="interp")(init, xs)
    for a, b in zip(got(init, xs), want):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)
    (c,) = got._cache.values()
    copies = re.findall(r"call void @llvm\.memcpy[^\n]*i64 (\d+), i1", c.executable.source)
    assert "84" not in copies, copies      # w: 3 x 7 float32 = 84 bytes
