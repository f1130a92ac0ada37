"""Helpers for the MindSpore-surface tests: run one function eagerly, jitted on the interpreter
and on LLVM against a numpy reference; gradients against float64 central finite differences."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import sporeflow as sf

BACKENDS = ("eager", "interp", "llvm")
CUDA = "cuda-emulated"   # the CUDA backend's generated kernels, run by its CPU emulator


def run_on(backend: str, fn: Callable, *arrays):
    ts = [sf.Tensor(a) for a in arrays]
    return fn(*ts) if backend == "eager" else sf.jit(fn, backend=backend)(*ts)


def leaves(out) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in leaves(o)]
    return [out.asnumpy()]


def check_backends(fn: Callable, want, *arrays, rtol=1e-5, atol=1e-6, backends: Sequence[str] = BACKENDS):
    """fn on every backend equals the numpy reference `want` (an array or a tuple of them)."""
    want_l = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else [want])]
    for be in backends:
        got = leaves(run_on(be, fn, *arrays))
        assert len(got) == len(want_l), (be, len(got), len(want_l))
        for g, w in zip(got, want_l):
            assert g.shape == w.shape, (be, g.shape, w.shape)
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"backend {be}")


def numeric_grad(f: Callable[[list[np.ndarray]], float], xs: list[np.ndarray], i: int, eps=1e-6) -> np.ndarray:
    x = xs[i]
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        old = x[k]
        x[k] = old + eps
        hi = f(xs)
        x[k] = old - eps
        lo = f(xs)
        x[k] = old
        g[k] = (hi - lo) / (2 * eps)
    return g


def check_grad(fn: Callable, *arrays, argnums: Sequence[int] | None = None, seed=0, rtol=1e-5, atol=1e-7,
               backends: Sequence[str] = BACKENDS) -> None:
    """sf.grad of sum(fn(*xs) * c) (c a fixed random cotangent) against float64 finite
    differences, eagerly and jitted on each backend."""
    xs = [np.asarray(a, np.float64).copy() for a in arrays]
    argnums = tuple(range(len(xs))) if argnums is None else tuple(argnums)
    rng = np.random.default_rng(seed)
    shapes = [o.shape for o in leaves(fn(*[sf.Tensor(x) for x in xs]))]
    cots = [rng.standard_normal(s) for s in shapes]

    def loss(*ts):
        out = fn(*ts)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        total = 0.0
        for o, c in zip(outs, cots):
            total = total + (o * sf.Tensor(c)).sum()
        return total

    def loss_np(vals):
        return float(loss(*[sf.Tensor(v) for v in vals]).asnumpy())

    want = [numeric_grad(loss_np, xs, i) for i in argnums]
    g = sf.grad(loss, grad_position=argnums)
    for be in backends:
        got = run_on(be, g, *xs)
        got = list(got) if isinstance(got, tuple) else [got]
        for i, gv, w in zip(argnums, got, want):
            np.testing.assert_allclose(gv.asnumpy(), w, rtol=rtol, atol=atol, err_msg=f"d/dx{i} on {be}")
