"""Every primitive under vmap equals a Python loop over the batch.

Per-example input types and attributes come from the hypothesis generators of
test_ops_infer.py (one per op family, control flow included); on top of them each example
draws a batch size, which inputs are batched and along which (possibly negative) axis, and the
out_axes. vmap runs eagerly and through sf.jit (interpreter backend); the reference is the op
applied to each example in turn and stacked along out_axes.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import sporeflow as sf
from sporeflow.errors import NoRuleError
from sporeflow.core import lax
from sporeflow.frontend.tensor import Tensor
from sporeflow.core.trace import bind
from sporeflow.ir import REGISTRY
from sporeflow.ir import dtypes as D
from sporeflow.ir.parser import parse
from sporeflow.ir.printer import print_graph
from sporeflow.ir.types import Attrs, TensorType
from sporeflow.ir.verify import verify

from test_ops_infer import GENERATORS, example_arrays as op_arrays

T = Tensor


def example_arrays(rng, op: str, types, attrs) -> list[np.ndarray]:
    """One example's inputs (indices in range +-2, keys random, loop counters small)."""
    arrays = op_arrays(rng, op, types, attrs)
    if op == "while_loop":
        arrays[0] = np.asarray(rng.integers(-1, 4), np.int32)
    if op == "cond":
        arrays[0] = np.asarray(rng.random() < 0.5)
    return arrays


@st.composite
def vmap_case(draw, op: str, pattern: tuple | None = None):
    """pattern: which inputs are batched (True/False each); drawn when None."""
    types, attrs = GENERATORS[op](draw)
    assume(types)  # vmap needs an input to map over (ops without inputs: see below)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    size = draw(st.integers(1, 3))
    axes = [draw(st.sampled_from([None] + list(range(-(t.ndim + 1), t.ndim + 1)))) for t in types]
    if pattern is not None:
        assume(len(pattern) == len(types))
        axes = [draw(st.integers(-(t.ndim + 1), t.ndim)) if p else None for t, p in zip(types, pattern)]
    if types and all(a is None for a in axes):
        axes[draw(st.integers(0, len(types) - 1))] = 0
    examples = [example_arrays(rng, op, types, attrs) for _ in range(size)]
    shared = example_arrays(rng, op, types, attrs)
    phys = []
    for i, (t, a) in enumerate(zip(types, axes)):
        if a is None:
            for ex in examples:
                ex[i] = shared[i]
            phys.append(shared[i])
        else:
            phys.append(np.stack([ex[i] for ex in examples], axis=a))
    out_types = REGISTRY[op].infer_types(types, Attrs(attrs))
    out_axes = [draw(st.sampled_from(list(range(-(t.ndim + 1), t.ndim + 1)))) for t in out_types]
    return types, attrs, axes, out_axes, examples, phys, size, draw(st.booleans())


def _tensor(a: np.ndarray, t: TensorType) -> Tensor:
    return Tensor._wrap(np.asarray(a, dtype=t.dtype.storage), t.dtype)


def _close(got: Tensor, want: np.ndarray, dt: D.DType, what: str) -> None:
    g = got.asnumpy() if dt is not D.bfloat16 else got._data
    assert g.shape == want.shape, f"{what}: shape {g.shape} != {want.shape}"
    if dt.is_float and dt is not D.bfloat16:
        tol = {D.float16: 2e-3, D.float32: 1e-5, D.float64: 1e-12}[dt]
        np.testing.assert_allclose(g, want, rtol=tol, atol=tol, err_msg=what)
    elif dt is D.bfloat16:  # decoded values, up to one bf16 ulp (NaN payloads may differ)
        np.testing.assert_allclose(D.bf16_bits_to_f32(g), D.bf16_bits_to_f32(want), rtol=8e-3, atol=1e-30,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(g, want, err_msg=what)


def check_vmap_matches_loop(op: str, c) -> None:
    types, attrs, axes, out_axes, examples, phys, size, use_jit = c
    out_types = REGISTRY[op].infer_types(types, Attrs(attrs))

    def f(*xs):
        return tuple(bind(op, xs, attrs))
    per = [bind(op, [_tensor(a, t) for a, t in zip(ex, types)], attrs) for ex in examples]
    want = [np.stack([(p[j]._data if t.dtype is D.bfloat16 else p[j].asnumpy()) for p in per], axis=oa)
            for j, (t, oa) in enumerate(zip(out_types, out_axes))]
    vf = sf.vmap(f, in_axes=tuple(axes), out_axes=tuple(out_axes))
    args = [_tensor(a, t) for a, t in zip(phys, types)]
    runs = [("eager", vf)] + ([("jit", sf.jit(vf))] if use_jit else [])
    if use_jit:   # the batched graph verifies and survives a print/parse round trip
        g = verify(sf.jit(vf).trace(*args).graph)
        text = print_graph(g)
        assert print_graph(parse(text)) == text
    for mode, fn in runs:
        got = fn(*args)
        for j, (g, w, t) in enumerate(zip(got, want, out_types)):
            _close(g, w, t.dtype, f"{op} {mode} output {j}: in_axes={axes} out_axes={out_axes} attrs={attrs}")


NO_INPUTS = ("iota", "constant")


@pytest.mark.parametrize("op", sorted(set(GENERATORS) - set(NO_INPUTS)))
def test_vmap_equals_loop(op):

    @given(vmap_case(op))
    def check(c):
        check_vmap_matches_loop(op, c)
    check()


PATTERNS = [(op, p) for op, n in (("matmul", 2), ("conv2d", 2), ("take", 2), ("scatter_add", 3))
            for p in __import__("itertools").product((True, False), repeat=n) if any(p)]


@pytest.mark.parametrize("op,pattern", PATTERNS)
def test_vmap_equals_loop_every_batching_pattern(op, pattern):
    """The multi-input rules have one code path per batched/unbatched pattern: test each."""
    @settings(max_examples=6)
    @given(vmap_case(op, pattern))
    def check(c):
        check_vmap_matches_loop(op, c)
    check()


@pytest.mark.parametrize("op", NO_INPUTS)
def test_ops_without_inputs_are_shared_and_broadcast_by_out_axes(op):
    """iota/constant never see a batched input; their rule re-binds them, and a non-None
    out_axes broadcasts their result."""
    @given(st.data())
    def check(data):
        types, attrs = GENERATORS[op](data.draw)
        ref = bind(op, [], attrs)[0]
        x = sf.Tensor(np.arange(3, dtype=np.float32))
        oa = data.draw(st.sampled_from(list(range(-(ref.ndim + 1), ref.ndim + 1))))
        got = sf.vmap(lambda x: (x, lax.multi(op, **attrs)[0]), out_axes=(0, oa))(x)[1]
        want = np.stack([ref._data] * 3, axis=oa)
        np.testing.assert_array_equal(got._data, want)
        outs, dims = REGISTRY[op].batch([], [], **attrs)
        assert dims == [None] and outs[0].shape == ref.shape
    check()


from test_ops_infer import ELSEWHERE  # noqa: E402


def test_every_primitive_has_a_batch_rule_and_a_test():
    """Fails when a primitive lacks a vmap rule, or has no generator to test it with."""
    no_rule = sorted(n for n, o in REGISTRY.items() if not callable(o.batch))
    assert not no_rule, f"primitives without a batch rule: {no_rule}"
    untested = sorted(set(REGISTRY) - set(GENERATORS) - ELSEWHERE)   # collectives: under mpirun; print: test_print.py
    assert not untested, f"primitives without a generator (tests/test_ops_infer.py): {untested}"


def test_missing_rule_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(REGISTRY["sin"], "batch", None)
    with pytest.raises(NoRuleError, match="'sin' has no batching rule"):
        sf.vmap(lambda x: lax.sin(x))(sf.Tensor(np.ones((2, 3), np.float32)))


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_both_batched_with_unit_contraction_is_an_outer_product(ta, tb, rng):
    """K=1 with both operands batched (per-sample weight gradients) becomes a broadcast multiply."""
    a = rng.normal(size=(3, 2) + ((1, 4) if ta else (4, 1)))
    b = rng.normal(size=(3, 2) + ((5, 1) if tb else (1, 5)))
    f = sf.vmap(lambda u, v: lax.matmul(u, v, transpose_a=ta, transpose_b=tb), in_axes=(0, 1), out_axes=1)
    want = np.stack([np.swapaxes(a[i], -1, -2) @ b[i] if ta else a[i] @ b[i] for i in range(3)], 1) if not tb \
        else np.stack([(np.swapaxes(a[i], -1, -2) if ta else a[i]) @ np.swapaxes(b[i], -1, -2) for i in range(3)], 1)
    got = f(T(a), T(np.moveaxis(b, 0, 1)))
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12)
    ops_used = {n.op for n in sf.jit(f).trace(T(a), T(np.moveaxis(b, 0, 1))).graph.nodes}
    assert "matmul" not in ops_used and "mul" in ops_used
