"""GEMM blocks (backends/llvm/gemm.py): products split over cores by rows or columns, all
transpose combinations and batched products equal numpy's."""
import numpy as np
import pytest

import sporeflow as sf
from sporeflow.ir import GraphBuilder, TensorType
from sporeflow.ir.dtypes import float32, float64

pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")


@pytest.mark.parametrize("m,n,k", [(300, 40, 200), (20, 700, 180), (160, 400, 40), (7, 5, 3)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_blocked_gemm_equals_numpy(m, n, k, ta, tb):
    from sporeflow.backends import get_backend
    b = GraphBuilder("mm")
    a_shape, b_shape = ((k, m) if ta else (m, k)), ((n, k) if tb else (k, n))
    x, y = b.add_input(TensorType(a_shape, float32)), b.add_input(TensorType(b_shape, float32))
    g = b.finish(b.emit("matmul", [x, y], {"transpose_a": ta, "transpose_b": tb}))
    rng = np.random.default_rng(m + n)
    A, B = rng.standard_normal(a_shape).astype(np.float32), rng.standard_normal(b_shape).astype(np.float32)
    exe = get_backend("llvm").compile(g)
    want = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B)
    np.testing.assert_allclose(exe(A, B)[0], want, rtol=2e-5, atol=2e-4)
    if m * n * k >= (1 << 21):
        assert "GOMP_parallel" in exe.source


def test_batched_products_in_parallel():
    from sporeflow.backends import get_backend
    b = GraphBuilder("bmm")
    x, y = b.add_input(TensorType((64, 300, 1), float64)), b.add_input(TensorType((64, 1, 200), float64))
    g = b.finish(b.emit("matmul", [x, y], {"transpose_a": False, "transpose_b": False}))
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((64, 300, 1)), rng.standard_normal((64, 1, 200))
    np.testing.assert_allclose(get_backend("llvm").compile(g)(A, B)[0], A @ B, rtol=1e-12)


def _product_graph(a_shape, b_shape, ta, tb, dtype=float32, accumulate=False):
    b = GraphBuilder("mm")
    x, y = b.add_input(TensorType(a_shape, dtype)), b.add_input(TensorType(b_shape, dtype))
    p = b.emit("matmul", [x, y], {"transpose_a": ta, "transpose_b": tb})
    if accumulate:
        m, n = (a_shape[1] if ta else a_shape[0]), (b_shape[0] if tb else b_shape[1])
        acc = b.add_input(TensorType((m, n), dtype))
        p = b.emit("add", [acc, p[0]], {})
    return b.finish(p)


@pytest.mark.parametrize("m,n,k", [(16, 96, 80), (32, 512, 784), (128, 512, 512)])
def test_few_row_product_with_transposed_b_runs_swapped(m, n, k):
    """x @ W^T with few rows (a Dense layer, W kept [out, in]) is computed as (W @ x^T)^T: the
    BLAS call has the dimensions swapped, and the result is the product's."""
    from sporeflow.backends import get_backend
    from sporeflow.backends.llvm import gemm
    assert gemm._swap_pays(m, n, k, False, True)
    exe = get_backend("llvm").compile(_product_graph((m, k), (n, k), False, True))
    rng = np.random.default_rng(m)
    A, B = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
    np.testing.assert_allclose(exe(A, B)[0], A.astype(np.float64) @ B.T, rtol=2e-5, atol=2e-4)
    calls = [ln for ln in exe.source.splitlines() if "cblas_sgemm" in ln and "call" in ln]
    # C^T[n, m] = W @ x^T: its row stride (the last argument) is m, C's would be n
    assert calls and all("i32 101, i32 111, i32 112, " in c and c.endswith(f", i64 {m})") for c in calls), calls


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,k", [(300, 40, 200), (9, 7, 5)])
def test_accumulating_product_is_one_blas_call_with_beta_one(m, n, k, ta, tb):
    """acc + A @ B (a gradient summed over micro-batches) fuses into BLAS's beta = 1: no epilogue
    pass, the accumulator read once; equal to numpy for every transpose, in float32 and float64."""
    from sporeflow.backends import get_backend
    from sporeflow.passes.pipelines import run_default_pipeline
    for dt, np_dt, tol in ((float32, np.float32, 2e-4), (float64, np.float64, 1e-10)):
        a_shape, b_shape = ((k, m) if ta else (m, k)), ((n, k) if tb else (k, n))
        g = run_default_pipeline(_product_graph(a_shape, b_shape, ta, tb, dt, accumulate=True), "llvm")
        assert [n_.op for n_ in g.nodes] == ["fused"], [n_.op for n_ in g.nodes]
        exe = get_backend("llvm").compile(g)
        assert "accumulating product (BLAS beta = 1)" in exe.source
        rng = np.random.default_rng(k)
        A, B, C = (rng.standard_normal(s).astype(np_dt) for s in (a_shape, b_shape, (m, n)))
        want = C + (A.T if ta else A).astype(np.float64) @ (B.T if tb else B)
        np.testing.assert_allclose(exe(A, B, C)[0], want, rtol=tol, atol=tol)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_generated_register_blocked_kernel_of_the_bench_equals_numpy(ta, tb):
    """bench/gemm_generated.py's kernel (the measured alternative to OpenBLAS): two K slices
    (k > KC, the second accumulates into C) and two row blocks (m > MC), every transpose."""
    import ctypes
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
    import gemm_generated as G
    from sporeflow.backends.llvm import hostcpu, jit
    lanes = hostcpu.host().f32_lanes
    m, n, k = G.MC + 8, 4 * lanes, G.KC + 44
    rng = np.random.default_rng(1)
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    src = G.sgemm_ir(m, n, k, ta, tb, 8, 2, lanes)
    loaded = jit.Loaded(jit.compile_object(src)[0], src)
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)(loaded.address("sgemm"))
    C = np.full((m, n), np.nan, np.float32)
    ap, bp = np.empty(G.MC * G.KC, np.float32), np.empty(G.KC * n, np.float32)
    fn(A.ctypes.data, B.ctypes.data, C.ctypes.data, ap.ctypes.data, bp.ctypes.data)
    want = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B)
    np.testing.assert_allclose(C, want, rtol=2e-5, atol=2e-4)


def test_large_products_never_hand_the_cores_to_openblas_threads():
    """Even a 2048^3 product runs single-threaded OpenBLAS blocks on GOMP's threads: OpenBLAS's
    own idle workers would spin for ~0.1 s after the call, against the kernels after it."""
    from sporeflow.backends import get_backend
    from sporeflow.backends.llvm.gemm import _thread_control
    if not _thread_control():
        pytest.skip("numpy's OpenBLAS thread-count functions are not exposed here")
    g = _product_graph((2048, 2048), (2048, 2048), False, False, float32)
    src = get_backend("llvm").compile(g).source
    assert "call void @scipy_openblas_set_num_threads64_(i32 1)" in src and "GOMP_parallel" in src
