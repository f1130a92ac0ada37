"""Per-kernel profile of a jitted step on the LLVM backend: every top-level node of the lowered
graph (after the pass pipeline) is compiled alone and timed on random inputs of its types.

    python3 bench/profile_step.py mlp|lenet|chain|per_sample [--top 15]

Prints the nodes sorted by time with their share of the sum, which is how the limits quoted
in README's benchmark notes were found.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _graph(name):
    import sporeflow as sf
    import workloads as W
    _, ops, mlp_logits, lenet_logits, _, train_step = W.sf_models()
    if name == "mlp":
        x, y = W.batch(128, (784,))
        return train_step(mlp_logits, W.mlp_params(), "llvm").trace(sf.Tensor(x), sf.Tensor(y)).graph
    if name == "lenet":
        x, y = W.batch(64, (1, 32, 32))
        return train_step(lenet_logits, W.lenet_params(), "llvm").trace(sf.Tensor(x), sf.Tensor(y)).graph
    if name == "per_sample":
        x, y = W.batch(64, (784,))
        args = [sf.Tensor(p) for p in W.mlp_params()] + [sf.Tensor(x), sf.Tensor(y)]
        return W.sf_per_sample(W.mlp_params(), "llvm").trace(*args).graph
    x = np.zeros(1 << 24, np.float32)
    return sf.jit(lambda a: ops.gelu(a * 2.0 + 1.0, approximate="tanh") * ops.sigmoid(a)).trace(sf.Tensor(x)).graph


def profile(graph, reps=20):
    from sporeflow.backends import get_backend
    from sporeflow.ir import Graph, Node, Value
    from sporeflow.passes.pipelines import run_default_pipeline
    g = run_default_pipeline(graph, "llvm")
    rng = np.random.default_rng(0)
    rows = []
    for k, n in enumerate(g.nodes):
        if n.op == "constant":
            continue
        ins = [Value(v.type, f"i{i}") for i, v in enumerate(n.inputs)]
        node = Node(n.op, ins, n.attrs, [v.type for v in n.outputs], n.loc, n.scope)
        exe = get_backend("llvm").compile(Graph(f"n{k}", ins, [node], node.outputs))
        args = [(rng.standard_normal(v.type.shape) if v.dtype.is_float else np.zeros(v.type.shape))
                .astype(v.dtype.storage) for v in ins]
        exe(*args)
        t0 = time.perf_counter()
        for _ in range(reps):
            exe(*args)
        t = (time.perf_counter() - t0) / reps
        what = n.op if n.op != "fused" else f"fused[{n.attrs['kind']}] {n.attrs['name']}"
        rows.append((t, k, what, " ".join(str(v.type) for v in n.outputs)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["mlp", "lenet", "chain", "per_sample"])
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    rows = profile(_graph(a.workload))
    total = sum(r[0] for r in rows)
    print(f"sum of kernels {total * 1e3:.3f} ms over {len(rows)} nodes (each timed alone, incl. call overhead)")
    for t, k, what, outs in sorted(rows, reverse=True)[:a.top]:
        print(f"  {t * 1e3:8.3f} ms {100 * t / total:5.1f}%  #{k:<3d} {what[:70]}  -> {outs[:40]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
