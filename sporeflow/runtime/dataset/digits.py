"""The UCI handwritten digits dataset, shipped inside the package (sporeflow/data/digits.csv.gz).

Attribution: "Optical Recognition of Handwritten Digits" by E. Alpaydin and C. Kaynak (1998),
UCI Machine Learning Repository, https://doi.org/10.24432/C50P49, licensed under Creative
Commons Attribution 4.0 International (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/).
The file is the copy of its test set distributed with scikit-learn: 1797 8x8 images with pixels
0..16, 10 classes; the description is sporeflow/data/digits.rst. Format: one row per image,
64 comma-separated pixel values (row-major) then the label.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from ...errors import DatasetError
from .sources import NumpySlicesDataset

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
DIGITS_CSV = os.path.join(_DATA, "digits.csv.gz")
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _read_csv() -> tuple[np.ndarray, np.ndarray]:
    if "raw" not in _CACHE:
        if not os.path.isfile(DIGITS_CSV):
            raise FileNotFoundError(f"load_digits: the packaged data file '{DIGITS_CSV}' is missing; reinstall "
                                    "sporeflow")
        with gzip.open(DIGITS_CSV, "rt") as f:
            rows = [line.strip() for line in f if line.strip()]
        table = np.empty((len(rows), 65), dtype=np.int64)
        for i, line in enumerate(rows):
            fields = line.split(",")
            if len(fields) != 65:
                raise DatasetError(f"load_digits: '{DIGITS_CSV}' row {i} has {len(fields)} fields, expected 65 "
                                   "(64 pixels and a label)")
            table[i] = [int(v) for v in fields]
        if table[:, :64].min() < 0 or table[:, :64].max() > 16 or table[:, 64].min() < 0 or table[:, 64].max() > 9:
            raise DatasetError(f"load_digits: '{DIGITS_CSV}' has pixel values outside 0..16 or labels outside 0..9")
        _CACHE["raw"] = (table[:, :64].astype(np.uint8), table[:, 64].astype(np.int32))
    pixels, labels = _CACHE["raw"]
    return pixels.copy(), labels.copy()


def load_digits(normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """-> (images float32 [1797, 1, 8, 8] (NCHW; pixels / 16 in [0, 1] when normalize, else 0..16),
    labels int32 [1797] in 0..9), in file order."""
    pixels, labels = _read_csv()
    images = pixels.reshape(-1, 1, 8, 8).astype(np.float32)
    if normalize:
        images /= np.float32(16.0)
    return images, labels


def split_indices(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stratified split -> (train indices, test indices), both sorted: each class
    contributes round(test_fraction * its count) rows to the test side, chosen by `seed`."""
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng([int(seed), 0xD161])
    test = []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        k = int(round(test_fraction * idx.size))
        test.append(rng.permutation(idx)[:k])
    test_idx = np.sort(np.concatenate(test)) if test else np.empty(0, np.int64)
    train_mask = np.ones(labels.size, bool)
    train_mask[test_idx] = False
    return np.nonzero(train_mask)[0], test_idx


def load_digits_split(test_fraction: float = 0.2, seed: int = 0, normalize: bool = True):
    """-> ((train_images, train_labels), (test_images, test_labels)), a stratified split of
    load_digits() that is the same on every machine for a given (test_fraction, seed)."""
    images, labels = load_digits(normalize)
    tr, te = split_indices(labels, test_fraction, seed)
    return (images[tr], labels[tr]), (images[te], labels[te])


class DigitsDataset(NumpySlicesDataset):
    """The packaged digits as a dataset: columns image (float32 (1, 8, 8), in [0, 1]) and label
    (int32). usage 'train' / 'test' take the two sides of load_digits_split(test_fraction, seed);
    'all' or None takes every row. Shuffled by default, like every random-access source."""
    _name = "DigitsDataset"

    def __init__(self, usage=None, test_fraction: float = 0.2, seed: int = 0, num_samples=None, shuffle=None,
                 num_shards=None, shard_id=None):
        if usage not in (None, "all", "train", "test"):
            raise ValueError(f"DigitsDataset: usage must be 'train', 'test', 'all' or None, got {usage!r}")
        if usage in ("train", "test"):
            train, test = load_digits_split(test_fraction, seed)
            images, labels = train if usage == "train" else test
        else:
            images, labels = load_digits()
        super().__init__((images, labels), ["image", "label"], num_samples=num_samples, shuffle=shuffle,
                         num_shards=num_shards, shard_id=shard_id)
