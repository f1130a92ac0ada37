"""Per-sample gradients of an MLP 784-512-512-10 at batch 64: sporeflow's
`jit(vmap(grad(loss, None, params)))` (interp backend, and llvm when it is registered) against
a hand-written numpy implementation measured in the same run. Prints trace + transform time,
node count, the median step time of several runs, samples/s and the ratio to numpy; checks
that both compute the same gradients first.

    python bench/bench_per_sample_grads.py [--repeat N] [--batch B]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import ops  # noqa: E402
from sporeflow.backends import get_backend  # noqa: E402

SIZES = (784, 512, 512, 10)


def make_params(rng):
    ws = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        ws.append((rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32))
        ws.append((rng.standard_normal(b) * 0.01).astype(np.float32))
    return ws


def sf_per_sample(params):
    ps = [sf.Parameter(sf.Tensor(w), name=f"p{i}") for i, w in enumerate(params)]

    def loss(x, y):                        # one example: x f32[784], y i32[]
        h = ops.expand_dims(x, 0)
        for i in range(0, 4, 2):
            h = ops.relu(ops.matmul(h, ps[i]) + ps[i + 1])
        return ops.cross_entropy(ops.matmul(h, ps[4]) + ps[5], ops.expand_dims(y, 0))
    return sf.vmap(sf.grad(loss, grad_position=None, weights=ps))


def numpy_per_sample(params, x, y):
    """The same per-sample gradients written by hand (forward, softmax-CE backward, outer products)."""
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2 + b2
    h2 = np.maximum(z2, 0)
    z3 = h2 @ w3 + b3
    e = np.exp(z3 - z3.max(axis=1, keepdims=True))
    d3 = e / e.sum(axis=1, keepdims=True)
    d3[np.arange(len(y)), y] -= 1.0
    d2 = (d3 @ w3.T) * (z2 > 0)
    d1 = (d2 @ w2.T) * (z1 > 0)
    return [np.einsum("bi,bj->bij", x, d1), d1, np.einsum("bi,bj->bij", h1, d2), d2,
            np.einsum("bi,bj->bij", h2, d3), d3]


def median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    params = make_params(rng)
    x = rng.standard_normal((a.batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, a.batch).astype(np.int32)
    xt, yt = sf.Tensor(x), sf.Tensor(y)
    want = numpy_per_sample(params, x, y)
    fn = sf_per_sample(params)

    t0 = time.perf_counter()
    traced = sf.jit(fn).trace(xt, yt)
    trace_s = time.perf_counter() - t0
    print(f"per-sample gradients, MLP {'-'.join(map(str, SIZES))}, batch {a.batch}, median of {a.repeat} runs")
    print(f"trace + grad + vmap: {1e3 * trace_s:.1f} ms, {len(traced.graph.nodes)} nodes")

    t_np = median_time(lambda: numpy_per_sample(params, x, y), a.repeat)
    rows = [("numpy (hand-written)", t_np)]
    backends = ["interp"]
    try:
        get_backend("llvm")
        backends.append("llvm")
    except Exception as e:  # noqa: BLE001  (the llvm backend is optional)
        print(f"llvm backend not available: {e}")
    for be in backends:
        jf = sf.jit(fn, backend=be)
        t0 = time.perf_counter()
        got = jf(xt, yt)
        first = time.perf_counter() - t0
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.asnumpy(), w, rtol=2e-3, atol=2e-5)
        t = median_time(lambda: jf(xt, yt), a.repeat)
        rows.append((f"sporeflow jit(vmap(grad)) [{be}]", t))
        print(f"  {be}: first call (trace + compile + run) {first:.2f} s; gradients match numpy")
    print(f"{'implementation':<38}{'ms/step':>10}{'samples/s':>12}{'numpy/x':>10}")
    for name, t in rows:
        print(f"{name:<38}{1e3 * t:>10.2f}{a.batch / t:>12.0f}{t_np / t:>10.2f}")
    print("numpy/x > 1 means faster than the hand-written numpy version.")


if __name__ == "__main__":
    main()
