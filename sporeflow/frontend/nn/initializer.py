"""Weight initializers (`mindspore.common.initializer`): `initializer(init, shape, dtype)` gives a
concrete Tensor. Random draws use numpy's global generator, which `sf.set_seed` seeds, so a
seeded script builds the same network every time."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ...ir import dtypes as D
from ..tensor import Tensor


def _fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) as MindSpore/PyTorch compute them: dims 0/1 are out/in, the rest receptive field."""
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf


def calculate_gain(nonlinearity: str, param=None) -> float:
    table = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0,
             "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}
    if nonlinearity in table:
        return table[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


class Initializer:
    """Base: subclasses implement `_fill(shape) -> np.ndarray` (float64 is fine; cast later)."""

    def _fill(self, shape: tuple) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, arr: np.ndarray) -> None:   # MindSpore's in-place form
        arr[...] = self._fill(arr.shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Zero(Initializer):
    def _fill(self, shape):
        return np.zeros(shape)


class One(Initializer):
    def _fill(self, shape):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value):
        self.value = value

    def _fill(self, shape):
        return np.full(shape, self.value)


class Normal(Initializer):
    def __init__(self, sigma: float = 0.01, mean: float = 0.0):
        self.sigma, self.mean = sigma, mean

    def _fill(self, shape):
        return np.random.normal(self.mean, self.sigma, shape)


class Uniform(Initializer):
    def __init__(self, scale: float = 0.07):
        self.scale = scale

    def _fill(self, shape):
        return np.random.uniform(-self.scale, self.scale, shape)


class TruncatedNormal(Initializer):
    """Normal(mean, sigma) truncated to [a, b] (absolute bounds, as in MindSpore 2.x)."""

    def __init__(self, sigma: float = 0.01, mean: float = 0.0, a: float = -2.0, b: float = 2.0):
        self.sigma, self.mean, self.a, self.b = sigma, mean, a, b

    def _fill(self, shape):
        out = np.random.normal(self.mean, self.sigma, shape)
        bad = (out < self.a) | (out > self.b)
        while bad.any():
            out[bad] = np.random.normal(self.mean, self.sigma, int(bad.sum()))
            bad = (out < self.a) | (out > self.b)
        return out


class _He(Initializer):
    def __init__(self, negative_slope=0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"{type(self).__name__}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
        self.negative_slope, self.mode, self.nonlinearity = negative_slope, mode, nonlinearity

    def _std(self, shape) -> float:
        fan_in, fan_out = _fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return calculate_gain(self.nonlinearity, self.negative_slope) / math.sqrt(max(fan, 1))


class HeUniform(_He):
    def _fill(self, shape):
        bound = math.sqrt(3.0) * self._std(shape)
        return np.random.uniform(-bound, bound, shape)


class HeNormal(_He):
    def _fill(self, shape):
        return np.random.normal(0.0, self._std(shape), shape)


class XavierUniform(Initializer):
    def __init__(self, gain: float = 1):
        self.gain = gain

    def _fill(self, shape):
        fan_in, fan_out = _fans(shape)
        bound = self.gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
        return np.random.uniform(-bound, bound, shape)


class XavierNormal(Initializer):
    def __init__(self, gain: float = 1):
        self.gain = gain

    def _fill(self, shape):
        fan_in, fan_out = _fans(shape)
        return np.random.normal(0.0, self.gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)), shape)


_NAMES: dict[str, Callable[[], Initializer]] = {
    "zeros": Zero, "zero": Zero, "ones": One, "one": One, "normal": Normal, "uniform": Uniform,
    "truncatednormal": TruncatedNormal, "truncated_normal": TruncatedNormal,
    "heuniform": HeUniform, "he_uniform": HeUniform, "henormal": HeNormal, "he_normal": HeNormal,
    "xavieruniform": XavierUniform, "xavier_uniform": XavierUniform,
    "xaviernormal": XavierNormal, "xavier_normal": XavierNormal,
}


def _resolve(init) -> Initializer | np.ndarray:
    if isinstance(init, Initializer):
        return init
    if isinstance(init, str):
        cls = _NAMES.get(init.lower())
        if cls is None:
            raise ValueError(f"initializer: unknown name {init!r}; known: {sorted(set(_NAMES))}")
        return cls()
    if isinstance(init, bool):
        raise TypeError("initializer: init must be an Initializer, a name, a number or a Tensor, got bool")
    if isinstance(init, (int, float, np.number)):
        return Constant(init)
    if isinstance(init, Tensor):
        return init.asnumpy()
    if isinstance(init, np.ndarray):
        return init
    raise TypeError(f"initializer: init must be an Initializer, a name, a number or a Tensor, got "
                    f"{type(init).__name__}")


def initializer(init, shape=None, dtype=D.float32):
    """A Tensor of `shape` filled by `init` (an Initializer, its name, a number, or a Tensor)."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in (shape or ()))
    got = _resolve(init)
    dtype = D.as_dtype(dtype)
    if isinstance(got, np.ndarray):
        if shape and tuple(got.shape) != shape:
            raise ValueError(f"initializer: the Tensor has shape {got.shape}, but shape {shape} was asked for")
        return Tensor(got, dtype)
    arr = np.asarray(got._fill(shape))
    if dtype.is_float:
        arr = arr.astype(np.float32)
    return Tensor(arr, dtype)


__all__ = ["initializer", "Initializer", "Zero", "One", "Constant", "Normal", "Uniform", "TruncatedNormal",
           "HeUniform", "HeNormal", "XavierUniform", "XavierNormal", "calculate_gain"]
