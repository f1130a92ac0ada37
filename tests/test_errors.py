"""User mistakes get one clear message naming the op, the shapes and the user's own line, with
a traceback whose last frame is that line (sporeflow's frames are filtered out)."""
from __future__ import annotations

import os
import traceback

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops
from sporeflow.errors import ShapeError, TracerError
from sporeflow.frontend.cell import Cell

HERE = os.path.abspath(__file__)
_SRC = open(HERE).read().splitlines()


def line_of(marker: str) -> int:
    """1-based line number of the single source line that carries `# <marker>`."""
    hits = [i + 1 for i, s in enumerate(_SRC) if s.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def T(*shape, dtype=np.float32):
    return sf.Tensor(np.ones(shape, dtype))


def assert_user_error(excinfo, marker: str, *needles: str) -> None:
    msg, line = str(excinfo.value), line_of(marker)
    assert f'File "{HERE}", line {line}' in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    frames = traceback.extract_tb(excinfo.value.__traceback__)
    internal = [f for f in frames if os.sep + "sporeflow" + os.sep in f.filename]
    # at most the one frame of the API boundary that re-raised (Python records the frame of every
    # `raise`); for an eager `x + y` it is the innermost one, its line says where to look
    assert len(internal) <= 1 and all(f.filename.endswith("source.py") for f in internal), frames
    user = [f for f in frames if f not in internal][-1]
    assert (os.path.abspath(user.filename), user.lineno) == (HERE, line), "last user frame is not the user's line"
    if internal and frames[-1] is internal[0]:
        assert "the error is at your line" in internal[0].line


# ---- Python control flow / conversions on traced values ----------------------------------------------
def f_bool(x):
    return bool(x[0])  # BOOL


def f_int(x):
    return x * int(x[0])  # INT


def f_float(x):
    return x * float(x[0])  # FLOAT


def f_asarray(x):
    return np.asarray(x) * 2  # ASARRAY


def f_item(x):
    return x.item()  # ITEM


def f_range(x):
    return [x[i] for i in range(x[0])]  # INDEX


@pytest.mark.parametrize("fn,marker,fix", [
    (f_bool, "BOOL", "ops.select"), (f_int, "INT", "ops.cast(x, sf.int32)"), (f_float, "FLOAT", "Python float"),
    (f_asarray, "ASARRAY", "convert results after the call"), (f_item, "ITEM", "read it after the call"),
    (f_range, "INDEX", "Python int"),
])
def test_python_control_flow_on_a_traced_value(fn, marker, fix):
    with pytest.raises(TracerError) as ei:
        sf.jit(fn)(T(3, dtype=np.int32) if marker == "INDEX" else T(3))
    assert_user_error(ei, marker, "traced tensor", "not known while the function is being compiled", fix)


def test_the_same_code_runs_eagerly():
    assert f_int(T(3)).shape == (3,)


# ---- shape / dtype mismatches ------------------------------------------------------------------
def g_add(x, y):
    return x + y  # ADD


def g_matmul(x, y):
    return ops.matmul(x, y)  # MATMUL


def g_logical(x):
    return ops.matmul(x > 0, x > 0)  # BOOLMATMUL


class Net(Cell):
    def __init__(self):
        super().__init__()
        self.w = sf.Parameter(T(4, 5))

    def construct(self, x):
        return ops.dense(x, self.w)  # DENSE


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_broadcast_mismatch_names_op_shapes_and_line(mode):
    f = g_add if mode == "eager" else sf.jit(g_add)
    with pytest.raises(ShapeError) as ei:
        f(T(2, 3), T(4))
    assert_user_error(ei, "ADD", "add: shapes cannot be broadcast together", "f32[2,3]", "f32[4]",
                      "op: add(f32[2,3], f32[4])")


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_matmul_mismatch(mode):
    f = g_matmul if mode == "eager" else sf.jit(g_matmul)
    with pytest.raises(ShapeError) as ei:
        f(T(2, 3), T(2, 3))
    assert_user_error(ei, "MATMUL", "matmul: contraction dims differ: 3 vs 2", "f32[2,3]")


def test_dtype_error_names_the_dtype():
    with pytest.raises(ShapeError) as ei:
        sf.jit(g_logical)(T(2, 2))
    assert_user_error(ei, "BOOLMATMUL", "matmul", "dtype bool not supported", "bool[2,2]")


@pytest.mark.parametrize("mode", [sf.PYNATIVE_MODE, sf.GRAPH_MODE])
def test_error_inside_a_cell_points_at_construct(mode):
    sf.set_context(mode=mode)
    with pytest.raises(ShapeError) as ei:
        Net()(T(2, 3))
    assert_user_error(ei, "DENSE", "matmul", "f32[2,3]", "f32[4,5]")


def test_filtering_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SPOREFLOW_TRACEBACK_FILTERING", "off")
    with pytest.raises(ShapeError) as ei:
        g_add(T(2, 3), T(4))
    frames = traceback.extract_tb(ei.value.__traceback__)
    assert frames[-1].filename.endswith(os.path.join("sporeflow", "core", "trace.py"))


def test_escaped_tracer_is_reported():
    leak = []

    @sf.jit
    def f(x):
        leak.append(x)
        return x

    f(T(2))

    @sf.jit
    def g(y):
        return y + leak[0]  # LEAK

    with pytest.raises(TracerError) as ei:
        g(T(2))
    assert_user_error(ei, "LEAK", "escaped the function that produced it")


def test_ir_text_keeps_the_user_location():
    g = sf.jit(g_add).trace(T(2), T(2)).graph
    assert g.nodes[-1].loc == f"{os.path.basename(HERE)}:{line_of('ADD')}"


def test_failed_trace_leaves_analyze_fail_ir_when_saving_graphs(tmp_path):
    import sporeflow.ir as ir
    sf.set_context(save_graphs=True, save_graphs_path=str(tmp_path))
    with pytest.raises(ShapeError) as ei:
        sf.jit(lambda x, y: (x * 2.0) + y)(T(2, 3), T(4))
    files = [f for f in os.listdir(tmp_path) if f.endswith("analyze_fail.ir")]
    assert len(files) == 1 and str(tmp_path / files[0]) in "\n".join(ei.value.__notes__)
    g = ir.parse((tmp_path / files[0]).read_text())
    assert [n.op for n in g.nodes] == ["constant", "mul"]
