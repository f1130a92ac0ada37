"""Train a small Transformer encoder on the digits read as sequences: each 8x8 image is 8 rows of
8 pixels, one token per row. Reports held-out accuracy.

    python3 examples/train_digits_transformer.py [--epochs 10] [--interp]

Rows -> Dense(8, d_model) + a learned position embedding -> nn.TransformerEncoder (2 layers of
nn.TransformerEncoderLayer, batch_first, pre-norm) -> mean over the 8 tokens -> Dense(10).
Trained with Model.fit (AdamWeightDecay with warm-up then cosine decay, CrossEntropyLoss,
Accuracy), the digits split shipped with sporeflow (see train_digits.py for the data notice).
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
from sporeflow.train import Accuracy, History, LossMonitor, Model  # noqa: E402


class RowTransformer(nn.Cell):
    def __init__(self, d_model: int = 32, nhead: int = 4, layers: int = 2, ff: int = 64, dropout: float = 0.1,
                 num_classes: int = 10):
        super().__init__()
        self.embed = nn.Dense(8, d_model)
        self.pos = sf.Parameter(nn.initializer.initializer(nn.initializer.Normal(0.02), (8, d_model)), name="pos")
        layer = nn.TransformerEncoderLayer(d_model, nhead, ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm((d_model,), epsilon=1e-5))
        self.head = nn.Dense(d_model, num_classes)

    def construct(self, image):                      # image [N, 1, 8, 8] -> rows [N, 8, 8]
        rows = ops.reshape(image, (image.shape[0], 8, 8))
        h = self.encoder(self.embed(rows) + self.pos)
        return self.head(ops.mean(h, 1))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.004)
    ap.add_argument("--train-size", type=int, default=0, help="use only this many training images (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interp", action="store_true", help="run on the numpy interpreter")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        import sporeflow.backends.llvm  # noqa: F401
        device = "INTERP" if args.interp else "CPU"
    except ImportError:
        device = "INTERP"
    sf.set_context(mode=sf.GRAPH_MODE, device_target=device)
    sf.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = ds.load_digits_split(test_fraction=0.2, seed=args.seed)
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    train_ds = ds.NumpySlicesDataset({"image": x_train, "label": y_train}, shuffle=True).batch(
        args.batch_size, drop_remainder=True)
    test_ds = ds.NumpySlicesDataset({"image": x_test, "label": y_test}, shuffle=False).batch(len(y_test))  # one shape

    net = RowTransformer()
    steps = train_ds.get_dataset_size()
    total = args.epochs * steps
    warm = max(total // 10, 1)
    lr = [args.lr * (i + 1) / warm if i < warm else
          args.lr * 0.5 * (1 + np.cos(np.pi * (i - warm) / max(total - warm, 1))) for i in range(total)]
    optimizer = nn.AdamWeightDecay(net.trainable_params(), learning_rate=lr, weight_decay=1e-4)
    model = Model(net, nn.CrossEntropyLoss(), optimizer, metrics={"accuracy": Accuracy()})
    history = History()
    print(f"device_target={device}: {len(y_train)} train / {len(y_test)} test images as 8-row sequences, "
          f"{steps} steps per epoch")
    model.fit(args.epochs, train_ds, valid_dataset=test_ds, callbacks=[LossMonitor(max(steps // 2, 1)), history])
    acc = model.eval(test_ds)["accuracy"]
    print(f"test accuracy: {acc:.4f}; total time {time.perf_counter() - t0:.1f} s")
    return {"accuracy": acc, "epoch_losses": [float(v) for v in history.history["net_output"]]}


if __name__ == "__main__":
    main()
