"""Fusion pass: decisions pinned on MLP / LeNet / softmax graphs (read from the IR), and fused
graphs equal to unfused ones on hypothesis-generated programs."""
import numpy as np
import pytest
from hypothesis import given

import sporeflow as sf
from sporeflow import ops
from sporeflow.ir import GraphBuilder, TensorType, parse, run_graph, verify
from sporeflow.ir.dtypes import float32
from sporeflow.passes.fusion import fuse, fused_summary
from sporeflow.passes.loop_nest import loop_nest

from fusion_programs import programs

RNG = np.random.default_rng(0)


def _param(shape, name, scale=0.1):
    return sf.Parameter(sf.Tensor((RNG.standard_normal(shape) * scale).astype(np.float32)), name=name)


def _trace(fn, *args):
    tr = sf.jit(fn).trace(*args)
    return tr.graph, [a.asnumpy() for a in args] + [p.asnumpy() for p in tr.captured]


def _check_same(graph, args):
    fg = verify(fuse(graph))
    for a, b in zip(run_graph(graph, args), run_graph(fg, args), strict=True):
        np.testing.assert_array_equal(a, b)
    text = str(fg)
    assert str(parse(text)) == text          # fused groups print and parse back
    return fg


def _summary(fg):
    return [(kind, members) for _, kind, members in fused_summary(fg)]


# ---- pinned decisions -----------------------------------------------------------------------
W1, B1, W2, B2, W3 = (_param((16, 32), "w1"), _param((32,), "b1"), _param((32, 32), "w2"), _param((32,), "b2"),
                      _param((32, 10), "w3"))


def _mlp(x):
    h = ops.relu(ops.matmul(x, W1) + B1)
    h = ops.relu(ops.matmul(h, W2) + B2)
    return ops.matmul(h, W3)


def test_mlp_forward_groups():
    x = sf.Tensor(RNG.standard_normal((8, 16)).astype(np.float32))
    fg = _check_same(*_trace(_mlp, x))
    assert _summary(fg) == [("out_ewise", ["matmul", "add", "broadcast_to", "maximum"]),
                            ("out_ewise", ["matmul", "add", "broadcast_to", "maximum"])]
    assert [n.op for n in fg.nodes] == ["fused", "fused", "matmul"]   # two complex ops never chain
    assert "graph @fused_matmul_add_maximum(" in str(fg)


def test_softmax_is_one_row_kernel():
    x = sf.Tensor(RNG.standard_normal((6, 9)).astype(np.float32))
    fg = _check_same(*_trace(lambda a: ops.softmax(a * 2.0 + 1.0, -1), x))
    assert _summary(fg) == [("row_reduce", ["mul", "add", "reduce_max", "stop_gradient", "sub", "exp",
                                            "reduce_sum", "div"])]
    assert [n.op for n in fg.nodes] == ["fused"]


def test_layer_norm_and_cross_entropy_one_row_kernel_each():
    x = sf.Tensor(RNG.standard_normal((5, 12)).astype(np.float32))
    gamma, beta = _param((12,), "g"), _param((12,), "b")
    fg = _check_same(*_trace(lambda a: ops.layer_norm(a, -1, gamma, beta), x))
    [(kind, members)] = _summary(fg)
    assert kind == "row_reduce" and members.count("reduce_sum") == 2 and "rsqrt" in members

    labels = sf.Tensor(np.eye(12, dtype=np.float32)[RNG.integers(0, 12, 5)])
    fg = _check_same(*_trace(lambda a, y: ops.softmax_cross_entropy(a, y), x, labels))
    [(kind, members)] = _summary(fg)
    assert kind == "row_reduce" and members[-2:] == ["mul", "reduce_sum"] and "log" in members
    assert [n.op for n in fg.nodes] == ["fused", "neg"]   # a [N] result is outside the [N,C] row domain


def test_column_reduction_keeps_tvm_rule():
    """An elementwise chain fuses into a reduction over a leading axis (TVM: reduce is a sink),
    and the reduction does not merge with its consumers (not a row kernel)."""
    x = sf.Tensor(RNG.standard_normal((6, 9)).astype(np.float32))
    fg = _check_same(*_trace(lambda a: ops.exp(ops.sum(ops.tanh(a) * 3.0, 0)), x))
    assert _summary(fg) == [("reduce", ["tanh", "mul", "reduce_sum"])]
    assert [n.op for n in fg.nodes] == ["fused", "exp"]


def _lenet_params():
    return dict(c1=_param((6, 1, 5, 5), "c1"), cb1=_param((6,), "cb1"), c2=_param((16, 6, 5, 5), "c2"),
                cb2=_param((16,), "cb2"), f1=_param((400, 120), "f1"), fb1=_param((120,), "fb1"),
                f2=_param((120, 84), "f2"), fb2=_param((84,), "fb2"), f3=_param((84, 10), "f3"),
                fb3=_param((10,), "fb3"))


def lenet(p, x):
    h = ops.max_pool2d(ops.relu(ops.conv2d(x, p["c1"], p["cb1"])), 2, 2)
    h = ops.max_pool2d(ops.relu(ops.conv2d(h, p["c2"], p["cb2"])), 2, 2)
    h = ops.reshape(h, (h.shape[0], -1))
    h = ops.relu(ops.matmul(h, p["f1"]) + p["fb1"])
    h = ops.relu(ops.matmul(h, p["f2"]) + p["fb2"])
    return ops.matmul(h, p["f3"]) + p["fb3"]


def test_lenet_forward_groups():
    p = _lenet_params()
    x = sf.Tensor(RNG.standard_normal((2, 1, 32, 32)).astype(np.float32))
    fg = _check_same(*_trace(lambda a: lenet(p, a), x))
    kinds = [n.attrs["kind"] if n.op == "fused" else n.op for n in fg.nodes]
    # conv + bias + relu twice (pooling is opaque; the bias reshape is injective and stays out of
    # a conv group, as in TVM), then three dense layers (the last without relu)
    assert kinds == ["reshape", "out_ewise", "max_pool2d", "reshape", "out_ewise", "max_pool2d", "reshape",
                     "out_ewise", "out_ewise", "out_ewise"]
    relu = ["add", "broadcast_to", "maximum"]
    assert _summary(fg) == [("out_ewise", ["conv2d"] + relu)] * 2 + [("out_ewise", ["matmul"] + relu)] * 2 + [
        ("out_ewise", ["matmul", "add"])]


def test_opt_level_zero_is_identity_and_train_step_fuses_update():
    x = sf.Tensor(RNG.standard_normal((8, 16)).astype(np.float32))
    g, args = _trace(_mlp, x)
    assert fuse(g, opt_level=0) is g
    w, v = _param((16, 16), "w"), _param((16, 16), "v")

    def step(a):   # a momentum update as the epilogue of a matmul "gradient"
        gr = ops.matmul(ops.transpose(a, (1, 0)), a)
        nv = v * 0.9 + gr
        return w - nv * 0.01, nv
    fg = _check_same(*_trace(step, x))
    [(kind, members)] = _summary(fg)
    assert kind == "out_ewise" and members[0] == "matmul" and members[-1] == "sub"


# ---- random programs -------------------------------------------------------------------------
@given(programs())
def test_random_programs_fused_equal_unfused(prog):
    from sporeflow.passes.dce import dce
    g, args = prog
    for graph in (g, dce(g)):
        fg = verify(fuse(graph))
        for a, b in zip(run_graph(graph, args), run_graph(fg, args), strict=True):
            np.testing.assert_array_equal(a, b)
    g = graph
    # after dead-code elimination every original op survives, at top level or in one body

    def count(graph):
        return sum(1 for n in graph.walk() if n.op not in ("fused", "constant", "broadcast_to"))
    assert count(fg) == count(g)


def test_row_merges_never_make_two_groups_depend_on_each_other():
    """Found by the thorough hypothesis profile (test_memory's arena test): the row phase merged
    {%0 %1 %9 %10 %11 %12 %16} and {%2 %3 %17}, each convex on its own, but %3 -> %8 -> %9 and
    %11 -> %17 made the two groups mutually dependent (a cycle between fused nodes)."""
    text = """graph @prog(%x: f32[1,2]) -> (f32[1,2], f32[1,2], f32[1,2], f32[1,2]) {
  %0: f32[1,2] = tanh(%x)
  %1: f32[1,2] = exp(%0)
  %2: f32[1,2] = tanh(%x)
  %3: f32[1,2] = exp(%2)
  %8: f32[2] = reduce_sum(%3) {axes=(0,), keepdims=false}
  %9: f32[1,2] = mul(%3, %8)
  %10: f32[1,2] = tanh(%1)
  %11: f32[1,2] = exp(%10)
  %12: f32[1,2] = tanh(%11)
  %16: f32[1,2] = add(%9, %1)
  %17: f32[1,2] = add(%3, %11)
  return %1, %12, %16, %17
}"""
    g = parse(text)
    _check_same(g, [RNG.standard_normal((1, 2)).astype(np.float32)])


def test_fused_op_rejects_mismatched_body():
    b = GraphBuilder("body")
    x = b.add_input(TensorType((3,), float32))
    body = b.finish([b.emit("exp", [x])[0]])
    outer = GraphBuilder("outer")
    y = outer.add_input(TensorType((4,), float32))
    with pytest.raises(Exception, match="body takes"):
        outer.emit("fused", [y], {"body": body, "name": "f", "kind": "elemwise", **loop_nest(body).attrs()})


def test_fused_node_records_its_loop_nest_and_a_stale_one_is_refused():
    """fuse records domain, reduced axes and nest kind on the node (the backends read them);
    a nest that does not describe the body is an error, not a wrong kernel."""
    graph, args = _trace(lambda x: ops.softmax(x, -1), sf.Tensor(RNG.standard_normal((4, 6)).astype(np.float32)))
    fg = _check_same(graph, args)
    (node,) = [n for n in fg.nodes if n.op == "fused"]
    assert (node.attrs["nest"], node.attrs["domain"], node.attrs["reduce_axes"]) == ("row", (4, 6), (1,))
    outer = GraphBuilder("outer")
    y = outer.add_input(TensorType((4, 6), float32))
    stale = {**node.attrs, "nest": "elementwise", "reduce_axes": ()}
    with pytest.raises(Exception, match="recorded loop nest"):
        outer.emit("fused", [y], stale)


# ---- the fused op's rules inline the body ------------------------------------------------------
def _rule_case():
    x = sf.Tensor(RNG.standard_normal((4, 6)).astype(np.float32))
    w = _param((6, 6), "wr")
    g, args = _trace(lambda a: ops.softmax(ops.tanh(ops.matmul(a, w)) * 2.0, -1) * a, x)
    fg = fuse(g)
    assert any(n.op == "fused" for n in fg.nodes)
    return g, fg, args


def test_fused_vjp_and_jvp_equal_unfused():
    from sporeflow.passes.autodiff import vjp_graph
    from sporeflow.passes.forward import jvp_graph
    g, fg, args = _rule_case()
    ct = [RNG.standard_normal(v.type.shape).astype(np.float32) for v in g.outputs]
    want = run_graph(verify(vjp_graph(g, [True, True])), args + ct)
    got = run_graph(verify(vjp_graph(fg, [True, True])), args + ct)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    tans = [RNG.standard_normal(a.shape).astype(np.float32) for a in args]
    want = run_graph(verify(jvp_graph(g, [True, True])), args + tans)
    got = run_graph(verify(jvp_graph(fg, [True, True])), args + tans)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_batch_rule_equals_unfused():
    import sporeflow.passes.vmap as vm
    g, fg, args = _rule_case()
    batched = [np.stack([a, a * 0.5 + 1, -a]) for a in args]
    (gw, dw), (gg, dg) = vm.batch_graph(g, [0, 0], 3), vm.batch_graph(fg, [0, 0], 3)
    want, got = run_graph(verify(gw), batched), run_graph(verify(gg), batched)
    want = [np.moveaxis(a, d, 0) for a, d in zip(want, dw)]
    got = [np.moveaxis(a, d, 0) for a, d in zip(got, dg)]
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_post_dominators_equal_networkx_on_random_dags():
    """fusion's own post-dominator tree (TVM's LCA method) against networkx's dominators."""
    import random
    import networkx as nx
    from types import SimpleNamespace
    from sporeflow.passes import fusion as F
    rnd = random.Random(1)
    for _ in range(500):
        n = rnd.randint(1, 25)
        succ = [sorted(rnd.sample(range(i + 1, n), k=min(n - i - 1, rnd.randint(0, 3)))) for i in range(n)]
        outs = set(rnd.sample(range(n), k=rnd.randint(1, min(3, n))))
        g = nx.DiGraph()
        g.add_node(F._SINK)
        for i, ss in enumerate(succ):
            g.add_node(i)
            g.add_edges_from((s, i) for s in ss)
            if i in outs:
                g.add_edge(F._SINK, i)
        want = {k: v for k, v in nx.immediate_dominators(g, F._SINK).items() if k != F._SINK}
        got = {k: v for k, v in F._post_dominators(SimpleNamespace(succ=succ, outs=outs)).items() if k != F._SINK}
        assert got == want, (succ, outs)


def test_work_above_an_upsampling_broadcast_is_materialized_not_repeated():
    """A chain of real work feeding a broadcast that multiplies the element count would run
    once per element of the expanded domain inside one kernel: fusion refuses the merge
    (category "recompute") and the chain gets its own kernel on the small domain; a single
    cheap op above the broadcast still fuses."""
    def heavy(x, y):
        small = ops.exp(ops.log(ops.abs(x) + 1.0) * 0.5)                     # 4 ops on [16, 8]
        return ops.broadcast_to(ops.reshape(small, (16, 1, 8)), (16, 32, 8)) * y

    def light(x, y):
        return ops.broadcast_to(ops.reshape(x * 2.0, (16, 1, 8)), (16, 32, 8)) * y
    x = sf.Tensor(RNG.standard_normal((16, 8)).astype(np.float32))
    y = sf.Tensor(RNG.standard_normal((16, 32, 8)).astype(np.float32))
    reasons = []
    g, args = _trace(heavy, x, y)
    fg = verify(fuse(g, record=lambda ev, **kw: reasons.append(kw.get("category")) if ev == "refuse" else None))
    for a, b in zip(run_graph(g, args), run_graph(fg, args), strict=True):
        np.testing.assert_array_equal(a, b)
    big = [members for _, kind, members in fused_summary(fg) if "broadcast_to" in members and "mul" in members]
    assert big and all("exp" not in m and "log" not in m for m in big), fused_summary(fg)
    assert "recompute" in reasons
    fl = _check_same(*_trace(light, x, y))
    assert len(fused_summary(fl)) == 1, fused_summary(fl)
