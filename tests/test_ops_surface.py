"""MindSpore ops, primitive classes, Tensor methods and dtypes that are compositions of the
existing primitives: numpy references on eager / interp / LLVM, gradients vs finite
differences, vmap vs a Python loop, and the eager-only ops' errors under jit."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops

from surface_util import BACKENDS, CUDA, check_backends, check_grad

R = np.random.default_rng(7)
X34 = R.standard_normal((3, 4)).astype(np.float32)
IDX = np.array([[0, 1], [2, 3], [-1, 0]], np.int32)


def _np_scatter_nd(idx, upd, shape):
    out = np.zeros(shape, upd.dtype)
    for i, u in zip(idx.reshape(-1, idx.shape[-1]), upd.reshape((-1,) + tuple(shape[idx.shape[-1]:]))):
        out[tuple(i)] += u
    return out


def _np_update(x, idx, upd):
    out = x.copy()
    out[tuple(idx.T)] = upd
    return out


def _np_linear(x, n_out, align):
    """1-D linear interpolation along the last axis as MindSpore's formula states it."""
    n_in = x.shape[-1]
    d = np.arange(n_out)
    src = d * (n_in - 1) / (n_out - 1) if align else np.maximum((d + 0.5) * n_in / n_out - 0.5, 0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = src - i0
    return x[..., i0] * (1 - w) + x[..., i1] * w


CASES = {
    "roll": (lambda t: ops.roll(t, (1, -2), (0, 1)), lambda a: np.roll(a, (1, -2), (0, 1)), [X34]),
    "roll_flat": (lambda t: ops.roll(t, 5), lambda a: np.roll(a, 5), [X34]),
    "gather_nd": (lambda t: ops.gather_nd(t, sf.Tensor(IDX)), lambda a: a[tuple(IDX.T)], [X34]),
    "gather_nd_rows": (lambda t: ops.gather_nd(t, sf.Tensor(np.array([[2], [0]], np.int32))),
                       lambda a: a[[2, 0]], [X34]),
    "scatter_nd": (lambda u: ops.scatter_nd(sf.Tensor(np.array([[1], [1], [0]], np.int32)), u, (3, 4)),
                   lambda u: _np_scatter_nd(np.array([[1], [1], [0]]), u, (3, 4)), [X34]),
    "tensor_scatter_update": (lambda t, u: ops.tensor_scatter_update(t, sf.Tensor(IDX), u),
                              lambda a, u: _np_update(a, IDX, u), [X34, X34[0, :3].copy()]),
    "tensor_scatter_add": (lambda t, u: ops.tensor_scatter_add(t, sf.Tensor(IDX[:, :1]), u),
                           lambda a, u: a + _np_scatter_nd(IDX[:, :1] % 3, u, (3, 4)), [X34, X34]),
    "einsum_mm": (lambda a, b: ops.einsum("ij,kj->ik", a, b), lambda a, b: np.einsum("ij,kj->ik", a, b), [X34, X34]),
    "einsum_batch": (lambda a, b: ops.einsum("bij,bjk->bik", a, b), lambda a, b: np.einsum("bij,bjk->bik", a, b),
                     [X34.reshape(2, 3, 2), X34.reshape(2, 2, 3)]),
    "einsum_ellipsis": (lambda a, b: ops.einsum("...ij,jk->...ik", a, b),
                        lambda a, b: np.einsum("...ij,jk->...ik", a, b), [X34.reshape(2, 3, 2), X34[:2]]),
    "einsum_trace_outer_sum": (lambda a, b: ops.einsum("ii,j->j", a, b), lambda a, b: np.einsum("ii,j->j", a, b),
                               [X34[:3, :3], X34[0]]),
    "einsum_implicit_three": (lambda a, b, c: ops.einsum("ij,jk,k", a, b, c),
                              lambda a, b, c: np.einsum("ij,jk,k", a, b, c), [X34, X34.T, X34[:, 0]]),
    "interp_linear": (lambda t: ops.interpolate(t, size=7, mode="linear"),
                      lambda a: _np_linear(a, 7, False), [X34.reshape(1, 3, 4)]),
    "interp_linear_align": (lambda t: ops.interpolate(t, size=3, mode="linear", align_corners=True),
                            lambda a: _np_linear(a, 3, True), [X34.reshape(1, 3, 4)]),
    "interp_bilinear": (lambda t: ops.interpolate(t, size=(5, 6), mode="bilinear"),
                        lambda a: np.swapaxes(_np_linear(np.swapaxes(_np_linear(a, 6, False), -1, -2), 5, False),
                                              -1, -2), [X34.reshape(1, 1, 3, 4)]),
    "interp_nearest": (lambda t: ops.interpolate(t, scale_factor=2.0), lambda a: a.repeat(2, -1).repeat(2, -2),
                       [X34.reshape(1, 1, 3, 4)]),
    "interp_area": (lambda t: ops.interpolate(t, size=(1, 2), mode="area"),
                    lambda a: a.reshape(1, 1, 1, 3, 2, 2).mean((3, 5)), [X34.reshape(1, 1, 3, 4)]),
    "clip_by_value": (lambda t: ops.clip_by_value(t, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [X34]),
    "clip_by_global_norm": (lambda a, b: ops.clip_by_global_norm((a, b), 1.5),
                            lambda a, b: tuple(t * 1.5 / max(np.sqrt((a ** 2).sum() + (b ** 2).sum()), 1.5)
                                               for t in (a, b)), [X34, X34[0]]),
    "repeat_list": (lambda t: t.repeat([2, 0, 1], 0), lambda a: np.repeat(a, [2, 0, 1], 0), [X34]),
    "repeat_flat": (lambda t: t.repeat(2), lambda a: np.repeat(a, 2), [X34]),
    "strided_slice": (lambda t: ops.StridedSlice(begin_mask=2, shrink_axis_mask=0)(t, (0, 1), (2, 4), (1, 2)),
                      lambda a: a[0:2, ::2], [X34]),
    "strided_slice_masks": (lambda t: ops.StridedSlice(end_mask=1, new_axis_mask=2, shrink_axis_mask=4)(
        t, (1, 0, 2), (0, 0, 3), (1, 1, 1)), lambda a: a[1:, None, 2], [X34]),
    "pad_prim": (lambda t: ops.Pad(((1, 0), (0, 2)))(t), lambda a: np.pad(a, ((1, 0), (0, 2))), [X34]),
    "split_prim": (lambda t: ops.Split(1, 2)(t), lambda a: tuple(np.split(a, 2, 1)), [X34]),
    "argmax_with_value": (lambda t: ops.ArgMaxWithValue(axis=1, keep_dims=True)(t),
                          lambda a: (a.argmax(1)[:, None].astype(np.int32), a.max(1, keepdims=True)), [X34]),
    "topk_prim": (lambda t: ops.TopK()(t, 2), lambda a: (np.sort(a, -1)[:, ::-1][:, :2],
                                                      np.argsort(-a, -1)[:, :2].astype(np.int32)), [X34]),
    "conv2d_prim": (lambda x, w: ops.Conv2D(out_channel=2, kernel_size=2, pad_mode="pad", pad=(1, 0, 0, 1))(x, w),
                    None, [R.standard_normal((1, 1, 3, 4)).astype(np.float32),
                           R.standard_normal((2, 1, 2, 2)).astype(np.float32)]),
    "tensor_methods": (lambda t, m: (t.tile((2, 1)), t.masked_fill(m, 9.0), t.pow(2.0), t.matmul(t.T),
                                     (t > 0).all(1), (t > 0).any(), t.softmax(0), t.round(), t.floor()),
                       lambda a, m: (np.tile(a, (2, 1)), np.where(m, 9.0, a), a ** 2, a @ a.T, (a > 0).all(1),
                                     (a > 0).any(), np.exp(a) / np.exp(a).sum(0), np.round(a),
                                     np.floor(a)), [X34, X34 > 0.5]),
}


def _conv_ref(x, w):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 1)))
    out = np.zeros((1, 2, xp.shape[2] - 1, xp.shape[3] - 1))
    for o in range(2):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[0, o, i, j] = (xp[0, :, i:i + 2, j:j + 2] * w[o]).sum()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_numpy_on_every_backend(name):
    fn, ref, arrays = CASES[name]
    ref = ref or _conv_ref
    check_backends(fn, ref(*arrays), *arrays, rtol=2e-5, atol=2e-5)


GRAD_CASES = ["roll", "gather_nd", "scatter_nd", "tensor_scatter_update", "tensor_scatter_add", "einsum_batch",
              "einsum_trace_outer_sum", "einsum_ellipsis", "interp_bilinear", "interp_linear_align", "interp_area",
              "clip_by_global_norm", "repeat_list", "strided_slice_masks"]


@pytest.mark.parametrize("name", GRAD_CASES)
def test_op_gradient_matches_finite_differences(name):
    fn, _, arrays = CASES[name]
    check_grad(fn, *arrays, backends=("eager", "llvm"))


def test_vmap_of_new_ops_matches_a_python_loop():
    xs = R.standard_normal((3, 3, 4)).astype(np.float32)
    fns = [lambda t: ops.roll(t, 1, 1), lambda t: ops.gather_nd(t, sf.Tensor(IDX)),
           lambda t: ops.einsum("ij,kj->ik", t, t), lambda t: ops.interpolate(t[None, None], size=(2, 5),
                                                                               mode="bilinear")[0, 0],
           lambda t: ops.tensor_scatter_update(t, sf.Tensor(IDX), t[0, :3])]
    for fn in fns:
        want = np.stack([fn(sf.Tensor(x)).asnumpy() for x in xs])
        for got in (sf.vmap(fn)(sf.Tensor(xs)), sf.jit(sf.vmap(fn), backend="llvm")(sf.Tensor(xs))):
            np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-5, atol=1e-6)


def test_unique_and_nonzero_are_eager_and_say_so_under_jit():
    v, idx = ops.unique(sf.Tensor(np.array([3, 1, 3, 2], np.int32)))
    assert v.asnumpy().tolist() == [1, 2, 3] and idx.asnumpy().tolist() == [2, 0, 2, 1] and idx.dtype is sf.int32
    nz = ops.nonzero(sf.Tensor(X34 > 0))
    assert nz.dtype is sf.int64 and (nz.asnumpy() == np.argwhere(X34 > 0)).all()
    assert [c.asnumpy().tolist() for c in ops.nonzero(sf.Tensor(X34 > 0), as_tuple=True)] == \
        [c.tolist() for c in np.nonzero(X34 > 0)]
    for fn in (ops.unique, ops.nonzero):
        with pytest.raises(TypeError, match="depends on the data.*outside jit"):
            sf.jit(fn)(sf.Tensor(X34))


def test_shape_rank_and_errors():
    t = sf.Tensor(X34)
    assert ops.shape(t) == (3, 4) and ops.rank(t) == 2
    with pytest.raises(ValueError, match="updates must have shape"):
        ops.scatter_nd(sf.Tensor(IDX), sf.Tensor(X34), (3, 4))
    with pytest.raises(IndexError, match="out of bounds"):
        ops.gather_nd(t, sf.Tensor(np.array([[3, 0]], np.int32)))
    with pytest.raises(ValueError, match="einsum: term"):
        ops.einsum("ijk->i", t)
    with pytest.raises(NotImplementedError, match="bicubic"):
        ops.interpolate(sf.Tensor(X34.reshape(1, 1, 3, 4)), size=2, mode="bicubic")
    with pytest.raises(ValueError, match="does not split"):
        ops.Split(1, 3)(t)
    assert t.init_data() is t


def test_narrow_int_row_reductions_on_cuda():
    """16-bit reductions: the warp shuffle returns int, cast back to the element type."""
    a = np.array([[1, -5, 300], [7, 2, -1]], np.int16)
    check_backends(lambda x: (x.max(1), x.min(0)), (a.max(1), a.min(0)), a, rtol=0, atol=0, backends=(CUDA,))


@pytest.mark.parametrize("dt", [sf.uint16, sf.uint64])
def test_unsigned_dtypes_on_every_backend(dt):
    a = np.array([[1, 60000, 7], [65535, 0, 3]], dt.storage)
    if dt is sf.uint64:
        a = a.astype(np.uint64) * np.uint64(2 ** 40)
    b = np.array([[3, 2, 1], [1, 5, 2]], dt.storage)

    def fn(x, y):
        return x + y, x * y, ops.minimum(x, y), x > y, ops.cast(x, sf.float64), x.max(1), ops.cast(ops.cast(x, sf.float32), dt)

    want = (a + b, a * b, np.minimum(a, b), a > b, a.astype(np.float64), a.max(1), a.astype(np.float32).astype(dt.storage))
    check_backends(fn, want, a, b, rtol=0, atol=0, backends=BACKENDS + (CUDA,))
    assert sf.Tensor(a).dtype is dt and sf.dtype_to_nptype(dt) is dt.storage.type
    assert sf.dtype_to_pytype(sf.float16) is float and sf.dtype_to_nptype(sf.float32) is np.float32
