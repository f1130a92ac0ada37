"""Convolution and pooling primitives (NCHW activations, OIHW weights)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ir.registry import Amp, Kind, def_op
from ..ir.types import TensorType
from .ad_util import bilinear_jvp, linear_jvp, primal
from .common import check_allowed, check_arity, fail, lax, same_dtype
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
    if min(w.shape[2:]) < 1:
        fail("kernel height and width must be >= 1", ts)
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


def _crop(x, lo, hi):
    """Crop the two spatial axes by -lo / -hi where those are negative (positive amounts are
    the convolution's own padding)."""
    start = (0, 0) + tuple(max(-a, 0) for a in lo)
    limit = tuple(d - (max(-hi[i - 2], 0) if i >= 2 else 0) for i, d in enumerate(x.shape))
    if start == (0,) * 4 and limit == tuple(x.shape):
        return x
    return lax.slice(x, start=start, limit=limit, strides=(1, 1, 1, 1))


def _conv_dx(g, w, x_shape, stride, padding, dilation, groups):
    """Input gradient: a stride-1 convolution of the stride-dilated cotangent with the flipped,
    in/out-swapped kernel (per group), padded so the result lines up with x. The padding is the
    convolution's own attribute, not a padded copy: a backend sees that most of the padded
    input is zeros (the LLVM one then convolves from the input pixels, conv.py)."""
    o, cg, kh, kw = w.shape
    c = x_shape[1]
    ek = [dilation[i] * (k - 1) + 1 for i, k in enumerate((kh, kw))]
    gd = lax.pad(g, lo=(0,) * 4, hi=(0,) * 4, interior=(0, 0, stride[0] - 1, stride[1] - 1), value=0.0) \
        if max(stride) > 1 else g
    lo = [ek[i] - 1 - padding[2 * i] for i in range(2)]
    hi = [x_shape[2 + i] + ek[i] - 1 - lo[i] - gd.shape[2 + i] for i in range(2)]
    gd = _crop(gd, lo, hi)
    wt = lax.reshape(w, shape=(groups, o // groups, cg, kh, kw))
    wt = lax.reshape(lax.transpose(wt, perm=(0, 2, 1, 3, 4)), shape=(c, o // groups, kh, kw))
    wt = lax.rev(wt, axes=(2, 3))
    pad = (max(lo[0], 0), max(hi[0], 0), max(lo[1], 0), max(hi[1], 0))
    return lax.conv2d(gd, wt, stride=(1, 1), padding=pad, dilation=tuple(dilation), groups=groups)


def _conv_dw(g, x, w_shape, stride, padding, dilation, groups):
    """Weight gradient: a convolution over the batch axis. x becomes [C/g, g*N, H, W] (batch =
    in-channel within group, channels = (group, sample)), g becomes the kernel [O, N, Ho, Wo];
    stride and dilation swap roles. Out: [C/g, O, >=kh, >=kw], cropped and transposed."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w_shape
    xt = lax.reshape(x, shape=(n, groups, cg, h, wd))
    xt = lax.reshape(lax.transpose(xt, perm=(2, 1, 0, 3, 4)), shape=(cg, groups * n, h, wd))
    gt = lax.transpose(g, perm=(1, 0, 2, 3))
    dw = lax.conv2d(xt, gt, stride=tuple(dilation), padding=tuple(padding), dilation=tuple(stride), groups=groups)
    if dw.shape[2:] != (kh, kw):
        dw = lax.slice(dw, start=(0, 0, 0, 0), limit=(cg, o, kh, kw), strides=(1, 1, 1, 1))
    return lax.transpose(dw, perm=(1, 0, 2, 3))


def _conv_vjp(ins, outs, douts, stride, padding, dilation, groups):
    x, w = ins
    g = douts[0]
    return [_conv_dx(g, w, x.shape, stride, padding, dilation, groups),
            _conv_dw(g, x, w.shape, stride, padding, dilation, groups)]


conv2d = def_op("conv2d", infer=_conv_infer, impl=_conv_impl, kind=Kind.OUT_EWISE_FUSABLE, amp=Amp.LOW,
                attr_names=("stride", "padding", "dilation", "groups"), vjp=_conv_vjp, jvp=bilinear_jvp("conv2d"),
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


def _window_slices(xp, kernel, stride, out_hw):
    """The kh*kw strided slices of the padded input, one per window offset (a, b)."""
    n, c = xp.shape[:2]
    res = []
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            limit = (n, c, a + (out_hw[0] - 1) * stride[0] + 1, b + (out_hw[1] - 1) * stride[1] + 1)
            res.append(((a, b), lax.slice(xp, start=(0, 0, a, b), limit=limit, strides=(1, 1) + tuple(stride))))
    return res


def _window_scatter(parts, x_shape, kernel, stride, padding, out_hw):
    """Adjoint of _window_slices followed by cropping the padding: sum of zero pads."""
    hp, wp = x_shape[2] + padding[0] + padding[1], x_shape[3] + padding[2] + padding[3]
    total = None
    for (a, b), g in parts:
        hi = (0, 0, hp - a - (out_hw[0] - 1) * stride[0] - 1, wp - b - (out_hw[1] - 1) * stride[1] - 1)
        p = lax.pad(g, lo=(0, 0, a, b), hi=hi, interior=(0, 0, stride[0] - 1, stride[1] - 1), value=0.0)
        total = p if total is None else lax.add(total, p)
    if any(padding):
        total = lax.slice(total, start=(0, 0, padding[0], padding[2]),
                          limit=(x_shape[0], x_shape[1], padding[0] + x_shape[2], padding[2] + x_shape[3]),
                          strides=(1, 1, 1, 1))
    return total


def _max_pool_masks(x, y, kernel, stride, padding):
    """One 0/1 mask per window offset marking the position that receives the window's
    gradient: the first maximum in row-major window order (as argmax; ties are not split).
    Padding is NaN here, equal to nothing, so it never receives (as in max_pool2d_grad)."""
    xp = lax.pad(x, lo=(0, 0, padding[0], padding[2]), hi=(0, 0, padding[1], padding[3]),
                 interior=(0, 0, 0, 0), value=float("nan")) if any(padding) else x
    y = lax.stop_gradient(y)
    taken, masks = None, []
    for ab, s in _window_slices(xp, kernel, stride, y.shape[2:]):
        hit = lax.eq(s, y)
        if taken is not None:
            hit = lax.logical_and(hit, lax.logical_not(taken))
        taken = hit if taken is None else lax.logical_or(taken, hit)
        masks.append((ab, lax.convert(hit, x.dtype)))
    return masks


def _max_pool_vjp(ins, outs, douts, kernel, stride, padding):
    # one op instead of kh*kw masks, pads and adds: as a composite, LeNet's pool backward was
    # ~10 kernels and a quarter of its train step
    return [lax.max_pool2d_grad(ins[0], lax.stop_gradient(outs[0]), douts[0], kernel=kernel, stride=stride,
                                padding=padding)]


def _max_pool_select(x, y, t, kernel, stride, padding):
    """Each window's value of t at the window's first maximum of x (the adjoint of
    max_pool2d_grad in its cotangent, and max_pool2d's tangent)."""
    tp = lax.pad(t, lo=(0, 0, padding[0], padding[2]), hi=(0, 0, padding[1], padding[3]),
                 interior=(0, 0, 0, 0), value=0.0) if any(padding) else t
    slices = dict(_window_slices(tp, kernel, stride, y.shape[2:]))
    total = None
    for ab, m in _max_pool_masks(x, y, kernel, stride, padding):
        term = lax.mul(slices[ab], m)
        total = term if total is None else lax.add(total, term)
    return total


def _max_pool_jvp(primals, tangents, kernel, stride, padding):
    out = primal("max_pool2d", primals, {"kernel": kernel, "stride": stride, "padding": padding})
    t = tangents[0]
    if t is None:
        return out, [None]
    return out, [_max_pool_select(primals[0], out[0], t, kernel, stride, padding)]


def _avg_pool_vjp(ins, outs, douts, kernel, stride, padding):
    g = lax.div(douts[0], lax.full((), kernel[0] * kernel[1], douts[0].dtype))
    parts = [((a, b), g) for a in range(kernel[0]) for b in range(kernel[1])]
    return [_window_scatter(parts, ins[0].shape, kernel, stride, padding, g.shape[2:])]


max_pool2d = def_op("max_pool2d", infer=_pool_infer, kind=Kind.OPAQUE, vjp=_max_pool_vjp, jvp=_max_pool_jvp,
                    impl=lambda x, kernel, stride, padding: _windows(x, kernel, stride, padding, -np.inf).max(axis=(4, 5)),
                    attr_names=("kernel", "stride", "padding"), doc="max over windows; padding never wins",
                    batch=B.pool("max_pool2d"))
avg_pool2d = def_op("avg_pool2d", infer=_pool_infer, kind=Kind.OPAQUE, amp=Amp.NEVER,
                    vjp=_avg_pool_vjp, jvp=linear_jvp("avg_pool2d"),
                    impl=lambda x, kernel, stride, padding: _windows(x, kernel, stride, padding, 0).mean(axis=(4, 5)),
                    attr_names=("kernel", "stride", "padding"),
                    doc="mean over windows; padded zeros count in the divisor (count_include_pad)",
                    batch=B.pool("avg_pool2d"))


def _max_pool_grad_infer(ts, attrs):
    check_arity(ts, 3)
    check_allowed(ts, "float")
    same_dtype(ts)
    x, y, g = ts
    pooled = _pool_infer([x], attrs)
    if y.shape != pooled.shape or g.shape != pooled.shape:
        fail(f"y and g must have max_pool2d(x)'s shape {pooled.shape}", ts)
    return x


def _max_pool_grad_impl(x, y, g, kernel, stride, padding):
    """Each window's g added at its first maximum (row-major; padding never receives), the
    contributions to one element summed in window order, as every backend does."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, y.shape[2:]
    win = _windows(x, kernel, stride, padding, np.nan)            # [N, C, Ho, Wo, kh, kw]
    hit = (win == y[..., None, None]).reshape(win.shape[:4] + (kh * kw,))
    first = hit & (np.cumsum(hit, axis=-1) == 1)
    part = np.where(first, g[..., None], np.zeros((), g.dtype)).reshape(win.shape)
    dxp = np.zeros((n, c, h + padding[0] + padding[1], w + padding[2] + padding[3]), g.dtype)
    with np.errstate(invalid="ignore", over="ignore"):     # inf + -inf is NaN, as on every backend
        for a in reversed(range(kh)):      # offsets high to low = windows in increasing order
            for b in reversed(range(kw)):
                dxp[:, :, a:a + sh * (ho - 1) + 1:sh, b:b + sw * (wo - 1) + 1:sw] += part[..., a, b]
    return dxp[:, :, padding[0]:padding[0] + h, padding[2]:padding[2] + w]


def _max_pool_grad_vjp(ins, outs, douts, kernel, stride, padding):
    x, y = ins[0], ins[1]          # piecewise constant in x and y
    return [None, None, _max_pool_select(x, y, douts[0], kernel, stride, padding)]


max_pool2d_grad = def_op("max_pool2d_grad", infer=_max_pool_grad_infer, impl=_max_pool_grad_impl, kind=Kind.OPAQUE,
                         attr_names=("kernel", "stride", "padding"), vjp=_max_pool_grad_vjp,
                         jvp=linear_jvp("max_pool2d_grad", linear_args=(2,)), batch=B.pool("max_pool2d_grad"),
                         doc="max_pool2d's input gradient: (x, y = max_pool2d(x), g) -> dx, each window's g "
                             "at its first maximum")
