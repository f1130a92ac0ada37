"""ops.cond / WhileLoop / Scan / ForiLoop: eager (Python) and compiled (subgraph primitives)
agree, with pytrees, captured Parameters and outer values; mistakes get clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import ops


def T(a, dtype=np.float32):
    return sf.Tensor(np.asarray(a, dtype))


W = sf.Parameter(T([1.0, 2.0]), name="W")


def run_both(fn, *args):
    eager = fn(*args)
    jitted = sf.jit(fn)(*args)
    return eager, jitted


def test_cond_with_pytrees_captures_and_int_predicate():
    def f(x, flag):
        scale = x.sum()

        def yes(d):
            return {"a": d["a"] * W + scale, "b": (d["b"] + 1,)}

        def no(d):
            return {"a": d["a"] - W, "b": (d["b"] * 2,)}
        return ops.cond(flag, yes, no, {"a": x, "b": flag})

    x = T([1.0, -3.0])
    for flag in (1, 0):
        e, j = run_both(f, x, sf.Tensor(np.int32(flag)))
        np.testing.assert_allclose(j["a"].asnumpy(), e["a"].asnumpy())
        assert int(j["b"][0]) == int(e["b"][0])
    g = sf.jit(f).trace(x, sf.Tensor(np.int32(1))).graph
    assert [n.op for n in g.nodes].count("cond") == 1 and "%W: f32[2]" in str(g)


def test_while_loop_and_fori_loop():
    def f(x, n):
        i, acc = ops.WhileLoop()(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5 + W), (sf.Tensor(0), x))
        k = ops.ForiLoop()(0, 3, lambda j, v: v + ops.cast(j, sf.float32), acc)
        return i, k

    for n in (0, 1, 4):
        e, j = run_both(f, T([1.0, 2.0]), sf.Tensor(n))
        assert int(e[0]) == int(j[0]) == n
        np.testing.assert_allclose(j[1].asnumpy(), e[1].asnumpy(), rtol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_carries_and_stacks(reverse):
    def f(init, xs):
        def body(c, x):
            new = c * 0.5 + x["u"] * W
            return new, (new.sum(), x["v"] + 1)
        return ops.Scan()(body, init, {"u": xs, "v": ops.cast(xs, sf.int32)}, reverse=reverse)

    xs = T(np.arange(8).reshape(4, 2))
    e, j = run_both(f, T([0.0, 1.0]), xs)
    np.testing.assert_allclose(j[0].asnumpy(), e[0].asnumpy(), rtol=1e-6)
    for a, b in zip(j[1], e[1], strict=True):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)
    assert j[1][0].shape == (4,) and j[1][1].dtype is sf.int32


def test_scan_without_xs_needs_length():
    out = sf.jit(lambda c: ops.Scan()(lambda c, _: (c + 1.0, c), c, None, length=3))(T(0.0))
    np.testing.assert_allclose(out[1].asnumpy(), [0, 1, 2])
    with pytest.raises(ValueError, match="give `length`"):
        ops.Scan()(lambda c, _: (c, c), T(0.0), None)


def test_mismatched_branches_and_bodies_are_clear_errors():
    with pytest.raises(TypeError, match="branches return different"):
        sf.jit(lambda x: ops.cond(x.sum() > 0, lambda a: a, lambda a: a.sum(), x))(T([1.0]))
    with pytest.raises(TypeError, match="body must return the loop value's structure and types"):
        sf.jit(lambda x: ops.WhileLoop()(lambda c: c.sum() < 3, lambda c: c.astype(sf.float64), x))(T([1.0]))
    with pytest.raises(TypeError, match="carry changed type"):
        sf.jit(lambda x: ops.Scan()(lambda c, r: (c.sum(), r), x, x))(T([1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="assigning to a Parameter inside WhileLoop/Scan") as ei:
        sf.jit(lambda x: ops.WhileLoop()(lambda c: c.sum() < 3, lambda c: ops.assign(W, c) * 2, x))(T([1.0, 2.0]))
    assert "test_frontend_control.py" in str(ei.value) and "ops.cond" in str(ei.value)


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_cond_branches_may_assign_parameters(backend):
    """MindSpore's gradient-accumulation tutorial updates Parameters under a data-dependent `if`;
    under jit that is ops.cond whose branches assign: the updates become outputs of the cond node
    (a branch that does not assign a Parameter passes its current value through)."""
    acc = sf.Parameter(T([0.0, 0.0]), name="acc")
    count = sf.Parameter(sf.Tensor(np.int32(0)), name="count")
    w = sf.Parameter(T([1.0, 1.0]), name="w")

    def step(g):
        ops.assign_add(acc, g)
        ops.assign_add(count, sf.Tensor(np.int32(1)))

        def apply(z):
            ops.assign(w, w - 0.5 * acc)
            ops.assign(acc, ops.zeros_like(acc))
            return z + 1

        return ops.cond(count % 2 == 0, apply, lambda z: z, sf.Tensor(np.int32(0)))

    jstep = sf.jit(step, backend=backend)
    fired = [int(jstep(T([1.0, 2.0])).asnumpy()) for _ in range(4)]
    assert fired == [0, 1, 0, 1]
    np.testing.assert_allclose(w.asnumpy(), [1.0 - 0.5 * 2 - 0.5 * 2, 1.0 - 0.5 * 4 - 0.5 * 4])
    np.testing.assert_allclose(acc.asnumpy(), [0.0, 0.0])
    assert int(count.asnumpy()) == 4
    acc2, w2 = acc.asnumpy().copy(), w.asnumpy().copy()
    assert int(step(T([1.0, 2.0])).asnumpy()) == 0          # eagerly the same code runs as Python
    np.testing.assert_allclose(acc.asnumpy(), acc2 + [1.0, 2.0])
    np.testing.assert_allclose(w.asnumpy(), w2)


def test_eager_scan_of_length_zero_gives_empty_stacked_ys():
    import numpy as np
    import sporeflow as sf
    from sporeflow import ops
    carry, ys = ops.Scan()(lambda c, x: (c + x.sum(), x * 2), sf.Tensor(1.5), sf.Tensor(np.zeros((0, 3), np.float32)))
    assert float(carry.asnumpy()) == 1.5
    assert ys.shape == (0, 3) and ys.dtype == sf.float32
