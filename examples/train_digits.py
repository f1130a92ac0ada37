"""Train a small CNN on the UCI handwritten digits (8x8 images, 1797 samples, shipped with
sporeflow) with Model.fit, then report the held-out test accuracy.

    python3 examples/train_digits.py [--epochs 8] [--interp] [--ckpt-dir DIR] [--progress]

It is a MindSpore tutorial script with `import mindspore` changed to `import sporeflow`: a
Cell network, SoftmaxCrossEntropyWithLogits, Adam, Model(metrics={'accuracy'}), LossMonitor /
ProgressBar, ModelCheckpoint and a validation pass every epoch. Each train step is one
compiled graph (forward, loss, gradients, Adam update) on the LLVM backend
(device_target="CPU") when it is available, else on the numpy interpreter.

Data: "Optical Recognition of Handwritten Digits", E. Alpaydin and C. Kaynak, UCI Machine
Learning Repository (the copy distributed with scikit-learn), see sporeflow's data notice.
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
from sporeflow import dataset as ds, nn  # noqa: E402
from sporeflow.train import (Accuracy, CheckpointConfig, LossMonitor, Model, ModelCheckpoint,  # noqa: E402
                             ProgressBar)


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool):
    """Training drops the last partial batch (shuffled, so every image is still seen): one batch
    shape means one compiled train step instead of two (MindSpore's advice, pain #9)."""
    data = ds.NumpySlicesDataset({"image": x, "label": y}, shuffle=shuffle)
    return data.batch(batch_size, drop_remainder=shuffle)


class DigitsCNN(nn.Cell):
    """conv(1->16) relu pool, conv(16->32) relu pool, dense 128 -> 64 -> 10."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)              # pad_mode='same', no bias (MindSpore defaults)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(32 * 2 * 2, 64, activation="relu")
        self.dropout = nn.Dropout(p=0.2)
        self.fc2 = nn.Dense(64, num_classes)

    def construct(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        return self.fc2(self.dropout(self.fc1(self.flatten(x))))


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interp", action="store_true", help="run on the numpy interpreter")
    ap.add_argument("--progress", action="store_true", help="ProgressBar instead of LossMonitor")
    ap.add_argument("--ckpt-dir", default=None, help="checkpoint directory (default: a temporary one)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    try:
        import sporeflow.backends.llvm  # noqa: F401
        device = "INTERP" if args.interp else "CPU"
    except ImportError:
        device = "INTERP"
    sf.set_context(mode=sf.GRAPH_MODE, device_target=device)
    sf.set_seed(args.seed)

    # a stratified 80/20 split; the test side is never trained on
    (x_train, y_train), (x_test, y_test) = ds.load_digits_split(test_fraction=0.2, seed=args.seed)
    train_ds = make_dataset(x_train, y_train, args.batch_size, shuffle=True)
    test_ds = make_dataset(x_test, y_test, 120, shuffle=False)

    net = DigitsCNN()
    steps_per_epoch = train_ds.get_dataset_size()
    lr = nn.cosine_decay_lr(args.lr * 0.05, args.lr, args.epochs * steps_per_epoch, steps_per_epoch, args.epochs)
    optimizer = nn.Adam(net.trainable_params(), learning_rate=lr)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss_fn, optimizer, metrics={"accuracy": Accuracy()})

    ckpt_dir = args.ckpt_dir or tempfile.mkdtemp(prefix="digits_ckpt_")
    config = CheckpointConfig(save_checkpoint_steps=steps_per_epoch, keep_checkpoint_max=2)
    monitor = ProgressBar() if args.progress else LossMonitor(per_print_times=steps_per_epoch // 2)
    callbacks = [monitor, ModelCheckpoint(prefix="digits", directory=ckpt_dir, config=config)]
    print(f"device_target={device}: {len(y_train)} train / {len(y_test)} test images, "
          f"{steps_per_epoch} steps per epoch")
    model.fit(args.epochs, train_ds, valid_dataset=test_ds, callbacks=callbacks)

    acc = model.eval(test_ds)["accuracy"]
    elapsed = time.perf_counter() - t_start
    print(f"test accuracy: {acc:.4f} on {len(y_test)} held-out images; total time {elapsed:.1f} s "
          f"(checkpoints in {ckpt_dir}: {sorted(os.listdir(ckpt_dir))})")
    return acc


if __name__ == "__main__":
    main()
