"""Differentially private SGD (Abadi et al. 2016) on the UCI digits: per-sample gradients by
`vmap(grad)`, each clipped to L2 norm <= C, summed, Gaussian noise of std sigma*C added, one
SGD update with their mean; the whole step is ONE jitted graph (forward, per-sample backward,
clipping, noise from the global RNG state, update).

    python3 examples/dp_sgd_digits.py [--epochs 10] [--clip 1.0] [--sigma 1.0] [--interp]

It reports the held-out accuracy; the privacy accounting (epsilon) is out of scope here.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import dataset as ds, nn, ops  # noqa: E402


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(64, 64, activation="relu")
        self.fc2 = nn.Dense(64, 10)

    def construct(self, x):
        return self.fc2(self.fc1(x))


def make_step(net: nn.Cell, lr: float, clip: float, sigma: float):
    """The jitted DP-SGD step: (x f32[B,64], y i32[B]) -> mean loss; updates net in place."""
    weights = net.trainable_params()
    opt = nn.SGD(weights, learning_rate=lr)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

    def sample_loss(x, y):                   # ONE example: x f32[64], y i32[]
        return loss_fn(net(ops.expand_dims(x, 0)), ops.expand_dims(y, 0))

    per_sample_grads = sf.vmap(sf.grad(sample_loss, grad_position=None, weights=weights))

    @sf.jit
    def step(x, y):
        grads = per_sample_grads(x, y)                        # each g: [B, *w.shape]
        batch = x.shape[0]
        sq = sum(ops.reshape(g * g, (batch, -1)).sum(axis=1) for g in grads)
        scale = ops.minimum(clip / (ops.sqrt(sq) + 1e-12), 1.0)  # per-sample clip factor, [B]
        noisy = []
        for g, w in zip(grads, weights):
            s = ops.reshape(scale, (batch,) + (1,) * (g.ndim - 1))
            total = (g * s).sum(axis=0) + ops.randn(*w.shape) * (sigma * clip)
            noisy.append(total / batch)
        opt(tuple(noisy))
        return loss_fn(net(x), y)
    return step


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interp", action="store_true", help="run on the numpy interpreter")
    args = ap.parse_args(argv)
    sf.set_context(device_target="INTERP" if args.interp else "CPU")
    sf.set_seed(args.seed)
    (x_tr, y_tr), (x_te, y_te) = ds.load_digits_split(test_fraction=0.2, seed=args.seed)
    x_tr, x_te = x_tr.reshape(len(x_tr), -1).astype(np.float32), x_te.reshape(len(x_te), -1).astype(np.float32)
    train = ds.NumpySlicesDataset({"x": x_tr, "y": y_tr.astype(np.int32)}, shuffle=True)
    train = train.batch(args.batch_size, drop_remainder=True)
    net = MLP()
    step = make_step(net, args.lr, args.clip, args.sigma)
    t0 = time.perf_counter()
    losses = []
    for epoch in range(args.epochs):
        train.set_epoch(epoch)
        epoch_losses = [float(step(x, y).asnumpy()) for x, y in train.create_tuple_iterator(num_epochs=1)]
        losses.append(float(np.mean(epoch_losses)))
        print(f"epoch {epoch + 1}: mean loss {losses[-1]:.4f}")
    pred = net(sf.Tensor(x_te)).asnumpy().argmax(axis=1)
    acc = float((pred == y_te).mean())
    print(f"test accuracy {acc:.4f} (DP-SGD: clip {args.clip}, noise multiplier {args.sigma}); "
          f"{time.perf_counter() - t0:.1f} s, the step compiled {step.trace_count} time(s)")
    return {"losses": losses, "accuracy": acc, "traces": step.trace_count}


if __name__ == "__main__":
    main()
