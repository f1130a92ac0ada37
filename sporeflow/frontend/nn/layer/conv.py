"""Conv2d, MaxPool2d, AvgPool2d (NCHW). Note MindSpore's Conv2d defaults: pad_mode='same', has_bias=False."""
from __future__ import annotations

import math

from ....ir import dtypes as D
from ... import functional as F
from ...cell import Cell
from ...tensor import Parameter
from ..initializer import HeUniform, Uniform, initializer
from .._check import shape_error

_PAD_MODES = ("same", "valid", "pad")


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


def _check_nchw(data_format: str, who: str) -> None:
    if data_format != "NCHW":
        raise ValueError(f"{who}: data_format {data_format!r} is not supported yet; only 'NCHW' is")


class Conv2d(Cell):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, pad_mode: str = "same",
                 padding=0, dilation=1, group: int = 1, has_bias: bool = False, weight_init=None, bias_init=None,
                 data_format: str = "NCHW", dtype=D.float32):
        super().__init__()
        _check_nchw(data_format, "Conv2d")
        pad_mode = pad_mode.lower()
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"Conv2d: pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
        if pad_mode != "pad" and padding not in (0, (0, 0), (0, 0, 0, 0)):
            raise ValueError(f"Conv2d: padding={padding} needs pad_mode='pad' (pad_mode is {pad_mode!r})")
        if in_channels % group or out_channels % group:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels {out_channels} must be "
                             f"divisible by group {group}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), \
            _pair(dilation, "dilation")
        self.pad_mode, self.padding, self.group, self.has_bias = pad_mode, padding, int(group), has_bias
        shape = (out_channels, in_channels // group) + self.kernel_size
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, shape, dtype), name="weight")
        self.bias = None
        if has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(shape[1] * shape[2] * shape[3]))
            self.bias = Parameter(initializer(bias_init, (out_channels,), dtype), name="bias")

    def construct(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise shape_error(f"Conv2d: input shape {x.shape} does not match [N, {self.in_channels}, H, W]")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.pad_mode, self.padding, self.dilation,
                        self.group)

    def extend_repr(self) -> str:
        return (f"input_channels={self.in_channels}, output_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, pad_mode={self.pad_mode}, "
                f"padding={self.padding}, dilation={self.dilation}, group={self.group}, has_bias={self.has_bias}")


class _Pool(Cell):
    def __init__(self, kernel_size=1, stride=1, pad_mode: str = "valid", padding=0, ceil_mode: bool = False,
                 data_format: str = "NCHW"):
        super().__init__()
        _check_nchw(data_format, type(self).__name__)
        pad_mode = pad_mode.lower()
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"{type(self).__name__}: pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
        if ceil_mode:
            raise ValueError(f"{type(self).__name__}: ceil_mode=True is not supported yet")
        self.kernel_size, self.stride = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
        self.pad_mode, self.padding = pad_mode, padding

    def extend_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad_mode={self.pad_mode}"


class MaxPool2d(_Pool):
    def __init__(self, kernel_size=1, stride=1, pad_mode: str = "valid", padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False, data_format: str = "NCHW"):
        if return_indices or dilation not in (1, (1, 1)):
            raise ValueError("MaxPool2d: return_indices and dilation != 1 are not supported yet")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)

    def construct(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, pad_mode=self.pad_mode)


class AvgPool2d(_Pool):
    def __init__(self, kernel_size=1, stride=1, pad_mode: str = "valid", padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None, data_format: str = "NCHW"):
        if not count_include_pad or divisor_override is not None:
            raise ValueError("AvgPool2d: count_include_pad=False and divisor_override are not supported yet")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, data_format)

    def construct(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, pad_mode=self.pad_mode)
