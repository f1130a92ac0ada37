"""`sporeflow.dataset` (MindSpore's `mindspore.dataset`); the code lives in sporeflow/runtime/dataset."""
from ..runtime.dataset import *  # noqa: F401,F403
from ..runtime.dataset import (BatchInfo, ImageFolderDataset, concat, zip, Border, Cifar10Dataset, Dataset, DigitsDataset,  # noqa: F401
                               GeneratorDataset, Inter, MnistDataset, NumpySlicesDataset, SourceDataset, config,
                               load_digits, load_digits_split, split_indices)
from . import text, transforms, vision  # noqa: F401,E402
