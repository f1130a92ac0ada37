"""Conv1d, Conv2d, Conv2dTranspose, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (NCHW). Note MindSpore's
conv defaults: pad_mode='same', has_bias=False."""
from __future__ import annotations

import math

import numpy as np

from ....ir import dtypes as D
from ... import functional as F
from ....core import lax
from ...cell import Cell
from ...tensor import Parameter, Tensor
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


def _conv_init(weight_init, bias_init, shape, fan_in: int, out: int, has_bias: bool, dtype):
    w = Parameter(initializer(HeUniform(math.sqrt(5)) if weight_init is None else weight_init, shape, dtype),
                  name="weight")
    b = None
    if has_bias:
        b = Parameter(initializer(Uniform(1 / math.sqrt(fan_in)) if bias_init is None else bias_init, (out,), dtype),
                      name="bias")
    return w, b


def _check_conv_args(who: str, pad_mode: str, padding, in_channels: int, out_channels: int, group: int) -> str:
    pad_mode = pad_mode.lower()
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"{who}: pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
    if pad_mode != "pad" and padding not in (0, (0, 0), (0, 0, 0, 0)):
        raise ValueError(f"{who}: padding={padding} needs pad_mode='pad' (pad_mode is {pad_mode!r})")
    if in_channels % group or out_channels % group:
        raise ValueError(f"{who}: in_channels {in_channels} and out_channels {out_channels} must be divisible by "
                         f"group {group}")
    return pad_mode


class Conv2d(Cell):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, pad_mode: str = "same",
                 padding=0, dilation=1, group: int = 1, has_bias: bool = False, weight_init=None, bias_init=None,
                 data_format: str = "NCHW", dtype=D.float32):
        super().__init__()
        _check_nchw(data_format, "Conv2d")
        pad_mode = _check_conv_args("Conv2d", pad_mode, padding, in_channels, out_channels, group)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), \
            _pair(dilation, "dilation")
        self.pad_mode, self.padding, self.group, self.has_bias = pad_mode, padding, int(group), has_bias
        shape = (out_channels, in_channels // group) + self.kernel_size
        self.weight, self.bias = _conv_init(weight_init, bias_init, shape, shape[1] * shape[2] * shape[3],
                                            out_channels, has_bias, dtype)

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


class Conv1d(Cell):
    """1-D convolution over [N, C, L]; weight [out, in/group, kernel_size]. Runs as a Conv2d of
    height 1, so it shares conv2d's kernels and derivative rules."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 pad_mode: str = "same", padding: int = 0, dilation: int = 1, group: int = 1, has_bias: bool = False,
                 weight_init=None, bias_init=None, dtype=D.float32):
        super().__init__()
        self.pad_mode = _check_conv_args("Conv1d", pad_mode, padding, in_channels, out_channels, group)
        self.in_channels, self.out_channels, self.group, self.has_bias = in_channels, out_channels, group, has_bias
        self.kernel_size, self.stride, self.dilation, self.padding = int(kernel_size), int(stride), int(dilation), \
            padding
        shape = (out_channels, in_channels // group, self.kernel_size)
        self.weight, self.bias = _conv_init(weight_init, bias_init, shape, shape[1] * shape[2], out_channels,
                                            has_bias, dtype)

    def construct(self, x):
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise shape_error(f"Conv1d: input shape {x.shape} does not match [N, {self.in_channels}, L]")
        pad = (0, 0, self.padding, self.padding) if self.pad_mode == "pad" else 0
        mode = "pad" if self.pad_mode == "pad" else self.pad_mode
        if self.pad_mode == "same":
            pad = (0, 0) + F.nn_ops._same_padding(x.shape[2], self.kernel_size, self.stride, self.dilation)
            mode = "pad"
        y = F.conv2d(F.expand_dims(x, 2), F.expand_dims(self.weight, 2), self.bias, (1, self.stride), mode, pad,
                     (1, self.dilation), self.group)
        return F.squeeze(y, 2)


class Conv2dTranspose(Cell):
    """Transposed convolution (the gradient of Conv2d w.r.t. its input); weight
    [in, out/group, kh, kw]. Output size per MindSpore: 'same' H*s; 'valid' (H-1)*s + d*(k-1) + 1;
    'pad' (H-1)*s - (top+bottom) + d*(k-1) + output_padding + 1. Computed as a stride-1 conv of
    the input dilated by `stride` (interior padding) with the flipped, transposed kernel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, pad_mode: str = "same",
                 padding=0, output_padding=0, dilation=1, group: int = 1, has_bias: bool = False, weight_init=None,
                 bias_init=None, dtype=D.float32):
        super().__init__()
        self.pad_mode = _check_conv_args("Conv2dTranspose", pad_mode, padding, in_channels, out_channels, group)
        self.in_channels, self.out_channels, self.group, self.has_bias = in_channels, out_channels, group, has_bias
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), \
            _pair(dilation, "dilation")
        self.padding, self.output_padding = padding, _pair(output_padding, "output_padding")
        shape = (in_channels, out_channels // group) + self.kernel_size
        self.weight, self.bias = _conv_init(weight_init, bias_init, shape, shape[1] * shape[2] * shape[3],
                                            out_channels, has_bias, dtype)

    def _crop(self, size: int, axis: int) -> tuple[int, int]:
        """How much to remove from each side of the full transposed output along one axis."""
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        full = (size - 1) * s + d * (k - 1) + 1
        if self.pad_mode == "same":
            total = full - size * s
            return total // 2, total - total // 2
        if self.pad_mode == "valid":
            return 0, 0
        p = F.nn_ops.conv_padding("pad", self.padding, (0, 0), (1, 1), (1, 1), (1, 1))
        return p[2 * axis], p[2 * axis + 1] - self.output_padding[axis]

    def construct(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise shape_error(f"Conv2dTranspose: input shape {x.shape} does not match [N, {self.in_channels}, H, W]")
        g, (kh, kw) = self.group, self.kernel_size
        cin, cout = self.in_channels, self.out_channels
        w = F.reshape(F.cast(self.weight, x.dtype), (g, cin // g, cout // g, kh, kw))
        w = F.flip(F.reshape(F.transpose(w, (0, 2, 1, 3, 4)), (cout, cin // g, kh, kw)), (2, 3))
        lo, hi = [0, 0, 0, 0], [0, 0, 0, 0]
        crops = []
        for a in (0, 1):
            edge = self.dilation[a] * (self.kernel_size[a] - 1)
            c_lo, c_hi = self._crop(x.shape[2 + a], a)
            lo[2 + a], hi[2 + a] = max(edge - c_lo, 0), max(edge - c_hi, 0)
            crops.append((max(c_lo - edge, 0), max(c_hi - edge, 0)))
        interior = (0, 0, self.stride[0] - 1, self.stride[1] - 1)
        xd = lax.pad(x, lo=tuple(lo), hi=tuple(hi), interior=interior, value=0.0)
        if any(c for pair in crops for c in pair):
            (t, b), (l, r) = crops
            xd = xd[:, :, t:xd.shape[2] - b, l:xd.shape[3] - r]
        return F.conv2d(xd, w, self.bias, 1, "valid", 0, self.dilation, g)


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
    """Row i averages input[floor(i*size/out) : ceil((i+1)*size/out)] (MindSpore's adaptive bins)."""
    m = np.zeros((out, size))
    for i in range(out):
        a, b = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, a:b] = 1.0 / (b - a)
    return m


class AdaptiveAvgPool2d(Cell):
    """Average over adaptive bins to `output_size` (int, pair, None keeps that axis). Any input
    size: the bins are two constant averaging matrices applied with matmuls."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) or output_size is None \
            else tuple(output_size)
        if len(self.output_size) != 2:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got {output_size!r}")

    def construct(self, x):
        if x.ndim not in (3, 4):
            raise shape_error(f"AdaptiveAvgPool2d: input must be [C, H, W] or [N, C, H, W], got {x.shape}")
        h, w = x.shape[-2:]
        oh, ow = (h if self.output_size[0] is None else self.output_size[0]), \
            (w if self.output_size[1] is None else self.output_size[1])
        if h % oh == 0 and w % ow == 0 and x.ndim == 4:
            return F.adaptive_avg_pool2d(x, (oh, ow))
        mh = F.cast(Tensor(_adaptive_matrix(h, oh)), x.dtype)
        mw = F.cast(Tensor(_adaptive_matrix(w, ow).T), x.dtype)
        return F.matmul(F.matmul(mh, x), mw)

    def extend_repr(self) -> str:
        return f"output_size={self.output_size}"
