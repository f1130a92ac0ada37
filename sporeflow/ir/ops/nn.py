"""Convolution and pooling primitives (NCHW activations, OIHW weights)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..registry import Amp, Kind, def_op
from ..types import TensorType
from .common import check_allowed, check_arity, fail, same_dtype
from . import batching as B


def _out_size(n, k, s, lo, hi, d=1):
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _check_2(name, v, minimum):
    if len(v) != 2 or min(v) < minimum:
        fail(f"{name} must be 2 ints >= {minimum}, got {v}")


def _conv_infer(ts, attrs):
    check_arity(ts, 2)
    check_allowed(ts, "float")
    same_dtype(ts)
    x, w = ts
    s, p, d, g = attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"]
    _check_2("stride", s, 1)
    _check_2("dilation", d, 1)
    if len(p) != 4 or min(p) < 0:
        fail(f"padding must be 4 ints (top, bottom, left, right) >= 0, got {p}")
    if x.ndim != 4 or w.ndim != 4:
        fail("conv2d needs x[N,C,H,W] and w[O,C/groups,kh,kw]", ts)
    if g < 1 or x.shape[1] % g or w.shape[0] % g or w.shape[1] * g != x.shape[1]:
        fail(f"channels do not match groups={g}", ts)
    ho = _out_size(x.shape[2], w.shape[2], s[0], p[0], p[1], d[0])
    wo = _out_size(x.shape[3], w.shape[3], s[1], p[2], p[3], d[1])
    if ho < 1 or wo < 1:
        fail("kernel larger than the padded input", ts)
    return TensorType((x.shape[0], w.shape[0], ho, wo), x.dtype)


def _conv_impl(x, w, stride, padding, dilation, groups):
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[1]), (padding[2], padding[3])))
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    win = sliding_window_view(xp, (ekh, ekw), axis=(2, 3))[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    # win: [N, C, Ho, Wo, kh, kw]
    ho, wo = win.shape[2], win.shape[3]
    win = win.reshape(n, groups, cg, ho, wo, kh, kw)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True)
    return out.reshape(n, o, ho, wo)


conv2d = def_op("conv2d", infer=_conv_infer, impl=_conv_impl, kind=Kind.OUT_EWISE_FUSABLE, amp=Amp.LOW,
                attr_names=("stride", "padding", "dilation", "groups"),
                doc="2-D cross-correlation, NCHW x OIHW, padding (top, bottom, left, right)", batch=B.batch_conv2d)


def _pool_infer(ts, attrs):
    check_arity(ts, 1)
    check_allowed(ts, "float")
    x = ts[0]
    k, s, p = attrs["kernel"], attrs["stride"], attrs["padding"]
    _check_2("kernel", k, 1)
    _check_2("stride", s, 1)
    if len(p) != 4 or min(p) < 0 or p[0] >= k[0] or p[1] >= k[0] or p[2] >= k[1] or p[3] >= k[1]:
        fail(f"padding must be 4 ints in [0, kernel), got {p}")
    if x.ndim != 4:
        fail("pooling needs x[N,C,H,W]", ts)
    ho = _out_size(x.shape[2], k[0], s[0], p[0], p[1])
    wo = _out_size(x.shape[3], k[1], s[1], p[2], p[3])
    if ho < 1 or wo < 1:
        fail("window larger than the padded input", ts)
    return TensorType(x.shape[:2] + (ho, wo), x.dtype)


def _windows(x, kernel, stride, padding, fill):
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[1]), (padding[2], padding[3])), constant_values=fill)
    return sliding_window_view(xp, tuple(kernel), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


max_pool2d = def_op("max_pool2d", infer=_pool_infer, kind=Kind.OPAQUE,
                    impl=lambda x, kernel, stride, padding: _windows(x, kernel, stride, padding, -np.inf).max(axis=(4, 5)),
                    attr_names=("kernel", "stride", "padding"), doc="max over windows; padding never wins",
                    batch=B.pool("max_pool2d"))
avg_pool2d = def_op("avg_pool2d", infer=_pool_infer, kind=Kind.OPAQUE, amp=Amp.NEVER,
                    impl=lambda x, kernel, stride, padding: _windows(x, kernel, stride, padding, 0).mean(axis=(4, 5)),
                    attr_names=("kernel", "stride", "padding"),
                    doc="mean over windows; padded zeros count in the divisor (count_include_pad)",
                    batch=B.pool("avg_pool2d"))
