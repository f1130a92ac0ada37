"""ImageFolderDataset: images in a tree of class folders (MindSpore's `dataset.ImageFolderDataset`).

    root/cat/001.jpg   root/cat/002.png   root/dog/a.jpg   ...

Columns: image (the file's bytes as a 1-d uint8 array, or the decoded HWC uint8 RGB array with
decode=True) and label (a uint32 scalar: the index of the folder's name in sorted order, or
class_indexing[name]). The file list is read once, when the dataset is created; a file that
cannot be read or decoded raises DatasetError naming it when its row is read.
"""
from __future__ import annotations

import os

import numpy as np

from ...errors import DatasetError
from .imaging import decode_image
from .readers import _check_dir
from .sources import SourceDataset

# MindSpore's default set when extensions is None (case-insensitive here)
_DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def _extensions(extensions) -> tuple[str, ...]:
    if extensions is None:
        return _DEFAULT_EXTENSIONS
    if isinstance(extensions, str) or not all(isinstance(e, str) for e in extensions):
        raise TypeError(f"ImageFolderDataset: extensions must be a list of str like ['.jpg'], got {extensions!r}")
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def _classes(root: str, class_indexing) -> dict[str, int]:
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir())
    if class_indexing is None:
        return {name: i for i, name in enumerate(folders)}
    if not isinstance(class_indexing, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in class_indexing.items()):
        raise TypeError(f"ImageFolderDataset: class_indexing must map folder names to non-negative ints, "
                        f"got {class_indexing!r}")
    missing = sorted(set(class_indexing) - set(folders))
    if missing:
        raise ValueError(f"ImageFolderDataset: class_indexing names folders {missing} that '{root}' does not have "
                         f"(it has {folders})")
    return dict(class_indexing)


class ImageFolderDataset(SourceDataset):
    """Reads `dataset_dir/<class>/<image file>`; see the module docstring for the columns."""
    _name = "ImageFolderDataset"

    def __init__(self, dataset_dir, num_samples=None, num_parallel_workers=None, shuffle=None, sampler=None,
                 extensions=None, class_indexing=None, decode: bool = False, num_shards=None, shard_id=None,
                 cache=None, decrypt=None):
        if decrypt is not None:
            raise NotImplementedError("ImageFolderDataset: decrypt= (encrypted images) is not supported by sporeflow")
        root = _check_dir(dataset_dir, self._name, cache)
        exts = _extensions(extensions)
        self._index = _classes(root, class_indexing)
        files: list[tuple[str, int]] = []
        for name in sorted(self._index):
            folder = os.path.join(root, name)
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames.sort()
                files += [(os.path.join(dirpath, f), self._index[name]) for f in sorted(filenames)
                          if os.path.splitext(f)[1].lower() in exts]
        self._files = files
        self._decode = bool(decode)
        super().__init__(["image", "label"], num_samples, shuffle, num_shards, shard_id, sampler)

    def get_class_indexing(self) -> dict[str, int]:
        return dict(self._index)

    def _num_rows(self) -> int:
        return len(self._files)

    def _row(self, i: int) -> tuple:
        path, label = self._files[i]
        try:
            with open(path, "rb") as f:
                data = np.frombuffer(f.read(), dtype=np.uint8)
        except OSError as e:
            raise DatasetError(f"{self._name}: cannot read '{path}': {e}") from None
        image = decode_image(data, f"{self._name} ('{path}')") if self._decode else data
        return image, np.uint32(label)

    def __repr__(self):
        return f"{self._name}({len(self._files)} images, {len(self._index)} classes, decode={self._decode})"
