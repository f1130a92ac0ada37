"""sf.vmap API: in_axes/out_axes (None, per argument, nested, negative), nesting, Cells and
CellList ensembles, control flow and randomness inside vmap, errors, eager and under sf.jit."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.frontend import random as R
from sporeflow.frontend.vmap import VmapError
from sporeflow.ir.parser import parse
from sporeflow.ir.printer import print_graph
from sporeflow.ir.verify import verify

T = sf.Tensor


def _arr(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def both(fn):
    """fn eagerly and compiled (interp): the two must agree."""
    return [fn, sf.jit(fn)]


def test_in_axes_forms_and_out_axes(rng):
    x, y = _arr(rng, 3, 4), _arr(rng, 4, 5)
    for f in both(sf.vmap(lambda a, b: ops.matmul(a, b), in_axes=(0, None))):
        np.testing.assert_allclose(f(T(x), T(y)).asnumpy(), np.stack([x[i] @ y for i in range(3)]), rtol=1e-5)
    for f in both(sf.vmap(lambda a, b: a * b, in_axes=(-1, 1), out_axes=-1)):
        a, b = _arr(rng, 2, 3), _arr(rng, 2, 3)
        np.testing.assert_allclose(f(T(a), T(b)).asnumpy(), a * b, rtol=1e-6)
    # list in_axes, out_axes per output, an unbatched output broadcast along its out_axis
    f = sf.vmap(lambda a, b: (a + b, b * 2.0), in_axes=[0, None], out_axes=(1, 0))
    s, t = f(T(x), T(y[:, 0]))
    np.testing.assert_allclose(s.asnumpy(), (x + y[:, 0]).T, rtol=1e-6)
    np.testing.assert_allclose(t.asnumpy(), np.broadcast_to(2 * y[:, 0], (3, 4)))
    # out_axes None keeps an unbatched output unbatched
    s, t = sf.vmap(lambda a, b: (a + b, b * 2.0), in_axes=(0, None), out_axes=(0, None))(T(x), T(y[:, 0]))
    assert t.shape == (4,)


def test_nested_tuple_and_dict_axes(rng):
    w, b, xs = _arr(rng, 4, 2), _arr(rng, 2), _arr(rng, 5, 4)

    def f(params, x):
        return ops.matmul(x, params[0]) + params[1]
    got = sf.vmap(f, in_axes=((None, None), 0))((T(w), T(b)), T(xs))
    np.testing.assert_allclose(got.asnumpy(), xs @ w + b, rtol=1e-5)
    bs = _arr(rng, 5, 2)
    got = sf.vmap(f, in_axes=((None, 0), 0))((T(w), T(bs)), T(xs))
    np.testing.assert_allclose(got.asnumpy(), xs @ w + bs, rtol=1e-5)
    g = sf.vmap(lambda d: d["a"] * d["s"], in_axes=({"a": 1, "s": None},))
    np.testing.assert_allclose(g({"a": T(xs), "s": T(np.float32(3))}).asnumpy(), 3 * xs.T, rtol=1e-6)
    # outputs: a dict/tuple pytree with a prefix of out_axes
    out = sf.vmap(lambda a: {"p": a, "q": (a, a * 2.0)}, out_axes={"p": 0, "q": 1})(T(xs))
    assert out["p"].shape == (5, 4) and out["q"][1].shape == (4, 5)


@given(st.integers(-3, 2), st.integers(-3, 2), st.integers(1, 3))
def test_nested_vmap_outer_product_and_any_axes(ax, oax, n):
    rng = np.random.default_rng(n)
    a, b = _arr(rng, n), _arr(rng, 4)
    outer = sf.vmap(sf.vmap(lambda u, v: u * v, in_axes=(None, 0)), in_axes=(0, None))
    for f in both(outer):
        np.testing.assert_allclose(f(T(a), T(b)).asnumpy(), np.outer(a, b), rtol=1e-6)
    x = _arr(rng, 2, 3, n)
    want = np.moveaxis(np.exp(x).sum(axis=tuple(i for i in range(3) if i != ax % 3)), 0, 0)
    f = sf.vmap(lambda t: ops.exp(t).sum(), in_axes=ax, out_axes=oax % 1)
    np.testing.assert_allclose(f(T(x)).asnumpy(), want, rtol=1e-5)
    # vmap(vmap) over two axes of one argument
    g = sf.vmap(sf.vmap(lambda t: t.sum(), in_axes=0), in_axes=ax)
    want = np.moveaxis(x, ax % 3, 0).sum(axis=2)
    np.testing.assert_allclose(g(T(x)).asnumpy(), want, rtol=1e-5)


def test_errors_name_argument_shape_and_axis():
    def f(x, y):
        return x + y
    with pytest.raises(VmapError, match=r"argument 'x' has shape \(2, 3\) and is mapped over axis 0 \(size 2\).*"
                                        r"argument 'y' has shape \(3, 4\) and is mapped over axis 1 \(size 4\)"):
        sf.vmap(f, in_axes=(0, 1))(T(np.zeros((2, 3))), T(np.zeros((3, 4))))
    with pytest.raises(VmapError, match="in_axes has 1 entries but f was called with 2"):
        sf.vmap(f, in_axes=(0,))(T(np.zeros(2)), T(np.zeros(2)))
    with pytest.raises(VmapError, match=r"in_axes 2 is out of range for argument 'y' of shape \(3,\)"):
        sf.vmap(f, in_axes=(0, 2))(T(np.zeros(3)), T(np.zeros(3)))
    with pytest.raises(VmapError, match="at least one argument must be mapped"):
        sf.vmap(f, in_axes=None)(T(np.zeros(3)), T(np.zeros(3)))
    with pytest.raises(VmapError, match="output 0 depends on the mapped inputs"):
        sf.vmap(f, out_axes=None)(T(np.zeros(3)), T(np.zeros(3)))
    with pytest.raises(VmapError, match="in_axes\\[0\\] has 2 entries"):
        sf.vmap(lambda p: p[0], in_axes=((0, 0),))((T(np.zeros(3)),))


class MLP(nn.Cell):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w1 = sf.Parameter(T(_arr(rng, 4, 8)), name="w1")
        self.b1 = sf.Parameter(T(_arr(rng, 8)), name="b1")
        self.w2 = sf.Parameter(T(_arr(rng, 8, 3)), name="w2")

    def construct(self, x):
        return ops.matmul(ops.tanh(ops.matmul(x, self.w1) + self.b1), self.w2)

    def ref(self, x):
        return np.tanh(x @ self.w1.asnumpy() + self.b1.asnumpy()) @ self.w2.asnumpy()


def test_vmap_of_a_cell_shares_its_parameters(rng):
    net, xs = MLP(), _arr(rng, 5, 4)
    for f in both(sf.vmap(net)):
        np.testing.assert_allclose(f(T(xs)).asnumpy(), net.ref(xs), rtol=1e-5)


def test_cellist_ensemble_stacks_parameters(rng):
    members = [MLP(seed=i) for i in range(3)]
    ens = nn.CellList(members)
    x, xs = _arr(rng, 6, 4), _arr(rng, 3, 6, 4)
    for f in both(sf.vmap(ens, in_axes=None)):        # every model on the same batch: [3, 6, 3]
        np.testing.assert_allclose(f(T(x)).asnumpy(), np.stack([m.ref(x) for m in members]), rtol=1e-5)
    for f in both(sf.vmap(ens, in_axes=0)):           # model i on batch i
        np.testing.assert_allclose(f(T(xs)).asnumpy(), np.stack([m.ref(xs[i]) for i, m in enumerate(members)]),
                                   rtol=1e-5)
    with pytest.raises(VmapError, match="'axis_size'.*the CellList"):
        sf.vmap(ens, in_axes=0)(T(_arr(rng, 2, 6, 4)))
    with pytest.raises(VmapError, match="identical structure"):
        sf.vmap([MLP(), nn.Dense(4, 3)], in_axes=None)(T(x))


def test_ensemble_train_step_updates_each_member(rng):
    """vmap(CellList of TrainOneStepCell): every member takes its own SGD step on its own batch."""
    members = [MLP(seed=i) for i in range(2)]
    steps = nn.CellList([nn.TrainOneStepCell(nn.WithLossCell(m, nn.MSELoss()), nn.SGD(m.trainable_params(), 0.1))
                         for m in members])
    xs, ys = _arr(rng, 2, 5, 4), _arr(rng, 2, 5, 3)
    before = [[p.asnumpy().copy() for p in m.trainable_params()] for m in members]
    # the reference: each member stepped on its own, from a copy of the same weights
    refs = [MLP(seed=i) for i in range(2)]
    for r, x, y in zip(refs, xs, ys, strict=True):
        nn.TrainOneStepCell(nn.WithLossCell(r, nn.MSELoss()), nn.SGD(r.trainable_params(), 0.1))(T(x), T(y))
    losses = sf.vmap(steps)(T(xs), T(ys))
    assert losses.shape == (2,)
    for m, r, b in zip(members, refs, before, strict=True):
        for p, q, p0 in zip(m.trainable_params(), r.trainable_params(), b, strict=True):
            assert not np.allclose(p.asnumpy(), p0)
            np.testing.assert_allclose(p.asnumpy(), q.asnumpy(), rtol=1e-5, atol=1e-6)


def test_closures_under_jit_are_shared(rng):
    """Inside sf.jit: outer tracers and Parameters captured by the vmapped function are unbatched."""
    p = sf.Parameter(T(_arr(rng, 4)), name="p")
    x, xs = _arr(rng, 4), _arr(rng, 3, 4)

    @sf.jit
    def step(a, bs):
        c = a * 2.0
        return sf.vmap(lambda b: (b * c + p).sum())(bs)
    np.testing.assert_allclose(step(T(x), T(xs)).asnumpy(), (xs * 2 * x + p.asnumpy()).sum(axis=1), rtol=1e-5)
    g = sf.vmap(sf.jit(lambda b: ops.sin(b) * p))           # vmap of a jitted function
    np.testing.assert_allclose(g(T(xs)).asnumpy(), np.sin(xs) * p.asnumpy(), rtol=1e-6)


def test_control_flow_batched_predicate_and_loops(rng):
    xs = _arr(rng, 6)

    def f(x):   # cond on a per-example predicate becomes a select
        return ops.cond(x > 0, lambda v: v * 2.0, lambda v: -v, x)

    def g(n):   # data-dependent trip count: halve until n <= 1 (floor(log2 n) steps)
        return ops.while_loop(lambda c: c[0] > 1, lambda c: (c[0] // 2, c[1] + 1), (n, T(np.int32(0))))[1]

    def h(x):   # scan with a batched carry and batched xs
        return ops.scan(lambda c, t: (c * t + 1.0, c), x[0], x)
    for fn in both(sf.vmap(f)):
        np.testing.assert_allclose(fn(T(xs)).asnumpy(), np.where(xs > 0, 2 * xs, -xs), rtol=1e-6)
    ns = np.array([1, 2, 7, 64, 0], np.int32)
    for fn in both(sf.vmap(g)):
        np.testing.assert_array_equal(fn(T(ns)).asnumpy(), [int(np.floor(np.log2(max(n, 1)))) for n in ns])
    x2 = _arr(rng, 3, 4)
    for fn in both(sf.vmap(h)):
        c, ys = fn(T(x2))
        for i in range(3):
            cc, yy = h(T(x2[i]))
            np.testing.assert_allclose(c.asnumpy()[i], cc.asnumpy(), rtol=1e-5)
            np.testing.assert_allclose(ys.asnumpy()[i], yy.asnumpy(), rtol=1e-5)


def test_per_example_random_keys():
    keys = ops.stack([R.key(i) for i in range(4)])
    for fn in both(sf.vmap(lambda k: R.normal(k, (3,)))):
        got = fn(keys).asnumpy()
        for i in range(4):
            np.testing.assert_allclose(got[i], R.normal(R.key(i), (3,)).asnumpy(), rtol=1e-6)  # same bits
    assert not np.allclose(got[0], got[1])


def test_batched_graph_prints_parses_and_verifies(rng):
    f = sf.vmap(sf.vmap(lambda a, b: ops.cond(a.sum() > 0, lambda u: u * b, lambda u: u - b, a), in_axes=(0, None)))
    tr = sf.jit(f).trace(T(_arr(rng, 2, 3, 4)), T(_arr(rng, 2, 4)))
    verify(tr.graph)
    text = print_graph(tr.graph)
    assert "select" in text and "test_vmap_api.py" in text
    assert print_graph(parse(text)) == text


def test_closure_nesting_keyword_arguments_and_static_leaves(rng):
    xs, ys = _arr(rng, 3), _arr(rng, 4)
    outer = sf.vmap(lambda x: sf.vmap(lambda y: x * y)(T(ys)))     # inner closes over the outer tracer
    for f in both(outer):
        np.testing.assert_allclose(f(T(xs)).asnumpy(), np.outer(xs, ys), rtol=1e-6)

    def f(x, *, scale, shift=None, mode="mul"):
        return x * scale if mode == "mul" else x + scale
    g = sf.vmap(f, in_axes=0)
    np.testing.assert_allclose(g(T(xs), scale=T(ys[:3]), mode="mul").asnumpy(), xs * ys[:3], rtol=1e-6)
    np.testing.assert_allclose(g(T(xs), scale=T(ys[:3]), mode="add").asnumpy(), xs + ys[:3], rtol=1e-6)


def test_error_points_at_the_user_line():
    with pytest.raises(VmapError) as e:
        sf.vmap(lambda a, b: a + b)(T(np.zeros(2)), T(np.zeros(3)))
    assert "test_vmap_api.py" in str(e.value) and "sf.vmap(lambda a, b: a + b)" in str(e.value)


def test_nested_control_flow(rng):
    """A scan whose body holds a cond on the (batched) carry and a while_loop whose trip count is
    shared but whose body is batched; vmap == loop, eagerly and compiled, and grad of it."""
    xs = rng.normal(size=(3, 4))

    def f(x):
        def body(c, t):
            c = ops.cond(c.sum() > t, lambda u: u * 0.5, lambda u: u + t, c)
            k, c = ops.while_loop(lambda s: s[0] < 2, lambda s: (s[0] + 1, ops.sin(s[1]) + s[1]),
                                  (T(np.int32(0)), c))
            return c, c.sum()
        return ops.scan(body, x, x)
    for fn in both(sf.vmap(f)):
        c, ys = fn(T(xs))
        for i in range(3):
            cc, yy = f(T(xs[i]))
            np.testing.assert_allclose(c.asnumpy()[i], cc.asnumpy(), rtol=1e-12)
            np.testing.assert_allclose(ys.asnumpy()[i], yy.asnumpy(), rtol=1e-12)
    g = sf.grad(lambda v: sf.vmap(f)(v)[0].sum())(T(xs)).asnumpy()
    for i in range(3):
        gi = sf.grad(lambda v: f(v)[0].sum())(T(xs[i])).asnumpy()
        np.testing.assert_allclose(g[i], gi, rtol=1e-10)


def test_jit_of_vmap_retraces_when_the_cell_changes_mode():
    """sf.jit finds the Cells behind vmap (and behind closures), so set_train() retraces."""
    net = nn.Dropout(p=0.5)
    x = T(np.ones((2, 64), np.float32))
    f = sf.jit(sf.vmap(net))
    net.set_train(True)
    assert (f(x).asnumpy() == 0).any()
    net.set_train(False)
    np.testing.assert_array_equal(f(x).asnumpy(), 1.0)
    assert "train flags changed" in f.last_retrace_reason
    g = sf.jit(sf.vmap(lambda v: net(v) * 2.0))
    np.testing.assert_array_equal(g(x).asnumpy(), 2.0)
    net.set_train(True)
    assert (g(x).asnumpy() == 0).any()
