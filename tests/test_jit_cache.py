"""sf.jit: cache hits and misses, why it retraced, stale-reuse protection, GRAPH_MODE Cells,
pytrees in and out, and the staged API."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
import sporeflow.ir as ir
from sporeflow import ops
from sporeflow.errors import SporeflowError
from sporeflow.frontend.cell import Cell


def T(*shape, dtype=np.float32, seed=0):
    return sf.Tensor(np.random.default_rng(seed).normal(size=shape).astype(dtype))


def test_hit_and_miss_on_shape_dtype_and_static_values():
    calls = []

    def f(x, scale, mode="a"):
        calls.append(1)
        return x * scale if mode == "a" else x - scale

    jf = sf.jit(f)
    x = T(2, 3)
    jf(x, 2.0)
    assert jf.last_retrace_reason == "first call"
    jf(T(2, 3, seed=1), 2.0)                      # same signature: hit
    assert len(calls) == 1 and jf.cache_size() == 1
    jf(T(4, 3), 2.0)
    assert "tensor types changed: #0 f32[2,3] -> #0 f32[4,3]" in jf.last_retrace_reason
    jf(T(4, 3, dtype=np.float64), 2.0)
    assert "#0 f32[4,3] -> #0 f64[4,3]" in jf.last_retrace_reason
    jf(x, 3.0)
    assert "static values changed" in jf.last_retrace_reason and "3.0" in jf.last_retrace_reason
    np.testing.assert_allclose(jf(x, 3.0, mode="b").asnumpy(), x.asnumpy() - 3.0)
    assert "argument structure changed" in jf.last_retrace_reason
    assert len(calls) == 5 and jf.cache_size() == 5
    jf(x, 2.0)                                     # every earlier signature is still cached
    jf(T(4, 3), 2.0)
    assert len(calls) == 5


def test_static_value_type_matters_and_unhashable_is_a_clear_error():
    jf = sf.jit(lambda x, n: x * n)
    jf(T(2), 1)
    jf(T(2), 1.0)           # int 1 and float 1.0 are different static keys (different promotion)
    assert jf.cache_size() == 2
    assert jf(T(2), 1).dtype is sf.float32 and jf(T(2, dtype=np.int32), 2.0).dtype is sf.float32


def test_unhashable_static_argument():
    jf = sf.jit(lambda x, n: x)
    with pytest.raises(SporeflowError, match="argument of type set is neither a Tensor nor hashable"):
        jf(T(2), {1})


class Lin(Cell):
    def __init__(self, n_in=3, n_out=2):
        super().__init__()
        self.w = sf.Parameter(T(n_out, n_in))
        self.b = sf.Parameter(T(n_out, seed=3))

    def construct(self, x):
        return ops.dense(x, self.w, self.b)


def test_parameter_values_are_read_at_each_call():
    net = Lin()
    jf = sf.jit(net)
    x = T(4, 3)
    y1 = jf(x).asnumpy()
    net.w.set_data(sf.Tensor(np.zeros((2, 3), np.float32)))
    y2 = jf(x).asnumpy()
    assert jf.cache_size() == 1
    np.testing.assert_allclose(y2, np.broadcast_to(net.b.asnumpy(), (4, 2)))
    assert not np.allclose(y1, y2)


def test_no_stale_reuse_when_a_parameter_changes_shape_or_is_replaced():
    net = Lin()
    jf = sf.jit(net)
    jf(T(4, 3))
    net.w.set_data(T(5, 3), slice_shape=True)
    net.b.set_data(T(5), slice_shape=True)
    out = jf(T(4, 3))
    assert out.shape == (4, 5)
    assert "parameter types changed" in jf.last_retrace_reason and "w: f32[2,3] -> w: f32[5,3]" in \
        jf.last_retrace_reason
    net.w = sf.Parameter(T(5, 3, seed=9), name="w")       # a new object of the same type
    np.testing.assert_allclose(jf(T(4, 3)).asnumpy(), net(T(4, 3)).asnumpy(), rtol=1e-6)
    assert "parameter objects changed" in jf.last_retrace_reason


def test_captured_global_parameter_changing_shape_retraces():
    p = sf.Parameter(T(3), name="gp")
    jf = sf.jit(lambda x: x * p)
    jf(T(3))
    p.set_data(T(1), slice_shape=True)
    assert jf(T(3)).shape == (3,)
    assert "captured Parameter changed shape or dtype: gp: f32[3] -> f32[1]" in jf.last_retrace_reason


def test_train_flag_is_part_of_the_key():
    class Net(Cell):
        def construct(self, x):
            return x * 2.0 if self.training else x

    net = Net()
    jf = sf.jit(net)
    x = T(2)
    np.testing.assert_allclose(jf(x).asnumpy(), x.asnumpy())
    net.set_train()
    np.testing.assert_allclose(jf(x).asnumpy(), 2 * x.asnumpy())
    assert "train flags changed" in jf.last_retrace_reason


def test_graph_mode_cell_call_compiles_and_caches():
    net = Lin()
    x = T(4, 3)
    eager = net(x).asnumpy()
    assert net._graph_fn is None
    sf.set_context(mode=sf.GRAPH_MODE)
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-6)
    net(T(4, 3, seed=5))
    assert net._graph_fn.cache_size() == 1 and net._graph_fn.trace_count == 1
    net(T(6, 3))
    assert net._graph_fn.cache_size() == 2


def test_pytrees_in_arguments_and_results():
    def f(inp, extra=None):
        a, (b, c) = inp["pair"], inp["nested"]
        out = {"sum": a + b, "list": [c * 2.0, a.sum()], "tuple": (b, None, 3)}
        if extra is not None:
            out["extra"] = extra[0] - extra[1]
        return out

    jf = sf.jit(f)
    inp = {"pair": T(2, 2), "nested": (T(2, 2, seed=1), T(3, seed=2))}
    got = jf(inp, extra=[T(2), T(2, seed=4)])
    want = f(inp, extra=[T(2), T(2, seed=4)])
    assert set(got) == {"sum", "list", "tuple", "extra"} and isinstance(got["list"], list)
    assert got["tuple"][1] is None and got["tuple"][2] == 3
    for g, w in [(got["sum"], want["sum"]), (got["list"][0], want["list"][0]), (got["list"][1], want["list"][1]),
                 (got["tuple"][0], want["tuple"][0]), (got["extra"], want["extra"])]:
        np.testing.assert_allclose(g.asnumpy(), w.asnumpy(), rtol=1e-6)
    jf(inp)
    assert "argument structure changed" in jf.last_retrace_reason
    jf({"pair": T(2, 2), "nested": [T(2, 2), T(3)]})   # list instead of tuple: another structure
    assert jf.cache_size() == 3


def test_numpy_arrays_are_dynamic_arguments():
    jf = sf.jit(lambda x: x + 1)
    a = np.ones((2,), np.float32)
    np.testing.assert_allclose(jf(a).asnumpy(), [2, 2])
    jf(np.zeros((2,), np.float32))
    assert jf.cache_size() == 1


def test_staged_api_graph_is_printable_and_parseable():
    def f(x, y):
        return ops.relu(x @ y).sum(), x.shape[0]

    traced = sf.jit(f).trace(T(2, 3), T(3, 4))
    g = traced.graph
    text = str(g)
    assert text.startswith("graph @f(%arg0: f32[2,3], %arg1: f32[3,4]) -> (f32[]) {")
    assert str(ir.parse(text)) == text
    compiled = traced.lower("interp")
    assert "matmul" in compiled.source
    out, n = compiled([T(2, 3), T(3, 4)])
    assert n == 2 and out.shape == ()


def test_staged_lower_uses_the_jits_backend():
    """trace(...).lower() compiles for the jit's backend, not the context default (interp here)."""
    exe = sf.jit(lambda x: x * 2, backend="llvm").trace(T(4)).lower().executable
    assert type(exe).__module__.startswith("sporeflow.backends.llvm"), type(exe)
    assert type(sf.jit(lambda x: x * 2).trace(T(4)).lower().executable).__module__.startswith(
        "sporeflow.backends.interp")


def test_public_lower_compiles_ahead_and_the_call_reuses_it():
    jf = sf.jit(lambda x: ops.exp(x) + 1)
    compiled = jf.lower(T(3))
    assert jf.trace_count == 1 and jf.cache_size() == 1 and "exp" in compiled.source
    out = jf(T(3))
    assert jf.trace_count == 1 and jf.cache_size() == 1       # the call ran the lowered executable
    np.testing.assert_allclose(out.asnumpy(), np.exp(T(3).asnumpy()) + 1, rtol=1e-6)
    jf.lower(T(5))
    assert jf.trace_count == 2 and jf.cache_size() == 2


def test_jit_as_decorator_with_options_and_on_methods():
    @sf.jit(backend="interp")
    def f(x):
        return x * 2

    assert f(T(2)).shape == (2,)

    class Net(Cell):
        def __init__(self):
            super().__init__()
            self.w = sf.Parameter(T(2))

        @sf.jit
        def construct(self, x):
            return x * self.w

    a, b = Net(), Net()
    x = T(2)
    np.testing.assert_allclose(a(x).asnumpy(), x.asnumpy() * a.w.asnumpy(), rtol=1e-6)
    b.w.set_data(T(2, seed=7))
    np.testing.assert_allclose(b(x).asnumpy(), x.asnumpy() * b.w.asnumpy(), rtol=1e-6)


def test_nested_jit_inlines_into_the_outer_trace():
    inner = sf.jit(lambda x: x * 3.0)
    outer = sf.jit(lambda x: inner(x) + 1.0)
    np.testing.assert_allclose(outer(T(2)).asnumpy(), T(2).asnumpy() * 3 + 1, rtol=1e-6)
    assert inner.cache_size() == 0


def test_parameter_updates_are_written_back():
    p = sf.Parameter(sf.Tensor(np.zeros(2, np.float32)), name="acc")

    @sf.jit
    def step(x):
        ops.assign_add(p, x)
        return p * 1.0

    step(sf.Tensor(np.ones(2, np.float32)))
    out = step(sf.Tensor(np.ones(2, np.float32)))
    np.testing.assert_allclose(p.asnumpy(), [2, 2])
    np.testing.assert_allclose(out.asnumpy(), [2, 2])


def test_ordered_dicts_keep_their_order_and_foreign_containers_are_refused():
    from collections import OrderedDict, defaultdict
    out = sf.jit(lambda x: OrderedDict([("z", x), ("a", x * 2.0)]))(T(2))
    assert isinstance(out, OrderedDict) and list(out) == ["z", "a"]
    with pytest.raises(SporeflowError, match="returned a defaultdict, a container sporeflow cannot look into"):
        sf.jit(lambda x: defaultdict(list, a=x))(T(2))


def test_mutable_is_accepted():
    jf = sf.jit(lambda t: t[0] + t[1])
    jf(sf.mutable((T(2), T(2, seed=1))))
    jf(sf.mutable((T(2, seed=2), T(2, seed=3))))
    assert jf.cache_size() == 1
    with pytest.raises(NotImplementedError, match="dynamic_len"):
        sf.mutable([T(2)], dynamic_len=True)


def test_retraces_are_logged_and_explained(caplog):
    import logging
    jf = sf.jit(lambda x: x + 1.0)
    with caplog.at_level(logging.INFO, logger="sporeflow.jit"):
        for n in range(1, 11):
            jf(T(n))
    msgs = [r.getMessage() for r in caplog.records]
    assert "sf.jit: retracing <lambda> because tensor types changed: #0 f32[1] -> #0 f32[2]" in msgs
    assert any("has been traced 10 times" in m for m in msgs if m)
    caplog.clear()
    sf.set_context(jit_explain=True)
    try:
        with caplog.at_level(logging.WARNING, logger="sporeflow.jit"):
            jf(T(11))
        assert any(r.levelno == logging.WARNING and "retracing" in r.getMessage() for r in caplog.records)
    finally:
        sf.set_context(jit_explain=False)


def test_flatten_call_shortcut_matches_tree_flatten():
    """sf.jit's call flattens plain positional arguments without walking them; the leaves and
    the TreeDef must be those tree_flatten gives, and anything else takes tree_flatten."""
    from collections import namedtuple
    from sporeflow.frontend.jit import _LEAF_TYPES
    from sporeflow.frontend.pytree import flatten_call, tree_flatten
    Pair = namedtuple("Pair", "a b")
    p = sf.Parameter(T(2), name="p")
    for args, kwargs in [((), {}), ((T(2),), {}), ((T(2), p, 3, 2.5, True), {}), ((np.ones(2),), {}),
                         ((T(2), (T(1), None)), {}), ((Pair(T(1), T(2)),), {}), ((T(2),), {"k": T(1)})]:
        got_leaves, got_td = flatten_call(args, kwargs, _LEAF_TYPES)
        want_leaves, want_td = tree_flatten((args, kwargs))
        assert got_td == want_td and hash(got_td) == hash(want_td) and repr(got_td) == repr(want_td)
        assert len(got_leaves) == len(want_leaves) and all(a is b for a, b in zip(got_leaves, want_leaves))
    jf = sf.jit(lambda x, pair: x + pair.a * pair.b)          # a namedtuple argument still opens up
    assert np.allclose(jf(T(2), Pair(T(2, seed=1), T(2, seed=2))).asnumpy(),
                       T(2).asnumpy() + T(2, seed=1).asnumpy() * T(2, seed=2).asnumpy())
