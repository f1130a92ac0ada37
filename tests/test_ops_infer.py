"""Every primitive: its inferred type equals the type of its numpy reference result.

One hypothesis generator per op family draws input types, attributes and data; the test runs
`OpDef.infer_types` and the raw `impl` (not `OpDef.run`, which would paper over a wrong shape
by broadcasting) and compares shape and dtype exactly. A coverage test fails when a registered
primitive has no generator here, or lacks `infer`/`impl`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from sporeflow.errors import OpTypeError
from sporeflow.ir import REGISTRY, GraphBuilder
from sporeflow.ir import dtypes as D
from sporeflow.ir.types import Attrs, ConstValue, TensorType
from sporeflow.passes.loop_nest import loop_nest

FLOATS = [D.float16, D.bfloat16, D.float32, D.float64]
INTS = [D.int8, D.int16, D.int32, D.int64, D.uint8, D.uint32]
NUMERIC = FLOATS + INTS
ALL = NUMERIC + [D.bool_]

small_shape = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
pos_shape = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def make_array(rng: np.random.Generator, shape, dt: D.DType) -> np.ndarray:
    """Storage array of dtype `dt` (bf16 as uint16 bits)."""
    if dt.is_float:
        return D.from_compute(rng.normal(0, 3, size=shape), dt)
    if dt is D.bool_:
        return rng.random(shape) < 0.5
    lo = -5 if dt.is_signed else 0
    return rng.integers(lo, 10, size=shape).astype(dt.storage)


@st.composite
def bcast_pair(draw):
    """Two shapes that broadcast: the second drops leading dims and sets some dims to 1."""
    a = draw(small_shape)
    drop = draw(st.integers(0, len(a)))
    b = tuple(1 if draw(st.booleans()) else d for d in a[drop:])
    return (a, b) if draw(st.booleans()) else (b, a)


@st.composite
def case(draw, op: str):
    """(input types, attrs, arrays) for `op`."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    gen = GENERATORS[op]
    types, attrs = gen(draw)
    arrays = example_arrays(rng, op, types, attrs)
    if op == "while_loop":
        arrays[0] = np.asarray(rng.integers(0, 4), np.int32)
    return types, attrs, arrays


def example_arrays(rng, op: str, types, attrs) -> list[np.ndarray]:
    """Inputs for `op` of these types: indices in range +-2 and random keys (loop counters and
    predicates are left to the caller)."""
    arrays = [make_array(rng, t.shape, t.dtype) for t in types]
    if op in ("take", "scatter_add"):
        arrays[1] = rng.integers(-2, types[0].shape[attrs["axis"]] + 2, size=types[1].shape).astype(
            types[1].dtype.storage)
    if op in ("random_bits", "random_uniform"):
        arrays[0] = rng.integers(0, 2 ** 32, size=2, dtype=np.uint64).astype(np.uint32)
    if op == "max_pool2d_grad":        # few distinct values: windows with tied maxima
        arrays[0] = D.from_compute(rng.integers(-2, 3, size=types[0].shape).astype(np.float64), types[0].dtype)
        arrays[1] = pooled(arrays[0], types[0], attrs)
    return arrays


def pooled(x, t: TensorType, attrs) -> np.ndarray:
    """max_pool2d(x) by the reference: the y that max_pool2d_grad's cases take."""
    op, a = REGISTRY["max_pool2d"], Attrs(attrs)
    return op.run([x], a, [t], op.infer_types([t], a))[0]


# ---- generators: draw -> (types, attrs) ----------------------------------------------------------
def _unary(dtypes):
    return lambda draw: ([TensorType(draw(small_shape), draw(st.sampled_from(dtypes)))], {})


def _binary(dtypes):
    def gen(draw):
        a, b = draw(bcast_pair())
        dt = draw(st.sampled_from(dtypes))
        return [TensorType(a, dt), TensorType(b, dt)], {}
    return gen


def _select(draw):
    a, b = draw(bcast_pair())
    c = draw(st.sampled_from([a, b, ()]))
    dt = draw(st.sampled_from(ALL))
    return [TensorType(c, D.bool_), TensorType(a, dt), TensorType(b, dt)], {}


def _cast(draw):
    return [TensorType(draw(small_shape), draw(st.sampled_from(ALL)))], {"dtype": draw(st.sampled_from(ALL))}


def _reduce(draw):
    shape = draw(pos_shape)
    axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1)))))
    return [TensorType(shape, draw(st.sampled_from(NUMERIC)))], {"axes": axes, "keepdims": draw(st.booleans())}


def _reduce_sum(draw):
    types, attrs = _reduce(draw)
    if draw(st.booleans()):  # sum has an identity: empty axes are fine
        shape = list(types[0].shape)
        shape[0] = 0
        types = [TensorType(tuple(shape), types[0].dtype)]
    return types, attrs


def _arg(draw):
    shape = draw(pos_shape)
    return [TensorType(shape, draw(st.sampled_from(NUMERIC)))], {
        "axis": draw(st.integers(0, len(shape) - 1)), "keepdims": draw(st.booleans())}


def _reshape(draw):
    shape = draw(small_shape)
    n = int(np.prod(shape))
    target = draw(st.sampled_from([(n,), shape[::-1], (1,) + shape, (n, 1)])) if n else (0,)
    return [TensorType(shape, draw(st.sampled_from(ALL)))], {"shape": target}


def _transpose(draw):
    shape = draw(small_shape)
    return [TensorType(shape, draw(st.sampled_from(ALL)))], {"perm": tuple(draw(st.permutations(range(len(shape)))))}


def _broadcast_to(draw):
    a = draw(small_shape)
    src = tuple(1 if draw(st.booleans()) else d for d in a[draw(st.integers(0, len(a))):])
    return [TensorType(src, draw(st.sampled_from(ALL)))], {"shape": a}


def _slice(draw):
    shape = draw(small_shape)
    start, limit, strides = [], [], []
    for d in shape:
        s = draw(st.integers(0, d))
        start.append(s)
        limit.append(draw(st.integers(s, d)))
        strides.append(draw(st.integers(1, 3)))
    return [TensorType(shape, draw(st.sampled_from(ALL)))], {
        "start": tuple(start), "limit": tuple(limit), "strides": tuple(strides)}


def _pad(draw):
    shape = draw(small_shape)
    r = len(shape)
    ints = st.lists(st.integers(0, 2), min_size=r, max_size=r).map(tuple)
    dt = draw(st.sampled_from(NUMERIC))
    return [TensorType(shape, dt)], {"lo": draw(ints), "hi": draw(ints), "interior": draw(ints), "value": 0.0}


def _concatenate(draw):
    shape = draw(pos_shape)
    axis = draw(st.integers(0, len(shape) - 1))
    dt = draw(st.sampled_from(ALL))
    types = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(shape)
        s[axis] = draw(st.integers(0, 3))
        types.append(TensorType(tuple(s), dt))
    return types, {"axis": axis}


def _rev(draw):
    shape = draw(small_shape)
    axes = tuple(sorted(draw(st.sets(st.integers(0, max(len(shape) - 1, 0)))))) if shape else ()
    return [TensorType(shape, draw(st.sampled_from(ALL)))], {"axes": axes}


def _take(draw):
    shape = draw(pos_shape)
    axis = draw(st.integers(0, len(shape) - 1))
    idx = TensorType(draw(small_shape), draw(st.sampled_from([D.int32, D.int64])))
    return [TensorType(shape, draw(st.sampled_from(ALL))), idx], {"axis": axis}


def _scatter_add(draw):
    shape = draw(pos_shape)
    axis = draw(st.integers(0, len(shape) - 1))
    idx_shape = draw(small_shape)
    dt = draw(st.sampled_from(NUMERIC))
    upd = shape[:axis] + idx_shape + shape[axis + 1:]
    return [TensorType(shape, dt), TensorType(idx_shape, D.int32), TensorType(upd, dt)], {"axis": axis}


def _iota(draw):
    shape = draw(pos_shape)
    return [], {"shape": shape, "axis": draw(st.integers(0, len(shape) - 1)),
                "dtype": draw(st.sampled_from(NUMERIC))}


def _constant(draw):
    shape, dt = draw(small_shape), draw(st.sampled_from(ALL))
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    return [], {"value": ConstValue(make_array(rng, shape, dt), dt)}


def _matmul(draw):
    batch = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    dt = draw(st.sampled_from(NUMERIC))
    a = batch + ((k, m) if ta else (m, k))
    b = batch + ((n, k) if tb else (k, n))
    return [TensorType(a, dt), TensorType(b, dt)], {"transpose_a": ta, "transpose_b": tb}


def _conv2d(draw):
    g = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(d[0] * (kh - 1) + 1, 7))
    w = draw(st.integers(d[1] * (kw - 1) + 1, 7))
    dt = draw(st.sampled_from(FLOATS))
    return [TensorType((draw(st.integers(1, 2)), cg * g, h, w), dt), TensorType((og * g, cg, kh, kw), dt)], {
        "stride": s, "padding": p, "dilation": d, "groups": g}


def _pool(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[0] - 1)),
         draw(st.integers(0, k[1] - 1)), draw(st.integers(0, k[1] - 1)))
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(k[0], 6)), draw(st.integers(k[1], 6)))
    return [TensorType(x, draw(st.sampled_from(FLOATS)))], {"kernel": k, "stride": s, "padding": p}


def _pool_grad(draw):
    (x,), attrs = _pool(draw)
    y = REGISTRY["max_pool2d"].infer_types([x], Attrs(attrs))[0]
    return [x, y, y], attrs


def _random_bits(draw):
    return [TensorType((2,), D.uint32)], {"shape": draw(small_shape)}


def _random_uniform(draw):
    return [TensorType((2,), D.uint32)], {"shape": draw(small_shape), "dtype": draw(st.sampled_from(FLOATS))}


def _elementwise_graph(name: str, types, with_pred: bool = False):
    """A subgraph over `types` returning the same types (first input +1 if numeric)."""
    b = GraphBuilder(name)
    ins = [b.add_input(t) for t in types]
    outs = []
    for v in ins:
        if v.dtype.is_float or v.dtype.is_int:
            one = b.emit("constant", [], {"value": ConstValue.of(np.ones(v.shape), v.dtype)})[0]
            outs.append(b.emit("add", [v, one])[0])
        else:
            outs.append(v)
    return b.finish(outs)


def _cond(draw):
    types = [TensorType(draw(small_shape), draw(st.sampled_from(ALL))) for _ in range(draw(st.integers(0, 3)))]
    t = _elementwise_graph("then_branch", types)
    b = GraphBuilder("else_branch")
    e_ins = [b.add_input(x) for x in types]
    e = b.finish(e_ins)
    return [TensorType((), D.bool_)] + types, {"then_branch": t, "else_branch": e}


def _while_loop(draw):
    """carry = (i: i32[], *rest); loop while i < 3, incrementing every numeric carry."""
    rest = [TensorType(draw(small_shape), draw(st.sampled_from(NUMERIC))) for _ in range(draw(st.integers(0, 2)))]
    types = [TensorType((), D.int32)] + rest
    c = GraphBuilder("cond_graph")
    ins = [c.add_input(x) for x in types]
    three = c.emit("constant", [], {"value": ConstValue.of(3, D.int32)})[0]
    cg = c.finish([c.emit("lt", [ins[0], three])[0]])
    return types, {"cond_graph": cg, "body_graph": _elementwise_graph("body_graph", types)}


def _scan(draw):
    length = draw(st.integers(0, 3))
    carry = [TensorType(draw(small_shape), draw(st.sampled_from(NUMERIC))) for _ in range(draw(st.integers(0, 2)))]
    xs = [TensorType((length,) + draw(small_shape), draw(st.sampled_from(ALL))) for _ in range(draw(st.integers(0, 2)))]
    body_in = carry + [TensorType(x.shape[1:], x.dtype) for x in xs]
    body = _elementwise_graph("body", body_in)  # returns the carry, then one y per x
    return carry + xs, {"body": body, "num_carry": len(carry), "length": length, "reverse": draw(st.booleans())}


def _fused(draw):
    a, b = draw(bcast_pair())
    dt = draw(st.sampled_from(FLOATS))
    g = GraphBuilder("body")
    x, y = g.add_input(TensorType(a, dt)), g.add_input(TensorType(b, dt))
    s = g.emit("add", [x, y])[0]
    body = g.finish([g.emit("exp", [s])[0]])
    return [TensorType(a, dt), TensorType(b, dt)], {"body": body, "name": "fused_add_exp", "kind": "elemwise",
                                                     **loop_nest(body).attrs()}


def _custom_vjp(draw):
    """fwd = exp(x); bwd(x, y, dy) = dy * y."""
    t = TensorType(draw(small_shape), draw(st.sampled_from(FLOATS)))
    f = GraphBuilder("fwd")
    x = f.add_input(t)
    fwd = f.finish([f.emit("exp", [x])[0]])
    b = GraphBuilder("bwd")
    _, y, dy = (b.add_input(t) for _ in range(3))
    bwd = b.finish([b.emit("mul", [dy, y])[0]])
    return [t], {"fwd": fwd, "bwd": bwd}


GENERATORS = {
    **{op: _unary(FLOATS) for op in ("exp", "log", "tanh", "sqrt", "rsqrt", "sin", "cos", "erf", "floor", "ceil",
                                     "is_finite")},
    **{op: _unary([d for d in NUMERIC if d.is_signed]) for op in ("neg", "abs", "sign")},
    "logical_not": _unary([D.bool_]), "stop_gradient": _unary(ALL),
    **{op: _binary(NUMERIC) for op in ("add", "sub", "mul", "maximum", "minimum")},
    **{op: _binary(FLOATS) for op in ("div", "pow")},
    **{op: _binary(ALL) for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    **{op: _binary([D.bool_]) for op in ("logical_and", "logical_or", "logical_xor")},
    "select": _select, "cast": _cast,
    "reduce_sum": _reduce_sum, "reduce_max": _reduce, "reduce_min": _reduce, "argmax": _arg, "argmin": _arg,
    "reshape": _reshape, "transpose": _transpose, "broadcast_to": _broadcast_to, "slice": _slice, "pad": _pad,
    "concatenate": _concatenate, "rev": _rev, "take": _take, "scatter_add": _scatter_add, "iota": _iota,
    "constant": _constant, "matmul": _matmul, "conv2d": _conv2d, "max_pool2d": _pool, "avg_pool2d": _pool,
    "max_pool2d_grad": _pool_grad,
    "random_bits": _random_bits, "random_uniform": _random_uniform,
    "cond": _cond, "while_loop": _while_loop, "scan": _scan, "fused": _fused, "custom_vjp": _custom_vjp,
}


def _compute_dtype(op, t: TensorType) -> np.dtype:
    """What `impl` must return for an output of type t (half types are computed in float32)."""
    if REGISTRY[op].compute_in_f32 and t.dtype.is_half:
        return np.dtype(np.float32)
    return t.dtype.storage


# ops whose infer/impl need other processes: tested against numpy under mpirun in test_dist.py;
# print writes to stdout: test_print.py reads what it prints on every backend, under grad and vmap
ELSEWHERE = {"all_reduce", "all_gather", "broadcast", "reduce_scatter", "all_reduce_start", "all_reduce_wait",
             "print"}


def test_every_primitive_has_infer_impl_and_a_generator():
    """The generators and the registry name the same primitives: a primitive without a
    generator fails here, and so does a generator whose primitive left the registry (its
    per-op tests would otherwise fail with a KeyError no one reads as "op removed")."""
    missing = [n for n, o in REGISTRY.items() if not callable(o.infer) or not callable(o.impl)]
    assert not missing, f"primitives without infer or impl: {missing}"
    no_gen = sorted(set(REGISTRY) - set(GENERATORS) - set(ELSEWHERE))
    assert not no_gen, f"primitives without a type generator in {__file__}: {no_gen}"
    gone = sorted((set(GENERATORS) | set(ELSEWHERE)) - set(REGISTRY))
    assert not gone, f"generators (or ELSEWHERE entries) for primitives that are not registered: {gone}"
    assert len(REGISTRY) >= 59


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_inferred_type_equals_reference_result_type(op):
    opdef = REGISTRY[op]

    @given(case(op))
    def check(c):
        types, attrs, arrays = c
        attrs = Attrs(attrs)
        out_types = opdef.infer_types(types, attrs)
        ins = [D.to_compute(a, t.dtype) for a, t in zip(arrays, types)] if opdef.compute_in_f32 else arrays
        with np.errstate(all="ignore"):
            res = opdef.impl(*ins, **attrs)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        assert len(res) == len(out_types), f"{op}: impl gave {len(res)} results, infer {len(out_types)}"
        for r, t in zip(res, out_types, strict=True):
            r = np.asarray(r)
            assert r.shape == t.shape, f"{op}{[str(x) for x in types]} {dict(attrs)}: impl shape {r.shape}, infer {t}"
            assert r.dtype == _compute_dtype(op, t), f"{op}: impl dtype {r.dtype}, infer {t}"
        # the full path (OpDef.run) gives storage arrays of exactly the inferred types
        for r, t in zip(opdef.run(arrays, attrs, types, out_types), out_types, strict=True):
            assert r.shape == t.shape and r.dtype == t.dtype.storage
    check()


@pytest.mark.parametrize("op,types,attrs", [
    ("add", [TensorType((2, 3), D.float32), TensorType((4,), D.float32)], {}),
    ("add", [TensorType((2,), D.float32), TensorType((2,), D.int32)], {}),
    ("div", [TensorType((2,), D.int32), TensorType((2,), D.int32)], {}),
    ("matmul", [TensorType((2, 3), D.float32), TensorType((2, 3), D.float32)],
     {"transpose_a": False, "transpose_b": False}),
    ("reshape", [TensorType((2, 3), D.float32)], {"shape": (4,)}),
    ("transpose", [TensorType((2, 3), D.float32)], {"perm": (0, 0)}),
    ("reduce_max", [TensorType((0, 3), D.float32)], {"axes": (0,), "keepdims": False}),
    ("argmax", [TensorType((), D.float32)], {"axis": 0, "keepdims": False}),
    ("iota", [], {"shape": (), "axis": 0, "dtype": D.int32}),
    ("slice", [TensorType((4,), D.float32)], {"start": (3,), "limit": (2,), "strides": (1,)}),
    ("conv2d", [TensorType((1, 3, 4, 4), D.float32), TensorType((2, 2, 3, 3), D.float32)],
     {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}),
    ("concatenate", [TensorType((2, 3), D.float32), TensorType((2, 3), D.int32)], {"axis": 0}),
    ("select", [TensorType((2,), D.float32), TensorType((2,), D.float32), TensorType((2,), D.float32)], {}),
    ("take", [TensorType((4,), D.float32), TensorType((2,), D.float32)], {"axis": 0}),
])
def test_bad_types_raise_op_type_error_naming_the_op(op, types, attrs):
    with pytest.raises(OpTypeError, match=f"^{op}:"):
        REGISTRY[op].infer_types(types, Attrs(attrs))


def test_missing_attribute_is_an_op_type_error():
    with pytest.raises(OpTypeError, match="missing attribute"):
        REGISTRY["reshape"].infer_types([TensorType((2,), D.float32)], Attrs({}))


def _mutate(draw, types, attrs):
    """One random corruption of a valid (types, attrs): a dtype, a dim, a rank or an attribute."""
    types, attrs = list(types), dict(attrs)
    kind = draw(st.sampled_from(["dtype", "dim", "rank", "attr", "arity"]))
    if kind in ("dtype", "dim", "rank") and types:
        i = draw(st.integers(0, len(types) - 1))
        t = types[i]
        if kind == "dtype":
            types[i] = TensorType(t.shape, draw(st.sampled_from(ALL)))
        elif kind == "dim" and t.ndim:
            j = draw(st.integers(0, t.ndim - 1))
            shape = list(t.shape)
            shape[j] = max(0, shape[j] + draw(st.sampled_from([-1, 1, 2])))
            types[i] = TensorType(tuple(shape), t.dtype)
        else:
            shape = t.shape[1:] if t.ndim and draw(st.booleans()) else (2,) + t.shape
            types[i] = TensorType(shape, t.dtype)
    elif kind == "attr" and attrs:
        k = draw(st.sampled_from(sorted(attrs)))
        v = attrs[k]
        if isinstance(v, bool):
            attrs[k] = not v
        elif isinstance(v, int):
            attrs[k] = v + draw(st.sampled_from([-2, -1, 1, 3]))
        elif isinstance(v, tuple) and v and all(isinstance(e, int) for e in v):
            choice = draw(st.sampled_from(["shorter", "longer", "bump"]))
            if choice == "shorter":
                attrs[k] = v[:-1]
            elif choice == "longer":
                attrs[k] = v + (1,)
            else:
                j = draw(st.integers(0, len(v) - 1))
                attrs[k] = v[:j] + (v[j] + draw(st.sampled_from([-3, -1, 1, 5])),) + v[j + 1:]
        elif isinstance(v, D.DType):
            attrs[k] = draw(st.sampled_from(ALL))
    elif kind == "arity":
        types = types[:-1] if types and draw(st.booleans()) else types + [TensorType((2,), D.float32)]
    return types, attrs


@pytest.mark.parametrize("op", sorted(GENERATORS))
def test_corrupted_inputs_are_rejected_cleanly_or_typed_correctly(op):
    """infer either rejects a corrupted call with an OpTypeError (which the frontend turns into a
    ShapeError naming the user's line) or accepts it and then the reference agrees with it;
    never an IndexError/TypeError from inside the rule."""
    opdef = REGISTRY[op]

    @given(st.data())
    def check(data):
        types, attrs = GENERATORS[op](data.draw)
        types, attrs = _mutate(data.draw, types, attrs)
        attrs = Attrs(attrs)
        try:
            out_types = opdef.infer_types(types, attrs)
        except OpTypeError:
            return
        rng = np.random.default_rng(0)
        arrays = [make_array(rng, t.shape, t.dtype) for t in types]
        if op in ("random_bits", "random_uniform"):
            arrays[0] = np.array([1, 2], np.uint32)
        if op == "while_loop":
            arrays[0] = np.asarray(1, dtype=types[0].dtype.storage)
        if op in ("take", "scatter_add") and len(types) > 1 and types[1].dtype.is_int:
            arrays[1] = np.zeros(types[1].shape, types[1].dtype.storage)
        with np.errstate(all="ignore"):
            res = opdef.run(arrays, attrs, types, out_types)
        for r, t in zip(res, out_types, strict=True):
            assert r.shape == t.shape and r.dtype == t.dtype.storage
    check()
