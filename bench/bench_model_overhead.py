"""Model.train overhead per step: MLP 784-512-512-10, batch 128, synthetic data.

Measures, in the same run and on the same compiled train step (TrainOneStepCell under sf.jit:
forward, loss, gradients and the Momentum update in one graph):
  bare        a Python loop calling the compiled step on ready-made Tensors
  model       Model.train over an in-memory dataset (the runtime: loop, callbacks, counters)
  model+cb    the same with LossMonitor(per_print_times=0) and TimeMonitor-free History (reads the loss)
  model+ds    Model.train over sporeflow.dataset.NumpySlicesDataset(...).batch(128) (adds the data pipeline)
Reports steps/s (best and median of --repeat epochs per variant, timed round-robin after a warm-up
epoch that includes compilation) and the overhead of each against bare. The target is <= 10% for `model`.

    python bench/bench_model_overhead.py [--steps 40] [--repeat 5] [--backend llvm|interp]
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
from sporeflow import nn  # noqa: E402
from sporeflow.train import History, LossMonitor, Model  # noqa: E402


class TimedStep:
    """Wraps the compiled step and sums the time spent inside it, so the runtime's own time per
    step (total minus inside) is measured within one run, which other load cannot skew much."""

    def __init__(self, fn):
        self.fn, self.inside = fn, 0.0

    def __call__(self, *args):
        t = CLOCK()
        out = self.fn(*args)
        self.inside += CLOCK() - t
        return out

    def __getattr__(self, name):
        return getattr(self.fn, name)


class InMemory:
    """Pre-built batches: Model's own cost without a data pipeline."""

    def __init__(self, batches):
        self.batches = batches

    def get_dataset_size(self):
        return len(self.batches)

    def create_tuple_iterator(self, num_epochs=-1):
        return iter(self.batches)


def mlp() -> nn.Cell:
    return nn.SequentialCell(nn.Dense(784, 512, activation="relu"), nn.Dense(512, 512, activation="relu"),
                             nn.Dense(512, 10))


def build():
    sf.set_seed(0)
    net = mlp()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return Model(net, loss, nn.Momentum(net.trainable_params(), 0.01, 0.9))


CLOCK = time.perf_counter


def interleaved(variants: dict, repeat: int) -> dict[str, list[float]]:
    """Warm each variant up (compilation, first touch), then time them round-robin so that load
    from other processes hits every variant alike."""
    for fn in variants.values():
        fn()
    out: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            t = CLOCK()
            fn()
            out[name].append(CLOCK() - t)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--backend", default=None, help="llvm (default when available) or interp")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with this process's CPU time (robust when other processes load the machine)")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    backend = args.backend
    if backend is None:
        try:
            import sporeflow.backends.llvm  # noqa: F401
            backend = "llvm"
        except ImportError:
            backend = "interp"
    sf.set_context(backend=backend)

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((args.steps * args.batch, 784)).astype(np.float32)
    ys = rng.integers(0, 10, args.steps * args.batch).astype(np.int32)
    batches = [(sf.Tensor(xs[i * args.batch:(i + 1) * args.batch]), sf.Tensor(ys[i * args.batch:(i + 1) * args.batch]))
               for i in range(args.steps)]

    model = build()
    step = model._compiled(model.train_network)   # the very function Model.train calls
    model.train_network.set_train(True)

    def bare():
        for x, y in batches:
            step(x, y)
    mem = InMemory(batches)
    variants = {"bare": bare, "model": lambda: model.train(1, mem),
                "model+cb": lambda: model.train(1, mem, callbacks=[LossMonitor(0), History()])}
    try:
        from sporeflow import dataset as ds
        pipe = ds.NumpySlicesDataset({"x": xs, "y": ys}, shuffle=False).batch(args.batch)
        variants["model+ds"] = lambda: model.train(1, pipe)
    except ImportError:
        pass
    results = interleaved(variants, args.repeat)
    assert step.cache_size() == 1, "the train step recompiled"

    # the runtime's own time per step, measured inside single Model.train runs
    timed_step = TimedStep(step)
    model._jits[id(model.train_network)] = timed_step
    own = {}
    for name, cbs, data in (("model", None, mem), ("model+cb", [LossMonitor(0), History()], mem)) + \
            ((("model+ds", None, pipe),) if "model+ds" in variants else ()):
        fracs = []
        for _ in range(args.repeat):
            timed_step.inside = 0.0
            t = CLOCK()
            model.train(1, data, callbacks=cbs)
            total = CLOCK() - t
            fracs.append(((total - timed_step.inside) / args.steps, (total - timed_step.inside) / timed_step.inside))
        own[name] = min(fracs)
    model._jits[id(model.train_network)] = step

    base_med, base_min = statistics.median(results["bare"]), min(results["bare"])
    print(f"MLP 784-512-512-10, batch {args.batch}, {args.steps} steps/epoch, backend={backend}, "
          f"{'CPU' if args.cpu_time else 'wall'} time, {args.repeat} interleaved epochs per variant (best and median)")
    print(f"{'variant':<10} {'steps/s best':>13} {'ms/step best':>13} {'overhead best':>14} {'steps/s med':>12} "
          f"{'overhead med':>13}")
    summary = {}
    for name, ts in results.items():
        med, best = statistics.median(ts), min(ts)
        summary[name] = {"steps_per_s_best": args.steps / best, "steps_per_s_median": args.steps / med,
                         "overhead_best": best / base_min - 1, "overhead_median": med / base_med - 1}
        print(f"{name:<10} {args.steps / best:13.1f} {best * 1000 / args.steps:13.3f} "
              f"{100 * (best / base_min - 1):13.1f}% {args.steps / med:12.1f} {100 * (med / base_med - 1):12.1f}%")
    print("runtime's own time per step, outside the compiled step, within single Model.train runs (best):")
    for name, (per_step, frac) in own.items():
        summary[name]["own_ms_per_step"] = per_step * 1000
        summary[name]["own_fraction"] = frac
        print(f"  {name:<10} {per_step * 1e6:8.1f} us/step = {100 * frac:5.2f}% of the compiled step's time")
    return summary


if __name__ == "__main__":
    main()
