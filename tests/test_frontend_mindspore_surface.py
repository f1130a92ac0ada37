"""The MindSpore surface tutorials use beyond the headline API (reference section 13):
primitive-style op classes, HyperMap/MultitypeFuncGraph/partial, sporeflow.numpy, jit_class,
JitConfig, ParameterTuple, data_sink, sporeflow.common.initializer."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
import sporeflow.numpy as mnp
from sporeflow import ops
from sporeflow.errors import ShapeError
from sporeflow.frontend.functional.primitives import TABLE

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]], np.float32)
Y = np.array([[1.0, 2.0, -0.5], [0.5, -1.0, 4.0]], np.float32)


def T(a, dtype=None):
    return sf.Tensor(a, dtype)


# class, constructor args, call args (numpy arrays become Tensors), numpy reference
CASES = [
    ("Sin", (), (X,), np.sin(X)), ("Cos", (), (X,), np.cos(X)), ("Exp", (), (X,), np.exp(X)),
    ("Add", (), (X, Y), X + Y), ("Sub", (), (X, Y), X - Y), ("Mul", (), (X, Y), X * Y), ("Div", (), (X, Y), X / Y),
    ("RealDiv", (), (X, Y), X / Y), ("Maximum", (), (X, Y), np.maximum(X, Y)), ("Neg", (), (X,), -X),
    ("Square", (), (X,), X * X), ("Abs", (), (X,), np.abs(X)), ("Tanh", (), (X,), np.tanh(X)),
    ("ReLU", (), (X,), np.maximum(X, 0)), ("Sigmoid", (), (X,), 1 / (1 + np.exp(-X))),
    ("Softmax", (), (X,), np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    ("Softmax", (0,), (X,), np.exp(X) / np.exp(X).sum(0, keepdims=True)),
    ("LogSoftmax", (), (X,), X - np.log(np.exp(X).sum(-1, keepdims=True))),
    ("MatMul", (), (X, Y.T), X @ Y.T), ("MatMul", (False, True), (X, Y), X @ Y.T),
    ("MatMul", (), (X, Y), None), ("BatchMatMul", (True, False), (X[None], Y[None]), X.T[None] @ Y[None]),
    ("ReduceSum", (), (X,), X.sum()), ("ReduceSum", (True,), (X, 1), X.sum(1, keepdims=True)),
    ("ReduceSum", (), (X, (0, 1)), X.sum()), ("ReduceMean", (), (X, 0), X.mean(0)),
    ("ReduceMax", (True,), (X, -1), X.max(-1, keepdims=True)), ("ReduceMin", (), (X,), X.min()),
    ("Argmax", (), (X,), X.argmax(-1)), ("Argmin", (0,), (X,), X.argmin(0)),
    ("Transpose", (), (X, (1, 0)), X.T), ("Reshape", (), (X, (3, 2)), X.reshape(3, 2)),
    ("ExpandDims", (), (X, 0), X[None]), ("Squeeze", (), (X[None],), X), ("Tile", (), (X, (2, 1)), np.tile(X, (2, 1))),
    ("Concat", (1,), ((X, Y),), np.concatenate([X, Y], 1)), ("Stack", (), ([X, Y],), np.stack([X, Y])),
    ("OnesLike", (), (X,), np.ones_like(X)), ("ZerosLike", (), (X,), np.zeros_like(X)),
    ("Select", (), (X > 0, X, Y), np.where(X > 0, X, Y)), ("Equal", (), (X, X), np.ones_like(X, bool)),
    ("Greater", (), (X, Y), X > Y), ("Pow", (), (np.abs(X), Y), np.abs(X) ** Y),
    ("BiasAdd", (), (X, np.array([1.0, 2.0, 3.0], np.float32)), X + [1, 2, 3]),
    ("AddN", (), ((X, Y, X),), X + Y + X), ("Identity", (), (X,), X),
]


@pytest.mark.parametrize("name,init,args,want", CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
def test_primitive_classes_eager_and_jit(name, init, args, want):
    prim = getattr(ops, name)(*init)

    def conv(a):
        if isinstance(a, np.ndarray):
            return T(a)
        if isinstance(a, (tuple, list)) and a and isinstance(a[0], np.ndarray):
            return type(a)(T(x) for x in a)
        return a

    targs = [conv(a) for a in args]
    if want is None:
        with pytest.raises(ShapeError, match="matmul: contraction dims differ"):
            prim(*targs)
        return
    tensor_pos = [i for i, a in enumerate(targs) if isinstance(a, sf.Tensor)]

    def f(*ts):
        full = list(targs)
        for i, t in zip(tensor_pos, ts):
            full[i] = t
        return prim(*full)
    for got in (f(*[targs[i] for i in tensor_pos]), sf.jit(f)(*[targs[i] for i in tensor_pos])):
        np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-5, atol=1e-6)


def test_cast_shape_fill_gather_onehot_assign():
    x = T(X)
    assert ops.Cast()(x, sf.int32).dtype is sf.int32
    assert ops.Shape()(x) == (2, 3) and ops.Size()(x) == 6 and ops.Rank()(x) == 2
    np.testing.assert_array_equal(ops.Fill()(sf.float32, (2, 2), 3.0).asnumpy(), np.full((2, 2), 3.0))
    np.testing.assert_array_equal(ops.Ones()((2,), sf.int32).asnumpy(), [1, 1])
    np.testing.assert_array_equal(ops.Gather()(x, T(np.array([2, 0], np.int32)), 1).asnumpy(), X[:, [2, 0]])
    oh = ops.OneHot()(T(np.array([1, 0], np.int32)), 3, T(5.0), T(-1.0))
    np.testing.assert_array_equal(oh.asnumpy(), [[-1, 5, -1], [5, -1, -1]])
    p = sf.Parameter(T(np.zeros(2, np.float32)), name="p")
    ops.AssignAdd()(p, T(np.ones(2, np.float32)))
    ops.Assign()(p, p * 3.0)
    np.testing.assert_array_equal(p.asnumpy(), [3, 3])


def test_primitive_attributes_and_errors():
    m = ops.MatMul(transpose_b=True)
    assert m.attrs == {"transpose_a": False, "transpose_b": True}
    assert repr(m) == "Prim[MatMul]<transpose_a=False, transpose_b=True>"
    assert repr(ops.Sin()) == "Prim[Sin]"
    with pytest.raises(TypeError, match="unknown attribute"):
        ops.ReduceSum(keepdims=True)
    assert len(TABLE) >= 60 and all(isinstance(getattr(ops, n), type) for n in TABLE)


def test_hypermap_map_multitype_partial():
    xs = (T(X), [T(Y), T(X)])
    doubled = ops.HyperMap()(lambda a: a * 2.0, xs)
    assert isinstance(doubled, tuple) and isinstance(doubled[1], list)
    np.testing.assert_allclose(doubled[1][0].asnumpy(), 2 * Y)
    scale = ops.MultitypeFuncGraph("scale")

    @scale.register("Number", "Tensor")
    def _scale_tensor(s, g):
        return g * s

    @scale.register("Number", "Tuple")
    def _scale_tuple(s, g):
        return tuple(x * s for x in g)

    out = ops.HyperMap(ops.partial(scale, 0.5))((T(X), T(Y)))
    np.testing.assert_allclose(out[0].asnumpy(), 0.5 * X)
    with pytest.raises(TypeError, match="no overload for \\(Number, String\\)"):
        scale(1.0, "s")
    added = ops.Map()(ops.Add(), (T(X), T(Y)), (T(Y), T(X)))
    np.testing.assert_allclose(added[1].asnumpy(), X + Y)
    jitted = sf.jit(lambda a, b: ops.HyperMap(ops.partial(scale, 2.0))((a, b)))(T(X), T(Y))
    np.testing.assert_allclose(jitted[1].asnumpy(), 2 * Y)
    np.testing.assert_allclose(ops.Partial()(ops.mul, T(X))(3.0).asnumpy(), 3 * X)
    with pytest.raises(ValueError, match="same length"):
        ops.HyperMap()(ops.add, (T(X),), (T(X), T(Y)))


# ---- sporeflow.numpy ------------------------------------------------------------------------------
MNP = [
    (lambda: mnp.arange(5), np.arange(5)), (lambda: mnp.arange(1, 7, 2), np.arange(1, 7, 2)),
    (lambda: mnp.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25)),
    (lambda: mnp.zeros((2, 3)), np.zeros((2, 3))), (lambda: mnp.ones(3, sf.int32), np.ones(3)),
    (lambda: mnp.full((2,), 7.0), np.full(2, 7.0)), (lambda: mnp.eye(3, k=1), np.eye(3, k=1)),
    (lambda: mnp.linspace(0, 1, 5), np.linspace(0, 1, 5)),
    (lambda: mnp.dot(mnp.array(X), mnp.array(Y.T)), X @ Y.T), (lambda: mnp.dot(mnp.array(X[0]), mnp.array(Y[0])),
                                                               X[0] @ Y[0]),
    (lambda: mnp.dot(mnp.array(np.ones((2, 3, 4))), mnp.array(np.ones((5, 4, 2)))),
     np.dot(np.ones((2, 3, 4)), np.ones((5, 4, 2)))),
    (lambda: mnp.matmul(mnp.array(X), mnp.array(Y.T)), X @ Y.T),
    (lambda: mnp.stack([mnp.array(X), mnp.array(Y)], 1), np.stack([X, Y], 1)),
    (lambda: mnp.concatenate([mnp.array(X), mnp.array(Y)]), np.concatenate([X, Y])),
    (lambda: mnp.concatenate([mnp.array(X), mnp.array(Y)], None), np.concatenate([X, Y], None)),
    (lambda: mnp.sum(mnp.array(X), axis=1), X.sum(1)), (lambda: mnp.mean(mnp.array(X)), X.mean()),
    (lambda: mnp.exp(mnp.array(X)), np.exp(X)), (lambda: mnp.log(mnp.abs(mnp.array(X))), np.log(np.abs(X))),
    (lambda: mnp.amax(mnp.array(X), 0), X.max(0)), (lambda: mnp.argmax(mnp.array(X), 1), X.argmax(1)),
    (lambda: mnp.where(mnp.array(X) > 0, 1.0, 0.0), np.where(X > 0, 1.0, 0.0)),
    (lambda: mnp.transpose(mnp.array(X)), X.T), (lambda: mnp.outer(mnp.array(X[0]), mnp.array(Y[0])),
                                                 np.outer(X[0], Y[0])),
    (lambda: mnp.prod(mnp.array(X), 1), X.prod(1)), (lambda: mnp.std(mnp.array(X)), X.std()),
    (lambda: mnp.clip(mnp.array(X), -1, 1), np.clip(X, -1, 1)), (lambda: mnp.tile(mnp.array(X), 2), np.tile(X, 2)),
    (lambda: mnp.pad(mnp.array(X), 1), np.pad(X, 1)), (lambda: mnp.flip(mnp.array(X)), np.flip(X)),
    (lambda: mnp.split(mnp.array(X), 3, axis=1)[1], np.split(X, 3, axis=1)[1]),
    (lambda: mnp.log2(mnp.array([8.0])), [3.0]), (lambda: mnp.isinf(mnp.array([np.inf, 1.0, np.nan])),
                                                 [True, False, False]),
    (lambda: mnp.tensordot(mnp.array(X), mnp.array(Y), ((0, 1), (0, 1))), np.tensordot(X, Y, ((0, 1), (0, 1)))),
]


@pytest.mark.parametrize("i", range(len(MNP)))
def test_sporeflow_numpy_matches_numpy(i):
    fn, want = MNP[i]
    got = fn()
    assert isinstance(got, sf.Tensor)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-5, atol=1e-6)


def test_sporeflow_numpy_defaults_and_random():
    assert mnp.arange(3).dtype is sf.int32 and mnp.zeros(2).dtype is sf.float32
    sf.set_seed(7)
    a, r, k = mnp.randn(2, 3), mnp.rand((4,)), mnp.randint(2, 9, (1000,))
    sf.set_seed(7)
    np.testing.assert_array_equal(mnp.randn(2, 3).asnumpy(), a.asnumpy())
    assert a.shape == (2, 3) and r.shape == (4,) and ((0 <= r.asnumpy()) & (r.asnumpy() < 1)).all()
    kk = k.asnumpy()
    assert k.dtype is sf.int32 and kk.min() == 2 and kk.max() == 8
    assert abs(mnp.randn(4000).asnumpy().std() - 1) < 0.1
    with pytest.raises(ValueError, match="maxval"):
        mnp.randint(3, 3)
    # inside jit the draws advance the global RNG state, so two calls differ
    f = sf.jit(lambda x: x + mnp.rand(2))
    z = sf.Tensor(np.zeros(2, np.float32))
    assert not np.array_equal(f(z).asnumpy(), f(z).asnumpy())


def test_jit_class_jit_config_parameter_tuple_data_sink_common():
    @sf.jit_class
    class Affine:
        def __init__(self, a):
            self.a = a

        def apply(self, x):
            return x * self.a + 1.0

    assert Affine.__sf_jit_class__
    aff = Affine(3.0)
    np.testing.assert_allclose(sf.jit(lambda x: aff.apply(x))(T(X)).asnumpy(), X * 3 + 1)
    with pytest.raises(TypeError, match="decorates a class"):
        sf.jit_class(lambda: 0)
    cfg = sf.JitConfig(jit_level="O1")
    assert cfg.jit_config_dict["jit_level"] == "O1"
    net = sf.nn.Dense(3, 2)
    net.set_jit_config(cfg)
    assert sf.jit(lambda x: x * 2, jit_config=cfg, capture_mode="ast", backend="")(T(X)).shape == (2, 3)

    params = sf.ParameterTuple(net.trainable_params())
    moments = params.clone(prefix="moment1", init="zeros")
    assert isinstance(moments, sf.ParameterTuple) and [p.name for p in moments] == \
        ["moment1.weight", "moment1.bias"]
    assert all(not p.asnumpy().any() for p in moments) and moments[0].shape == params[0].shape
    with pytest.raises(TypeError, match="Parameters only"):
        sf.ParameterTuple([T(X)])

    ds = sf.dataset.NumpySlicesDataset({"x": np.arange(6, dtype=np.float32).reshape(3, 2)}, shuffle=False).batch(1)
    step = sf.data_sink(lambda x: x.sum(), ds, sink_size=2)
    assert [float(step().asnumpy()) for _ in range(3)] == [5.0, 1.0, 9.0]   # batches (0,1) (2,0) (1,2)

    from sporeflow.common.initializer import Normal, TruncatedNormal, initializer
    import sporeflow.common.dtype as mstype
    w = initializer(TruncatedNormal(0.02), (4, 3), mstype.float32)
    assert w.shape == (4, 3) and w.dtype is sf.float32 and isinstance(Normal(), sf.common.initializer.Initializer)
