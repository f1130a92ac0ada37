"""fold_transposes (passes/transpose_folding.py): a last-two-axes transpose feeding a matmul
becomes the matmul's transpose flag; the folded graph equals the interpreter on the unfolded one,
in every flag combination, batched, and under sf.grad."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sporeflow as sf
from sporeflow import ops
from sporeflow.ir import GraphBuilder, TensorType
from sporeflow.ir.dtypes import float32, float64
from sporeflow.ir.interpret import run_graph
from sporeflow.passes.transpose_folding import fold_transposes

pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")


def _swap_last(nd: int) -> tuple[int, ...]:
    return tuple(range(nd - 2)) + (nd - 1, nd - 2)


def _graph(batch, m, n, k, ta, tb, fold_a, fold_b, dt):
    """matmul(op_a, op_b) where op_x is transpose(x) when fold_x, with the flags ta / tb."""
    b = GraphBuilder("mm")
    nd = len(batch) + 2

    def operand(rows, cols, flag, fold):
        shape = batch + ((cols, rows) if flag else (rows, cols))       # what the matmul sees
        stored = shape[:-2] + shape[-2:][::-1] if fold else shape      # what the input holds
        x = b.add_input(TensorType(stored, dt))
        return x, (b.emit("transpose", [x], {"perm": _swap_last(nd)})[0] if fold else x), stored
    x, ox, xs = operand(m, k, ta, fold_a)
    y, oy, ys = operand(k, n, tb, fold_b)
    return b.finish(b.emit("matmul", [ox, oy], {"transpose_a": ta, "transpose_b": tb})), (xs, ys)


@settings(deadline=None)
@given(batch=st.sampled_from([(), (3,), (2, 2)]), m=st.integers(1, 9), n=st.integers(1, 9),
       k=st.integers(1, 9), ta=st.booleans(), tb=st.booleans(), fold_a=st.booleans(),
       fold_b=st.booleans(), f64=st.booleans())
def test_folded_product_equals_the_interpreter(batch, m, n, k, ta, tb, fold_a, fold_b, f64):
    from sporeflow.backends import get_backend
    dt, np_dt = (float64, np.float64) if f64 else (float32, np.float32)
    g, shapes = _graph(batch, m, n, k, ta, tb, fold_a, fold_b, dt)
    folded = fold_transposes(g)
    ops_left = [nd.op for nd in folded.nodes]
    assert ops_left == ["matmul"], ops_left
    mm = folded.nodes[0]
    assert (mm.attrs["transpose_a"], mm.attrs["transpose_b"]) == (ta != fold_a, tb != fold_b)
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    args = [rng.standard_normal(s).astype(np_dt) for s in shapes]
    want = run_graph(g, args)[0]
    got = get_backend("llvm").compile(folded)(*args)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5 if not f64 else 1e-12, atol=1e-5 if not f64 else 1e-12)


def test_a_transpose_used_elsewhere_stays_and_other_permutations_are_not_folded():
    b = GraphBuilder("mm")
    x = b.add_input(TensorType((4, 3), float32))
    y = b.add_input(TensorType((4, 5), float32))
    xt = b.emit("transpose", [x], {"perm": (1, 0)})[0]
    p = b.emit("matmul", [xt, y], {"transpose_a": False, "transpose_b": False})[0]
    folded = fold_transposes(b.finish([p, xt]))            # xt is also an output: it stays
    assert [nd.op for nd in folded.nodes] == ["transpose", "matmul"]
    mm = folded.nodes[1]
    assert mm.attrs["transpose_a"] and mm.inputs[0] is folded.inputs[0]
    b2 = GraphBuilder("bmm")
    z = b2.add_input(TensorType((3, 2, 4), float32))
    w = b2.add_input(TensorType((2, 4, 6), float32))
    zt = b2.emit("transpose", [z], {"perm": (1, 0, 2)})[0]    # [2, 3, 4]: moves the batch axis
    g2 = b2.finish(b2.emit("matmul", [zt, w], {"transpose_a": False, "transpose_b": False}))
    assert [nd.op for nd in fold_transposes(g2).nodes] == ["transpose", "matmul"]


def test_user_code_with_transposed_operands_runs_without_a_transpose_and_its_gradient_matches():
    """`x.T @ d` and `x @ w.T` as users write them: the LLVM pipeline leaves no transpose node
    in the forward, and sf.grad through them equals the interpreter's."""
    rng = np.random.default_rng(0)
    x, w, d = (rng.standard_normal(s).astype(np.float32) for s in ((6, 5), (4, 5), (6, 4)))

    def loss(x, w, d):
        h = ops.matmul(x, ops.transpose(w, (1, 0)))                  # [6, 4]
        g = ops.matmul(ops.transpose(x, (1, 0)), d * h)             # [5, 4]
        return ops.sum(g * g)
    tx, tw, td = sf.Tensor(x), sf.Tensor(w), sf.Tensor(d)
    f = sf.jit(loss, backend="llvm")
    np.testing.assert_allclose(f(tx, tw, td).asnumpy(), sf.jit(loss, backend="interp")(tx, tw, td).asnumpy(),
                               rtol=1e-5)
    lowered = next(iter(f._cache.values())).executable.graph
    assert not any(nd.op == "transpose" for nd in lowered.walk()), [nd.op for nd in lowered.walk()]
    dl = sf.jit(sf.grad(loss, grad_position=(0, 1)), backend="llvm")(tx, tw, td)
    di = sf.jit(sf.grad(loss, grad_position=(0, 1)), backend="interp")(tx, tw, td)
    for a, b_ in zip(dl, di):
        np.testing.assert_allclose(a.asnumpy(), b_.asnumpy(), rtol=1e-4, atol=1e-4)


def test_graph_with_nothing_to_fold_comes_back_unchanged():
    """The pass's early exit: nothing to fold returns the same graph (no rebuild), and one
    foldable transpose in the graph still gets folded."""
    plain, _ = _graph((), 3, 4, 5, False, True, False, False, float32)
    assert fold_transposes(plain) is plain
    folding, _ = _graph((), 3, 4, 5, False, True, True, False, float32)
    out = fold_transposes(folding)
    assert out is not folding and [n.op for n in out.nodes] == ["matmul"]
