"""Composite ops (decompositions into primitives) against numpy/float64 references, eager and
under jit: softmax, log_softmax, logsumexp, gelu, sigmoid, silu, softplus, mean, var, std,
layer_norm, one_hot, cross entropy (index and probability targets, weights, ignore_index, label
smoothing), nll, mse, l1, smooth l1, BCE with logits."""
from __future__ import annotations

import math

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5)).astype(np.float32) * 3
Y = RNG.normal(size=(4, 5)).astype(np.float32)
LABELS = np.array([0, 3, 4, 1], np.int32)


def _softmax(x, ax):
    e = np.exp(x - x.max(ax, keepdims=True))
    return e / e.sum(ax, keepdims=True)


def _log_softmax(x, ax):
    return np.log(_softmax(x.astype(np.float64), ax))


def _ce(x, t, weight=None, ignore=-100, smoothing=0.0):
    logp = _log_softmax(x, 1)
    n, c = x.shape
    w = np.ones(c) if weight is None else weight
    valid = t != ignore
    tt = np.where(valid, t, 0)
    picked = -logp[np.arange(n), tt] * w[tt]
    if smoothing:
        picked = picked * (1 - smoothing) + smoothing * (-logp.mean(1))
    return (picked * valid).sum() / (w[tt] * valid).sum()


def _erf(v):
    return np.vectorize(math.erf)(v)


CASES = {
    "softmax": (lambda x, y: ops.softmax(x), lambda: _softmax(X.astype(np.float64), -1)),
    "softmax0": (lambda x, y: ops.softmax(x, 0), lambda: _softmax(X.astype(np.float64), 0)),
    "log_softmax": (lambda x, y: ops.log_softmax(x), lambda: _log_softmax(X, -1)),
    "logsumexp": (lambda x, y: ops.logsumexp(x, 1), lambda: np.log(np.exp(X.astype(np.float64)).sum(1))),
    "gelu": (lambda x, y: ops.gelu(x), lambda: 0.5 * X * (1 + _erf(X / math.sqrt(2)))),
    "gelu_tanh": (lambda x, y: ops.gelu(x, approximate="tanh"),
                  lambda: 0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X ** 3)))),
    "sigmoid": (lambda x, y: ops.sigmoid(x), lambda: 1 / (1 + np.exp(-X.astype(np.float64)))),
    "silu": (lambda x, y: ops.silu(x), lambda: X / (1 + np.exp(-X.astype(np.float64)))),
    "softplus": (lambda x, y: ops.softplus(x), lambda: np.log1p(np.exp(X.astype(np.float64)))),
    "mean": (lambda x, y: ops.mean(x, 1, True), lambda: X.mean(1, keepdims=True)),
    "var": (lambda x, y: x.var(0, ddof=1), lambda: X.var(0, ddof=1)),
    "std": (lambda x, y: x.std(), lambda: X.std()),
    "layer_norm": (lambda x, y: ops.layer_norm(x, -1, y[0], y[1], 1e-5),
                   lambda: (X - X.mean(-1, keepdims=True)) / np.sqrt(X.var(-1, keepdims=True) + 1e-5) * Y[0] + Y[1]),
    "one_hot": (lambda x, y: ops.one_hot(sf.Tensor(LABELS), 5), lambda: np.eye(5)[LABELS]),
    "ce": (lambda x, y: ops.cross_entropy(x, sf.Tensor(LABELS)), lambda: _ce(X, LABELS)),
    "ce_sum_none": (lambda x, y: ops.cross_entropy(x, sf.Tensor(LABELS), reduction="none"),
                    lambda: -_log_softmax(X, 1)[np.arange(4), LABELS]),
    "ce_weight_ignore": (lambda x, y: ops.cross_entropy(x, sf.Tensor(np.array([0, -100, 4, 1], np.int32)),
                                                        weight=sf.Tensor(np.arange(1, 6, dtype=np.float32))),
                         lambda: _ce(X, np.array([0, -100, 4, 1]), np.arange(1, 6.0))),
    "ce_smoothing": (lambda x, y: ops.cross_entropy(x, sf.Tensor(LABELS), label_smoothing=0.1),
                     lambda: _ce(X, LABELS, smoothing=0.1)),
    "ce_probs": (lambda x, y: ops.cross_entropy(x, ops.softmax(y)),
                 lambda: -(_softmax(Y.astype(np.float64), 1) * _log_softmax(X, 1)).sum(1).mean()),
    "nll": (lambda x, y: ops.nll_loss(ops.log_softmax(x, 1), sf.Tensor(LABELS)), lambda: _ce(X, LABELS)),
    "mse": (lambda x, y: ops.mse_loss(x, y), lambda: ((X - Y) ** 2).mean()),
    "l1": (lambda x, y: ops.l1_loss(x, y, reduction="sum"), lambda: np.abs(X - Y).sum()),
    "smooth_l1": (lambda x, y: ops.smooth_l1_loss(x, y),
                  lambda: np.where(np.abs(X - Y) < 1, 0.5 * (X - Y) ** 2, np.abs(X - Y) - 0.5)),
    "bce_logits": (lambda x, y: ops.binary_cross_entropy_with_logits(x, ops.sigmoid(y)),
                   lambda: np.mean(np.maximum(X, 0) - X * (1 / (1 + np.exp(-Y.astype(np.float64))))
                                   + np.log1p(np.exp(-np.abs(X.astype(np.float64)))))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_composite_matches_reference(name):
    fn, ref = CASES[name]
    want = np.asarray(ref(), np.float64)
    x, y = sf.Tensor(X), sf.Tensor(Y)
    for got in (fn(x, y), sf.jit(fn)(x, y)):
        assert got.shape == want.shape, (got.shape, want.shape)
        np.testing.assert_allclose(got.asnumpy().astype(np.float64), want, rtol=2e-5, atol=2e-6)


def test_softmax_is_stable_for_large_logits():
    big = sf.Tensor(np.array([[1000.0, 1001.0], [-1000.0, -1000.0]], np.float32))
    np.testing.assert_allclose(ops.softmax(big).asnumpy(), [[1 / (1 + math.e), math.e / (1 + math.e)], [0.5, 0.5]],
                               rtol=1e-6)
    assert np.isfinite(ops.log_softmax(big).asnumpy()).all()
