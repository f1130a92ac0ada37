"""Mixed precision on the LLVM backend: the train step at O2 in float16 / bfloat16 against the
float32 (O0) one, measured in the same run, printed as medians and ratios.

    python bench/bench_amp.py [--steps 20] [--repeat 5] [--only mlp,cnn] [--profile mlp-f16]

Workloads (nn Cells, SoftmaxCrossEntropyWithLogits, Momentum, amp.build_train_network, one
compiled step: forward, loss, gradients, update; O2 with the default dynamic loss scaling):
  mlp  Dense 784-512-512-10, batch 128 (the README's MLP)
  cnn  the digits CNN of examples/train_digits.py (conv 3x3 16/32 + BatchNorm + pool, dense), batch 64
Variants are timed round-robin (one block of --steps calls each, --repeat times) after a warm-up
that includes compilation, so machine load shifts them alike. `--profile W-DTYPE` prints the
per-kernel profile (bench/profile_step.py) of that step instead.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import sporeflow as sf  # noqa: E402
from sporeflow import amp, nn  # noqa: E402

DTYPES = {"f32": None, "f16": sf.float16, "bf16": sf.bfloat16}


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Dense(784, 512), nn.Dense(512, 512), nn.Dense(512, 10)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


def _net(workload: str):
    if workload == "mlp":
        return MLP(), (128, 784)
    from train_digits import DigitsCNN
    return DigitsCNN(), (64, 1, 8, 8)


def build_step(workload: str, dtype_name: str):
    """(compiled step, x, y) for the workload at O0 (f32) or O2 in the given low dtype."""
    sf.set_seed(0)
    net, shape = _net(workload)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.01, 0.9)
    low = DTYPES[dtype_name]
    if low is None:
        step = amp.build_train_network(net, opt, loss, level="O0")
    else:
        step = amp.build_train_network(net, opt, loss, level="O2", cast_model_type=low)
    step.set_train()
    rng = np.random.default_rng(1)
    x = sf.Tensor(rng.standard_normal(shape).astype(np.float32))
    y = sf.Tensor(rng.integers(0, 10, shape[0]).astype(np.int32))
    return sf.jit(step, backend="llvm"), x, y


def _block(fn, x, y, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        out = fn(x, y)
    (out[0] if isinstance(out, tuple) else out).asnumpy()
    return (time.perf_counter() - t0) / steps


def run(workloads: list[str], steps: int, repeat: int) -> None:
    for w in workloads:
        variants = {d: build_step(w, d) for d in DTYPES}
        for fn, x, y in variants.values():
            _block(fn, x, y, 2)                   # compile + warm up
        times: dict[str, list[float]] = {d: [] for d in DTYPES}
        for _ in range(repeat):
            for d, (fn, x, y) in variants.items():
                times[d].append(_block(fn, x, y, steps))
        med = {d: statistics.median(t) for d, t in times.items()}
        print(f"{w}: " + "  ".join(f"{d} {med[d] * 1e3:7.2f} ms" for d in DTYPES) + "   "
              + "  ".join(f"{d}/f32 {med[d] / med['f32']:.2f}x" for d in DTYPES if d != "f32"))


def profile(which: str, top: int) -> None:
    import profile_step
    w, d = which.split("-")
    fn, x, y = build_step(w, d)
    rows = profile_step.profile(fn.trace(x, y).graph)
    total = sum(r[0] for r in rows)
    print(f"{which}: sum of kernels {total * 1e3:.3f} ms over {len(rows)} nodes")
    for t, k, what, outs in sorted(rows, reverse=True)[:top]:
        print(f"  {t * 1e3:8.3f} ms {100 * t / total:5.1f}%  #{k:<3d} {what[:70]}  -> {outs[:40]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="mlp,cnn")
    ap.add_argument("--profile", default=None, help="e.g. mlp-f16: per-kernel profile of that step")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    if a.profile:
        profile(a.profile, a.top)
    else:
        run(a.only.split(","), a.steps, a.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
