"""sha256 of the LLVM IR the backend generates for the benchmark graphs (bench/workloads.py).

Refactors of the passes or the LLVM backend that mean to change nothing run this before and
after and compare the lines: `PYTHONPATH=$PWD python bench/llvm_fingerprint.py`.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads as W  # noqa: E402


def graphs():
    """(name, jitted function, example args) for each benchmark graph."""
    sf, ops, mlp_logits, lenet_logits, _, train_step = W.sf_models()
    x = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    a, b = x + 1, x * 2
    yield "chain", sf.jit(lambda x, a, b: ops.exp(x) * a + ops.tanh(b) * 0.5, backend="llvm"), (x, a, b)
    yield "softmax", sf.jit(lambda x: ops.softmax(x, -1), backend="llvm"), (x,)
    yield "gemm", sf.jit(lambda x, w: ops.matmul(x, w), backend="llvm"), (x, x.T.copy())
    xm, ym = W.batch(32, (784,))
    yield "mlp_train", train_step(mlp_logits, W.mlp_params(), "llvm"), (xm, ym)
    xl, yl = W.batch(8, (1, 32, 32))
    yield "lenet_train", train_step(lenet_logits, W.lenet_params(), "llvm"), (xl, yl)
    xs, ys = W.batch(8, (784,))
    yield "per_sample_grads", W.sf_per_sample(W.mlp_params(), "llvm"), (*W.mlp_params(), xs, ys)


def main() -> None:
    import sporeflow as sf
    for name, fn, args in graphs():
        src = fn.trace(*[sf.Tensor(a) for a in args]).lower().source
        print(f"{name:18s} {hashlib.sha256(src.encode()).hexdigest()}  ({src.count(chr(10))} lines)")


if __name__ == "__main__":
    main()
