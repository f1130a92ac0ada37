"""GEMM calls: single-threaded OpenBLAS per block, the blocks spread over cores by libgomp.

Why not let OpenBLAS thread itself: its worker threads wait for work in a sched_yield loop.
On this 2-core VM, with any other process runnable, a 128x784x512 product took 5.2 ms on 2
OpenBLAS threads against 1.6 ms on one (measured under load 4-5; a 16x6400x25 product: 1.4 ms
vs 0.19 ms), and numpy's MLP step went from 4 ms to 260 ms, while JAX's thread pool
lost only 25%. So every product runs OpenBLAS with one thread (set around the call and
restored, so numpy keeps its own setting), and large products are split into row (or
column) blocks of C that run on all cores through the same GOMP fork/join as the fused
kernels (parallel.py). For large square products this matches OpenBLAS's own threading
(each block is a full-speed single-threaded SGEMM; Zen 4, two cores: 1024^3 12.2-12.6 ms split
against 12.4-12.6 on OpenBLAS's threads, 2048^3 90.5 against 91.3), and OpenBLAS's threads are
never used, whatever the size: after each call its idle workers spin for ~0.1 s, and whatever
the step runs next loses a core to them (a 1024^3 product followed by a 4M-element
elementwise chain: 22-25 ms on OpenBLAS's threads against 13.6-13.8 split; at 2048^3, 100 ms
against 91). Small products (< GEMM_PARALLEL_MACS multiply-adds) stay on one core, where the
fork/join would cost more than it saves.
Why BLAS rather than a generated kernel: `bench/gemm_generated.py` builds one (GotoBLAS-style
packing of A and B, an 8 x 2-vector register tile, KC 256, MC 192, in LLVM IR at the host's
width) and measures it against numpy's OpenBLAS (its SkylakeX kernel here), one core each.
Zen 4 with AVX-512 (one-core FMA roof 114 GFLOP/s), four runs, generated / OpenBLAS time:

    shape class (MLP train step)            generated vs OpenBLAS   used
    128x512x784  forward                    1.02-1.04x faster       OpenBLAS
    128x512x512  input gradient (B^T)       1.01-1.07x faster       OpenBLAS
    784x512x128  weight gradient (A^T)      0.97-1.16x              OpenBLAS
    512x512x128  weight gradient (A^T)      1.04-1.13x faster       OpenBLAS
    1024^3       square                     0.89-1.00x (slower)     OpenBLAS

On the AVX2 path (SPOREFLOW_MAX_VECTOR_WIDTH=256, a 4 x 2-vector tile) all five are 0.97-1.02x.
Two threads on halves (this module's split) keep ~10% on the weight gradients and bring the
forward to even. It is not used because each (transpose_a, transpose_b) variant costs 30-40 ms
of LLVM and a train step holds three: ~100 ms more per cold compile, ~50 ms with the module's
parts on two threads (module_split.py; estimated from the per-variant cost, not measured), on
a cold MLP-step compile of 0.11 s, for ~4% of the step. A kernel with runtime shapes compiled
once per process and object-cached would avoid that; it also needs edge tiles (M % 8, N % NR).
"""
from __future__ import annotations

import os

import numpy as np

from ...ir.dtypes import float32, float64
from .codegen import nbytes
from .irgen import BYTES, FnBuilder, compute_ty
from .kernels_shape import copy_strided
from .kernels_elem import narrow_into, widened
from .kernels_nn import blas_available, emit_gemm, expose_openblas, lower_matmul as lower_matmul_generic
from .parallel import emit_parallel_for, gomp_available

GEMM_PARALLEL_MACS = int(os.environ.get("SPOREFLOW_GEMM_PARALLEL_MACS", 1 << 21))
_SET, _GET = "scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"
_threads_ok: bool | None = None


def _thread_control() -> bool:
    """Expose OpenBLAS's thread-count functions to the JIT linker (once)."""
    global _threads_ok
    if _threads_ok is None:
        _threads_ok = blas_available() and expose_openblas((_SET, _GET))
    return _threads_ok


def single_threaded_blas(b: FnBuilder):
    """Emit `old = get(); set(1)` and return a function that emits the restore."""
    if not _thread_control():
        return lambda: None
    b.module.declare(f"declare i32 @{_GET}()")
    b.module.declare(f"declare void @{_SET}(i32)")
    old = b.op(f"call i32 @{_GET}()")
    b.emit(f"call void @{_SET}(i32 1)")
    return lambda: b.emit(f"call void @{_SET}(i32 {old})")


# Row blocks write whole rows of C and read whole panels of op(A); column blocks write part
# rows and each packs all of op(A). For a shallow product (C's traffic against few FLOPs per
# element) with enough rows, rows win even when n > m: two cores, 512x784 = d^T @ x (Dense's
# weight gradient, W [out, in]) at k = 32 / 64 / 128: 0.16 / 0.28 / 0.51 ms by rows against
# 0.23 / 0.37 / 0.63 by columns; 128x512 at k = 128: 0.106 against 0.114. Deep products stay by
# columns: 128x512x784 was even alone but the MLP step took 2.69 ms instead of 2.54 by rows;
# with few rows columns win (32x512x784: 0.18 against 0.22).
ROW_SPLIT_MIN_ROWS = 128
ROW_SPLIT_MAX_K = 128

# C = A @ B^T with few rows (a Dense layer's x @ W^T, W kept [out, in] as MindSpore does):
# OpenBLAS packs B^T's panels and reuses each only m/MR times, so it runs the product as
# C^T = B @ A^T much faster, and transposing the small C back is cheap. One core, OpenBLAS
# SkylakeX kernel on Zen 4, n = 512, k = 784 / 512, time of C = A @ B^T over the swapped form:
#     m = 16: 1.84x   m = 32: 1.48x   m = 64: 1.23x   m = 128: 1.10x
# The other transpose combinations gain at most 1.13x at m = 16 and nothing from m = 64 up.
SWAP_MAX_ROWS_FRACTION = 2      # swap when m <= n / 2 ...
SWAP_MIN_K = 64                 # ... and the product is deep enough to dwarf the transpose


def _swap_pays(m: int, n: int, k: int, ta: bool, tb: bool) -> bool:
    return not ta and tb and m * SWAP_MAX_ROWS_FRACTION <= n and k >= SWAP_MIN_K


def emit_gemm_blocks(fx, ty: str, a: str, bm: str, c: str, m: int, n: int, k: int, ta: bool, tb: bool,
                     name: str = "gemm", beta: float = 0.0) -> None:
    """C[m,n] = op(A) @ op(B) + beta C, split over the cores when large (see the module note)."""
    b = fx.b
    if beta == 0.0 and _swap_pays(m, n, k, ta, tb):
        ct = fx.scratch(m * n * BYTES[ty])         # C^T[n,m] = op(B)^T @ op(A)^T, then C = (C^T)^T
        emit_gemm_blocks(fx, ty, bm, a, ct, n, m, k, not tb, not ta, name)
        copy_strided(b, c, ct, {"float": float32, "double": float64}[ty], (m, n), (n, 1), (1, m))
        return
    restore = single_threaded_blas(b)
    if m * n * k < GEMM_PARALLEL_MACS or not gomp_available() or max(m, n) < 32:
        emit_gemm(b, ty, a, bm, c, m, n, k, ta, tb, beta=beta)
        restore()
        return
    split_m = m >= n or (m >= ROW_SPLIT_MIN_ROWS and k <= ROW_SPLIT_MAX_K)
    size = m if split_m else n
    block = 16 if split_m else 64
    nblocks = -(-size // block)
    lda, ldb = max(m if ta else k, 1), max(k if tb else n, 1)

    def body(kb: FnBuilder, p: list[str], start: str, end: str) -> None:
        lo = kb.mul(start, block)
        hi = kb.mul(end, block)
        hi = kb.smin(hi, size)
        cnt = kb.op(f"sub i64 {hi}, {lo}", "i")
        if split_m:      # rows [lo, hi) of C and of op(A)
            pa = kb.gep(ty, p[0], lo if ta else kb.mul(lo, lda))
            pb, pc = p[1], kb.gep(ty, p[2], kb.mul(lo, n))
            rows, cols = cnt, n
        else:            # columns [lo, hi) of C and of op(B)
            pa, pc = p[0], kb.gep(ty, p[2], lo)
            pb = kb.gep(ty, p[1], kb.mul(lo, ldb) if tb else lo)
            rows, cols = m, cnt
        emit_gemm(kb, ty, pa, pb, pc, rows, cols, k, ta, tb, lda=lda, ldb=ldb, ldc=max(n, 1), beta=beta)

    emit_parallel_for(fx, name, [a, bm, c], nblocks, body, 1 << 62)
    restore()


def lower_matmul(fx, node, ins, outs) -> None:
    """Batched float32/float64 products through emit_gemm_blocks, float16/bfloat16 ones on
    float32 copies rounded once at the end (the interpreter's rule); others: kernels_nn."""
    x, y = node.inputs
    out = node.outputs[0]
    half = x.dtype.is_half and y.dtype is x.dtype
    if not (x.dtype.name in ("float32", "float64") or half) or not blas_available() or out.type.size == 0:
        return lower_matmul_generic(fx, node, ins, outs)
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    m, n = out.shape[-2:]
    k = x.shape[-1] if not ta else x.shape[-2]
    if k == 0:
        return lower_matmul_generic(fx, node, ins, outs)
    if half:
        c32 = fx.scratch(out.type.size * 4)
        _matmul_f32(fx, [widened(fx, ins[0], x), widened(fx, ins[1], y)], c32, "float", out, m, n, k, ta, tb)
        narrow_into(fx, c32, outs[0], out)
        return None
    return _matmul_f32(fx, ins, outs[0], compute_ty(x.dtype), out, m, n, k, ta, tb)


def _matmul_f32(fx, ins, c: str, ty: str, out, m: int, n: int, k: int, ta: bool, tb: bool) -> None:
    batch = int(np.prod(out.shape[:-2], dtype=np.int64))
    b = fx.b
    if batch == 1:
        return emit_gemm_blocks(fx, ty, ins[0], ins[1], c, m, n, k, ta, tb)
    restore = single_threaded_blas(b)

    def body(kb: FnBuilder, p: list[str], start: str, end: str) -> None:   # products [start, end)
        with kb.loop(end, "bt", start=start) as bi:
            emit_gemm(kb, ty, kb.gep(ty, p[0], kb.mul(bi, m * k)), kb.gep(ty, p[1], kb.mul(bi, k * n)),
                      kb.gep(ty, p[2], kb.mul(bi, m * n)), m, n, k, ta, tb)
    work = batch * m * n * k if batch * m * n * k >= GEMM_PARALLEL_MACS else 0
    emit_parallel_for(fx, "bmm", list(ins) + [c], batch, body, work)
    restore()


def lower_matmul_accumulating(fx, node, ins, acc: str, out: str) -> bool:
    """`out = acc + A @ B` (fused.py finds the pattern: a gradient accumulated over micro-batches,
    `g_sum + dW`) as one BLAS call with beta = 1 into `out` (acc copied there first unless the
    planner already put `out` in acc's buffer): the product is not written to a scratch matrix
    and read back by an epilogue pass. Micro-batches of 32, MLP 784-512-512-10: the 512x784
    weight gradient with its accumulation took 0.26 ms, 0.20 ms now (timed alone, the copy
    included; in a scan the accumulator is updated in place). False (nothing emitted) where BLAS
    cannot do it: not 2-D float32/float64 of one dtype, k == 0, or out aliasing A or B."""
    (x, y), prod = node.inputs, node.outputs[0]
    if not blas_available() or len(prod.shape) != 2 or prod.dtype.name not in ("float32", "float64") \
            or not x.dtype == y.dtype == prod.dtype:
        return False
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    m, n = prod.shape
    k = x.shape[0] if ta else x.shape[1]
    b = fx.b
    if k == 0 or b.location(out) in (b.location(ins[0]), b.location(ins[1])):
        return False
    if b.location(out) != b.location(acc):
        b.memcpy(out, acc, nbytes(prod))
    b.emit("; accumulating product (BLAS beta = 1)")
    emit_gemm_blocks(fx, compute_ty(prod.dtype), ins[0], ins[1], out, m, n, k, ta, tb, "gemm_acc", beta=1.0)
    return True


RULES = {"matmul": lower_matmul}
