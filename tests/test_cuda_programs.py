"""Whole programs on the CUDA backend (CPU emulator) equal the interpreter: hypothesis-drawn
fused programs (elementwise, broadcast, row/column reductions, matmul masters), random programs
with control flow (cond, while_loop, scan), the models' fused groups (softmax, layer norm,
cross entropy, conv + pool), and gradients of small networks in float32, float16 and bfloat16.
Every kernel runs in both fibre orders (threads 0..n-1 and reversed) to catch missing barriers.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import sporeflow as sf
from sporeflow import ops
from sporeflow.backends import get_backend
from sporeflow.backends.cuda.device import EmulatedDevice
from sporeflow.ir import dtypes as D, run_graph, verify
from sporeflow.passes.fusion import fuse

from fusion_programs import programs as fused_programs
from test_llvm_programs import programs as control_programs

RNG = np.random.default_rng(5)


def _run(exe, args):
    """Host arrays to the (emulated) device, run, results back to the host."""
    return [exe.device.asnumpy(a) for a in exe(*[exe.device.upload(a) for a in args])]


def _both_orders(g, args):
    """Results of `g` on the emulator, threads forward and reversed (they must agree)."""
    exe = get_backend("cuda-emulated").compile(verify(g))
    out = _run(exe, args)
    dev = exe.device
    saved = dev.order
    dev.order = 1 - saved
    try:
        out2 = _run(exe, args)
    finally:
        dev.order = saved
    for a, b in zip(out, out2):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-6, atol=1e-6)
    return exe, out


@settings(max_examples=6)
@given(fused_programs())
def test_fused_programs_equal_interpreter(prog):
    g, args = prog
    want = run_graph(g, args)
    _, got = _both_orders(fuse(g), args)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=3e-5, atol=3e-5)


@settings(max_examples=4)
@given(control_programs(), st.integers(0, 2 ** 31))
def test_control_flow_programs_equal_interpreter(g, seed):
    rng = np.random.default_rng(seed)
    dt = g.inputs[0].dtype
    args = [rng.normal(0, 1.5, size=v.shape).astype(dt.storage) for v in g.inputs]
    got = _run(get_backend("cuda-emulated").compile(verify(g)), args)
    for x, r in zip(got, run_graph(g, args), strict=True):
        fin = np.isfinite(r)
        assert (np.isnan(x) == np.isnan(r)).all()
        tol = 1e-4 if dt is D.float32 else 1e-11
        np.testing.assert_allclose(x[fin], r[fin], rtol=tol, atol=tol * (1 + np.max(np.abs(r[fin]), initial=0)))


G = sf.Parameter(sf.Tensor(RNG.standard_normal((300,)).astype(np.float32)), name="g")
W = sf.Parameter(sf.Tensor(RNG.standard_normal((9, 5)).astype(np.float32)), name="w")


@pytest.mark.parametrize("name,fn,shapes,kind", [
    ("softmax", lambda a: ops.softmax(a, -1), [(5, 700)], "row"),
    ("layer_norm", lambda a: ops.layer_norm(a, -1, G, G), [(4, 300)], "row"),
    ("cross_entropy", lambda a, y: ops.softmax_cross_entropy(a, y), [(6, 9), "onehot"], "row"),
    ("dense_softmax", lambda a: ops.softmax(ops.matmul(a, W), -1), [(6, 9)], "row"),
    ("bias_grad", lambda a, d: ops.sum(d * ops.tanh(a), 0), [(40, 33), (40, 33)], "column"),
])
def test_model_groups_become_block_reductions(name, fn, shapes, kind):
    arrays = [np.eye(9, dtype=np.float32)[RNG.integers(0, 9, 6)] if s == "onehot"
              else RNG.standard_normal(s).astype(np.float32) for s in shapes]
    tr = sf.jit(fn).trace(*[sf.Tensor(a) for a in arrays])
    args = arrays + [p.asnumpy() for p in tr.captured]
    exe, got = _both_orders(fuse(tr.graph), args)
    for a, b in zip(run_graph(tr.graph, args), got, strict=True):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5)
    if kind == "row":
        assert "sf_block_reduce<" in exe.source and "__shfl_xor_sync" in exe.source
    else:
        assert "for (long long row = 0;" in exe.source


def _loss(x, w, b, fw, gamma, y):
    """conv -> max-pool -> tanh -> dense -> layer norm -> cross entropy -> mean."""
    h = ops.tanh(ops.max_pool2d(ops.conv2d(x, w, pad_mode="pad", padding=1) + ops.reshape(b, (1, 3, 1, 1)), 2, 2))
    z = ops.matmul(ops.reshape(h, (x.shape[0], -1)), fw)
    z = ops.layer_norm(z, -1, gamma, gamma)
    return ops.mean(ops.softmax_cross_entropy(z, y))


@pytest.mark.parametrize("dtype,tol", [(sf.float32, 2e-4), (sf.float16, 3e-2), (sf.bfloat16, 6e-2)])
def test_network_gradients_match_interpreter(dtype, tol):
    """value_and_grad of conv, max-pool, dense, layer norm and cross entropy, jitted for the
    emulator and for the interpreter, every value in the given float dtype."""
    shapes = [(3, 2, 6, 6), (3, 2, 3, 3), (3,), (27, 4), (4,)]
    args = [sf.Tensor(RNG.standard_normal(s).astype(np.float32) * (0.5 if k else 1.0)).astype(dtype)
            for k, s in enumerate(shapes)]
    args.append(sf.Tensor(np.eye(4, dtype=np.float32)[[0, 2, 3]]).astype(dtype))
    step = sf.value_and_grad(_loss, grad_position=(0, 1, 2, 3, 4))
    traced = sf.jit(step, backend="cuda-emulated").trace(*args)
    assert f"{dtype.short}[3,3,3,3]" in str(traced.graph)       # the conv runs in `dtype`
    want = sf.jit(step, backend="interp")(*args)
    got = sf.jit(step, backend="cuda-emulated")(*args)
    for a, b in zip([want[0], *want[1]], [got[0], *got[1]], strict=True):
        assert a.dtype is b.dtype is dtype
        a, b = a.astype(sf.float32).asnumpy(), b.astype(sf.float32).asnumpy()
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * (1 + np.abs(a).max()))


def test_thread_order_catches_a_missing_barrier():
    """The emulator's reversed order exposes a kernel that reads a neighbour's shared-memory
    write without __syncthreads (right in thread order, wrong reversed), and it refuses a
    divergent barrier instead of hanging."""
    from sporeflow.backends.cuda.module import Kernel, Module
    racy = Kernel("racy", [("float", "in0", False), ("float", "out0", True)],
                  "  __shared__ float s[64];\n  s[threadIdx.x] = in0[threadIdx.x];\n"
                  "  out0[threadIdx.x] = s[threadIdx.x ? threadIdx.x - 1 : 0];\n", 1, 64, sync=True)
    bad = Kernel("bad", [("float", "in0", False), ("float", "out0", True)],
                 "  if (threadIdx.x < 16) __syncthreads();\n  out0[threadIdx.x] = in0[threadIdx.x];\n", 1, 32, sync=True)
    mod = Module("races")
    mod.add(racy)
    mod.add(bad)
    results = []
    for order in (0, 1):
        x = np.arange(64, dtype=np.float32) + 100 * order
        want = np.concatenate([x[:1], x[:-1]])
        dev = EmulatedDevice(workers=1, order=order)
        m = dev.load(mod)
        y = np.zeros(64, np.float32)
        m.launch("racy", 1, 64, [x, y])
        results.append(np.array_equal(y, want))
        with pytest.raises(sf.errors.BackendError, match="deadlocked"):
            m.launch("bad", 1, 32, [x, np.zeros(32, np.float32)])
    assert results == [True, False]


def test_source_is_the_cuda_c_a_gpu_runs():
    f = sf.jit(lambda a: ops.softmax(a * 2.0, -1), backend="cuda-emulated")
    src = f.trace(sf.Tensor(np.ones((4, 8), np.float32))).lower().source
    assert 'extern "C" __global__' in src and "sf_block_reduce" in src and "#include" not in src


def test_nvrtc_compiles_every_generated_kernel():
    """The translation unit of a whole training graph (conv, pool, layer norm, cross entropy,
    their gradients) is valid CUDA for sm_90: NVRTC compiles it and ptxas reports registers and
    shared memory for every kernel."""
    from sporeflow.backends.cuda import compiler
    why = compiler.nvrtc_available()
    if why is not None:
        pytest.skip(why)
    shapes = [(3, 2, 6, 6), (3, 2, 3, 3), (3,), (27, 4), (4,)]
    args = [sf.Tensor(RNG.standard_normal(s).astype(np.float32)) for s in shapes]
    args.append(sf.Tensor(np.eye(4, dtype=np.float32)[[0, 2, 3]]))
    exe = sf.jit(sf.value_and_grad(_loss, grad_position=(0, 1, 2, 3, 4)), backend="cuda-emulated") \
        .trace(*args).lower().executable
    report = exe.stats["nvrtc"]
    names = {k.name for k in exe.module.kernels}
    assert set(report) == names and len(names) > 10
    assert all(r["registers"] > 0 for r in report.values())
    assert any(r["smem"] > 0 for r in report.values())      # the block reductions' partials
