"""Data-parallel training of a digits CNN: the global batch is split over the MPI processes.

    mpirun -n 2 python3 examples/train_digits_dp.py [--steps 40] [--global-batch 64] [--check]
    python3 examples/train_digits_dp.py            # one process: the same training, no collectives

MindSpore's recipe unchanged: communication.init(), set_auto_parallel_context(
parallel_mode=DATA_PARALLEL, gradients_mean=True), then Model.train. The dataset shards itself
by rank (rows r, r+N, ...), each train step (forward, loss, gradients, bucketed gradient
all-reduce, Momentum update) is one LLVM-compiled graph, and rank 0 alone writes checkpoints.

--check also trains the same network single-process at the same global batch (on rank 0, with
no collectives) and prints the largest parameter difference. The network has no BatchNorm and
no Dropout: both see only the local batch (or a rank-local mask), so they would make the two
trainings differ by design (MindSpore needs SyncBatchNorm for that).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import communication as comm, dataset as ds, nn  # noqa: E402
from sporeflow.ir.comm import STATS, reset_stats  # noqa: E402
from sporeflow.train import Callback, CheckpointConfig, Model, ModelCheckpoint  # noqa: E402


class DigitsDPCNN(nn.Cell):
    """conv(1->16) relu pool, conv(16->32) relu pool, dense 128 -> 64 -> 10 (no BN, no dropout)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(32 * 2 * 2, 64, activation="relu")
        self.fc2 = nn.Dense(64, 10)

    def construct(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc2(self.fc1(self.flatten(x)))


class StepTimer(Callback):
    """Wall time of the steps after the first (compile) and the collectives' share of it."""

    def __init__(self):
        self.t0, self.steps = None, 0

    def on_train_step_end(self, run_context):
        if self.t0 is None:
            self.t0 = time.perf_counter()
            reset_stats()
        else:
            self.steps += 1

    def report(self) -> tuple[float, float, int]:
        dt = time.perf_counter() - self.t0
        return self.steps / dt, STATS["seconds"] / dt, STATS["calls"]


def make(lr: float):
    sf.set_seed(1)
    net = DigitsDPCNN()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    return net, loss, nn.Momentum(net.trainable_params(), lr, 0.9)


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--global-batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--bucket-mb", type=float, default=25.0, help="gradient bytes per all-reduce bucket")
    ap.add_argument("--check", action="store_true", help="compare with single-process training on rank 0")
    ap.add_argument("--ckpt-dir", default=None)
    ap.add_argument("--no-overlap", action="store_true",
                    help="blocking all-reduces where the graph puts them (default: start/wait overlapped)")
    args = ap.parse_args(argv)

    comm.init()
    rank, size = comm.get_rank(), comm.get_group_size()
    if args.global_batch % size:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over {size} processes")
    sf.set_context(mode=sf.GRAPH_MODE, device_target="CPU")
    sf.set_auto_parallel_context(parallel_mode=sf.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 comm_fusion={"allreduce": {"mode": "size", "config": args.bucket_mb}},
                                 comm_overlap=not args.no_overlap)

    (x, y), _ = ds.load_digits_split(test_fraction=0.2, seed=1)
    order = np.random.default_rng(0).permutation(len(y))      # one shuffle, the same on every rank
    n_rows = args.steps * args.global_batch
    x, y = np.resize(x[order], (n_rows,) + x.shape[1:]), np.resize(y[order], n_rows)
    train = ds.NumpySlicesDataset({"image": x, "label": y}, shuffle=False)   # shards by rank itself
    train = train.batch(args.global_batch // size, drop_remainder=True)

    net, loss, opt = make(args.lr)
    model = Model(net, loss, opt)
    ckpt_dir = args.ckpt_dir or os.path.join(tempfile.gettempdir(), "digits_dp_ckpt")   # rank 0 writes there
    timer = StepTimer()
    cfg = CheckpointConfig(save_checkpoint_steps=args.steps, keep_checkpoint_max=1)
    if rank == 0 and os.path.isdir(ckpt_dir):
        for f in os.listdir(ckpt_dir):
            if f.startswith("digits_dp"):
                os.remove(os.path.join(ckpt_dir, f))
    t = time.perf_counter()
    model.train(1, train, callbacks=[timer, ModelCheckpoint("digits_dp", ckpt_dir, cfg)], dataset_sink_mode=False)
    total = time.perf_counter() - t
    steps_s, comm_share, calls = timer.report()
    logits = net(sf.Tensor(x[:512])).asnumpy()
    acc = float(np.mean(logits.argmax(1) == y[:512]))
    if rank == 0:
        print(f"{size} process(es), global batch {args.global_batch} ({args.global_batch // size} per process), "
              f"{args.steps} steps in {total:.1f} s: {steps_s:.1f} steps/s after the first, collectives "
              f"{100 * comm_share:.0f}% of step time ({calls} calls), train accuracy {acc:.3f}; "
              f"checkpoints in {ckpt_dir}: {sorted(os.listdir(ckpt_dir))}")
    if args.check and rank == 0:
        dp = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
        sf.reset_auto_parallel_context()
        ref_net, ref_loss, ref_opt = make(args.lr)
        step = sf.jit(nn.TrainOneStepCell(nn.WithLossCell(ref_net, ref_loss), ref_opt))
        for s in range(args.steps):
            rows = slice(s * args.global_batch, (s + 1) * args.global_batch)
            step(sf.Tensor(x[rows]), sf.Tensor(y[rows]))
        diff = max(float(np.max(np.abs(dp[p.name] - p.asnumpy()))) for p in ref_net.trainable_params())
        same = all(np.array_equal(dp[p.name], p.asnumpy()) for p in ref_net.trainable_params())
        print(f"single-process reference, same global batch: max |param difference| = {diff:.3g}"
              f"{' (bit-exact)' if same else ''}")
    return acc


if __name__ == "__main__":
    main()
