"""Random programs (elementwise, broadcasting, reductions, shape ops, matmul, cond, while_loop,
scan) compiled by LLVM equal the interpreter; one compile per hypothesis example.
Tolerance: float32 programs compound a few ulps per transcendental op and reorder sums, so
results are compared with rtol 1e-4 and atol 1e-4 * (1 + magnitude of the values); float64
programs with 1e-11."""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from sporeflow.backends import get_backend
from sporeflow.ir import GraphBuilder, TensorType, dtypes as D, run_graph, verify
from sporeflow.ir.types import ConstValue

M, N = 3, 4
F32 = D.float32


def _const(b, v, dt=None):
    return b.emit("constant", [], {"value": ConstValue.of(np.asarray(v), dt or F32)})[0]


def _sub_unary(name, op, t):
    g = GraphBuilder(name)
    x = g.add_input(t)
    return g.finish([g.emit(op, [x])[0]])


@st.composite
def programs(draw):
    global F32
    F32 = draw(st.sampled_from([D.float32, D.float32, D.float64]))   # (the program's float dtype)
    b = GraphBuilder("prog")
    full = [b.add_input(TensorType((M, N), F32)) for _ in range(2)]
    vals = list(full) + [b.add_input(TensorType((1, N), F32))]
    pick = lambda: draw(st.sampled_from(vals))       # noqa: E731
    pick_full = lambda: draw(st.sampled_from([v for v in vals if v.shape == (M, N)]))  # noqa: E731
    for _ in range(draw(st.integers(3, 9))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "shape", "matmul", "cond", "while", "scan"]))
        if kind == "unary":
            v = b.emit(draw(st.sampled_from(["exp", "tanh", "neg", "abs", "sin", "sqrt", "erf"])), [pick()])[0]
        elif kind == "binary":
            v = b.emit(draw(st.sampled_from(["add", "mul", "sub", "maximum", "minimum", "div"])), [pick(), pick()])[0]
        elif kind == "reduce":
            v = b.emit(draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"])), [pick_full()],
                       {"axes": (draw(st.sampled_from([0, 1])),), "keepdims": True})[0]
        elif kind == "shape":
            x = pick_full()
            t = b.emit("transpose", [x], {"perm": (1, 0)})[0]
            r = b.emit("reshape", [t], {"shape": (M * N,)})[0]
            r = b.emit("rev", [r], {"axes": (0,)})[0]
            v = b.emit("reshape", [r], {"shape": (M, N)})[0]
        elif kind == "matmul":
            x, y = pick_full(), pick_full()
            v = b.emit("matmul", [x, y], {"transpose_a": False, "transpose_b": True})[0]     # [M, M]
            v = b.emit("matmul", [v, y], {"transpose_a": False, "transpose_b": False})[0]    # [M, N]
        elif kind == "cond":
            x = pick_full()
            s = b.emit("reduce_sum", [x], {"axes": (0, 1), "keepdims": False})[0]
            p = b.emit("gt", [s, _const(b, 0.0)])[0]
            t = x.type
            v = b.emit("cond", [p, x], {"then_branch": _sub_unary("then", "tanh", t),
                                        "else_branch": _sub_unary("else", "neg", t)})[0]
        elif kind == "while":
            x = pick_full()
            cg = GraphBuilder("wc")
            i, cx = cg.add_input(TensorType((), D.int32)), cg.add_input(x.type)
            cgraph = cg.finish([cg.emit("lt", [i, _const(cg, draw(st.integers(0, 3)), D.int32)])[0]])
            bg = GraphBuilder("wb")
            bi, bx = bg.add_input(TensorType((), D.int32)), bg.add_input(x.type)
            nx = bg.emit("mul", [bg.emit("tanh", [bx])[0], _const(bg, 1.5)])[0]
            body = bg.finish([bg.emit("add", [bi, _const(bg, 1, D.int32)])[0], nx])
            v = b.emit("while_loop", [_const(b, 0, D.int32), x], {"cond_graph": cgraph, "body_graph": body})[1]
        else:
            x = pick_full()
            sg = GraphBuilder("sb")
            c, xt = sg.add_input(TensorType((N,), F32)), sg.add_input(TensorType((N,), F32))
            nc = sg.emit("add", [sg.emit("mul", [c, _const(sg, 0.5)])[0], xt])[0]
            body = sg.finish([nc, sg.emit("exp", [nc])[0]])
            init = b.emit("reshape", [b.emit("slice", [x], {"start": (0, 0), "limit": (1, N), "strides": (1, 1)})[0]],
                          {"shape": (N,)})[0]
            outs = b.emit("scan", [init, x], {"body": body, "num_carry": 1, "length": M,
                                              "reverse": draw(st.booleans())})
            v = b.emit("add", [outs[1], outs[0]])[0]
        vals.append(v)
    return b.finish(vals[-3:])


@given(programs(), st.integers(0, 2 ** 31))
def test_random_programs_match_interpreter(g, seed):
    verify(g)
    rng = np.random.default_rng(seed)
    dt = g.inputs[0].dtype
    args = [rng.normal(0, 1.5, size=v.shape).astype(dt.storage) for v in g.inputs]
    args[0][0, 0] = [np.nan, np.inf, -0.0, 1e-40][seed % 4]
    got = get_backend("llvm").compile(g)(*args)
    ref = run_graph(g, args)
    for x, r in zip(got, ref, strict=True):
        assert x.shape == r.shape and x.dtype == r.dtype
        fin = np.isfinite(r)
        assert (np.isnan(x) == np.isnan(r)).all() and (x[np.isinf(r)] == r[np.isinf(r)]).all()
        scale = 1 + np.max(np.abs(r[fin]), initial=0)
        tol = 1e-4 if dt is D.float32 else 1e-11
        np.testing.assert_allclose(x[fin], r[fin], rtol=tol, atol=tol * scale)
