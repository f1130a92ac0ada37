"""Trace + transform cost of reverse mode: an MLP (784-512-512-10) gradient and a LeNet-5 train
step (forward, cross entropy, grad, SGD update), with node counts of the forward and gradient
graphs. Models are Parameters + sf.ops so nothing but the transforms is measured.

    python bench/bench_transforms.py [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import ops  # noqa: E402
from sporeflow.passes.autodiff import vjp_graph  # noqa: E402


def param(rng, shape, name):
    return sf.Parameter(sf.Tensor((rng.standard_normal(shape) * 0.05).astype(np.float32)), name=name)


def mlp(rng):
    ps = [param(rng, (784, 512), "w1"), param(rng, (512,), "b1"), param(rng, (512, 512), "w2"),
          param(rng, (512,), "b2"), param(rng, (512, 10), "w3"), param(rng, (10,), "b3")]

    def loss(x, y):
        h = ops.relu(ops.matmul(x, ps[0]) + ps[1])
        h = ops.relu(ops.matmul(h, ps[2]) + ps[3])
        return ops.cross_entropy(ops.matmul(h, ps[4]) + ps[5], y)
    x = sf.Tensor(rng.standard_normal((64, 784)).astype(np.float32))
    y = sf.Tensor(rng.integers(0, 10, 64).astype(np.int32))
    return loss, ps, (x, y)


def lenet(rng):
    ps = [param(rng, (6, 1, 5, 5), "c1"), param(rng, (6,), "cb1"), param(rng, (16, 6, 5, 5), "c2"),
          param(rng, (16,), "cb2"), param(rng, (120, 400), "f1"), param(rng, (120,), "fb1"),
          param(rng, (84, 120), "f2"), param(rng, (84,), "fb2"), param(rng, (10, 84), "f3"), param(rng, (10,), "fb3")]

    def loss(x, y):
        h = ops.max_pool2d(ops.relu(ops.conv2d(x, ps[0], ps[1], pad_mode="pad", padding=2)), 2, 2)
        h = ops.max_pool2d(ops.relu(ops.conv2d(h, ps[2], ps[3])), 2, 2)
        h = h.reshape(h.shape[0], -1)
        h = ops.relu(ops.dense(h, ps[4], ps[5]))
        h = ops.relu(ops.dense(h, ps[6], ps[7]))
        return ops.cross_entropy(ops.dense(h, ps[8], ps[9]), y)
    x = sf.Tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    y = sf.Tensor(rng.integers(0, 10, 32).astype(np.int32))
    return loss, ps, (x, y)


def train_step_of(loss, ps, lr=0.01):
    grad_fn = sf.value_and_grad(loss, None, ps)

    def step(x, y):
        value, grads = grad_fn(x, y)
        for p, g in zip(ps, grads):
            ops.assign(p, p - lr * g)
        return value
    return step


def measure(name, loss, ps, args, repeat):
    fwd_t, grad_t, xform_t, step_t = [], [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fwd = sf.jit(loss).trace(*args)
        fwd_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        vjp_graph(fwd.graph, [False] * len(args) + [True] * len(fwd.captured))
        xform_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        grad = sf.jit(sf.grad(loss, None, ps)).trace(*args)
        grad_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        step = sf.jit(train_step_of(loss, ps)).trace(*args)
        step_t.append(time.perf_counter() - t0)
    ms = lambda xs: f"{1e3 * min(xs):8.2f}"  # noqa: E731
    print(f"{name:<22}{ms(fwd_t)}{ms(xform_t)}{ms(grad_t)}{ms(step_t)}"
          f"{len(fwd.graph.nodes):>8}{len(grad.graph.nodes):>8}{len(step.graph.nodes):>8}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    print("times in ms (best of %d); nodes = graph size" % a.repeat)
    print(f"{'model':<22}{'trace fwd':>8}{'  vjp pass':>8}{' grad trc':>8}{' step trc':>8}"
          f"{'fwd n':>8}{'grad n':>8}{'step n':>8}")
    measure("MLP 784-512-512-10", *mlp(rng), a.repeat)
    measure("LeNet-5 train step", *lenet(rng), a.repeat)
    print("grad trc = trace fn + vjp pass + inline (sf.jit(sf.grad(...)).trace); "
          "step trc adds the SGD update.")


if __name__ == "__main__":
    main()
