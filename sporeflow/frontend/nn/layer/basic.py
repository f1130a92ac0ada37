"""Dense, Flatten, Dropout, Embedding, Identity, Pad."""
from __future__ import annotations

import math

from ....ir import dtypes as D
from ... import functional as F
from ....core import lax
from ...cell import Cell
from ...random import next_key
from ...tensor import Parameter
from ..initializer import HeUniform, Uniform, initializer
from .activation import get_activation
from .._check import shape_error


class Dense(Cell):
    """y = activation(x @ weight.T + bias); weight is [out_channels, in_channels].
    Default init (weight_init/bias_init None) is HeUniform(sqrt(5)) / Uniform(1/sqrt(in)), as MindSpore 2.x."""

    def __init__(self, in_channels: int, out_channels: int, weight_init=None, bias_init=None, has_bias: bool = True,
                 activation=None, dtype=D.float32):
        super().__init__()
        self.in_channels, self.out_channels, self.has_bias = int(in_channels), int(out_channels), has_bias
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, (out_channels, in_channels), dtype), name="weight")
        self.bias = None
        if has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(in_channels))
            self.bias = Parameter(initializer(bias_init, (out_channels,), dtype), name="bias")
        self.activation = get_activation(activation) if isinstance(activation, str) else activation
        self.activation_flag = self.activation is not None

    def construct(self, x):
        if x.shape[-1] != self.in_channels:
            raise shape_error(f"Dense: input has {x.shape[-1]} features (shape {x.shape}), expected "
                             f"in_channels={self.in_channels}")
        y = F.dense(x, self.weight, self.bias)
        return self.activation(y) if self.activation_flag else y

    def extend_repr(self) -> str:
        return f"input_channels={self.in_channels}, output_channels={self.out_channels}, has_bias={self.has_bias}"


class Flatten(Cell):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def construct(self, x):
        return F.flatten(x, start_dim=self.start_dim, end_dim=self.end_dim)


class Identity(Cell):
    def construct(self, x):
        return x


class Dropout(Cell):
    """Inverted dropout, active only in training. `p` is the drop rate (MindSpore 2.x); the older
    `keep_prob` still works. Randomness comes from the global RNG state (sf.set_seed), which a
    compiled step threads through its outputs, so every step draws new masks."""

    def __init__(self, keep_prob: float = 0.5, p: float | None = None, dtype=D.float32):
        super().__init__()
        rate = float(p) if p is not None else 1.0 - float(keep_prob)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: the drop rate p must be in [0, 1), got {rate}")
        self.p = rate
        self.keep_prob = 1.0 - rate

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        return F.dropout(x, self.p, True, key=next_key())

    def extend_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Cell):
    """Lookup table [vocab_size, embedding_size]; output shape ids.shape + (embedding_size,)."""

    def __init__(self, vocab_size: int, embedding_size: int, use_one_hot: bool = False, embedding_table="normal",
                 dtype=D.float32, padding_idx: int | None = None):
        super().__init__()
        self.vocab_size, self.embedding_size, self.use_one_hot = int(vocab_size), int(embedding_size), use_one_hot
        table = initializer(embedding_table, (vocab_size, embedding_size), dtype).asnumpy()
        if padding_idx is not None:
            if not -vocab_size <= padding_idx < vocab_size:
                raise ValueError(f"Embedding: padding_idx {padding_idx} out of range for vocab_size {vocab_size}")
            table[padding_idx] = 0.0
        self.padding_idx = padding_idx
        self.embedding_table = Parameter(table, name="embedding_table")

    def construct(self, ids):
        if not ids.dtype.is_int:
            raise TypeError(f"Embedding: ids must be integers, got {ids.dtype.name}")
        if self.use_one_hot:
            oh = F.one_hot(ids, self.vocab_size, 1.0, 0.0)
            flat = F.reshape(oh, (-1, self.vocab_size))
            out = lax.matmul(flat, self.embedding_table, transpose_a=False, transpose_b=False)
            return F.reshape(out, tuple(ids.shape) + (self.embedding_size,))
        return F.gather(self.embedding_table, ids, 0)


class Pad(Cell):
    """nn.Pad(paddings, mode): paddings[d] = (before, after) for every dimension d of the input
    (MindSpore orders them from the first dimension). CONSTANT pads zeros; REFLECT mirrors without
    the edge (padding < size); SYMMETRIC mirrors including the edge (padding <= size)."""
    _MODES = ("CONSTANT", "REFLECT", "SYMMETRIC")

    def __init__(self, paddings, mode: str = "CONSTANT"):
        super().__init__()
        mode = mode.upper()
        if mode not in self._MODES:
            raise ValueError(f"Pad: mode must be one of {self._MODES}, got {mode!r}")
        pads = tuple(tuple(int(v) for v in p) for p in paddings)
        if any(len(p) != 2 or min(p) < 0 for p in pads):
            raise ValueError(f"Pad: paddings must be non-negative (before, after) pairs, got {paddings!r}")
        self.paddings, self.mode = pads, mode

    def construct(self, x):
        if len(self.paddings) != x.ndim:
            raise shape_error(f"Pad: {len(self.paddings)} padding pairs for an input of rank {x.ndim} "
                             f"(shape {x.shape})")
        if self.mode == "CONSTANT":
            flat = [v for p in reversed(self.paddings) for v in p]
            return F.pad(x, flat)
        skip = 1 if self.mode == "REFLECT" else 0
        for ax, (lo, hi) in enumerate(self.paddings):
            n = x.shape[ax]
            if max(lo, hi) > n - skip:
                raise ValueError(f"Pad: {self.mode} padding {(lo, hi)} on axis {ax} must be at most {n - skip} "
                                 f"for size {n}")
            parts = []
            if lo:
                parts.append(F.flip(F.narrow(x, ax, skip, lo), (ax,)))
            parts.append(x)
            if hi:
                parts.append(F.flip(F.narrow(x, ax, n - hi - skip, hi), (ax,)))
            x = F.cat(parts, axis=ax) if len(parts) > 1 else x
        return x
