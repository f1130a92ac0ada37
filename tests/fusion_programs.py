"""Hypothesis strategy of random programs (elementwise, broadcast, row/column reductions,
matmul, scalar constants) shared by the fusion and memory-planning tests."""
import numpy as np
from hypothesis import strategies as st

import sporeflow as sf
from sporeflow.ir import GraphBuilder, TensorType
from sporeflow.ir.dtypes import float32

_UNARY = ("exp", "tanh", "neg", "abs", "sin")
_BINARY = ("add", "sub", "mul", "maximum", "minimum")


@st.composite
def programs(draw):
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    b = GraphBuilder("prog")
    vals = [b.add_input(TensorType((m, n), float32), "x"), b.add_input(TensorType((n,), float32), "r"),
            b.add_input(TensorType((m, 1), float32), "c"), b.add_input(TensorType((n, n), float32), "w")]
    for _ in range(draw(st.integers(2, 12))):
        pick = draw(st.sampled_from(["unary", "binary", "binary", "rowsum", "rowmax", "colsum", "matmul", "scale"]))
        full = [v for v in vals if v.type.shape == (m, n)]
        x = draw(st.sampled_from(full))
        if pick == "unary":
            op = draw(st.sampled_from(_UNARY))
            y = b.emit("tanh", [x])[0] if op == "exp" else x    # keep exp's argument bounded
            vals.append(b.emit(op, [y])[0])
        elif pick == "binary":
            other = draw(st.sampled_from([v for v in vals if v.type.shape != (n, n)]))
            vals.append(b.emit(draw(st.sampled_from(_BINARY)), [x, other])[0])
        elif pick in ("rowsum", "rowmax"):
            r = b.emit("reduce_sum" if pick == "rowsum" else "reduce_max", [x], {"axes": (1,), "keepdims": True})[0]
            vals.append(b.emit("sub", [x, r])[0])
        elif pick == "colsum":
            s = b.emit("reduce_sum", [x], {"axes": (0,), "keepdims": False})[0]
            vals.append(b.emit("mul", [x, s])[0])
        elif pick == "matmul":
            vals.append(b.emit("matmul", [x, vals[3]], {"transpose_a": False, "transpose_b": False})[0])
        else:
            c = b.emit("constant", [], {"value": sf.ir.ConstValue.of(np.float32(0.5), float32)})[0]
            vals.append(b.emit("mul", [x, b.emit("broadcast_to", [c], {"shape": (m, n)})[0]])[0])
    outs = draw(st.lists(st.sampled_from(vals[4:]), min_size=1, max_size=3, unique_by=id))
    g = b.finish(outs)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    args = [rng.standard_normal(v.type.shape).astype(np.float32) for v in g.inputs]
    return g, args
