"""The eager Tensor API against numpy, eagerly and under jit: operators, comparisons, indexing,
properties, methods and MindSpore's repr."""
from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf


def both(fn, *arrays, dtype=None):
    """fn on Tensors eagerly and under jit; both results as numpy."""
    ts = [sf.Tensor(a, dtype) for a in arrays]
    e = fn(*ts)
    j = sf.jit(fn)(*ts)
    return e, j


A = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)
B = np.array([[2.0, 0.5, -3.0], [1.0, 2.0, 4.0]], np.float32)
IA = np.array([[7, -7, 5], [-3, 8, 9]], np.int32)
IB = np.array([[2, 3, -2], [2, -5, 4]], np.int32)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # (-x) ** 0.5 is NaN on both sides
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
                                operator.floordiv, operator.mod, operator.lt, operator.le, operator.gt,
                                operator.ge, operator.eq, operator.ne])
@pytest.mark.parametrize("ints", [False, True])
def test_binary_operators_match_numpy(op, ints):
    a, b = (IA, IB) if ints else (A, np.abs(B) if op is operator.pow else B)
    if ints and op is operator.pow:
        b = np.abs(b)
    e, j = both(op, a, b)
    want = op(a.astype(np.float64), b.astype(np.float64)) if op is operator.pow and ints else op(a, b)
    if ints and op is operator.truediv:
        want = want.astype(np.float32)   # int / int is float32, as in MindSpore
    for r in (e, j):
        np.testing.assert_allclose(r.asnumpy(), want, rtol=1e-6)
        assert r.shape == want.shape
    if op not in (operator.truediv, operator.pow) or not ints:
        assert e.asnumpy().dtype == (np.bool_ if want.dtype == np.bool_ else want.dtype)


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow])
def test_scalar_operands_on_both_sides_keep_the_tensor_dtype(op):
    e, j = both(lambda x: (op(x, 2.0), op(3.0, x)), np.abs(A))
    for got in (e, j):
        np.testing.assert_allclose(got[0].asnumpy(), op(np.abs(A), np.float32(2.0)), rtol=1e-6)
        np.testing.assert_allclose(got[1].asnumpy(), op(np.float32(3.0), np.abs(A)), rtol=1e-6)
        assert got[0].dtype is sf.float32 and got[1].dtype is sf.float32
    assert (sf.Tensor(IA) * 2).dtype is sf.int32 and (sf.Tensor(IA) * 2.5).dtype is sf.float32


def test_matmul_unary_and_logic_operators():
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    e, j = both(lambda x, y: (x @ y, -x, abs(x), +x), A, m)
    for got in (e, j):
        np.testing.assert_allclose(got[0].asnumpy(), A @ m, rtol=1e-6)
        np.testing.assert_array_equal(got[1].asnumpy(), -A)
        np.testing.assert_array_equal(got[2].asnumpy(), np.abs(A))
        np.testing.assert_array_equal(got[3].asnumpy(), A)
    p, q = A > 0, B > 0
    e, j = both(lambda x, y: (x & y, x | y, x ^ y, ~x), p, q)
    for got in (e, j):
        for g, w in zip(got, (p & q, p | q, p ^ q, ~p), strict=True):
            np.testing.assert_array_equal(g.asnumpy(), w)
    v = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose((sf.Tensor(A) @ sf.Tensor(v)).asnumpy(), A @ v)
    np.testing.assert_allclose((sf.Tensor(v) @ sf.Tensor(v)).asnumpy(), v @ v)


def test_properties():
    t = sf.Tensor(np.zeros((2, 3, 4), np.float64))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dtype is sf.float64 and t.size == 24
    assert t.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(sf.Tensor(A).T.asnumpy(), A.T)
    assert sf.Tensor(1.0).dtype is sf.float32 and sf.Tensor(1).dtype is sf.int64
    assert sf.Tensor(True).dtype is sf.bool_ and sf.Tensor([1.0, 2.0]).dtype is sf.float32
    assert sf.Tensor(np.ones(2, np.float64)).dtype is sf.float64
    assert sf.Tensor([1, 2], sf.float16).dtype is sf.float16
    assert len(sf.Tensor(A)) == 2 and [r.shape for r in sf.Tensor(A)] == [(3,), (3,)]
    assert float(sf.Tensor(2.5)) == 2.5 and int(sf.Tensor(3)) == 3 and sf.Tensor(4).item() == 4


def test_methods_match_numpy():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7

    def f(t):
        return (t.sum(), t.sum(axis=1), t.sum(axis=(0, 2), keepdims=True), t.mean(), t.mean(axis=-1),
                t.max(), t.max(axis=0), t.min(axis=2, keepdims=True), t.reshape(6, 4), t.reshape((4, -1)),
                t.transpose(), t.transpose(1, 0, 2), t.transpose((2, 0, 1)), t.astype(sf.int32),
                t.astype(sf.float16), t.argmax(axis=1), t.abs(), t.flatten(), t.squeeze(), t.expand_dims(0),
                t.var(axis=0), t.clip(-2.0, 3.0))
    want = (x.sum(), x.sum(axis=1), x.sum(axis=(0, 2), keepdims=True), x.mean(), x.mean(axis=-1), x.max(),
            x.max(axis=0), x.min(axis=2, keepdims=True), x.reshape(6, 4), x.reshape(4, -1), x.transpose(),
            x.transpose(1, 0, 2), x.transpose(2, 0, 1), x.astype(np.int32), x.astype(np.float16),
            x.argmax(axis=1), np.abs(x), x.reshape(-1), x, x[None], x.var(axis=0), np.clip(x, -2, 3))
    for got in both(f, x):
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g.asnumpy().astype(np.float64), w.astype(np.float64), rtol=1e-6)
        assert got[13].dtype is sf.int32 and got[14].dtype is sf.float16 and got[15].dtype is sf.int32


# ---- indexing against numpy -------------------------------------------------------------------
@st.composite
def index_key(draw, shape):
    parts = []
    dims = list(shape)
    n_int = draw(st.integers(0, len(dims)))
    used_array = False
    for d in dims[:n_int]:
        kind = draw(st.sampled_from(["int", "slice", "none", "array"] if not used_array else ["int", "slice", "none"]))
        if kind == "none":
            parts.append(None)
        if kind == "int":
            parts.append(draw(st.integers(-d, d - 1)))
        elif kind == "array":
            used_array = True
            parts.append(np.array(draw(st.lists(st.integers(-d, d - 1), min_size=0, max_size=4)), np.int64))
        else:
            start = draw(st.none() | st.integers(-d - 2, d + 2))
            stop = draw(st.none() | st.integers(-d - 2, d + 2))
            step = draw(st.none() | st.sampled_from([1, 2, 3, -1, -2]))
            parts.append(slice(start, stop, step))
    if draw(st.booleans()):  # where every dim is indexed the ellipsis may stand anywhere
        parts.insert(draw(st.integers(0, len(parts))) if n_int == len(dims) else len(parts), Ellipsis)
    return tuple(parts) if len(parts) != 1 or draw(st.booleans()) else parts[0]


@given(st.data())
def test_getitem_matches_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    key = data.draw(index_key(shape))
    want = x[key]
    for got in both(lambda t: t[key], x):
        assert got.shape == want.shape, (key, got.shape, want.shape)
        np.testing.assert_array_equal(got.asnumpy(), want)


def test_getitem_with_tensor_indices_and_errors():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([2, -1, 0], np.int32)
    for got in both(lambda t, i: t[i], x, idx):
        np.testing.assert_array_equal(got.asnumpy(), x[idx])
    for got in both(lambda t, i: t[:, i], x, idx):
        np.testing.assert_array_equal(got.asnumpy(), x[:, idx])
    t = sf.Tensor(x)
    with pytest.raises(IndexError, match="out of bounds"):
        t[3]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]
    np.testing.assert_array_equal(t[t > 2].asnumpy(), x[x > 2])           # eagerly: a gather
    np.testing.assert_array_equal(t[np.array([True, False, True])].asnumpy(), x[[True, False, True]])
    with pytest.raises(IndexError, match="data-dependent shape, which compiled code cannot have"):
        sf.jit(lambda a: a[a > 2])(t)
    np.testing.assert_array_equal(sf.jit(lambda a: a[np.array([False, True, True])])(t).asnumpy(), x[1:])
    with pytest.raises(IndexError, match="does not match"):
        t[np.array([True, False])]
    assert t[sf.Tensor(1)].shape == (4,)


# ---- repr ---------------------------------------------------------------------------------------
def test_mindspore_style_repr():
    assert repr(sf.Tensor(np.array([[1, 2], [3, 4]], np.int32))) == \
        "Tensor(shape=[2, 2], dtype=Int32, value=\n[[1, 2],\n [3, 4]])"
    assert repr(sf.Tensor(2.5)) == "Tensor(shape=[], dtype=Float32, value= 2.5)"
    assert repr(sf.Tensor([True])) == "Tensor(shape=[1], dtype=Bool, value=\n[ True])"
    assert "dtype=UInt8" in repr(sf.Tensor(np.array([1], np.uint8)))
    assert repr(sf.Parameter(sf.Tensor([1.0]), name="w")) == \
        "Parameter (name=w, shape=[1], dtype=Float32, requires_grad=True)"
    assert str(sf.Tensor([1.0, 2.0])) == "[1. 2.]"


@given(st.data())
def test_setitem_matches_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    key = data.draw(index_key(shape))
    value = data.draw(st.floats(-9, 9, width=32))
    want = x.copy()
    want[key] = value
    t = sf.Tensor(x.copy())
    t[key] = value
    np.testing.assert_array_equal(t.asnumpy(), want)

    def f(a):
        a[key] = value
        return a + 0.0
    np.testing.assert_array_equal(sf.jit(f)(sf.Tensor(x)).asnumpy(), want)


def test_setitem_broadcast_values_parameters_and_errors():
    x = np.zeros((2, 3), np.float32)
    t = sf.Tensor(x)
    t[:, 1:] = sf.Tensor(np.array([1.0, 2.0], np.float32))
    np.testing.assert_array_equal(t.asnumpy(), [[0, 1, 2], [0, 1, 2]])
    p = sf.Parameter(sf.Tensor(np.zeros(3, np.float32)), name="p")

    @sf.jit
    def g(v):
        p[1] = v
        return p * 2.0
    np.testing.assert_array_equal(g(sf.Tensor(np.float32(3.0))).asnumpy(), [0, 6, 0])
    np.testing.assert_array_equal(p.asnumpy(), [0, 3, 0])
    outside = sf.Tensor(np.zeros(2, np.float32))

    def leak(v):
        outside[0] = v
        return v
    with pytest.raises(TypeError, match="item assignment of a traced value into a concrete Tensor"):
        sf.jit(leak)(sf.Tensor(np.float32(1)))


def test_numpy_reduction_functions_accept_tensors():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = sf.Tensor(x)
    assert float(np.sum(t)) == 15.0 and int(np.argmax(t)) == 5
    np.testing.assert_allclose(np.mean(t, axis=0, keepdims=True).asnumpy(), x.mean(0, keepdims=True))
    np.testing.assert_allclose(np.max(t, axis=1).asnumpy(), x.max(1))
    np.testing.assert_allclose(sf.jit(lambda a: np.std(a, axis=1))(t).asnumpy(), x.std(1), rtol=1e-6)
    np.testing.assert_allclose(t.mean(1, keep_dims=True).asnumpy(), x.mean(1, keepdims=True))
    with pytest.raises(TypeError, match="out= is not supported"):
        np.sum(t, out=np.zeros(()))


def test_bool_tensors_with_python_ints_promote_to_int64():
    b = sf.Tensor(np.array([True, False]))
    for got in both(lambda t: (t + 1, 2 * t, t * 2.5), np.array([True, False])):
        assert got[0].dtype is sf.int64 and got[0].asnumpy().tolist() == [2, 1]
        assert got[1].dtype is sf.int64 and got[2].dtype is sf.float32
    assert (b & True).dtype is sf.bool_


def test_python_ints_that_do_not_fit_the_tensor_dtype_raise():
    """A weak Python int takes the tensor's dtype; one that does not fit raises (as numpy 2 and JAX
    do) instead of wrapping around silently (int32 + 2**40 gave 1)."""
    i32, u8 = sf.Tensor(np.array([1], np.int32)), sf.Tensor(np.array([1], np.uint8))
    for f, a in [(lambda x: x + 2 ** 40, i32), (lambda x: x * -(2 ** 31) - 1 + 2 ** 33, i32),
                 (lambda x: x + 256, u8), (lambda x: x - (-1), u8)]:
        for g in (f, sf.jit(f)):
            with pytest.raises(OverflowError, match="out of range for int32|out of range for uint8") as ei:
                g(a)
            assert "test_frontend_tensor.py" in str(ei.value)       # the user's line
    assert (i32 + (2 ** 31 - 1)).dtype is sf.int32 and (u8 + 255).asnumpy().tolist() == [0]   # in range: wraps as numpy
    assert (i32 * -(2 ** 31)).asnumpy().tolist() == [-(2 ** 31)]


def test_python_scalar_conversions_and_format_specs():
    """float()/int() of a one-element tensor of any rank (MindSpore and PyTorch allow it; numpy >= 2.3
    refuses arrays of rank > 0), a clear error for more elements, and format specs on 0-d tensors
    (`f"{loss:.4f}"`, as numpy scalars and JAX arrays allow)."""
    assert float(sf.Tensor(np.array([2.5], np.float32))) == 2.5 and int(sf.Tensor(np.array([[7]], np.int32))) == 7
    assert float(sf.Tensor(np.array([1.5], np.float32), sf.bfloat16)) == 1.5
    with pytest.raises(TypeError, match="only one-element tensors"):
        float(sf.Tensor(np.ones(2, np.float32)))
    assert f"{sf.Tensor(np.float32(2.5)):.2f}" == "2.50" and f"{sf.Tensor(np.int32(7)):>3d}" == "  7"
    assert f"{sf.Tensor(np.array([1.0, 2.0], np.float32))}" == str(sf.Tensor(np.array([1.0, 2.0], np.float32)))
    with pytest.raises(TypeError, match="format"):
        f"{sf.Tensor(np.ones(2, np.float32)):.2f}"


def test_permute_method():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for f in (lambda t: t.permute(2, 0, 1), lambda t: t.permute((2, 0, 1))):
        for got in both(f, a):
            np.testing.assert_array_equal(got.asnumpy(), a.transpose(2, 0, 1))
