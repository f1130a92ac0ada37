"""TensorType (shape + dtype) and immutable attribute containers of the IR."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from .dtypes import DType, as_dtype, from_compute


@dataclass(frozen=True)
class TensorType:
    """The abstract value of a tensor: static shape and element type."""
    shape: tuple[int, ...]
    dtype: DType

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", as_dtype(self.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__


class ConstValue:
    """A numpy array held as an attribute: hashable by content, compared by content."""
    __slots__ = ("array", "_hash", "dtype")

    def __init__(self, array: np.ndarray, dtype: DType):
        self.array = np.array(array, order="C", copy=True)
        self.array.setflags(write=False)
        self._hash = hash((self.array.shape, dtype.short,
                           hashlib.blake2b(self.array.tobytes(), digest_size=8).hexdigest()))
        self.dtype = dtype

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (isinstance(other, ConstValue) and self._hash == other._hash
                and self.dtype is other.dtype and self.array.shape == other.array.shape
                and np.array_equal(self.array, other.array))

    def __repr__(self) -> str:
        return f"ConstValue({self.dtype.short}{list(self.array.shape)})"

    @staticmethod
    def of(value, dtype: DType) -> "ConstValue":
        return ConstValue(from_compute(np.asarray(value), dtype), dtype)


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class Attrs(Mapping[str, Any]):
    """An immutable, hashable mapping of attribute name -> hashable value."""
    __slots__ = ("_d", "_hash")

    def __init__(self, d: Mapping[str, Any] | None = None, **kw):
        items = dict(d or {}, **kw)
        self._d = {k: _freeze(items[k]) for k in sorted(items)}
        self._hash = None

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._d.items()))
        return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, Attrs) and self._d == other._d

    def replace(self, **kw) -> "Attrs":
        return Attrs(self._d, **kw)

    def __repr__(self) -> str:
        return f"Attrs({self._d})"
