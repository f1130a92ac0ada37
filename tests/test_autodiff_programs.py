"""Random smooth programs (elementwise math, broadcasting binaries, reductions, shape ops,
gathers, matmul) differentiated end to end: VJP and JVP against central finite differences in
float64, eagerly and through sf.jit. Catches rule interactions the per-op tests cannot
(broadcasting chains, views of views, fan-out accumulation)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sporeflow as sf
from sporeflow import ops
from test_autodiff_rules import check_rules

UNARY = {
    "tanh": ops.tanh, "sin": ops.sin, "exp": lambda x: ops.exp(ops.tanh(x)), "square": lambda x: x * x,
    "softplus_like": lambda x: ops.log(ops.exp(ops.tanh(x)) + 1.0), "sigmoid": ops.sigmoid,
    "scale": lambda x: x * 0.5 - 1.0, "rsqrt_pos": lambda x: ops.rsqrt(x * x + 1.0),
    "cube_div": lambda x: x * x * x / (x * x + 2.0), "erf": ops.erf,
}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b * b + 1.0), "pow": lambda a, b: (a * a + 0.5) ** ops.tanh(b)}


def _unbroadcastable(a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return False
    except ValueError:
        return True


def _shape_op(x, kind, seed):
    r = x.ndim
    if kind == "reshape":
        return x.reshape(-1)
    if kind == "transpose" and r:
        return x.transpose(tuple(np.random.default_rng(seed).permutation(r).tolist()))
    if kind == "expand":
        return ops.expand_dims(x, seed % (r + 1))
    if kind == "slice" and r and x.shape[0] > 1:
        return x[..., ::-(seed % 2 + 1)] if seed % 3 else x[(seed % 2):]
    if kind == "flip" and r:
        return ops.flip(x, (seed % r,))
    if kind == "concat" and r:
        return ops.cat([x, ops.sin(x)], seed % r)
    if kind == "pad" and r:
        return ops.pad(x, (seed % 2, 1))
    if kind == "stack":
        return ops.stack([x, x * x], seed % (r + 1))
    if kind == "broadcast":
        return ops.broadcast_to(x, (2,) + x.shape)
    if kind == "index" and r:
        return x[np.array([0, x.shape[0] - 1, 0])]
    return x


def _reduce(x, kind, seed, keep):
    if x.ndim == 0:
        return x
    axis = seed % x.ndim
    return {"sum": lambda: x.sum(axis=axis, keepdims=keep), "mean": lambda: x.mean(axis, keep),
            "logsumexp": lambda: ops.logsumexp(x, axis, keep)}[kind]()


STEP = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(sorted(UNARY)), st.integers(0, 99)),
    st.tuples(st.just("binary"), st.sampled_from(sorted(BINARY)), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("reduce"), st.sampled_from(["sum", "mean", "logsumexp"]), st.integers(0, 99),
              st.integers(0, 5), st.booleans()),
    st.tuples(st.just("shape"), st.sampled_from(["reshape", "transpose", "expand", "slice", "flip", "concat", "pad",
                                                  "stack", "broadcast", "index"]),
              st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("matmul"), st.integers(0, 99), st.integers(0, 99)),
)


def program(steps):
    """Build f(x, y): a pool of values, each step appends one; the result sums the last three
    (so every value may fan out to several consumers)."""
    def f(x, y):
        pool = [x, y]
        for step in steps:
            kind = step[0]
            if kind == "unary":
                pool.append(UNARY[step[1]](pool[step[2] % len(pool)]))
            elif kind == "binary":
                a, b = pool[step[2] % len(pool)], pool[step[3] % len(pool)]
                pool.append(BINARY[step[1]](a, b) if not _unbroadcastable(a, b) else a * 1.5)
            elif kind == "reduce":
                pool.append(_reduce(pool[step[2] % len(pool)], step[1], step[3], step[4]))
            elif kind == "shape":
                v = pool[step[2] % len(pool)]
                pool.append(_shape_op(v, step[1], step[3]) if v.size <= 64 else v)
            else:
                a, b = pool[step[1] % len(pool)], pool[step[2] % len(pool)]
                if a.ndim >= 1 and b.ndim >= 1:
                    a2 = a.reshape(-1, a.shape[-1])
                    b2 = b.reshape(-1)[: a.shape[-1]] if b.size >= a.shape[-1] else None
                    pool.append(ops.matmul(a2, b2.reshape(-1, 1)) if b2 is not None else a)
                else:
                    pool.append(a * b)
        return tuple(ops.tanh(v).sum() if v.ndim else v for v in pool[-3:])
    return f


def _inputs(seed, shape_x, shape_y):
    r = np.random.default_rng(seed)
    return [r.uniform(-1, 1, shape_x), r.uniform(-1, 1, shape_y)]


SHAPES = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@pytest.mark.parametrize("jit", [False, True])
@settings(max_examples=10)
@given(steps=st.lists(STEP, min_size=1, max_size=6), sx=SHAPES, sy=SHAPES, seed=st.integers(0, 2 ** 31 - 1))
def test_random_programs_match_finite_differences(jit, steps, sx, sy, seed):
    check_rules(program(steps), _inputs(seed, sx, sy), [True, True], 1e-6, jit=jit)


@settings(max_examples=5)
@given(steps=st.lists(STEP, min_size=1, max_size=4), sx=SHAPES, seed=st.integers(0, 2 ** 31 - 1))
def test_random_programs_second_order(steps, sx, seed):
    """grad of <grad f, v> (a Hessian-vector product) against FD of grad f."""
    f = program(steps)
    x, y = _inputs(seed, sx, sx)
    v = np.random.default_rng(seed + 1).normal(size=np.shape(x))
    T = lambda a: sf.Tensor(np.asarray(a))  # noqa: E731
    loss = lambda x: sum(o.sum() for o in f(x, T(y)))  # noqa: E731
    g = sf.grad(loss)
    hv = sf.grad(lambda x: (g(x) * T(v)).sum())(T(x)).asnumpy()
    eps = 1e-5
    fd = (g(T(x + eps * v)).asnumpy() - g(T(x - eps * v)).asnumpy()) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-6)
