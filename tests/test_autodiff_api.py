"""The autodiff API with MindSpore semantics (reference/mindspore-api.md section 6): return
formats of grad/value_and_grad, weights, has_aux, return_ids, sens, stop_gradient, jvp/vjp,
jacobians, pytree arguments, Cell.bprop; eagerly and under sf.jit."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.errors import SporeflowError

MODES = ["eager", "jit"]


def run(mode, fn):
    return fn if mode == "eager" else sf.jit(fn)


def val(t):
    return np.asarray(t.asnumpy()).item() if not isinstance(t, (tuple, list)) else type(t)(val(x) for x in t)


@pytest.fixture
def f_and_w():
    w = sf.Parameter(sf.Tensor(2.0), name="w")

    def f(x, y):
        return x * x * y * w, x + y
    return f, w


X, Y = sf.Tensor(3.0), sf.Tensor(5.0)


@pytest.mark.parametrize("mode", MODES)
def test_mindspore_observed_values(mode, f_and_w):
    f, w = f_and_w
    assert val(run(mode, sf.grad(f))(X, Y)) == 61
    assert val(run(mode, sf.grad(f, (0, 1)))(X, Y)) == (61, 19)
    assert val(run(mode, sf.grad(f, None, [w]))(X, Y)) == (45,)
    gi, gw = run(mode, sf.grad(f, 0, [w]))(X, Y)
    assert (val(gi), val(gw)) == (61, (45,))
    g, aux = run(mode, sf.grad(f, 0, has_aux=True))(X, Y)
    assert (val(g), val(aux)) == (60, (8,))
    (ids_in, ids_w) = run(mode, sf.grad(f, (0, 1), [w], return_ids=True))(X, Y)
    assert [(i, val(g)) for i, g in ids_in] == [(0, 61), (1, 19)]
    assert [(n, val(g)) for n, g in ids_w] == [("w", 45)]
    assert val(sf.get_grad((ids_in, ids_w), w)) == 45 and val(sf.get_grad((ids_in, ids_w), 1)) == 19
    out, g = run(mode, sf.value_and_grad(f))(X, Y)
    assert (val(out), val(g)) == ((90, 8), 61)
    assert val(run(mode, sf.grad(f, 0, w))(X, Y)[1]) == 45      # a single Parameter: a single grad
    assert ops.grad is sf.grad and ops.value_and_grad is sf.value_and_grad


@pytest.mark.parametrize("mode", MODES)
def test_higher_order_and_stop_gradient(mode):
    x = sf.Tensor(0.5)
    np.testing.assert_allclose(val(run(mode, sf.grad(sf.grad(ops.sin)))(x)), -np.sin(0.5), rtol=1e-6)
    a, b = sf.Tensor(4.0), sf.Tensor(5.0)
    assert val(run(mode, sf.grad(lambda a, b: a * b + ops.stop_gradient(a * b)))(a, b)) == 5


@pytest.mark.parametrize("mode", MODES)
def test_jacobians_jvp_vjp(mode):
    t = sf.Tensor(np.array([1.0, 2.0], np.float32))
    sq = lambda t: t ** 2  # noqa: E731
    np.testing.assert_allclose(run(mode, sf.jacrev(sq))(t).asnumpy(), [[2, 0], [0, 4]])
    np.testing.assert_allclose(run(mode, sf.jacfwd(sq))(t).asnumpy(), [[2, 0], [0, 4]])
    v = sf.Tensor(np.array([1.0, -1.0], np.float32))
    out, tan = run(mode, lambda t, v: sf.jvp(sq, t, v))(t, v)
    np.testing.assert_allclose(out.asnumpy(), [1, 4])
    np.testing.assert_allclose(tan.asnumpy(), [2, -4])

    def vjp_call(t, v):
        out, fn = sf.vjp(sq, t)
        return out, fn(v)
    out, grads = run(mode, vjp_call)(t, v)
    assert isinstance(grads, tuple) and len(grads) == 1
    np.testing.assert_allclose(grads[0].asnumpy(), [2, -4])


def test_jacobian_shapes_positions_and_aux():
    x = sf.Tensor(np.arange(6.0).reshape(2, 3))
    y = sf.Tensor(np.arange(2.0) + 1)

    def f(x, y):
        return ops.matmul(y.reshape(1, 2), x) * 2.0, x.sum()
    for jac in (sf.jacrev, sf.jacfwd):
        (jx, jy), aux = jac(f, (0, 1), has_aux=True)(x, y)
        assert jx.shape == (1, 3, 2, 3) and jy.shape == (1, 3, 2)
        np.testing.assert_allclose(jy.asnumpy()[0], 2 * x.asnumpy().T)
        assert val(aux) == (15.0,)


def test_pytree_arguments_are_differentiable():
    params = {"w": sf.Tensor(np.array([1.0, 2.0])), "b": (sf.Tensor(0.5), 3)}

    def loss(p, x):
        return ((p["w"] * x).sum() + p["b"][0] * p["b"][1]) ** 2
    x = sf.Tensor(np.array([0.5, -1.0]))
    g = sf.grad(loss)(params, x)
    z = 2 * (1.0 * 0.5 - 2.0 + 0.5 * 3)
    np.testing.assert_allclose(g["w"].asnumpy(), z * x.asnumpy())
    np.testing.assert_allclose(g["b"][0].asnumpy(), z * 3)
    assert g["b"][1] is None                      # non-tensor leaves get None
    gl = sf.grad(lambda ws, x: (ws[0] * ws[1] * x).sum())([sf.Tensor(2.0), sf.Tensor(3.0)], sf.Tensor(1.0))
    assert isinstance(gl, list) and val(gl[0]) == 3 and val(gl[1]) == 2


def test_weights_of_a_cell_and_training_step_form():
    net = nn.Dense(3, 2)
    x = sf.Tensor(np.ones((4, 3), np.float32))
    label = sf.Tensor(np.zeros((4, 2), np.float32))

    def forward_fn(data, label):
        logits = net(data)
        return ((logits - label) ** 2).mean(), logits
    grad_fn = sf.value_and_grad(forward_fn, None, net.trainable_params(), has_aux=True)
    (loss, logits), grads = grad_fn(x, label)
    assert isinstance(grads, tuple) and [g.shape for g in grads] == [(2, 3), (2,)]
    w, b = (p.asnumpy() for p in net.trainable_params())
    ref_logits = x.asnumpy() @ w.T + b
    np.testing.assert_allclose(logits.asnumpy(), ref_logits, rtol=1e-6)
    d = 2 * ref_logits / ref_logits.size
    np.testing.assert_allclose(grads[0].asnumpy(), d.T @ x.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(grads[1].asnumpy(), d.sum(0), rtol=1e-5)
    (loss_j, _), grads_j = sf.jit(grad_fn)(x, label)
    np.testing.assert_allclose(grads_j[0].asnumpy(), grads[0].asnumpy(), rtol=1e-6)


def test_sens_param_and_unused_weight():
    w = sf.Parameter(sf.Tensor(np.ones(2, np.float32)), name="unused")
    x = sf.Tensor(np.array([1.0, 2.0], np.float32))
    g = sf.grad(lambda x: x * x, sens_param=True)(x, sf.Tensor(np.array([3.0, 0.5], np.float32)))
    np.testing.assert_allclose(g.asnumpy(), [6.0, 2.0])
    gi, gw = sf.grad(lambda x: x.sum(), 0, [w])(x)
    np.testing.assert_allclose(gw[0].asnumpy(), [0.0, 0.0])


def test_errors_are_clear():
    x = sf.Tensor(1.0)
    with pytest.raises(SporeflowError, match="nothing to differentiate"):
        sf.grad(lambda x: x, None)(x)
    with pytest.raises(SporeflowError, match="out of range"):
        sf.grad(lambda x: x, 3)(x)


class ClipGrad(nn.Cell):
    """Forward: x * y. Backward (custom): dx = clip(dout * y, -1, 1), dy = 0."""

    def construct(self, x, y):
        return x * y

    def bprop(self, x, y, out, dout):
        return ops.clamp(dout * y, -1.0, 1.0), ops.zeros_like(y)


@pytest.mark.parametrize("mode", MODES)
def test_cell_bprop(mode):
    cell = ClipGrad()
    x = sf.Tensor(np.array([1.0, 2.0, 3.0], np.float32))
    y = sf.Tensor(np.array([0.5, 4.0, -3.0], np.float32))
    gx, gy = run(mode, sf.grad(lambda x, y: cell(x, y).sum(), (0, 1)))(x, y)
    np.testing.assert_allclose(gx.asnumpy(), [0.5, 1.0, -1.0])
    np.testing.assert_allclose(gy.asnumpy(), [0, 0, 0])
    np.testing.assert_allclose(cell(x, y).asnumpy(), x.asnumpy() * y.asnumpy())   # eager: just construct
    # forward mode differentiates construct itself
    _, t = sf.jvp(lambda x: cell(x, y), x, sf.Tensor(np.ones(3, np.float32)))
    np.testing.assert_allclose(t.asnumpy(), y.asnumpy())


def test_cell_bprop_second_order():
    class Square(nn.Cell):
        def construct(self, x):
            return x * x

        def bprop(self, x, out, dout):
            return (dout * x * 3.0,)     # deliberately not 2x: the custom rule is what runs
    sq = Square()
    x = sf.Tensor(np.array([1.5], np.float64))
    np.testing.assert_allclose(sf.grad(lambda x: sq(x).sum())(x).asnumpy(), [4.5])
    np.testing.assert_allclose(sf.grad(sf.grad(lambda x: sq(x).sum()))(x).asnumpy(), [3.0])


def test_parameter_updates_inside_a_differentiated_function():
    counter = sf.Parameter(sf.Tensor(np.zeros(1, np.float32)), name="counter")

    def f(x):
        ops.assign(counter, counter + 1.0)
        return (x * x).sum()
    x = sf.Tensor(np.array([1.0, 2.0], np.float32))
    g = sf.grad(f)(x)
    np.testing.assert_allclose(g.asnumpy(), [2.0, 4.0])
    assert counter.asnumpy()[0] == 1.0
    sf.jit(sf.grad(f))(x)
    assert counter.asnumpy()[0] == 2.0


def test_legacy_grad_operation(f_and_w):
    f, w = f_and_w
    assert val(ops.GradOperation()(f)(X, Y)) == 61
    assert val(ops.GradOperation(get_all=True)(f)(X, Y)) == (61, 19)
    assert val(ops.GradOperation(get_by_list=True)(f, [w])(X, Y)) == (45,)
    gi, gw = ops.GradOperation(get_all=True, get_by_list=True)(f, [w])(X, Y)
    assert (val(gi), val(gw)) == ((61, 19), (45,))
    sens = (sf.Tensor(2.0), sf.Tensor(0.0))
    assert val(ops.GradOperation(sens_param=True)(f)(X, Y, sens)) == 120


def test_vjp_with_weights_and_aux_and_jvp_with_aux(f_and_w):
    f, w = f_and_w
    out, vjp_fn = sf.vjp(f, X, Y, weights=[w])
    assert val(out) == (90, 8)
    gin, gw = vjp_fn((sf.Tensor(1.0), sf.Tensor(1.0)))
    assert (val(gin), val(gw)) == ((61, 19), (45,))
    out0, vjp_fn, aux = sf.vjp(f, X, Y, has_aux=True)
    assert (val(out0), val(aux)) == (90, (8,))
    assert val(vjp_fn(sf.Tensor(1.0))) == (60, 18)
    out0, tan, aux = sf.jvp(f, (X, Y), (sf.Tensor(1.0), sf.Tensor(0.0)), has_aux=True)
    assert (val(out0), val(tan), val(aux)) == (90, 60, (8,))


def test_python_floats_at_grad_positions_are_differentiated():
    np.testing.assert_allclose(val(sf.grad(ops.sin)(0.5)), np.cos(0.5), rtol=1e-6)
    np.testing.assert_allclose(val(sf.grad(sf.grad(ops.sin))(0.5)), -np.sin(0.5), rtol=1e-6)
    assert val(sf.grad(lambda d: d["a"] * 2.0)({"a": 1.0})["a"]) == 2.0
    assert val(sf.jacfwd(lambda x: x * x)(3.0)) == 6.0
