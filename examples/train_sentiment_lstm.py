"""Train an LSTM sentiment classifier on a synthetic review corpus that the script generates,
then report held-out accuracy.

    python3 examples/train_sentiment_lstm.py [--epochs 6] [--interp]

The corpus: "reviews" of 4-16 tokens drawn from positive, negative and neutral words, where
"not" flips the sentiment of the word after it ("not good" is negative). A review's label is the
sign of its summed sentiment (ties are dropped). A bag-of-words model cannot see the negation,
so the model has to read the order: Embedding(padding_idx=0) -> LSTM(batch_first, seq_length
from the padding) -> the last valid hidden state -> Dense(2).

It is MindSpore tutorial code with `import mindspore` changed to `import sporeflow`: a Cell, the
functional loop `value_and_grad(forward_fn, None, optimizer.parameters)` inside `@jit`, Adam and
CrossEntropyLoss. Each train step is one compiled graph (the LSTM is an `ops.scan`, its gradient a
reverse scan) on LLVM (device_target="CPU") when available, else on the numpy interpreter.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sporeflow as sf  # noqa: E402
from sporeflow import nn, ops  # noqa: E402

PAD, NOT = 0, 1
POSITIVE = ["good", "great", "fun", "superb", "lovely", "clever"]
NEGATIVE = ["bad", "dull", "awful", "boring", "weak", "messy"]
NEUTRAL = ["the", "movie", "plot", "was", "and", "actors", "film", "story", "it", "very"]
VOCAB = ["<pad>", "not"] + POSITIVE + NEGATIVE + NEUTRAL
SCORE = {VOCAB.index(w): 1 for w in POSITIVE} | {VOCAB.index(w): -1 for w in NEGATIVE}


def review_score(ids) -> int:
    """Summed sentiment, each word after 'not' counted with the opposite sign."""
    score, negate = 0, False
    for t in ids:
        t = int(t)
        if t == NOT:
            negate = True
            continue
        score += -SCORE.get(t, 0) if negate else SCORE.get(t, 0)
        negate = False
    return score


def make_corpus(n: int, max_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [n, max_len] (0-padded at the end) and labels 0/1 (1 = positive)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
        length = int(rng.integers(4, max_len + 1))
        ids: list[int] = []
        for _ in range(length):
            r = rng.random()
            if r < 0.15 and (not ids or ids[-1] != NOT):
                ids.append(NOT)
                continue
            ids.append(int(rng.integers(2, len(VOCAB))) if r < 0.6 else VOCAB.index(str(rng.choice(NEUTRAL))))
        score = review_score(ids)
        if score == 0:
            continue
        xs.append(ids + [PAD] * (max_len - len(ids)))
        ys.append(int(score > 0))
    return np.asarray(xs, np.int32), np.asarray(ys, np.int32)


class SentimentLSTM(nn.Cell):
    def __init__(self, vocab_size: int, embed: int = 16, hidden: int = 32, num_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=PAD)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.fc = nn.Dense(hidden, num_classes)

    def construct(self, ids):
        lengths = ops.sum(ops.cast(ops.not_equal(ids, PAD), sf.int32), 1)
        _, (h_n, _) = self.lstm(self.embedding(ids), None, lengths)
        return self.fc(h_n[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--train-size", type=int, default=1600)
    ap.add_argument("--max-len", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--interp", action="store_true", help="run on the numpy interpreter")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        import sporeflow.backends.llvm  # noqa: F401
        device = "INTERP" if args.interp else "CPU"
    except ImportError:
        device = "INTERP"
    sf.set_context(device_target=device)
    sf.set_seed(args.seed)
    x_train, y_train = make_corpus(args.train_size, args.max_len, args.seed)
    x_test, y_test = make_corpus(400, args.max_len, args.seed + 1)

    net = SentimentLSTM(len(VOCAB))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.Adam(net.trainable_params(), learning_rate=args.lr)

    def forward_fn(data, label):
        return loss_fn(net(data), label)

    grad_fn = sf.value_and_grad(forward_fn, None, optimizer.parameters)

    @sf.jit
    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        optimizer(grads)
        return loss

    predict = sf.jit(lambda data: ops.argmax(net(data), 1))
    bs = args.batch_size
    steps = len(y_train) // bs
    rng = np.random.default_rng(args.seed)
    epoch_losses = []
    print(f"device_target={device}: {len(y_train)} train / {len(y_test)} test reviews, vocabulary {len(VOCAB)}")
    for epoch in range(args.epochs):
        net.set_train(True)
        order = rng.permutation(len(y_train))
        losses = []
        for s in range(steps):
            idx = order[s * bs:(s + 1) * bs]
            losses.append(float(train_step(sf.Tensor(x_train[idx]), sf.Tensor(y_train[idx])).asnumpy()))
        net.set_train(False)
        acc = float((predict(sf.Tensor(x_test)).asnumpy() == y_test).mean())
        epoch_losses.append(float(np.mean(losses)))
        print(f"epoch {epoch + 1}: train loss {epoch_losses[-1]:.4f}, test accuracy {acc:.4f}")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return {"accuracy": acc, "epoch_losses": epoch_losses}


if __name__ == "__main__":
    main()
