"""File readers: MnistDataset (idx ubyte files) and Cifar10Dataset (binary version).

MNIST (http://yann.lecun.com/exdb/mnist/): big-endian idx files. Images: magic 0x00000803,
count, rows, cols (int32 each), then count*rows*cols uint8 pixels. Labels: magic 0x00000801,
count, then count uint8 labels. Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte, also
accepted with '.' before 'idx' and with a .gz suffix. Columns: image uint8 (28, 28, 1), label
uint32.

CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"): data_batch_1..5.bin
(train) and test_batch.bin (test); each record is 1 label byte then 3072 pixel bytes, the red,
green and blue 32x32 planes in row-major order. Columns: image uint8 (32, 32, 3) HWC, label
uint32.

Both check every file completely when the dataset is created (sizes, magic numbers, label
range) and raise DatasetError naming the file, the row and the column at fault.
"""
from __future__ import annotations

import glob
import gzip
import os

import numpy as np

from ...errors import DatasetError
from .sources import ArraySource

_USAGES = ("train", "test", "all")


def _usage(usage, name: str) -> str:
    usage = "all" if usage is None else usage
    if usage not in _USAGES:
        raise ValueError(f"{name}: usage must be 'train', 'test', 'all' or None, got {usage!r}")
    return usage


def _check_dir(dataset_dir, name: str, cache=None) -> str:
    if cache is not None:
        raise NotImplementedError(f"{name}: cache= (MindSpore's cache server) is not supported by sporeflow")
    if not isinstance(dataset_dir, (str, os.PathLike)):
        raise TypeError(f"{name}: dataset_dir must be a path, got {type(dataset_dir).__name__}")
    d = os.fspath(dataset_dir)
    if not os.path.isdir(d):
        raise ValueError(f"{name}: dataset_dir '{d}' is not a directory")
    return d


def _check_labels(name: str, path: str, labels: np.ndarray, num_classes: int, what: str) -> None:
    bad = np.nonzero(labels >= num_classes)[0]
    if bad.size:
        raise DatasetError(f"{name}: '{path}' row {int(bad[0])}, column 'label': label {int(labels[bad[0]])} "
                           f"is not {what} 0-{num_classes - 1} (corrupt file?)")


# ------------------------------------------------------------------------------------------------
# MNIST
# ------------------------------------------------------------------------------------------------
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find_mnist(d: str, base: str) -> str | None:
    dotted = base.replace("-idx", ".idx")
    for cand in (base, dotted, base + ".gz", dotted + ".gz"):
        p = os.path.join(d, cand)
        if os.path.isfile(p):
            return p
    return None


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"MnistDataset: cannot read '{path}': {e}") from None


def _read_idx(path: str, magic: int, ndim: int, column: str) -> np.ndarray:
    """Parse one idx file fully, with errors that name the file, the row and the column."""
    blob = _read_bytes(path)
    head = 4 + 4 * ndim
    if len(blob) < head:
        raise DatasetError(f"MnistDataset: '{path}' is corrupt: {len(blob)} bytes is shorter than its "
                           f"{head}-byte header")
    got = int.from_bytes(blob[:4], "big")
    if got != magic:
        raise DatasetError(f"MnistDataset: '{path}' is corrupt or not an idx{ndim} {column} file: magic number "
                           f"{got:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(blob[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    per_row = int(np.prod(dims[1:], dtype=np.int64))
    need = head + dims[0] * per_row
    if len(blob) < need:
        row = (len(blob) - head) // max(per_row, 1)
        raise DatasetError(f"MnistDataset: '{path}' is truncated: its header announces {dims[0]} rows of shape "
                           f"{tuple(dims[1:])} ({need} bytes) but the file has {len(blob)} bytes; row {row}, column "
                           f"'{column}' is incomplete")
    if len(blob) > need:
        raise DatasetError(f"MnistDataset: '{path}' is corrupt: {len(blob) - need} bytes follow the {dims[0]} rows "
                           "its header announces")
    return np.frombuffer(blob, dtype=np.uint8, offset=head).reshape(dims)


class MnistDataset(ArraySource):
    """MNIST from `dataset_dir` (usage 'train', 'test' or 'all'/None); columns image, label."""
    _name = "MnistDataset"

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None):
        d = _check_dir(dataset_dir, self._name, cache)
        usage = _usage(usage, self._name)
        images, labels = [], []
        for part in (("train", "test") if usage == "all" else (usage,)):
            img_name, lab_name = _MNIST_FILES[part]
            ip, lp = _find_mnist(d, img_name), _find_mnist(d, lab_name)
            if ip is None or lp is None:
                if usage == "all":
                    continue
                raise ValueError(f"MnistDataset: '{d}' has no {part} files (expected {img_name} and {lab_name}, "
                                 "optionally .gz)")
            im = _read_idx(ip, 0x803, 3, "image")
            lb = _read_idx(lp, 0x801, 1, "label")
            if im.shape[0] != lb.shape[0]:
                raise DatasetError(f"MnistDataset: '{ip}' has {im.shape[0]} images but '{lp}' has {lb.shape[0]} labels")
            _check_labels("MnistDataset", lp, lb, 10, "a digit")
            images.append(im)
            labels.append(lb)
        if not images:
            raise ValueError(f"MnistDataset: '{d}' has no MNIST files (train-images-idx3-ubyte, ...)")
        self._arrays = [np.concatenate(images)[..., None], np.concatenate(labels).astype(np.uint32)]
        super().__init__(["image", "label"], num_samples, shuffle, num_shards, shard_id, sampler)


# ------------------------------------------------------------------------------------------------
# CIFAR-10
# ------------------------------------------------------------------------------------------------
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _read_cifar_file(path: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) % _CIFAR_RECORD:
        n = len(blob) // _CIFAR_RECORD
        raise DatasetError(f"Cifar10Dataset: '{path}' is truncated or corrupt: {len(blob)} bytes is not a whole "
                           f"number of {_CIFAR_RECORD}-byte records; row {n}, column 'image' is incomplete")
    rec = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0].astype(np.uint32)
    _check_labels("Cifar10Dataset", path, labels, num_classes, "a class")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


class Cifar10Dataset(ArraySource):
    """CIFAR-10 binary files from `dataset_dir` (usage 'train', 'test' or 'all'/None)."""
    _name = "Cifar10Dataset"

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None):
        d = _check_dir(dataset_dir, self._name, cache)
        usage = _usage(usage, self._name)
        files = []
        if usage in ("train", "all"):
            files += sorted(glob.glob(os.path.join(d, "data_batch_*.bin")))
        if usage in ("test", "all"):
            files += sorted(glob.glob(os.path.join(d, "test_batch.bin")))
        if not files:
            raise ValueError(f"Cifar10Dataset: '{d}' has no CIFAR-10 binary files for usage '{usage}' (expected "
                             "data_batch_1.bin ... data_batch_5.bin and/or test_batch.bin)")
        parts = [_read_cifar_file(p, 10) for p in files]
        self._arrays = [np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])]
        super().__init__(["image", "label"], num_samples, shuffle, num_shards, shard_id, sampler)
