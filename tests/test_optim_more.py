"""RMSProp, Adagrad, Lamb and Adam(use_amsgrad=True) against numpy references of MindSpore's
update rules over several steps, eagerly and compiled (interpreter and LLVM); state names as
MindSpore's. BCELoss, KLDivLoss, HuberLoss against their formulas, with gradients."""
import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn

from test_optim import STEPS, grads_seq, make_params


def ref_rmsprop(ps, gs, lr, decay=0.9, mom=0.0, eps=1e-10, centered=False, wd=0.0, wd_mask=(True, False)):
    ps = [p.astype(np.float64) for p in ps]
    ms = [np.ones_like(p) for p in ps]
    mg = [np.zeros_like(p) for p in ps]
    mo = [np.zeros_like(p) for p in ps]
    for g in gs:
        for i, gi in enumerate(g):
            gi = gi + (wd * ps[i] if wd_mask[i] else 0)
            ms[i] = decay * ms[i] + (1 - decay) * gi * gi
            den = ms[i]
            if centered:
                mg[i] = decay * mg[i] + (1 - decay) * gi
                den = ms[i] - mg[i] ** 2
            mo[i] = mom * mo[i] + lr * gi / np.sqrt(den + eps)
            ps[i] = ps[i] - mo[i]
    return ps


def ref_adagrad(ps, gs, lr, accum=0.1, update_slots=True):
    ps = [p.astype(np.float64) for p in ps]
    acc = [np.full_like(p, accum) for p in ps]
    for g in gs:
        for i, gi in enumerate(g):
            if update_slots:
                acc[i] = acc[i] + gi * gi
            ps[i] = ps[i] - lr * gi / np.sqrt(acc[i])
    return ps


def ref_lamb(ps, gs, lr, b1=0.9, b2=0.999, eps=1e-6, wds=(0.0, 0.0)):
    ps = [p.astype(np.float64) for p in ps]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    for t, g in enumerate(gs, start=1):
        for i, gi in enumerate(g):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            upd = (m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + eps) + wds[i] * ps[i]
            wn, gn, un = np.linalg.norm(ps[i]), np.linalg.norm(gi), np.linalg.norm(upd)
            ratio = np.clip(wn / un, 0, 10) if wn > 0 and gn > 0 else 1.0
            ps[i] = ps[i] - lr * ratio * upd
    return ps


def ref_amsgrad(ps, gs, lr, b1=0.9, b2=0.999, eps=1e-8):
    ps = [p.astype(np.float64) for p in ps]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vh = [np.zeros_like(p) for p in ps]
    for t, g in enumerate(gs, start=1):
        for i, gi in enumerate(g):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            vh[i] = np.maximum(vh[i], v[i])
            ps[i] = ps[i] - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[i] / (np.sqrt(vh[i]) + eps)
    return ps


CASES = {
    "rmsprop": (lambda P: nn.RMSProp(P, 0.01), lambda p, g: ref_rmsprop(p, g, 0.01)),
    "rmsprop_centered_momentum_wd": (
        lambda P: nn.RMSProp(P, 0.01, decay=0.8, momentum=0.5, epsilon=1e-6, centered=True, weight_decay=0.1),
        lambda p, g: ref_rmsprop(p, g, 0.01, 0.8, 0.5, 1e-6, True, 0.1)),
    "adagrad": (lambda P: nn.Adagrad(P, accum=0.2, learning_rate=0.05), lambda p, g: ref_adagrad(p, g, 0.05, 0.2)),
    "adagrad_frozen_slots": (lambda P: nn.Adagrad(P, learning_rate=0.05, update_slots=False),
                             lambda p, g: ref_adagrad(p, g, 0.05, update_slots=False)),
    "lamb_wd": (lambda P: nn.Lamb(P, 0.01, weight_decay=0.1), lambda p, g: ref_lamb(p, g, 0.01, wds=(0.1, 0.0))),
    "adam_amsgrad": (lambda P: nn.Adam(P, 0.01, beta2=0.9, use_amsgrad=True),
                     lambda p, g: ref_amsgrad(p, g, 0.01, b2=0.9)),
}


@pytest.mark.parametrize("backend", ["eager", "interp", "llvm"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_matches_numpy(name, backend, rng):
    make, ref = CASES[name]
    params = make_params(rng)
    init = [p.asnumpy().copy() for p in params]
    gs = grads_seq(rng, params)
    if name == "adam_amsgrad":          # a shrinking gradient makes vhat differ from v
        gs = [[g * s for g in step] for step, s in zip(gs, (3.0, 1.0, 0.5, 0.2))]
    opt = make(params)
    step = opt if backend == "eager" else sf.jit(lambda g: opt(g), backend=backend)
    for g in gs:
        step(tuple(sf.Tensor(x) for x in g))
    for p, w in zip(params, ref(init, gs), strict=True):
        np.testing.assert_allclose(p.asnumpy(), w, rtol=2e-5, atol=2e-6, err_msg=f"{name} {p.name} on {backend}")
    assert opt.global_step.asnumpy().tolist() == [STEPS]


def test_state_names_match_mindspore(rng):
    P = make_params(rng)
    names = lambda o: {n for n, _ in o.parameters_and_names()}  # noqa: E731
    assert {"mean_square.w", "moment.w"} <= names(nn.RMSProp(P)) and "mean_grad.w" not in names(nn.RMSProp(P))
    assert "mean_grad.w" in names(nn.RMSProp(P, centered=True))
    assert np.all(nn.RMSProp(P).ms[0].asnumpy() == 1.0)
    assert "accum.beta_bias" in names(nn.Adagrad(P)) and np.allclose(nn.Adagrad(P).accum[0].asnumpy(), 0.1)
    assert {"lamb_m.w", "lamb_v.w"} <= names(nn.Lamb(P, 0.1))
    assert "vhat.w" in names(nn.Adam(P, use_amsgrad=True)) and "vhat.w" not in names(nn.Adam(P))


def test_amsgrad_trains_a_dense_layer_like_the_vmap_tutorial(rng):
    """MindSpore's vmap tutorial model-ensembling uses Adam(use_amsgrad=True): it must reduce the loss."""
    sf.set_seed(0)
    net = nn.Dense(4, 1)
    x = sf.Tensor(rng.standard_normal((16, 4)).astype(np.float32))
    y = sf.Tensor((x.asnumpy() @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32)))
    step = sf.jit(nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Adam(net.trainable_params(), 0.05,
                                                                                   use_amsgrad=True)))
    losses = [float(step(x, y).asnumpy()) for _ in range(30)]
    assert losses[-1] < 0.3 * losses[0]


# ---- losses ---------------------------------------------------------------------------------------------------
def _loss_refs(x, y, w):
    bce = -w * (y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log(1 - x), -100))
    kl = np.where(y > 0, y * (np.log(np.where(y > 0, y, 1)) - np.log(x)), 0.0)
    d = np.abs(x - y)
    huber = np.where(d < 0.3, 0.5 * d * d, 0.3 * (d - 0.15))
    return bce, kl, huber


@pytest.mark.parametrize("backend", ["eager", "llvm"])
def test_losses_match_formulas_with_gradients(backend, rng):
    x = rng.uniform(0.05, 0.95, (3, 4))
    y = rng.uniform(0, 1, (3, 4))
    y[0, 0] = 0.0                                               # KLDiv's 0 * log 0 = 0
    w = rng.uniform(0.5, 2.0, (3, 4))
    bce, kl, huber = _loss_refs(x, y, w)
    cases = [
        (lambda a, b: nn.BCELoss(sf.Tensor(w))(a, b), bce.mean(), -w * (y / x - (1 - y) / (1 - x)) / x.size),
        (lambda a, b: nn.BCELoss(reduction="sum")(a, b), _loss_refs(x, y, 1.0)[0].sum(), -(y / x - (1 - y) / (1 - x))),
        (lambda a, b: nn.KLDivLoss("batchmean")(sf.ops.log(a), b), kl.sum() / 3, -y / x / 3),
        (lambda a, b: nn.KLDivLoss("none")(sf.ops.log(a), b), kl, None),
        (lambda a, b: nn.HuberLoss("sum", delta=0.3)(a, b), huber.sum(),
         np.where(np.abs(x - y) < 0.3, x - y, 0.3 * np.sign(x - y))),
    ]
    for fn, want, gwant in cases:
        f = fn if backend == "eager" else sf.jit(fn, backend=backend)
        np.testing.assert_allclose(f(sf.Tensor(x), sf.Tensor(y)).asnumpy(), want, rtol=1e-10, atol=1e-12)
        if gwant is not None:
            g = sf.grad(fn)
            g = g if backend == "eager" else sf.jit(g, backend=backend)
            np.testing.assert_allclose(g(sf.Tensor(x), sf.Tensor(y)).asnumpy(), gwant, rtol=1e-9, atol=1e-12)
    edge = nn.BCELoss()(sf.Tensor(np.array([0.0, 1.0])), sf.Tensor(np.array([1.0, 1.0]))).asnumpy()
    assert np.isfinite(edge) and np.isclose(edge, 50.0)
    assert nn.HuberLoss().reduction == "mean" and nn.KLDivLoss().reduction == "mean"
    with pytest.raises(ValueError, match="reduction"):
        nn.KLDivLoss("avg")
