"""examples/dp_sgd_digits.py: the jitted DP-SGD step (vmap(grad) per-sample gradients, clipping,
noise, one update) trains, and without noise or clipping equals a plain SGD step; with a small
clip norm each sample's contribution is bounded."""
import importlib.util
import os

import numpy as np

import sporeflow as sf
from sporeflow import nn

_path = os.path.join(os.path.dirname(__file__), "..", "examples", "dp_sgd_digits.py")
_spec = importlib.util.spec_from_file_location("dp_sgd_digits", _path)
dp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dp)


def test_dp_sgd_trains_with_one_compiled_step():
    out = dp.main(["--epochs", "2"])
    assert out["traces"] == 1 and out["losses"][1] < out["losses"][0] and out["accuracy"] > 0.3


def _nets():
    sf.set_seed(0)
    a = dp.MLP()
    b = dp.MLP()
    for p, q in zip(a.trainable_params(), b.trainable_params()):
        q.set_data(sf.Tensor(p.asnumpy().copy()))
    return a, b


def test_without_noise_or_clipping_it_is_plain_sgd():
    sf.set_context(device_target="CPU")
    r = np.random.default_rng(0)
    x, y = sf.Tensor(r.standard_normal((16, 64)).astype(np.float32)), sf.Tensor(r.integers(0, 10, 16).astype(np.int32))
    a, b = _nets()
    dp.make_step(a, 0.1, clip=1e9, sigma=0.0)(x, y)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    sgd = nn.TrainOneStepCell(nn.WithLossCell(b, loss_fn), nn.SGD(b.trainable_params(), 0.1))
    sf.jit(sgd)(x, y)
    for p, q in zip(a.trainable_params(), b.trainable_params()):
        np.testing.assert_allclose(p.asnumpy(), q.asnumpy(), rtol=1e-5, atol=1e-6)


def test_clipping_bounds_the_update():
    sf.set_context(device_target="CPU")
    r = np.random.default_rng(1)
    x, y = sf.Tensor(100 * r.standard_normal((8, 64)).astype(np.float32)), sf.Tensor(r.integers(0, 10, 8).astype(np.int32))
    a, _ = _nets()
    before = [p.asnumpy().copy() for p in a.trainable_params()]
    dp.make_step(a, 1.0, clip=0.01, sigma=0.0)(x, y)
    delta = np.sqrt(sum(((p.asnumpy() - w) ** 2).sum() for p, w in zip(a.trainable_params(), before)))
    assert 0 < delta <= 0.01 * 1.0001           # mean of 8 vectors each of norm <= clip
