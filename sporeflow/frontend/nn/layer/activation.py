"""Activation Cells (MindSpore names and defaults) and `get_activation` for Dense(activation=...)."""
from __future__ import annotations

from ....ir import dtypes as D
from ...cell import Cell
from ... import functional as F
from ...tensor import Parameter
from ..initializer import initializer
from .._check import shape_error


class ReLU(Cell):
    def construct(self, x):
        return F.relu(x)


class ReLU6(Cell):
    def construct(self, x):
        return F.relu6(x)


class LeakyReLU(Cell):
    def __init__(self, alpha: float = 0.2):
        super().__init__()
        self.alpha = alpha

    def construct(self, x):
        return F.leaky_relu(x, self.alpha)


class GELU(Cell):
    """MindSpore's nn.GELU defaults to the tanh approximation (approximate=True)."""

    def __init__(self, approximate: bool = True):
        super().__init__()
        self.approximate = approximate

    def construct(self, x):
        return F.gelu(x, "tanh" if self.approximate else "none")


class Sigmoid(Cell):
    def construct(self, x):
        return F.sigmoid(x)


class Tanh(Cell):
    def construct(self, x):
        return F.tanh(x)


class SiLU(Cell):
    def construct(self, x):
        return F.silu(x)


class Softmax(Cell):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return F.softmax(x, self.axis)


class LogSoftmax(Cell):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return F.log_softmax(x, self.axis)


_ACTIVATIONS = {"relu": ReLU, "relu6": ReLU6, "leakyrelu": LeakyReLU, "gelu": GELU, "sigmoid": Sigmoid,
                "tanh": Tanh, "silu": SiLU, "softmax": Softmax, "logsoftmax": LogSoftmax}


class PReLU(Cell):
    """y = max(0, x) + w * min(0, x), one learnable slope `w` per channel (axis 1) or shared."""

    def __init__(self, channel: int = 1, w=0.25, dtype=D.float32):
        super().__init__()
        if channel <= 0:
            raise ValueError(f"PReLU: channel must be positive, got {channel}")
        self.channel = int(channel)
        init = float(w) if isinstance(w, (int, float)) else w
        data = initializer(init, (self.channel,), dtype) if not isinstance(init, float) else \
            initializer("ones", (self.channel,), dtype).asnumpy() * init
        self.w = Parameter(data, name="w")

    def construct(self, x):
        w = F.cast(self.w, x.dtype)
        if self.channel > 1:
            if x.ndim < 2 or x.shape[1] != self.channel:
                raise shape_error(f"PReLU: input shape {x.shape} has no channel axis 1 of size {self.channel}")
            w = F.reshape(w, (1, self.channel) + (1,) * (x.ndim - 2))
        return F.add(F.relu(x), F.mul(w, F.minimum(x, F.zeros_like(x))))


def get_activation(name, prim_name=None):
    """A Cell for an activation name ('relu', 'gelu', ...); a Cell or None passes through."""
    if name is None or isinstance(name, Cell):
        return name
    if not isinstance(name, str):
        raise TypeError(f"activation must be a str, a Cell or None, got {type(name).__name__}")
    cls = _ACTIVATIONS.get(name.lower())
    if cls is None:
        raise KeyError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
    return cls()
