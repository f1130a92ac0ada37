"""The sequence examples run end to end, shortened: an LSTM on the generated sentiment corpus and
a Transformer encoder on the digits rows; a few steps must lower the training loss."""
import importlib.util
import os

import numpy as np
import pytest


def _load(name):
    path = os.path.join(os.path.dirname(__file__), "..", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,argv", [
    ("train_sentiment_lstm", ["--epochs", "3", "--train-size", "192", "--lr", "0.02"]),
    # the interpreter: LLVM compiles of the encoder's train and eval graphs take ~15 s cold
    ("train_digits_transformer", ["--epochs", "3", "--train-size", "128", "--interp"]),
])
def test_sequence_example_trains(name, argv, capsys):
    out = _load(name).main(argv)
    losses = out["epoch_losses"]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert 0.0 <= out["accuracy"] <= 1.0
    assert "device_target=" in capsys.readouterr().out


def test_sentiment_corpus_needs_word_order():
    """'not' flips the next sentiment word: the labels are not the sign of the bag-of-words score."""
    mod = _load("train_sentiment_lstm")
    x, y = mod.make_corpus(400, 12, seed=3)
    assert x.shape == (400, 12) and 0.3 < y.mean() < 0.7
    assert all(mod.review_score(row) != 0 and (mod.review_score(row) > 0) == bool(lab) for row, lab in zip(x, y))
    naive = np.array([sum(mod.SCORE.get(int(t), 0) for t in row) for row in x])
    assert np.mean((naive > 0) != (y == 1)) > 0.1
