"""Neural-network ops: activations with reductions, convolution, pooling, normalization and
losses. All are decompositions into primitives (DESIGN: composites are not primitives)."""
from __future__ import annotations

import numpy as np

from ...ir import dtypes as D
from ...core import lax
from . import math_ops as M
from .array_ops import gather_elements, one_hot, reshape
from ._core import float_of, norm_axes, tensor
from ...errors import ShapeError
from ...core.source import user_line_description
from ..random import uniform, default_key


def softmax(input, axis=-1):
    x = float_of(tensor(input))
    ax = norm_axes(axis, x.ndim)
    m = lax.stop_gradient(lax.reduce_max(x, axes=ax, keepdims=True))
    e = lax.exp(lax.sub(x, m))
    return lax.div(e, lax.reduce_sum(e, axes=ax, keepdims=True))


def log_softmax(logits, axis=-1):
    x = float_of(tensor(logits))
    ax = norm_axes(axis, x.ndim)
    m = lax.stop_gradient(lax.reduce_max(x, axes=ax, keepdims=True))
    s = lax.sub(x, m)
    return lax.sub(s, lax.log(lax.reduce_sum(lax.exp(s), axes=ax, keepdims=True)))


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(a) for a in v)
    return v if len(v) == 2 else (v[-2], v[-1])


def _same_padding(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_padding(pad_mode: str, padding, hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """MindSpore pad_mode 'same' | 'valid' | 'pad' -> (top, bottom, left, right)."""
    if pad_mode == "same":
        return _same_padding(hw[0], kernel[0], stride[0], dilation[0]) + \
            _same_padding(hw[1], kernel[1], stride[1], dilation[1])
    if pad_mode == "valid":
        return (0, 0, 0, 0)
    if pad_mode == "pad":
        if isinstance(padding, (int, np.integer)):
            return (int(padding),) * 4
        p = tuple(int(v) for v in padding)
        return (p[0], p[0], p[1], p[1]) if len(p) == 2 else p
    raise ValueError(f"pad_mode must be 'same', 'valid' or 'pad', got {pad_mode!r}")


def conv2d(input, weight, bias=None, stride=1, pad_mode="valid", padding=0, dilation=1, groups=1):
    x, w = float_of(tensor(input)), tensor(weight)
    w = lax.convert(w, x.dtype)
    s, d = _pair(stride), _pair(dilation)
    if pad_mode == "valid" and padding not in (0, (0, 0), (0, 0, 0, 0)):
        pad_mode = "pad"
    p = conv_padding(pad_mode, padding, x.shape[2:], w.shape[2:], s, d)
    y = lax.conv2d(x, w, stride=s, padding=p, dilation=d, groups=int(groups))
    if bias is not None:
        y = lax.add(y, reshape(lax.convert(tensor(bias), y.dtype), (1, -1, 1, 1)))
    return y


def _pool_args(x, kernel_size, stride, pad_mode, padding):
    k = _pair(kernel_size)
    s = _pair(stride if stride is not None else kernel_size)
    if isinstance(pad_mode, str) and pad_mode.lower() == "same":
        p = _same_padding(x.shape[2], k[0], s[0], 1) + _same_padding(x.shape[3], k[1], s[1], 1)
    elif isinstance(pad_mode, str) and pad_mode.lower() == "pad" or padding:
        p = conv_padding("pad", padding, x.shape[2:], k, s, (1, 1))
    else:
        p = (0, 0, 0, 0)
    return k, s, p


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
               pad_mode="valid"):
    x = float_of(tensor(x))
    k, s, p = _pool_args(x, kernel_size, stride, pad_mode, padding)
    return lax.max_pool2d(x, kernel=k, stride=s, padding=p)


def avg_pool2d(input_x, kernel_size=1, stride=1, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, pad_mode="valid"):
    x = float_of(tensor(input_x))
    k, s, p = _pool_args(x, kernel_size, stride, pad_mode, padding)
    return lax.avg_pool2d(x, kernel=k, stride=s, padding=p)


def adaptive_avg_pool2d(input, output_size):
    x = float_of(tensor(input))
    oh, ow = _pair(output_size)
    h, w = x.shape[2:]
    if h % oh or w % ow:
        raise NotImplementedError("adaptive_avg_pool2d needs the input size divisible by the output size")
    return lax.avg_pool2d(x, kernel=(h // oh, w // ow), stride=(h // oh, w // ow), padding=(0, 0, 0, 0))


def layer_norm(x, normalized_shape_axes, gamma=None, beta=None, epsilon=1e-5):
    x = float_of(tensor(x))
    axes = norm_axes(normalized_shape_axes, x.ndim)
    mu = M.mean(x, axes, True)
    d = lax.sub(x, mu)
    var = M.mean(lax.mul(d, d), axes, True)
    y = lax.mul(d, lax.rsqrt(M.add(var, epsilon)))
    if gamma is not None:
        y = M.mul(y, gamma)
    if beta is not None:
        y = M.add(y, beta)
    return y


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return M.mean(loss)
    if reduction == "sum":
        return M.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_class_targets(who: str, logits, target, probabilities: bool) -> None:
    """Class indices must be integers of shape (N, d...) for logits (N, C, d...); class probabilities
    (when allowed) must have the logits' shape. A mismatch would otherwise surface as a broadcast
    failure of some internal `mul`; say what is wrong in the user's terms instead."""
    ls, ts = tuple(logits.shape), tuple(target.shape)
    if len(ls) < 2:
        raise ShapeError(f"{who}: logits must be [N, C] or [N, C, d...], got shape {ls}\n  at {user_line_description()}")
    want = ls[:1] + ls[2:]
    if target.dtype.is_float:
        if probabilities and ts == ls:
            return
        hint = (f"class indices must be an integer tensor of shape {want}" +
                (f"; class probabilities must have the logits' shape {ls}" if probabilities else ""))
        raise ShapeError(f"{who}: labels of dtype {target.dtype.name} and shape {ts} do not fit logits of shape "
                         f"{ls}: {hint}\n  at {user_line_description()}")
    if not target.dtype.is_int:
        raise ShapeError(f"{who}: labels must be integer class indices, got {target.dtype.name}\n"
                         f"  at {user_line_description()}")
    if ts != want:
        raise ShapeError(f"{who}: labels shape {ts} does not match logits shape {ls}: class indices need "
                         f"shape {want}\n  at {user_line_description()}")


def nll_loss(inputs, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    logp = float_of(tensor(inputs))
    t = tensor(target)
    check_class_targets("nll_loss", logp, t, probabilities=False)
    n_cls = logp.shape[1]
    oh = lax.convert(one_hot(t, n_cls, 1.0, 0.0, axis=1), logp.dtype)
    valid = lax.convert(lax.ne(t, lax.full((), ignore_index, t.dtype)), logp.dtype)
    w = M.mul(oh, reshape(tensor(weight), (1, n_cls) + (1,) * (logp.ndim - 2))) if weight is not None else oh
    picked = lax.neg(lax.reduce_sum(lax.mul(w, logp), axes=(1,), keepdims=False))
    if label_smoothing:
        smooth = lax.neg(M.mean(logp, 1))
        picked = M.add(M.mul(picked, 1 - label_smoothing), M.mul(smooth, label_smoothing))
    picked = lax.mul(picked, valid)
    if reduction == "mean":
        wsum = lax.reduce_sum(w, axes=(1,), keepdims=False)
        return M.div(M.sum(picked), M.sum(lax.mul(wsum, valid)))
    return _reduce(picked, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Class-index targets (int) or class-probability targets (float), classes on axis 1."""
    t = tensor(target)
    check_class_targets("cross_entropy", tensor(input), t, probabilities=True)
    logp = log_softmax(input, 1)
    if t.dtype.is_float:
        if label_smoothing:
            t = M.add(M.mul(t, 1 - label_smoothing), label_smoothing / logp.shape[1])
        prod = lax.mul(lax.convert(t, logp.dtype), logp)
        if weight is not None:
            prod = M.mul(prod, reshape(tensor(weight), (1, -1) + (1,) * (logp.ndim - 2)))
        return _reduce(lax.neg(lax.reduce_sum(prod, axes=(1,), keepdims=False)), reduction)
    return nll_loss(logp, t, weight, ignore_index, reduction, label_smoothing)


def softmax_cross_entropy(logits, labels_onehot):
    """Per-row -sum(labels * log_softmax(logits)) on the last axis."""
    logp = log_softmax(logits, -1)
    return lax.neg(lax.reduce_sum(lax.mul(lax.convert(tensor(labels_onehot), logp.dtype), logp),
                                  axes=(logp.ndim - 1,), keepdims=False))


def mse_loss(input, target, reduction="mean"):
    d = M.sub(input, target)
    return _reduce(M.mul(d, d), reduction)


def l1_loss(input, target, reduction="mean"):
    return _reduce(M.abs(M.sub(input, target)), reduction)


def smooth_l1_loss(input, target, beta=1.0, reduction="none"):
    d = M.abs(M.sub(input, target))
    quad = M.div(M.mul(M.mul(d, d), 0.5), beta)
    lin = M.sub(d, 0.5 * beta)
    return _reduce(lax.select(M.less(d, beta), quad, lin), reduction)


def binary_cross_entropy_with_logits(logits, label, weight=None, pos_weight=None, reduction="mean"):
    x, y = float_of(tensor(logits)), float_of(tensor(label))
    # log(1 + exp(-|x|)) + max(x, 0) - x*y, with pos_weight scaling the positive term
    log_sig_neg = M.add(M.log1p(lax.exp(lax.neg(lax.abs(x)))), M.relu(lax.neg(x)))  # -log(sigmoid(x))
    if pos_weight is not None:
        loss = M.add(M.mul(M.mul(y, pos_weight), log_sig_neg), M.mul(M.sub(1.0, y), M.add(log_sig_neg, x)))
    else:
        loss = M.add(M.mul(M.sub(1.0, y), x), log_sig_neg)
    if weight is not None:
        loss = M.mul(loss, weight)
    return _reduce(loss, reduction)


def dropout(input, p=0.5, training=True, seed=None, *, key=None):
    """Inverted dropout. The randomness comes from an explicit u32[2] `key` (or `seed`)."""
    x = tensor(input)
    if not training or p == 0:
        return x
    if key is None:
        key = default_key(seed)
    keep = M.greater_equal(uniform(key, x.shape, D.float32), float(p))
    return lax.select(keep, M.mul(x, 1.0 / (1.0 - p)), lax.zeros_like(x))


def bias_add(input_x, bias):
    x = tensor(input_x)
    return M.add(x, reshape(tensor(bias), (1, -1) + (1,) * (x.ndim - 2)))


def gather_d(x, dim, index):
    return gather_elements(x, dim, index)
