"""conv2d as im2col + BLAS (backends/llvm/conv.py) equals the interpreter over strides,
paddings, dilations, groups, 1x1 kernels, and the shapes autodiff makes for its gradients."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import sporeflow as sf
from sporeflow.ir import GraphBuilder, TensorType, run_graph
from sporeflow.ir.dtypes import float32, float64

pytest.importorskip("sporeflow.backends.llvm", reason="LLVM backend not present")


@st.composite
def convs(draw):
    g = draw(st.sampled_from([1, 1, 2]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(d[0] * (kh - 1) + 1, 8))
    w = draw(st.integers(d[1] * (kw - 1) + 1, 8))
    n = draw(st.integers(1, 3))
    dt = draw(st.sampled_from([float32, float64]))
    return (n, cg * g, h, w), (og * g, cg, kh, kw), dict(stride=s, padding=p, dilation=d, groups=g), dt


@given(convs(), st.integers(0, 1000))
def test_conv2d_blas_equals_interpreter(case, seed):
    xs, ws, attrs, dt = case
    b = GraphBuilder("conv")
    x, w = b.add_input(TensorType(xs, dt)), b.add_input(TensorType(ws, dt))
    g = b.finish(b.emit("conv2d", [x, w], attrs))
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(xs).astype(dt.storage), rng.standard_normal(ws).astype(dt.storage)]
    from sporeflow.backends import get_backend
    exe = get_backend("llvm").compile(g)
    assert "im2col + gemm" in exe.source or "conv2d as scatter" in exe.source
    tol = 1e-5 if dt is float32 else 1e-12
    np.testing.assert_allclose(exe(*args)[0], run_graph(g, args)[0], rtol=tol, atol=tol)


def _compiled_conv(xs, ws, pad, dt, seed):
    """A one-conv2d graph (stride and dilation 1), its LLVM executable and random inputs."""
    from sporeflow.backends import get_backend
    b = GraphBuilder("conv")
    x, w = b.add_input(TensorType(xs, dt)), b.add_input(TensorType(ws, dt))
    g = b.finish(b.emit("conv2d", [x, w], dict(stride=(1, 1), padding=pad, dilation=(1, 1), groups=1)))
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(xs).astype(dt.storage), rng.standard_normal(ws).astype(dt.storage)]
    return g, get_backend("llvm").compile(g), args


@pytest.mark.parametrize("xs,ws,pad", [((1, 4, 12, 12), (3, 4, 10, 10), (0, 0, 0, 0)),   # weight-gradient shape
                                       ((2, 3, 9, 9), (2, 3, 7, 8), (1, 2, 0, 3))])
def test_wide_kernels_use_the_transposed_panel(xs, ws, pad):
    g, exe, args = _compiled_conv(xs, ws, pad, float32, 1)
    assert "(transposed panel)" in exe.source
    np.testing.assert_allclose(exe(*args)[0], run_graph(g, args)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dt", [float32, float64])
@pytest.mark.parametrize("xs,ws,pad,marker", [
    ((1, 8, 34, 34), (3, 8, 30, 29), (0, 0, 0, 0), "dot-product gemm"),        # chunks, m/n remainders
    ((1, 8, 36, 36), (6, 8, 32, 32), (1, 0, 2, 1), "dot-product gemm"),        # padded
    ((1, 8, 9, 9), (5, 8, 3, 3), (1, 1, 1, 1), "channel chunks"),              # chunks through BLAS (lda)
    ((3, 16, 20, 20), (5, 16, 17, 17), (0, 0, 0, 0), "dot-product gemm")])     # one per image
def test_weight_gradient_shapes(monkeypatch, dt, xs, ws, pad, marker):
    """The paths autodiff's weight gradients take: one image split into channel chunks (partial
    outputs summed in a fixed order) and the long-k dot-product kernel for wide kernels."""
    from sporeflow.backends.llvm import parallel
    if not parallel.gomp_available():
        pytest.skip("no libgomp: single images are not split")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    g, exe, args = _compiled_conv(xs, ws, pad, dt, 2)
    assert marker in exe.source
    tol = 2e-4 if dt is float32 else 1e-10
    np.testing.assert_allclose(exe(*args)[0], run_graph(g, args)[0], rtol=tol, atol=tol)


@st.composite
def full_convs(draw):
    """Stride 1, padding K-1 on every side: autodiff's input gradient of a valid convolution."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    xs = (draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    ws = (draw(st.integers(1, 5)), xs[1], kh, kw)
    return xs, ws, (kh - 1, kh - 1, kw - 1, kw - 1), draw(st.sampled_from([float32, float64]))


@given(full_convs(), st.integers(0, 1000))
def test_full_convolutions_scatter_from_the_input_pixels(case, seed):
    """One GEMM over the input pixels, then every contribution added as a shift of the whole
    plane (conv.py): equal to the interpreter, the plane's last rows and columns included."""
    xs, ws, pad, dt = case
    g, exe, args = _compiled_conv(xs, ws, pad, dt, seed)
    assert ("conv2d as scatter" in exe.source) == (ws[2] * ws[3] > 1)
    tol = 1e-5 if dt is float32 else 1e-12
    np.testing.assert_allclose(exe(*args)[0], run_graph(g, args)[0], rtol=tol, atol=tol)


def test_input_gradient_of_a_valid_convolution_scatters():
    """The conv2d vjp passes the padding to the convolution (no padded copy), so the LLVM
    backend sees the full convolution: LeNet's second layer shape, against the interpreter."""
    from sporeflow import ops
    rng = np.random.default_rng(4)
    x = sf.Tensor(rng.standard_normal((4, 6, 14, 14)).astype(np.float32))
    w = sf.Tensor(rng.standard_normal((16, 6, 5, 5)).astype(np.float32))
    dx = sf.grad(lambda x, w: (ops.conv2d(x, w) ** 2).sum())
    got = sf.jit(dx, backend="llvm")
    want = sf.jit(dx, backend="interp")(x, w)
    np.testing.assert_allclose(got(x, w).asnumpy(), want.asnumpy(), rtol=1e-4, atol=1e-3)
    assert "conv2d as scatter" in next(iter(got._cache.values())).executable.source
