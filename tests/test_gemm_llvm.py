"""GEMM blocks (backends/llvm/gemm.py): products split over cores by rows or columns, all
transpose combinations and batched products equal numpy's."""
import numpy as np
import pytest

import sporeflow as sf
from sporeflow.ir import GraphBuilder, TensorType
from sporeflow.ir.dtypes import float32, float64

pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")


@pytest.mark.parametrize("m,n,k", [(300, 40, 200), (20, 700, 180), (7, 5, 3)])
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
