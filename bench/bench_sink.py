"""Loop sinking: Model.train steps/s with dataset_sink_mode=True vs False, in one run.

Workloads (batch 32 digits / 128 synthetic, Momentum 0.9, softmax cross entropy, LLVM backend):
  digits-mlp   the small digits MLP 64-64-10 on sklearn's 8x8 digits (per-call overhead dominates)
  mlp-512      MLP 784-512-512-10 on synthetic data
  acc-4x32     gradient accumulation, 4 micro-batches of 32 per update (MLP 784-512-512-10),
               sporeflow Model(grad_accumulation=4) vs JAX (a jitted lax.scan of value_and_grad
               over the 4 micro-batches, then one update) when jax is installed
Each variant gets a warm-up epoch (compilation), then --repeat timed epochs round-robin; the
best is reported. Target: sink >= 1.3x non-sink on digits-mlp.

    python bench/bench_sink.py [--repeat 3] [--sink-size 0 (= whole epoch)] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import dataset as ds, nn  # noqa: E402
from sporeflow.train import Model  # noqa: E402


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Dense(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.SequentialCell(*layers)


def data(name, steps, batch):
    if name == "digits-mlp":
        (x, y), _ = ds.load_digits_split(test_fraction=0.0001, seed=0)
        x = x.reshape(len(x), -1).astype(np.float32)
        reps = -(-steps * batch // len(x))
        x, y = np.concatenate([x] * reps)[:steps * batch], np.concatenate([y] * reps)[:steps * batch]
    else:
        r = np.random.default_rng(0)
        x = r.standard_normal((steps * batch, 784)).astype(np.float32)
        y = r.integers(0, 10, steps * batch).astype(np.int32)
    return x, y.astype(np.int32)


def make_model(sizes, acc=1):
    sf.set_seed(0)
    net = mlp(sizes)
    opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
    kw = {"grad_accumulation": acc} if acc > 1 else {}
    return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt, **kw)


def time_variants(variants, repeat):
    """variants: name -> (callable running one epoch, steps per epoch). Returns name -> best steps/s."""
    for fn, _ in variants.values():
        fn()                                   # warm-up: compiles
    best = {k: 0.0 for k in variants}
    for _ in range(repeat):
        for k, (fn, steps) in variants.items():
            t = time.perf_counter()
            fn()
            best[k] = max(best[k], steps / (time.perf_counter() - t))
    return best


def model_variants(name, sizes, steps, batch, sink_size, acc=1):
    x, y = data(name, steps * acc, batch)
    out = {}
    for sink in (False, True):
        model = make_model(sizes, acc)
        dset = ds.NumpySlicesDataset({"x": x, "y": y}, shuffle=False).batch(batch, drop_remainder=True)
        k = sink_size if sink and sink_size > 0 else -1
        epochs = steps // k if k > 0 else 1

        def run(model=model, dset=dset, sink=sink, k=k, epochs=epochs):
            model.train(epochs, dset, dataset_sink_mode=sink, sink_size=k)
        out[f"{name} {'sink' if sink else 'non-sink'}"] = (run, steps)
    return out


def jax_accumulation(steps, batch, acc):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    x, y = data("mlp-512", steps * acc, batch)
    r = np.random.default_rng(0)
    params = [(r.standard_normal((a, b)).astype(np.float32) * np.sqrt(2 / a), np.zeros(b, np.float32))
              for a, b in [(784, 512), (512, 512), (512, 10)]]

    def loss_fn(ps, xb, yb):
        h = xb
        for i, (w, b) in enumerate(ps):
            h = h @ w + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(yb.shape[0]), yb])

    @jax.jit
    def step(ps, vs, xs, ys):
        def body(g_acc, micro):
            g = jax.grad(loss_fn)(ps, *micro)
            return jax.tree_util.tree_map(jnp.add, g_acc, g), None
        zero = jax.tree_util.tree_map(jnp.zeros_like, ps)
        g, _ = jax.lax.scan(body, zero, (xs, ys))
        g = jax.tree_util.tree_map(lambda a: a / acc, g)
        vs = jax.tree_util.tree_map(lambda v, gi: 0.9 * v + gi, vs, g)
        return jax.tree_util.tree_map(lambda p, v: p - 0.01 * v, ps, vs), vs
    xs = x.reshape(steps, acc, batch, 784)
    ys = y.reshape(steps, acc, batch)
    state = {"ps": params, "vs": jax.tree_util.tree_map(np.zeros_like, params)}

    def run():
        ps, vs = state["ps"], state["vs"]
        for t in range(steps):
            ps, vs = step(ps, vs, xs[t], ys[t])
        jax.block_until_ready(ps)
        state["ps"], state["vs"] = ps, vs
    return {"acc-4x32 jax": (run, steps)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sink-size", type=int, default=0, help="0: one sink per epoch (sink_size=-1)")
    ap.add_argument("--quick", action="store_true", help="few steps (checks that it runs)")
    args = ap.parse_args(argv)
    sf.set_context(device_target="CPU")
    steps = 8 if args.quick else 48
    results = {}
    for name, sizes, batch in [("digits-mlp", [64, 64, 10], 32), ("mlp-512", [784, 512, 512, 10], 128)]:
        results.update(time_variants(model_variants(name, sizes, steps, batch, args.sink_size), args.repeat))
    acc = model_variants("acc-4x32", [784, 512, 512, 10], steps // 2, 32, args.sink_size, acc=4)
    acc.update(jax_accumulation(steps // 2, 32, 4) or {})
    results.update(time_variants(acc, args.repeat))
    print(f"{'variant':28s} {'steps/s':>10s}")
    for k, v in results.items():
        print(f"{k:28s} {v:10.1f}")
    for name in ("digits-mlp", "mlp-512", "acc-4x32"):
        print(f"{name}: sink / non-sink = {results[name + ' sink'] / results[name + ' non-sink']:.2f}x")
    if "acc-4x32 jax" not in results:
        print("acc-4x32 jax: jax is not installed (pip install jax to compare)")
    return results


if __name__ == "__main__":
    main()
