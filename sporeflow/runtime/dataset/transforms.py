"""`dataset.transforms`: general (non-image) transforms, as MindSpore's."""
from __future__ import annotations

import numpy as np

from ...errors import DatasetError
from ...ir import dtypes as D


class TypeCast:
    """Cast to `data_type` (a sporeflow dtype such as sf.int32, a numpy dtype or a name)."""

    def __init__(self, data_type):
        if isinstance(data_type, D.DType) or data_type in ("bfloat16", *D.BY_SHORT):
            dt = D.as_dtype(data_type)
            if dt is D.bfloat16:
                raise NotImplementedError("TypeCast to bfloat16 is not supported in the data pipeline (numpy has "
                                          "no bfloat16); cast inside the network instead")
            self._np = dt.storage
        else:
            try:
                self._np = np.dtype(data_type)  # numpy dtypes are taken as they are (uint16 stays uint16)
            except TypeError:
                raise TypeError(f"TypeCast: {data_type!r} is not a sporeflow or numpy dtype") from None
        self.data_type = data_type

    def __call__(self, x):
        a = np.asarray(x)
        with np.errstate(invalid="ignore", over="ignore"):
            return a.astype(self._np)

    def _batched(self, x):  # elementwise
        return self(x)

    def __repr__(self):
        return f"TypeCast({self._np})"


class OneHot:
    """Integer labels -> one-hot vectors of `num_classes`, in the label's dtype (float32 with
    smoothing_rate > 0: (1 - s) * onehot + s / num_classes)."""

    def __init__(self, num_classes: int, smoothing_rate: float = 0.0):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"OneHot: num_classes must be a positive int, got {num_classes!r}")
        if not 0.0 <= float(smoothing_rate) <= 1.0:
            raise ValueError(f"OneHot: smoothing_rate must be in [0, 1], got {smoothing_rate!r}")
        self.num_classes, self.smoothing_rate = num_classes, float(smoothing_rate)

    def __call__(self, label):
        a = np.asarray(label)
        if a.dtype.kind not in "ui":
            raise DatasetError(f"OneHot: labels must be integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= self.num_classes):
            raise DatasetError(f"OneHot: label {a.max() if a.max() >= self.num_classes else a.min()} is outside "
                               f"[0, {self.num_classes})")
        eye = np.eye(self.num_classes, dtype=a.dtype if self.smoothing_rate == 0 else np.float32)
        out = eye[a.astype(np.int64)]
        if self.smoothing_rate:
            out = out * (1 - self.smoothing_rate) + self.smoothing_rate / self.num_classes
        return out

    def _batched(self, labels):  # per element: a batch of labels gives a batch of vectors
        return self(labels)

    def __repr__(self):
        return f"OneHot(num_classes={self.num_classes}, smoothing_rate={self.smoothing_rate})"


class Compose:
    """Apply transforms in order; a tuple result is passed on as several arguments."""

    def __init__(self, transforms):
        ts = list(transforms) if isinstance(transforms, (list, tuple)) else [transforms]
        if not ts:
            raise ValueError("Compose: transforms is empty")
        for t in ts:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")
        self.transforms = ts

    def __call__(self, *args):
        return self._run(args, batched=False)

    @property
    def _batched(self):
        """Batched form when every transform has one (else None: the row path is used)."""
        if all(getattr(t, "_batched", None) is not None for t in self.transforms):
            return lambda *args: self._run(args, batched=True)
        return None

    def _run(self, args: tuple, batched: bool):
        for t in self.transforms:
            res = t._batched(*args) if batched else t(*args)
            args = res if isinstance(res, tuple) else (res,)
        return args[0] if len(args) == 1 else args

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class Duplicate:
    """x -> (x, copy of x): use with output_columns to make two columns from one."""

    def __call__(self, x):
        a = np.asarray(x)
        return a, a.copy()

    def _batched(self, x):
        return self(x)


class PadEnd:
    """Pad the end of each axis up to `pad_shape` with `pad_value` (0, or "" for strings); an
    axis longer than its pad size raises (MindSpore's rule; use text.Truncate first)."""

    def __init__(self, pad_shape, pad_value=None):
        if not isinstance(pad_shape, (list, tuple)) or not all(isinstance(n, int) and n >= 0 for n in pad_shape):
            raise TypeError(f"PadEnd: pad_shape must be a list of non-negative ints, got {pad_shape!r}")
        self.pad_shape, self.pad_value = list(pad_shape), pad_value

    def __call__(self, x):
        a = np.asarray(x)
        if a.ndim != len(self.pad_shape):
            raise DatasetError(f"PadEnd: pad_shape {self.pad_shape} has {len(self.pad_shape)} axes, the value has "
                               f"shape {a.shape}")
        if any(n < m for n, m in zip(self.pad_shape, a.shape)):
            raise DatasetError(f"PadEnd: the value of shape {a.shape} is longer than pad_shape {self.pad_shape}")
        value = self.pad_value if self.pad_value is not None else ("" if a.dtype.kind in "US" else 0)
        if a.dtype.kind in "US":
            a = a.astype(np.result_type(a.dtype, np.array(value).dtype))
        return np.pad(a, [(0, n - m) for n, m in zip(self.pad_shape, a.shape)], constant_values=value)


__all__ = ["TypeCast", "OneHot", "Compose", "Duplicate", "PadEnd"]
