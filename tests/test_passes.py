"""The pass manager (registration, pipelines as data, opt levels, disabled passes, verify after
each pass, timing, IR dumps that parse back) and the simplification passes (each rewrite
fires, results stay bit-identical to the unsimplified graph, loc/scope kept, subgraphs too)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
import sporeflow.ir as ir
from sporeflow.errors import SporeflowError, VerifyError
from sporeflow.ir import GraphBuilder, TensorType, dtypes as D
from sporeflow.ir.types import ConstValue
from sporeflow.passes import manager
from sporeflow.passes.manager import PassManager, register_pass, run_pipeline


def ops_of(g):
    return [n.op for n in g.walk()]


def const(b, value, dt, shape=()):
    return b.emit("constant", [], {"value": ConstValue.of(np.full(shape, value), dt)})[0]


def redundant_graph(dt=D.float32):
    """x*1, x-0, neg(neg), transpose(transpose), an exact cast chain, a duplicate subexpression,
    foldable constants and a dead node, plus a while_loop whose body holds x*1."""
    b = GraphBuilder("red")
    x = b.add_input(TensorType((2, 3), dt))
    one, zero = const(b, 1.0, dt), const(b, 0.0, dt)
    y = b.emit("mul", [x, one], loc="m.py:1", scope="net.a")[0]
    y = b.emit("sub", [y, zero])[0]
    y = b.emit("neg", [b.emit("neg", [y])[0]])[0]
    t = b.emit("transpose", [b.emit("transpose", [y], {"perm": (1, 0)})[0]], {"perm": (1, 0)})[0]
    c = b.emit("cast", [b.emit("cast", [t], {"dtype": D.float64})[0]], {"dtype": D.float32})[0]
    e1 = b.emit("exp", [c])[0]
    e2 = b.emit("exp", [c])[0]                      # CSE
    two = b.emit("add", [one, one])[0]             # folds to 2
    s = b.emit("mul", [b.emit("add", [e1, e2])[0], two])[0]
    b.emit("log", [x])                              # dead
    i0 = const(b, 0, D.int32)
    cb = GraphBuilder("cond")
    ci, cx = cb.add_input(TensorType((), D.int32)), cb.add_input(TensorType((2, 3), dt))
    cg = cb.finish([cb.emit("lt", [ci, const(cb, 3, D.int32)])[0]])
    bb = GraphBuilder("body")
    bi, bx = bb.add_input(TensorType((), D.int32)), bb.add_input(TensorType((2, 3), dt))
    bx1 = bb.emit("mul", [bx, const(bb, 1.0, dt)])[0]
    body = bb.finish([bb.emit("add", [bi, const(bb, 1, D.int32)])[0], bb.emit("tanh", [bx1])[0]])
    w = b.emit("while_loop", [i0, s], {"cond_graph": cg, "body_graph": body})[1]
    return b.finish([w, s])


def test_simplify_rewrites_and_keeps_results():
    g = redundant_graph()
    ir.verify(g)
    s = run_pipeline(g, ["simplify"], verify_each=True)
    ir.verify(s)
    ops = ops_of(s)
    assert "neg" not in ops and "transpose" not in ops and "cast" not in ops and "sub" not in ops
    assert "log" not in ops and ops.count("exp") == 1 and ops.count("mul") == 1   # body's x*1 gone too
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    x[0, 0], x[0, 1], x[1, 2] = np.nan, -0.0, np.inf
    for a, b in zip(ir.run_graph(g, [x]), ir.run_graph(s, [x]), strict=True):
        np.testing.assert_array_equal(a, b)
        assert (np.signbit(a) == np.signbit(b)).all()


def test_rewrites_keep_loc_and_scope():
    b = GraphBuilder("g")
    x = b.add_input(TensorType((2, 2), D.float32))
    t = b.emit("transpose", [x], {"perm": (1, 0)}, loc="a.py:1", scope="net.t1")[0]
    t = b.emit("transpose", [t], {"perm": (1, 0)}, loc="a.py:2", scope="net.t2")[0]
    e = b.emit("exp", [t], loc="a.py:3", scope="net.e")[0]
    r = b.emit("reshape", [b.emit("reshape", [e], {"shape": (4,)})[0]], {"shape": (1, 4)}, loc="a.py:4",
               scope="net.r")[0]
    s = run_pipeline(b.finish([r]), ["simplify"])
    assert [(n.op, n.loc, n.scope) for n in s.nodes] == [("exp", "a.py:3", "net.e"), ("reshape", "a.py:4", "net.r")]


def test_float_add_zero_is_kept_but_exact_identities_fold():
    b = GraphBuilder("g")
    x = b.add_input(TensorType((3,), D.float32))
    k = b.add_input(TensorType((3,), D.int32))
    y = b.emit("add", [x, const(b, 0.0, D.float32)])[0]           # -0 + 0 = +0: must stay
    z = b.emit("add", [x, const(b, -0.0, D.float32)])[0]          # exact: folds
    w = b.emit("add", [k, const(b, 0, D.int32)])[0]               # integers: folds
    s = run_pipeline(b.finish([y, z, w]), ["algebraic", "dce"])
    assert ops_of(s).count("add") == 1 and s.outputs[1] is s.inputs[0] and s.outputs[2] is s.inputs[1]


def test_lossy_cast_chain_is_kept():
    b = GraphBuilder("g")
    x = b.add_input(TensorType((3,), D.float32))
    y = b.emit("cast", [b.emit("cast", [x], {"dtype": D.float16})[0]], {"dtype": D.float32})[0]
    assert ops_of(run_pipeline(b.finish([y]), ["simplify"])).count("cast") == 2


def test_cast_chains_fold_only_when_exact():
    b = GraphBuilder("g")
    k = b.add_input(TensorType((4,), D.int8))
    x = b.add_input(TensorType((4,), D.float16))
    wrap = b.emit("cast", [b.emit("cast", [k], {"dtype": D.float32})[0]], {"dtype": D.uint8})[0]  # saturates
    widen = b.emit("cast", [b.emit("cast", [k], {"dtype": D.int32})[0]], {"dtype": D.uint8})[0]   # wraps: exact
    back = b.emit("cast", [b.emit("cast", [x], {"dtype": D.float64})[0]], {"dtype": D.bfloat16})[0]
    g = b.finish([wrap, widen, back])
    s = run_pipeline(g, ["simplify"], verify_each=True)
    assert ops_of(s).count("cast") == 4
    args = [np.array([-5, 127, -128, 3], np.int8), np.array([1.5, -0.0, np.nan, 6e4], np.float16)]
    for a, r in zip(ir.run_graph(g, args), ir.run_graph(s, args), strict=True):
        np.testing.assert_array_equal(a, r)


def test_folding_keeps_constants_small():
    b = GraphBuilder("g")
    c = const(b, 2.0, D.float32)
    big = b.emit("broadcast_to", [c], {"shape": (256, 256)})[0]
    small = b.emit("mul", [c, c])[0]
    s = run_pipeline(b.finish([big, small]), ["fold_constants", "dce"])
    assert ops_of(s) == ["constant", "broadcast_to", "constant"] or ops_of(s).count("broadcast_to") == 1
    assert max(n.attrs["value"].array.size for n in s.nodes if n.op == "constant") == 1


def test_user_pass_and_pipeline_and_manager_features(tmp_path):
    calls = []

    @register_pass("test_count_nodes", opt_level=3, replace=True)
    def count(g):
        calls.append(len(g.nodes))
        return g

    with pytest.raises(SporeflowError, match="already registered"):
        register_pass("test_count_nodes")(count)
    g = redundant_graph()
    run_pipeline(g, ["test_count_nodes"], opt_level=2)
    assert calls == []                                    # opt level too low
    run_pipeline(g, ["test_count_nodes"], opt_level=2, required=["test_count_nodes"])
    assert len(calls) == 1
    run_pipeline(g, ["simplify", "test_count_nodes"], opt_level=3, disabled=["simplify"])
    assert calls[-1] == len(g.nodes)                      # simplify skipped
    pm = PassManager(["simplify", "test_count_nodes"], opt_level=3, dump_dir=str(tmp_path))
    out = pm.run(g)
    assert [n for n, _ in pm.timings] == ["simplify", "test_count_nodes"] and all(t >= 0 for _, t in pm.timings)
    assert sorted(os.listdir(tmp_path)) == ["00_trace.ir", "01_simplify.ir", "02_test_count_nodes.ir"]
    back = ir.parse((tmp_path / "02_test_count_nodes.ir").read_text())
    ir.verify(back)
    assert str(back) == str(out)
    with pytest.raises(SporeflowError, match="unknown pass"):
        run_pipeline(g, ["no_such_pass"])


def test_verify_each_pass_names_the_broken_pass():
    @register_pass("test_breaks_types", opt_level=0, replace=True)
    def broken(g):
        n = g.nodes[0]
        bad = ir.Node(n.op, n.inputs, n.attrs, [TensorType((7,), D.float32)])
        return ir.Graph(g.name, g.inputs, [bad] + g.nodes[1:], g.outputs)

    with pytest.raises(VerifyError, match="test_breaks_types"):
        run_pipeline(redundant_graph(), ["test_breaks_types"], verify_each=True)


def test_save_graphs_context_dumps_jit_pipeline(tmp_path):
    sf.set_context(save_graphs=True, save_graphs_path=str(tmp_path), verify_each_pass=True)
    try:
        f = sf.jit(lambda a: -(-(a * 1.0)) + a, backend="llvm")
        x = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(f(sf.Tensor(x)).asnumpy(), 2 * x)
    finally:
        sf.set_context(save_graphs=False, verify_each_pass=False)
    assert (tmp_path / "00_trace.ir").exists() and (tmp_path / "01_simplify.ir").exists()
    s = ir.parse((tmp_path / "01_simplify.ir").read_text())
    assert "neg" not in ops_of(s) and "mul" not in ops_of(s)
    assert manager.last_timings and manager.last_timings[0][0] == "simplify"


UNARY = ["neg", "exp", "tanh", "abs"]


@st.composite
def programs(draw):
    """Random chains with the patterns simplify targets mixed into ordinary ops."""
    b = GraphBuilder("p")
    shape = draw(st.sampled_from([(3,), (2, 3), (1, 4)]))
    vals = [b.add_input(TensorType(shape, D.float32)) for _ in range(2)]
    for _ in range(draw(st.integers(2, 10))):
        kind = draw(st.sampled_from(["unary", "binary", "mul1", "negneg", "tt", "castchain", "dup", "const"]))
        x = draw(st.sampled_from(vals))
        if kind == "unary":
            v = b.emit(draw(st.sampled_from(UNARY)), [x])[0]
        elif kind == "binary":
            v = b.emit(draw(st.sampled_from(["add", "mul", "sub", "maximum"])), [x, draw(st.sampled_from(vals))])[0]
        elif kind == "mul1":
            v = b.emit("mul", [const(b, 1.0, D.float32), x])[0]
        elif kind == "negneg":
            v = b.emit("neg", [b.emit("neg", [x])[0]])[0]
        elif kind == "tt":
            perm = tuple(range(len(shape)))[::-1]
            v = b.emit("transpose", [b.emit("transpose", [x], {"perm": perm})[0]], {"perm": perm})[0]
        elif kind == "castchain":
            mid = draw(st.sampled_from([D.float64, D.float16]))
            v = b.emit("cast", [b.emit("cast", [x], {"dtype": mid})[0]], {"dtype": D.float32})[0]
        elif kind == "dup":
            v = b.emit("add", [b.emit("exp", [x])[0], b.emit("exp", [x])[0]])[0]
        else:
            c = b.emit("mul", [const(b, 1.5, D.float32), const(b, 2.0, D.float32)])[0]
            v = b.emit("add", [x, c])[0]
        vals.append(v)
    return b.finish(vals[-2:])


@given(programs(), st.integers(0, 2 ** 31))
def test_random_programs_simplify_exactly(g, seed):
    rng = np.random.default_rng(seed)
    s = run_pipeline(g, ["simplify"], verify_each=True)
    assert sum(1 for _ in s.walk()) <= sum(1 for _ in g.walk())
    args = [rng.normal(size=v.shape).astype(np.float32) for v in g.inputs]
    args[0].reshape(-1)[0] = np.nan
    for a, b in zip(ir.run_graph(g, args), ir.run_graph(s, args), strict=True):
        np.testing.assert_array_equal(a, b)
