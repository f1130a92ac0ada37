"""Issue 2's IR criteria: jit of an MLP and a LeNet-5 Cell equals eager; the printed IR shows
scopes and source lines; print(parse(print(g))) is identical; the verifier passes and rejects
hand-corrupted graphs with clear messages; malformed text gives IRParseError with line and
column and never another exception (fuzzed)."""
from __future__ import annotations

import functools
import os
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
import sporeflow.ir as ir
from sporeflow import ops
from sporeflow.errors import IRParseError, VerifyError
from sporeflow.frontend.cell import Cell
from sporeflow.ir import dtypes as D
from sporeflow.ir.graph import Graph, GraphBuilder, Node
from sporeflow.ir.types import TensorType

THIS = os.path.basename(__file__)


def _param(rng, *shape, scale=0.1):
    return sf.Parameter(sf.Tensor((rng.normal(size=shape) * scale).astype(np.float32)))


class Conv(Cell):
    def __init__(self, rng, cin, cout, k, padding=0):
        super().__init__()
        self.weight = _param(rng, cout, cin, k, k)
        self.bias = _param(rng, cout)
        self.padding = padding

    def construct(self, x):
        return ops.conv2d(x, self.weight, self.bias, pad_mode="pad", padding=self.padding)


class Dense(Cell):
    def __init__(self, rng, cin, cout):
        super().__init__()
        self.weight = _param(rng, cout, cin)
        self.bias = _param(rng, cout)

    def construct(self, x):
        return ops.dense(x, self.weight, self.bias)


class MLP(Cell):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = Dense(rng, 6, 16)
        self.fc2 = Dense(rng, 16, 3)

    def construct(self, x):
        return ops.softmax(self.fc2(ops.relu(self.fc1(x))), -1)


class LeNet5(Cell):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.conv1 = Conv(rng, 1, 6, 5, padding=2)
        self.conv2 = Conv(rng, 6, 16, 5)
        self.fc1 = Dense(rng, 16 * 5 * 5, 120)
        self.fc2 = Dense(rng, 120, 84)
        self.fc3 = Dense(rng, 84, 10)

    def construct(self, x):
        x = ops.max_pool2d(ops.relu(self.conv1(x)), 2, 2)
        x = ops.avg_pool2d(ops.relu(self.conv2(x)), 2, 2)
        x = ops.flatten(x)
        x = ops.relu(self.fc1(x))
        x = ops.relu(self.fc2(x))
        return self.fc3(x)


def _x(*shape, seed=1):
    return sf.Tensor(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


@pytest.mark.parametrize("make,shape", [(MLP, (5, 6)), (LeNet5, (2, 1, 28, 28))])
def test_jit_of_cell_equals_eager_and_graph_mode(make, shape):
    net, x = make(), _x(*shape)
    eager = net(x).asnumpy()
    jitted = sf.jit(net)(x).asnumpy()
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)
    sf.set_context(mode=sf.GRAPH_MODE)
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-6, atol=1e-6)
    assert net._graph_fn.cache_size() == 1


def test_lenet_ir_has_scopes_lines_and_round_trips():
    net, x = LeNet5(), _x(2, 1, 28, 28)
    g = sf.jit(net).trace(x).graph
    text = str(g)
    ir.verify(g)
    assert text.startswith("graph @LeNet5(%arg0: f32[2,1,28,28], %conv1.weight: f32[6,1,5,5]")
    assert re.search(r"= conv2d\(%arg0, %conv1\.weight\).*# LeNet5\.conv1  " + re.escape(THIS) + r":\d+", text)
    assert re.search(r"= matmul\(.*# LeNet5\.fc3  " + re.escape(THIS) + r":\d+", text)
    assert "# LeNet5  " in text                                        # ops in LeNet5.construct itself
    # every node says where it comes from
    assert all(n.loc.startswith(THIS + ":") and n.scope.startswith("LeNet5") for n in g.nodes)
    again = ir.parse(text)
    assert str(again) == text
    ir.verify(again)
    args = [x._data] + [p._data for p in net.get_parameters()]
    np.testing.assert_array_equal(ir.run_graph(again, args)[0], ir.run_graph(g, args)[0])


def _control_flow_graph() -> Graph:
    """cond + while_loop + scan + every attribute kind the printer knows."""
    def f(x, n):
        y = ops.cond(x.sum() > 0, lambda a: a * 2.0, lambda a: a - 1.0, x)
        i, acc = ops.WhileLoop()(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5), (sf.Tensor(0), y))
        carry, ys = ops.Scan()(lambda c, r: (c + r, c * r), acc[0], acc)
        bf = sf.Tensor(np.array([1.5, -0.0, np.inf], np.float32), sf.bfloat16).astype(sf.float32)
        z = ops.pad(ys, (1, 0)) + ops.cast(i, sf.float32)
        return z[::-1, [0, 2]], carry, bf, x.argmax(), ops.stack([x, x]).astype(sf.float16), x > 0
    return sf.jit(f).trace(_x(3, 3), sf.Tensor(4)).graph


@functools.lru_cache(None)
def _valid_texts() -> tuple[str, ...]:
    return (str(_control_flow_graph()), str(sf.jit(MLP()).trace(_x(2, 6)).graph))


def test_control_flow_and_constants_round_trip_exactly():
    g = _control_flow_graph()
    ir.verify(g)
    text = str(g)
    for op in ("cond(", "while_loop(", "scan(", "dense<bf16[3]>[1.5, -0.0, inf]", "dtype=f16",
               "then_branch=@then_branch", "reverse=false"):
        assert op in text, op
    parsed = ir.parse(text)
    assert str(parsed) == text
    ir.verify(parsed)
    args = [_x(3, 3)._data, np.array(4)]
    for a, b in zip(ir.run_graph(parsed, args), ir.run_graph(g, args), strict=True):
        np.testing.assert_array_equal(a, b)


def test_printer_is_deterministic_and_parse_module_names_every_graph():
    t1, t2 = str(_control_flow_graph()), str(_control_flow_graph())
    assert t1 == t2
    mod = ir.parse_module(t1)
    assert list(mod)[-1] == "f" and {"then_branch", "else_branch", "cond_graph", "body_graph", "body"} <= set(mod)


# ---- the verifier -------------------------------------------------------------------------------
def _small() -> Graph:
    b = GraphBuilder("g")
    x = b.add_input(TensorType((2, 3), D.float32), "x")
    y = b.emit("exp", [x], loc="model.py:7", scope="Net.fc")[0]
    z = b.emit("add", [y, x])[0]
    return b.finish([z])


def test_verifier_rejects_a_wrong_type_naming_node_and_types():
    g = _small()
    g.nodes[0].outputs[0].type = TensorType((3, 2), D.float32)
    with pytest.raises(VerifyError, match=r"node 0 `exp\(f32\[2,3\]\) -> \(f32\[3,2\]\)`.*Net\.fc  model\.py:7.*"
                                          r"stored result type\(s\) \(f32\[3,2\]\) but the op infers \(f32\[2,3\]\)"):
        ir.verify(g)


def test_verifier_rejects_use_before_definition():
    g = _small()
    g.nodes.reverse()
    with pytest.raises(VerifyError, match=r"node 0 `add.*input 0 is used before it is defined"):
        ir.verify(g)


def test_verifier_rejects_double_definition_and_undefined_output():
    g = _small()
    g.nodes.append(g.nodes[1])
    with pytest.raises(VerifyError, match="defined twice"):
        ir.verify(g)
    g = _small()
    g.outputs.append(GraphBuilder().add_input(TensorType((), D.float32)))
    with pytest.raises(VerifyError, match="output 1 is not defined"):
        ir.verify(g)


def test_verifier_rejects_bad_subgraph_signature_and_bad_attributes():
    g = _control_flow_graph()
    cond = next(n for n in g.nodes if n.op == "cond")
    sub = cond.attrs["then_branch"]
    extra = GraphBuilder().add_input(TensorType((), D.int32))
    bad = Graph(sub.name, sub.inputs + [extra], sub.nodes, sub.outputs)
    cond.attrs = cond.attrs.replace(then_branch=bad)
    with pytest.raises(VerifyError, match=r"then_branch takes \(f32\[3,3\], i32\[\]\) but is given \(f32\[3,3\]\)"):
        ir.verify(g)
    b = GraphBuilder("g")
    x = b.add_input(TensorType((4,), D.float32))
    b.nodes.append(Node("reshape", [x], {"shape": "oops"}, [TensorType((4,), D.float32)]))
    with pytest.raises(VerifyError, match="reshape"):
        ir.verify(b.finish(b.nodes[0].outputs))
    b.nodes[0] = Node("no_such_op", [x], {}, [TensorType((4,), D.float32)])
    with pytest.raises(VerifyError, match="unknown op 'no_such_op'"):
        ir.verify(b.finish(b.nodes[0].outputs))


def test_verifier_checks_inside_subgraphs():
    g = _control_flow_graph()
    body = next(n for n in g.nodes if n.op == "scan").attrs["body"]
    body.nodes[0].outputs[0].type = TensorType((7,), body.nodes[0].outputs[0].dtype)
    with pytest.raises(VerifyError, match="in @body"):
        ir.verify(g)


# ---- the parser's errors --------------------------------------------------------------------------
GOOD = "graph @g(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = exp(%x)  # Net  a.py:1\n  return %0\n}\n"


@pytest.mark.parametrize("text,line,col,msg", [
    (GOOD.replace("exp", "expo"), 2, 16, "unknown op 'expo'"),
    (GOOD.replace("f32[2]) ->", "q32[2]) ->"), 1, 14, "unknown dtype 'q32'"),
    (GOOD.replace("exp(%x)", "exp(%y)"), 2, 20, "%y used before it is defined"),
    (GOOD.replace("}\n", ""), 3, 1, "not closed"),
    (GOOD.replace("return %0", "return %0, %x"), 4, 1, "returns (f32[2], f32[2]) but its header says (f32[2])"),
    (GOOD.replace("return %0", ""), 4, 1, "has no return"),
    (GOOD.replace("%0: f32[2] = exp", "%0: f32[2] = exp $"), 2, 20, "unexpected character '$'"),
    (GOOD.replace("(%x)  #", "(%x) {n=} #"), 2, 27, "unexpected '}' in attribute value"),
    (GOOD.replace("{\n  %0", "{ junk\n  %0"), 1, 36, "unexpected text after"),
    (GOOD.replace("f32[2]) {", "f32[2.5]) {"), 1, 30, "dimension must be a non-negative integer"),
    (GOOD + GOOD, 5, 7, "defined twice"),
    ("", 1, 1, "no graph"),
    (GOOD.replace("exp(%x)", 'exp(%x) {s="\\q"}'), 2, 27, "bad string"),
    (GOOD.replace("exp(%x)", "exp(%x) {v=dense<i64[1]>[99999999999999999999999]}"), 2, 41, "values do not fit i64[1]"),
    (GOOD.replace("exp(%x)", "exp(%x) {v=dense<f32[2]>[1.0]}"), 2, 45, "needs 2 elements"),
])
def test_malformed_text_gives_ir_parse_error_with_line_and_column(text, line, col, msg):
    with pytest.raises(IRParseError) as ei:
        ir.parse(text)
    e = ei.value
    assert (e.line, e.col) == (line, col), str(e)
    assert f"line {line}, column {col}" in str(e)
    if msg:
        assert msg in str(e)


_MUTATION = st.tuples(st.sampled_from(["delete", "insert", "replace", "swap", "dup_line", "truncate"]),
                      st.integers(0, 10 ** 6), st.sampled_from(list("%@{}()[],:=<>#\"-.0123456789 \nfixe_ab")))


@given(st.integers(0, 1), st.lists(_MUTATION, min_size=1, max_size=4))
def test_fuzzed_text_parses_or_raises_ir_parse_error(which, mutations):
    text = _valid_texts()[which]
    for kind, pos, ch in mutations:
        i = pos % (len(text) + 1)
        if kind == "delete":
            text = text[:i] + text[i + 1:]
        elif kind == "insert":
            text = text[:i] + ch + text[i:]
        elif kind == "replace":
            text = text[:i] + ch + text[i + 1:]
        elif kind == "swap" and i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif kind == "dup_line":
            lines = text.split("\n")
            k = pos % len(lines)
            text = "\n".join(lines[:k + 1] + lines[k:])
        elif kind == "truncate":
            text = text[:i]
    try:
        g = ir.parse(text)
    except IRParseError:
        return
    try:
        ir.verify(g)
    except VerifyError:
        return
    printed = str(g)
    assert str(ir.parse(printed)) == printed


def test_names_that_are_not_identifiers_print_as_stable_identifiers():
    p = sf.Parameter(sf.Tensor([1.0]), name="0.loss_fn._backbone.conv1.weight")
    q = sf.Parameter(sf.Tensor([1.0]), name="a-b c")
    text = str(sf.jit(lambda x: x * p + q).trace(sf.Tensor([2.0])).graph)
    assert text.startswith("graph @_lambda_(%arg0: f32[1], %_0.loss_fn._backbone.conv1.weight: f32[1], "
                           "%a_b_c: f32[1]) -> (f32[1]) {")
    assert str(ir.parse(text)) == text
