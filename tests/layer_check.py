"""Check a parameterised Cell against a numpy reference: forward eagerly, jitted on the
interpreter and on LLVM; gradients w.r.t. the float inputs and every trainable Parameter from
sf.grad (on the same backends) against float64 central differences of the numpy reference.
Build the Cell with dtype=sf.float64 so the comparison is tight."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import sporeflow as sf

from surface_util import numeric_grad

BACKENDS = ("eager", "interp", "llvm")


def _leaves(out) -> list:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _leaves(o)]
    return [out]


def _call(backend: str, fn: Callable, args):
    return fn(*args) if backend == "eager" else sf.jit(fn, backend=backend)(*args)


def _tensor(a):
    return a if isinstance(a, sf.Tensor) or a is None else sf.Tensor(a)


def check_layer(net, ref: Callable, *inputs, grad_inputs: Sequence[int] = (0,), rtol=1e-7, atol=1e-9,
                grad_rtol=1e-6, grad_atol=1e-8, backends: Sequence[str] = BACKENDS, seed=0) -> None:
    """ref(params: dict name -> float64 array, *inputs) -> array or tuple of arrays, from the
    documented formula. Inputs are numpy arrays (or None / sf.Tensor for non-differentiable ones)."""
    params = net.trainable_params()
    names = [p.name for p in params]
    pvals = {p.name: p.asnumpy().astype(np.float64) for p in params}
    args = [_tensor(a) for a in inputs]
    want = [np.asarray(w) for w in _leaves(ref(pvals, *inputs))]
    for be in backends:
        got = [g.asnumpy() for g in _leaves(_call(be, net, args))]
        assert len(got) == len(want), (be, len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape, (be, i, g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{type(net).__name__} output {i} on {be}")

    rng = np.random.default_rng(seed)
    cots = [rng.standard_normal(w.shape) for w in want]

    def total(vals: dict, xs: list) -> float:
        return float(sum((np.asarray(o) * c).sum() for o, c in zip(_leaves(ref(vals, *xs)), cots)))

    xs = [None if a is None or isinstance(a, sf.Tensor) else np.asarray(a, np.float64).copy() for a in inputs]
    want_gx = [numeric_grad(lambda v: total(pvals, v), xs, i) for i in grad_inputs]     # perturbs xs[i] in place
    plist = [pvals[n] for n in names]
    want_gp = [numeric_grad(lambda v: total(dict(zip(names, v)), xs), plist, j) for j in range(len(names))]

    def loss(*ts):
        outs = _leaves(net(*ts))
        return sum(((o * sf.Tensor(c)).sum() for o, c in zip(outs, cots)), sf.Tensor(np.float64(0.0)))

    g = sf.grad(loss, tuple(grad_inputs), params) if params else sf.grad(loss, tuple(grad_inputs))
    for be in backends:
        gx, gp = _call(be, g, args) if params else (_call(be, g, args), ())
        gx = gx if isinstance(gx, tuple) else (gx,)
        for i, a, w in zip(grad_inputs, gx, want_gx):
            np.testing.assert_allclose(a.asnumpy(), w, rtol=grad_rtol, atol=grad_atol,
                                       err_msg=f"{type(net).__name__} d/d input {i} on {be}")
        for n, a, w in zip(names, gp, want_gp):
            np.testing.assert_allclose(a.asnumpy(), w, rtol=grad_rtol, atol=grad_atol,
                                       err_msg=f"{type(net).__name__} d/d {n} on {be}")
