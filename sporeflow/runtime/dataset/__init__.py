"""Datasets (MindSpore's `mindspore.dataset`), published as `sporeflow.dataset`.

    import sporeflow.dataset as ds
    from sporeflow.dataset import vision, transforms
    data = ds.MnistDataset("MNIST_Data/train").map(vision.Rescale(1 / 255, 0), "image").batch(32)

A pipeline is a tree of lazy nodes (engine.py) run by a prefetching background thread
(iterator.py); sources are sources.py (Python data), readers.py (MNIST, CIFAR-10 files) and
digits.py (the UCI digits shipped with sporeflow).
"""
from . import config, text, transforms, vision  # noqa: F401
from .digits import DigitsDataset, load_digits, load_digits_split, split_indices  # noqa: F401
from .combine import concat, zip  # noqa: F401
from .engine import BatchInfo, Dataset  # noqa: F401
from .image_folder import ImageFolderDataset  # noqa: F401
from .readers import Cifar10Dataset, MnistDataset  # noqa: F401
from .sources import GeneratorDataset, NumpySlicesDataset, SourceDataset  # noqa: F401
from .vision import Border, Inter  # noqa: F401

__all__ = ["config", "text", "transforms", "vision", "zip", "concat", "ImageFolderDataset", "Dataset", "BatchInfo", "GeneratorDataset", "NumpySlicesDataset",
           "MnistDataset", "Cifar10Dataset", "DigitsDataset", "load_digits", "load_digits_split", "split_indices",
           "Inter", "Border"]
