"""Every differentiable primitive: VJP and JVP against central finite differences in float64,
and <vjp(u), v> == <u, jvp(v)>, over hypothesis-generated shapes, attributes and values (kept
away from kinks). Run eagerly, and a few examples per op through sf.jit (interp backend).
A coverage test fails when a primitive has neither rules nor the NOT_DIFFERENTIABLE mark."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sporeflow as sf
from sporeflow.core import lax
from sporeflow.ir import parse, verify
from sporeflow.ir.registry import NOT_DIFFERENTIABLE, REGISTRY

f64 = sf.float64


# ---- value generators -----------------------------------------------------------------------------
def shape(draw, min_rank=0, max_rank=3, max_dim=4):
    return tuple(draw(st.lists(st.integers(1, max_dim), min_size=min_rank, max_size=max_rank)))


def rng_of(draw):
    return np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))


def distinct(rng, shp, spread=1.0):
    """Values whose pairwise gaps are >= 0.1 (no ties: max/min/max_pool stay off their kinks)."""
    n = int(np.prod(shp))
    return (rng.permutation(n).astype(np.float64) * 0.1 * spread - 0.05 * n * spread).reshape(shp)


def bshape(draw, shp):
    """A shape that broadcasts to shp (dims dropped from the front or set to 1)."""
    k = draw(st.integers(0, len(shp)))
    return tuple(1 if draw(st.booleans()) else d for d in shp[k:])


def unary(lo, hi, away_from_zero=False):
    def gen(draw):
        r, shp = rng_of(draw), shape(draw)
        x = r.uniform(lo, hi, shp)
        if away_from_zero:
            x = np.where(np.abs(x) < 0.2, x + np.sign(x + 1e-9) * 0.3, x)
        return [x], {}, [True]
    return gen


def binary(x_range=(-2, 2), y_range=(-2, 2), y_away=False, separated=False):
    def gen(draw):
        r, shp = rng_of(draw), shape(draw)
        ys = bshape(draw, shp)
        if draw(st.booleans()):
            shp, ys = ys, shp
        x, y = r.uniform(*x_range, shp), r.uniform(*y_range, ys)
        if y_away:
            y = np.where(np.abs(y) < 0.5, np.sign(y + 1e-9) * 0.5 + y, y)
        if separated:  # x on the even tenths, y on the odd ones: never closer than 0.1
            x = r.integers(-10, 10, shp) * 0.2
            y = r.integers(-10, 10, ys) * 0.2 + 0.1
        return [x, y], {}, [True, True]
    return gen


def gen_select(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    p = r.random(bshape(draw, shp)) > 0.5
    return [p, r.normal(size=bshape(draw, shp)), r.normal(size=shp)], {}, [False, True, True]


def gen_matmul(draw):
    r = rng_of(draw)
    batch = shape(draw, 0, 2, 3)
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    a = r.normal(size=batch + ((k, m) if ta else (m, k)))
    b = r.normal(size=batch + ((n, k) if tb else (k, n)))
    return [a, b], {"transpose_a": ta, "transpose_b": tb}, [True, True]


def gen_conv(draw):
    r = rng_of(draw)
    g = draw(st.sampled_from([1, 1, 2]))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = max(d[0] * (kh - 1) + 1 - p[0] - p[1], 1) + draw(st.integers(0, 3))
    w = max(d[1] * (kw - 1) + 1 - p[2] - p[3], 1) + draw(st.integers(0, 3))
    x = r.normal(size=(draw(st.integers(1, 2)), g * cg, h, w))
    wt = r.normal(size=(g * og, cg, kh, kw))
    return [x, wt], {"stride": s, "padding": p, "dilation": d, "groups": g}, [True, True]


def gen_pool(distinct_values):
    def gen(draw):
        r = rng_of(draw)
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        p = (draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[0] - 1)),
             draw(st.integers(0, k[1] - 1)), draw(st.integers(0, k[1] - 1)))
        shp = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), k[0] + draw(st.integers(0, 3)),
               k[1] + draw(st.integers(0, 3)))
        x = distinct(r, shp) if distinct_values else r.normal(size=shp)
        return [x], {"kernel": k, "stride": s, "padding": p}, [True]
    return gen


def gen_reduce(distinct_values):
    def gen(draw):
        r, shp = rng_of(draw), shape(draw, 1)
        axes = tuple(sorted(draw(st.sets(st.integers(0, len(shp) - 1)))))
        x = distinct(r, shp) if distinct_values else r.normal(size=shp)
        return [x], {"axes": axes, "keepdims": draw(st.booleans())}, [True]
    return gen


def gen_reshape(draw):
    r, shp = rng_of(draw), shape(draw)
    new = draw(st.sampled_from([shp[::-1], (int(np.prod(shp)),), (1,) + shp]))
    return [r.normal(size=shp)], {"shape": new}, [True]


def gen_transpose(draw):
    r, shp = rng_of(draw), shape(draw)
    perm = tuple(draw(st.permutations(range(len(shp)))))
    return [r.normal(size=shp)], {"perm": perm}, [True]


def gen_broadcast(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    return [r.normal(size=bshape(draw, shp))], {"shape": shp}, [True]


def gen_slice(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    start, limit, strides = [], [], []
    for d in shp:
        s = draw(st.integers(0, d - 1))
        start.append(s)
        limit.append(draw(st.integers(s + 1, d)))
        strides.append(draw(st.integers(1, 3)))
    return [r.normal(size=shp)], {"start": tuple(start), "limit": tuple(limit), "strides": tuple(strides)}, [True]


def gen_pad(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    n = len(shp)
    ints = lambda hi: tuple(draw(st.integers(0, hi)) for _ in range(n))  # noqa: E731
    return [r.normal(size=shp)], {"lo": ints(2), "hi": ints(2), "interior": ints(2),
                                  "value": draw(st.sampled_from([0.0, 1.5]))}, [True]


def gen_concat(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    ax = draw(st.integers(0, len(shp) - 1))
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shp)
        s[ax] = draw(st.integers(1, 3))
        xs.append(r.normal(size=s))
    return xs, {"axis": ax}, [True] * len(xs)


def gen_rev(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    axes = tuple(sorted(draw(st.sets(st.integers(0, len(shp) - 1)))))
    return [r.normal(size=shp)], {"axes": axes}, [True]


def gen_take(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    ax = draw(st.integers(0, len(shp) - 1))
    idx = r.integers(0, shp[ax], size=shape(draw, 0, 2)).astype(np.int32)
    return [r.normal(size=shp), idx], {"axis": ax}, [True, False]


def gen_scatter(draw):
    r, shp = rng_of(draw), shape(draw, 1)
    ax = draw(st.integers(0, len(shp) - 1))
    idx = r.integers(0, shp[ax], size=shape(draw, 0, 2)).astype(np.int32)
    upd = r.normal(size=shp[:ax] + idx.shape + shp[ax + 1:])
    return [r.normal(size=shp), idx, upd], {"axis": ax}, [True, False, True]


def prim(name):
    return lambda attrs: (lambda *xs: lax.multi(name, *xs, **attrs))


def gen_cast(draw):
    r, shp = rng_of(draw), shape(draw)
    return [r.normal(size=shp)], {}, [True]


def _cast_roundtrip(attrs):
    """f64 -> f32 -> f64 (the f32 hop only rounds; FD tolerance covers it)."""
    return lambda x: lax.cast(lax.cast(x, dtype=sf.float32), dtype=f64) + 0 * x


def gen_pool_grad(draw):
    """max_pool2d_grad is linear in its cotangent g (x and y = max_pool2d(x) held fixed)."""
    (x,), attrs, _ = gen_pool(True)(draw)
    y = REGISTRY["max_pool2d"].impl(x, **attrs)
    return [x, y, rng_of(draw).normal(size=y.shape)], attrs, [False, False, True]


# name -> (generator, function builder, tolerance)
SPECS = {
    "exp": (unary(-2, 2), prim("exp"), 1e-6), "log": (unary(0.5, 2), prim("log"), 1e-6),
    "tanh": (unary(-2, 2), prim("tanh"), 1e-6), "sqrt": (unary(0.5, 2), prim("sqrt"), 1e-6),
    "rsqrt": (unary(0.5, 2), prim("rsqrt"), 1e-6), "sin": (unary(-3, 3), prim("sin"), 1e-6),
    "cos": (unary(-3, 3), prim("cos"), 1e-6), "erf": (unary(-2, 2), prim("erf"), 1e-6),
    "neg": (unary(-2, 2), prim("neg"), 1e-6), "abs": (unary(-2, 2, away_from_zero=True), prim("abs"), 1e-6),
    "add": (binary(), prim("add"), 1e-6), "sub": (binary(), prim("sub"), 1e-6),
    "mul": (binary(), prim("mul"), 1e-6), "div": (binary(y_away=True), prim("div"), 1e-6),
    "pow": (binary((0.5, 2), (-2, 2)), prim("pow"), 1e-6),
    "maximum": (binary(separated=True), prim("maximum"), 1e-6),
    "minimum": (binary(separated=True), prim("minimum"), 1e-6),
    "select": (gen_select, prim("select"), 1e-6), "cast": (gen_cast, _cast_roundtrip, 1e-4),
    "matmul": (gen_matmul, prim("matmul"), 1e-6), "conv2d": (gen_conv, prim("conv2d"), 1e-6),
    "max_pool2d": (gen_pool(True), prim("max_pool2d"), 1e-6),
    "avg_pool2d": (gen_pool(False), prim("avg_pool2d"), 1e-6),
    "max_pool2d_grad": (gen_pool_grad, prim("max_pool2d_grad"), 1e-6),
    "reduce_sum": (gen_reduce(False), prim("reduce_sum"), 1e-6),
    "reduce_max": (gen_reduce(True), prim("reduce_max"), 1e-6),
    "reduce_min": (gen_reduce(True), prim("reduce_min"), 1e-6),
    "reshape": (gen_reshape, prim("reshape"), 1e-6), "transpose": (gen_transpose, prim("transpose"), 1e-6),
    "broadcast_to": (gen_broadcast, prim("broadcast_to"), 1e-6), "slice": (gen_slice, prim("slice"), 1e-6),
    "pad": (gen_pad, prim("pad"), 1e-6), "concatenate": (gen_concat, prim("concatenate"), 1e-6),
    "rev": (gen_rev, prim("rev"), 1e-6), "take": (gen_take, prim("take"), 1e-6),
    "scatter_add": (gen_scatter, prim("scatter_add"), 1e-6),
}
# differentiable primitives checked in other files (subgraph ops need user functions)
ELSEWHERE = {"cond": "test_autodiff_control.py", "while_loop": "test_autodiff_control.py",
             "scan": "test_autodiff_control.py", "custom_vjp": "test_autodiff_api.py",
             "fused": "test_fusion.py (its rules inline the body)",
             **dict.fromkeys(("all_reduce", "all_gather", "broadcast", "reduce_scatter"),
                             "test_dist.py (tests/dist/collectives.py under mpirun: FD of the global loss)"),
             **dict.fromkeys(("all_reduce_start", "all_reduce_wait"),
                             "test_dist.py (tests/dist/overlap.py: grad of the split step = grad of the blocking one)")}


# ---- the checker ------------------------------------------------------------------------------------
def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def check_rules(fn, args, diff, tol, jit=False):
    """Directional derivative along v: FD of <u, f(x + t v)>, <vjp(u), v>, <u, jvp(v)>."""
    rng = np.random.default_rng(1)
    T = lambda a: sf.Tensor(np.asarray(a))  # noqa: E731  (0-d numpy scalars stay float64)
    args = [np.asarray(a) for a in args]
    fixed = [T(a) for a in args]
    pos = [i for i, d in enumerate(diff) if d]

    def g(*xs):
        full = list(fixed)
        for i, x in zip(pos, xs):
            full[i] = x
        return tuple(_flat(fn(*full)))

    xs = [args[i] for i in pos]
    vs = [rng.normal(size=np.shape(x)) for x in xs]
    outs = [o.asnumpy() for o in g(*[T(x) for x in xs])]
    us = [rng.normal(size=o.shape) if o.dtype.kind == "f" else None for o in outs]

    def L(t):
        o = g(*[T(x + t * v) for x, v in zip(xs, vs)])
        return sum(float(np.sum(u * oo.asnumpy())) for u, oo in zip(us, o) if u is not None)
    eps = 1e-5 if tol < 1e-5 else 1e-2  # the f32 round trip (cast) is linear: a wide step is exact
    fd = (L(eps) - L(-eps)) / (2 * eps)

    def both(xs_t, vs_t, us_t):
        _, vjp_fn = sf.vjp(g, *xs_t)
        grads = vjp_fn(tuple(us_t))
        _, tan = sf.jvp(g, tuple(xs_t), tuple(vs_t))
        return grads, tan
    runner = sf.jit(both) if jit else both
    if jit:  # the transformed graph (forward + vjp + jvp) passes the verifier and prints/parses back
        graph = runner.trace([T(x) for x in xs], [T(v) for v in vs], [T(u) for u in us if u is not None]).graph
        verify(graph)
        assert str(parse(str(graph))) == str(graph)
    grads, tan = runner([T(x) for x in xs], [T(v) for v in vs], [T(u) for u in us if u is not None])
    rev = sum(float(np.sum(gr.asnumpy() * v)) for gr, v in zip(grads, vs, strict=True))
    fwd = sum(float(np.sum(u * t.asnumpy())) for u, t in zip(us, tan, strict=True) if u is not None)
    scale = 1.0 + abs(fd)
    assert abs(rev - fwd) <= tol * 1e-2 * scale + 1e-10 * sum(np.abs(v).sum() for v in vs), (rev, fwd)
    assert abs(rev - fd) <= tol * 10 * scale, ("vjp vs finite differences", rev, fd)
    assert abs(fwd - fd) <= tol * 10 * scale, ("jvp vs finite differences", fwd, fd)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_rules_match_finite_differences(name, data):
    gen, build, tol = SPECS[name]
    args, attrs, diff = data.draw(st.composite(lambda draw: gen(draw))())
    check_rules(build(attrs), args, diff, tol)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=3)
@given(data=st.data())
def test_rules_under_jit(name, data):
    gen, build, tol = SPECS[name]
    args, attrs, diff = data.draw(st.composite(lambda draw: gen(draw))())
    check_rules(build(attrs), args, diff, tol, jit=True)


def missing_rules() -> list[str]:
    missing = []
    for name, op in sorted(REGISTRY.items()):
        marked = op.vjp is NOT_DIFFERENTIABLE or op.jvp is NOT_DIFFERENTIABLE
        if marked:
            continue
        if op.vjp is None or op.jvp is None:
            missing.append(f"{name} (vjp={op.vjp is not None}, jvp={op.jvp is not None})")
        elif name not in SPECS and name not in ELSEWHERE:
            missing.append(f"{name} has rules but no finite-difference test")
    return missing


def test_every_primitive_has_rules_or_is_marked():
    missing = missing_rules()
    assert not missing, "primitives without autodiff rules or tests: " + ", ".join(missing)


def test_the_coverage_check_catches_a_primitive_without_rules():
    from sporeflow.ir.registry import def_op
    def_op("_ad_probe", infer=lambda ts, attrs: ts[0], impl=lambda x: x)
    try:
        assert any(m.startswith("_ad_probe") for m in missing_rules())
        with pytest.raises(sf.errors.SporeflowError, match="`_ad_probe` has no vjp rule"):
            sf.grad(lambda x: lax._ad_probe(x).sum())(sf.Tensor(np.ones(2)))
        with pytest.raises(sf.errors.SporeflowError, match="`_ad_probe` has no jvp rule"):
            sf.jvp(lambda x: lax._ad_probe(x), sf.Tensor(np.ones(2)), sf.Tensor(np.ones(2)))
    finally:
        del REGISTRY["_ad_probe"]


def test_nondifferentiable_ops_give_zero_gradient():
    x = sf.Tensor(np.array([0.3, 1.7, -2.2]))
    g = sf.grad(lambda x: (sf.ops.floor(x) + sf.ops.sign(x) + sf.ops.stop_gradient(x) * x).sum())(x)
    np.testing.assert_allclose(g.asnumpy(), x.asnumpy())


def test_relu_and_relu6_corners_have_zero_gradient():
    """maximum/minimum give ties to the second operand, so relu(x)=maximum(x, 0) has gradient 0
    at 0 and relu6 at 0 and 6, as MindSpore's ReLU/ReLU6; reduce_max splits ties evenly."""
    x = sf.Tensor(np.array([-1.0, 0.0, 2.0, 6.0, 7.0]))
    np.testing.assert_allclose(sf.grad(lambda x: sf.ops.relu(x).sum())(x).asnumpy(), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(sf.grad(lambda x: sf.ops.relu6(x).sum())(x).asnumpy(), [0, 0, 1, 0, 0])
    np.testing.assert_allclose(sf.jvp(lambda x: sf.ops.relu(x), x, sf.Tensor(np.ones(5)))[1].asnumpy(),
                               [0, 0, 1, 1, 1])
    t = sf.Tensor(np.array([3.0, 1.0, 3.0]))
    np.testing.assert_allclose(sf.grad(lambda t: t.max())(t).asnumpy(), [0.5, 0, 0.5])
    p = sf.Tensor(np.array([[[[1.0, 1.0], [0.0, 1.0]]]]))
    np.testing.assert_allclose(sf.grad(lambda p: sf.ops.max_pool2d(p, 2, 2).sum())(p).asnumpy(),
                               [[[[1.0, 0.0], [0.0, 0.0]]]])   # max_pool: the first maximum
