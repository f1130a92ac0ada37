"""Fused kernels on the LLVM backend equal the interpreter (random programs and the models'
groups), and each recognized group is rendered as one loop nest, not inlined."""
import types

import numpy as np
import pytest
from hypothesis import given

import sporeflow as sf
from sporeflow import ops
from sporeflow.ir import run_graph, verify
from sporeflow.passes.fusion import fuse

from fusion_programs import programs

llvm = pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")
RNG = np.random.default_rng(3)


def _compile(g):
    from sporeflow.backends import get_backend
    return get_backend("llvm").compile(verify(g))


def _close(want, got):
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=3e-6, atol=2e-6)


@given(programs())
def test_random_programs_fused_llvm_equal_interpreter(prog):
    g, args = prog
    want = run_graph(g, args)
    _close(want, _compile(fuse(g))(*args))


def _case(fn, *arrays):
    ts = [sf.Tensor(a) for a in arrays]
    tr = sf.jit(fn).trace(*ts)
    args = list(arrays) + [p.asnumpy() for p in tr.captured]
    fg = fuse(tr.graph)
    exe = _compile(fg)
    _close(run_graph(tr.graph, args), exe(*args))
    return [line.split(": ")[-1] for line in exe.source.splitlines() if line.strip().startswith("; fused fused_")]


W = sf.Parameter(sf.Tensor(RNG.standard_normal((9, 5)).astype(np.float32)), name="w")
B = sf.Parameter(sf.Tensor(RNG.standard_normal((5,)).astype(np.float32)), name="b")
G = sf.Parameter(sf.Tensor(RNG.standard_normal((300,)).astype(np.float32)), name="g")


@pytest.mark.parametrize("name,fn,shapes,render", [
    ("chain", lambda a: ops.gelu(a * 2.0 + 1.0, approximate="tanh") * ops.sigmoid(a), [(70000,)], ["elementwise"]),
    ("softmax", lambda a: ops.softmax(a, -1), [(5, 2500)], ["row"]),     # blocked sums (> BLOCK)
    ("dense_relu", lambda a: ops.relu(ops.matmul(a, W) + B), [(6, 9)], ["elementwise"]),
    ("dense_softmax", lambda a: ops.softmax(ops.matmul(a, W) + B, -1), [(6, 9)], ["row"]),
    ("layer_norm", lambda a: ops.layer_norm(a, -1, G, G), [(4, 300)], ["row"]),
    ("cross_entropy", lambda a, y: ops.softmax_cross_entropy(a, y), [(6, 9), "onehot"], ["row"]),
    ("bias_grad", lambda a, d: ops.sum(d * ops.tanh(a), 0), [(40, 33), (40, 33)], ["column"]),
])
def test_model_groups_render_as_loop_nests(name, fn, shapes, render):
    arrays = [np.eye(9, dtype=np.float32)[RNG.integers(0, 9, 6)] if s == "onehot"
              else RNG.standard_normal(s).astype(np.float32) * 2 for s in shapes]
    assert _case(fn, *arrays) == render


def test_special_values_flow_through_fused_kernels():
    x = np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, 88.0, -100.0]], np.float32)
    _case(lambda a: ops.tanh(a) * ops.exp(ops.minimum(a, 10.0)) + ops.abs(a), x)
    _case(lambda a: ops.softmax(a, -1), x)


class _WithAvx512Scaling:
    """The host as it is, except that math_f32 takes its AVX-512 form (2^n by llvm.ldexp, a
    libcall where the host has no vscalefps): that form is checked on every host."""
    def __init__(self, host):
        self._host = host

    def has(self, feature: str) -> bool:
        return feature == "avx512f" or self._host.has(feature)


@pytest.mark.parametrize("scaling", ["host", "ldexp"])
def test_float32_exp_tanh_within_two_ulp(monkeypatch, scaling):
    """Fused float32 kernels use math_f32 (the fast tier): bound checked against float64, with
    2^n built from exponent bits (non-AVX-512 hosts) and by ldexp (AVX-512)."""
    from sporeflow.backends.llvm import hostcpu, math_f32
    if scaling == "ldexp":
        host = _WithAvx512Scaling(hostcpu.host())
        monkeypatch.setattr(math_f32, "hostcpu", types.SimpleNamespace(host=lambda: host))
    x = np.concatenate([np.linspace(-104, 89, 200_001, dtype=np.float32),
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 0.6249, 0.625], np.float32)])
    for fn, ref in ((ops.exp, np.exp), (ops.tanh, np.tanh)):
        tr = sf.jit(lambda a: fn(a) * 1.0).trace(sf.Tensor(x))   # a fused (exact) multiply
        exe = _compile(fuse(tr.graph))
        assert ("@llvm.ldexp" in exe.source) == (scaling == "ldexp" or hostcpu.host().has("avx512f"))
        got = exe(x)[0]
        with np.errstate(over="ignore"):
            want = ref(x.astype(np.float64)).astype(np.float32)
        normal = np.isfinite(want) & (np.abs(want) > 1.2e-38)
        ulp = np.abs(got[normal].astype(np.float64) - want[normal]) / np.spacing(np.abs(want[normal]))
        assert ulp.max() <= 2.0
        special = ~np.isfinite(want) | (want == 0)
        np.testing.assert_array_equal(got[special], want[special])
        sub = np.isfinite(want) & ~normal       # subnormal results: within one subnormal step
        assert np.abs(got[sub].astype(np.float64) - want[sub]).max(initial=0) <= 1.5e-45
        assert np.signbit(got[x == 0]).tolist() == np.signbit(want[x == 0]).tolist()


def test_standalone_reductions_row_and_column_kernels_are_accurate():
    """Sums over trailing axes (blocked float partial sums) and leading axes (double column
    accumulators) stay within a few ulp of the float64 sum, also for long rows."""
    x = (RNG.standard_normal((3, 70000)) + 10).astype(np.float32)
    for fn, ref in ((lambda a: ops.sum(a, 1), x.astype(np.float64).sum(1)),
                    (lambda a: ops.sum(a, 0), x.astype(np.float64).sum(0)),
                    (lambda a: ops.amax(a, 1), x.max(1)),
                    (lambda a: ops.sum(a.T * 1.0, 0), x.astype(np.float64).sum(1))):   # a long column
        g = sf.jit(fn).trace(sf.Tensor(x)).graph
        exe = _compile(g)
        assert "@k_reduce_" in exe.source          # the row/column kernel, not the generic loop
        np.testing.assert_allclose(exe(x)[0], ref.astype(np.float32), rtol=4e-7)


def test_row_max_min_propagate_nan_per_row():
    x = RNG.standard_normal((4, 3000)).astype(np.float32)
    x[1, 1234] = np.nan
    x[2, :] = -np.inf
    for fn, ref in ((lambda a: ops.amax(a, 1), np.max), (lambda a: ops.amin(a, -1), np.min)):
        exe = _compile(sf.jit(fn).trace(sf.Tensor(x)).graph)
        np.testing.assert_array_equal(exe(x)[0], ref(x, axis=1))


@pytest.mark.parametrize("op", ["reduce_sum", "reduce_max", "reduce_min"])
@pytest.mark.parametrize("axes", [(0, 2, 3), (1, 3), (0, 1, 3), (2, 3), (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_reductions_over_mixed_axes(op, axes, keepdims, dtype):
    """Axis sets ending with the last axis (a conv bias gradient) run as a row kernel over the
    trailing run, then the rest over its result; results equal the interpreter, NaN included."""
    from sporeflow.ir import GraphBuilder, TensorType
    from sporeflow.ir import dtypes as D
    dt = getattr(D, dtype)
    b = GraphBuilder("red")
    x = b.add_input(TensorType((5, 6, 7, 9), dt))
    g = b.finish(b.emit(op, [x], {"axes": axes, "keepdims": keepdims}))
    a = (RNG.standard_normal((5, 6, 7, 9)) * 10).astype(dt.storage)
    if dtype == "float32":
        a[1, 2, 3, 4] = np.nan
    exe = _compile(g)
    want, got = run_graph(g, [a])[0], exe(a)[0]
    if dtype == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_array_equal(got, want)
    if 3 in axes and axes != tuple(range(axes[0], 4)):      # split: row kernel, then the rest
        trail = 3
        while trail - 1 in axes:
            trail -= 1
        rest = [k for k in axes if k < trail]
        leading = rest == list(range(len(rest)))
        assert exe.source.count("define internal void @k_reduce") >= (2 if leading else 1), exe.source[:400]


def test_reshaped_input_outer_product_is_one_strided_kernel():
    """x[b, i] reshaped to [b, i, 1] times d[b, 1, j] (vmap's per-sample weight gradient): the
    input does not broadcast to the domain itself, but the kernel reads it only through the
    reshape's strides, so the group is one strided loop nest, not op-by-op with copies."""
    import re
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 7)).astype(np.float32)
    d = rng.standard_normal((8, 1, 300)).astype(np.float32)
    f = sf.jit(lambda a, b: ops.reshape(a, (8, 7, 1)) * b + 1.0, backend="llvm")
    got = f(sf.Tensor(x), sf.Tensor(d)).asnumpy()
    np.testing.assert_array_equal(got, x[:, :, None] * d + np.float32(1.0))
    (c,) = f._cache.values()
    src = c.executable.source
    assert re.search(r"define internal void @k_fused_reshape_mul", src), src[:2000]
    assert not re.findall(r"llvm\.memcpy[^\n]*i64 67200,", src), "the result was copied out of a scratch slot"
