"""sporeflow-ir explain: the fusion pass's own record of its decisions, sorted per group and per
boundary; pinned reasons on softmax, LayerNorm, conv + relu, a size-limited chain, and the MLP
and digits CNN graphs (every boundary carries the pass's decision from both phases)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn, ops
from sporeflow.passes import fusion, manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools import ir_capture, ir_explain, ir_tool  # noqa: E402
from test_ir_tool_cli import scripts  # noqa: E402,F401  (the MLP and digits CNN scripts fixture)


def _t(*shape):
    return sf.Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def _explain(fn, *args):
    g = manager.run_pipeline(sf.jit(fn).trace(*args).graph, ["simplify"], required=["simplify"])
    fused, reports = ir_explain.explain(g)
    assert str(fused) == str(fusion.fuse(g))        # recording changes nothing
    return reports[0]


def _boundary(rep, src_op, dst_op):
    found = [b for b in rep.boundaries if b.src.op == src_op and b.dst.op == dst_op]
    assert len(found) == 1, [(b.src.op, b.dst.op) for b in rep.boundaries]
    return found[0]


def _by_phase(b):
    return {("row" if d.phase == 2 else "tvm"): (d.category, d.reason) for d in b.decisions}


def test_softmax_into_matmul_stops_at_the_master():
    w = _t(8, 8)        # the same row domain [4, 8]: only the master stops the merge
    rep = _explain(lambda x: ops.matmul(ops.softmax(x, -1), w), _t(4, 8))
    assert [g.kind for g in rep.groups] == ["row_reduce"]
    assert {"reduce_max", "exp", "reduce_sum", "div"} <= {n.op for n in rep.groups[0].members}
    assert any(d.reason.startswith("row_domain [4, 8], reduced from axis 1") for d in rep.groups[0].merges)
    d = _by_phase(_boundary(rep, "div", "matmul"))
    assert d["tvm"][0] == "kind lattice" and "matmul is OUT_EWISE_FUSABLE" in d["tvm"][1]
    assert d["row"][0] == "cycle" and "feed the group's master matmul" in d["row"][1]


def test_softmax_over_the_leading_axis_is_not_a_row_kernel():
    rep = _explain(lambda x: ops.softmax(ops.softmax(x, -1), 0), _t(4, 8))
    d = _by_phase(_boundary(rep, "div", "reduce_max"))
    assert d["row"][0] == "row domain" and "over axes [0] of [4, 8] is not over trailing axes" in d["row"][1]
    d = _by_phase(_boundary(rep, "reduce_max", "stop_gradient"))
    assert d["tvm"] == ("kind lattice", "reduce_max (REDUCE group): a REDUCE never starts a fusion")
    d = _by_phase(_boundary(rep, "div", "sub"))
    assert d["row"][0] == "cycle" and "not convex" in d["row"][1]


def test_layer_norm_then_dense_differ_in_row_domain():
    ln, dense = nn.LayerNorm((8,)), nn.Dense(8, 3)
    rep = _explain(lambda x: dense(ln(x)), _t(4, 8))
    assert [g.kind for g in rep.groups] == ["row_reduce", "out_ewise"]
    assert {"reduce_sum", "rsqrt"} <= {n.op for n in rep.groups[0].members}
    d = _by_phase(_boundary(rep, "add", "matmul"))
    assert d["tvm"][0] == "kind lattice" and "matmul is OUT_EWISE_FUSABLE" in d["tvm"][1]
    assert d["row"] == ("row domain", "row domains differ: [4, 8] vs [4, 3]")


def test_conv_relu_fuses_and_stops_at_the_next_conv():
    c1, c2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 3)
    rep = _explain(lambda x: c2(ops.relu(c1(x))), _t(2, 1, 6, 6))
    assert [[n.op for n in g.members] for g in rep.groups] == [["conv2d", "maximum"]]
    assert [(d.src.op, d.dst.op, d.reason) for d in rep.groups[0].merges] == [("conv2d", "maximum", "out_ewise")]
    d = _by_phase(_boundary(rep, "maximum", "conv2d"))
    assert d["tvm"][0] == "kind lattice" and "conv2d is OUT_EWISE_FUSABLE" in d["tvm"][1]
    assert d["row"][0] == "master" and "(conv2d, conv2d)" in d["row"][1]


def test_a_long_chain_hits_the_size_limit():
    def chain(x):
        for _ in range(150):
            x = ops.exp(x) * 0.5
        return x
    rep = _explain(chain, _t(4))
    assert [len(g.members) for g in rep.groups] == [256, 44]
    assert [d.category for d in rep.boundaries[0].decisions] == ["size limit", "size limit"]
    assert f"> {fusion.MAX_GROUP_NODES} nodes" in rep.boundaries[0].decisions[0].reason


def test_explain_an_ir_file(tmp_path, capsys):
    w = _t(8, 8)
    g = sf.jit(lambda x: ops.matmul(ops.softmax(x, -1), w)).trace(_t(4, 8)).graph
    path = tmp_path / "softmax_matmul.ir"
    path.write_text(str(g))
    assert ir_tool.main(["explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fused group(s)" in out and "-> %7 matmul (lone)" in out
    assert "cycle: a member would feed the group's master matmul" in out
    assert ir_tool.main(["explain", str(path), "--groups-only"]) == 0
    assert "boundaries" not in capsys.readouterr().out


@pytest.mark.parametrize("net, graph", [("mlp", "step"), ("cnn", None)])
def test_mlp_and_digits_cnn_every_boundary_has_the_pass_s_reasons(scripts, net, graph, capsys):
    run = ir_capture.load(str(scripts / f"{net}.py"), None, graph)[-1]
    names = [n for n, _ in run.stages]
    before_fuse = run.stages[names.index("fuse") - 1][1]
    _, reports = ir_explain.explain(before_fuse)
    rep = reports[0]
    # the groups explained are the groups the pipeline's fuse pass made
    # (bodies also hold clones of replicated scalar constants and their broadcasts/casts)
    def core(ops_):
        return [o for o in ops_ if o not in ("constant", "broadcast_to", "reshape", "cast")]
    made = sorted((s[1], core(s[2])) for s in fusion.fused_summary(run.final))
    assert sorted((g.kind, core(n.op for n in g.members)) for g in rep.groups) == made
    assert rep.boundaries
    for b in rep.boundaries:         # both phases had their word on every edge that stayed cut
        assert sorted(d.phase == 2 for d in b.decisions) == [False, True], (b.src.op, b.dst.op)
    for g in rep.groups:             # every member joined through a recorded merge
        assert len(g.merges) == len(g.members) - 1
    cats = {c for b in rep.boundaries for c in b.categories}
    assert cats <= {"kind lattice", "post-dominator", "master", "size limit", "row domain", "cycle"}
    assert {"kind lattice", "master"} <= cats and ("post-dominator" in cats if net == "mlp" else True)
    args = ["explain", str(scripts / f"{net}.py")] + (["--graph", graph] if graph else [])
    assert ir_tool.main(args) == 0
    out = capsys.readouterr().out
    assert f"{len(rep.groups)} fused group(s)" in out and "boundaries (why not fused further):" in out
    assert "merged %" in out and "[TVM phase" in out and "[row-domain phase]" in out
