"""A generated register-blocked SGEMM (packing + micro-kernel in LLVM IR at the host's vector
width) against the OpenBLAS numpy ships, one core each, at the train steps' shapes.

    python3 bench/gemm_generated.py [--reps 5]

Why it exists: `backends/llvm/gemm.py` calls OpenBLAS, and this measures whether a generated
kernel would beat it per shape class (the answer, with the figures, is in gemm.py's note and
README.md). The kernel is GotoBLAS-shaped: for each KC slice of K, B is packed into NR-column
panels [N/NR][kc][NR]; for each MC block of rows A is packed into MR-row panels [mc/MR][kc][MR];
an MR x NR tile of C lives in MR * NR/lanes vector registers over the kc loop (one vector load
of B and MR broadcasts of A per step). Packing reads each operand in its storage order, so
transposed operands cost no more than plain ones. It needs M % MR == 0 and N % NR == 0 (the
shapes below); edges and threading are what a production kernel would add.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sporeflow.backends.llvm.irgen import FnBuilder, ModuleBuilder  # noqa: E402

# (m, n, k, transpose_a, transpose_b, where the MLP train step has it)
SHAPES = [(128, 512, 784, False, False, "forward x@W1"),
          (128, 512, 512, False, True, "input grad d@W2^T"),
          (784, 512, 128, True, False, "weight grad x^T@d"),
          (512, 512, 128, True, False, "weight grad h^T@d"),
          (1024, 1024, 1024, False, False, "square"),
          # micro-batches of 32 (Model(grad_accumulation=4) at batch 128; MindSpore's Dense keeps W as [out, in])
          (32, 512, 784, False, True, "b32 forward x@W1^T"),
          (32, 512, 512, False, False, "b32 input grad d@W2"),
          (512, 784, 32, True, False, "b32 weight grad d^T@x"),
          (512, 512, 32, True, False, "b32 weight grad d^T@h")]
KC, MC = 256, 192


def _copy(fb: FnBuilder, src: str, si: str, dst: str, di: str) -> None:
    fb.store("float", fb.load("float", src, si), dst, di)


def _pack(fb: FnBuilder, src: str, dst: str, rows: str, row0: str, col0: str, kc: str, r: int,
          transposed: bool, ld: int) -> None:
    """dst[q][k][rr] = S(row0 + q*r + rr, col0 + k), S(i, k) = src[k*ld + i] if transposed else
    src[i*ld + k]; the innermost loop walks the source's contiguous axis."""
    with fb.loop(rows, "rb", step=r) as rb:
        panel = fb.mul(rb, kc)          # panel q = rb / r starts at q * kc * r
        if transposed:                  # source contiguous along rows: k outer, rr inner
            with fb.loop(kc, "k") as k:
                srow = fb.mul(fb.add(col0, k), ld)
                with fb.loop(r, "rr") as rr:
                    _copy(fb, src, fb.add(srow, fb.add(fb.add(row0, rb), rr)),
                          dst, fb.add(fb.add(panel, fb.mul(k, r)), rr))
        else:                           # source contiguous along k: rr outer, k inner
            with fb.loop(r, "rr") as rr:
                srow = fb.mul(fb.add(fb.add(row0, rb), rr), ld)
                with fb.loop(kc, "k") as k:
                    _copy(fb, src, fb.add(srow, fb.add(col0, k)),
                          dst, fb.add(fb.add(panel, fb.mul(k, r)), rr))


def _micro(fb: FnBuilder, ap: str, bp: str, c: str, kc: str, mr: int, nv: int, lanes: int, n: int,
           first: str) -> None:
    """C[0:mr, 0:nv*lanes] (row stride n) = (first ? 0 : C) + Apanel[kc][mr] @ Bpanel[kc][nv*lanes];
    the accumulators are stack slots that mem2reg turns into registers. Loads and stores of B
    and C say align 4 (FnBuilder.load would assume a vector's natural 64-byte alignment)."""
    v = f"<{lanes} x float>"
    acc = [[fb.alloca(v, "acc") for _ in range(nv)] for _ in range(mr)]
    for row in acc:
        for slot in row:
            fb.store(v, "zeroinitializer", slot)
    fma = f"llvm.fma.v{lanes}f32"
    fb.module.declare(f"declare {v} @{fma}({v}, {v}, {v})")
    with fb.loop(kc, "k") as k:
        brow = fb.mul(k, nv * lanes)
        bv = [fb.op(f"load {v}, ptr {fb.gep('float', bp, fb.add(brow, j * lanes))}, align 4") for j in range(nv)]
        arow = fb.mul(k, mr)
        for i in range(mr):
            a = fb.load("float", ap, fb.add(arow, i))
            splat = fb.op(f"shufflevector {v} {fb.op(f'insertelement {v} poison, float {a}, i64 0')}, "
                          f"{v} poison, <{lanes} x i32> zeroinitializer")
            for j in range(nv):
                total = fb.op(f"call {v} @{fma}({v} {splat}, {v} {bv[j]}, {v} {fb.load(v, acc[i][j])})")
                fb.store(v, total, acc[i][j])
    for i in range(mr):
        for j in range(nv):
            p = fb.gep("float", c, i * n + j * lanes)
            old = fb.op(f"select i1 {first}, {v} zeroinitializer, {v} {fb.op(f'load {v}, ptr {p}, align 4')}")
            fb.emit(f"store {v} {fb.op(f'fadd {v} {old}, {fb.load(v, acc[i][j])}')}, ptr {p}, align 4")


def sgemm_ir(m: int, n: int, k: int, ta: bool, tb: bool, mr: int, nv: int, lanes: int) -> str:
    """A module with `void @sgemm(A, B, C, Apack, Bpack)`: C = op(A) @ op(B), shapes fixed."""
    nr = nv * lanes
    assert m % mr == 0 and n % nr == 0 and MC % mr == 0
    lda, ldb = (m if ta else k), (k if tb else n)
    mod = ModuleBuilder("sgemm")
    fb = FnBuilder("sgemm", "void @sgemm(ptr noalias %A, ptr noalias %B, ptr noalias %C, "
                   "ptr noalias %Ap, ptr noalias %Bp)", mod)

    with fb.loop(k, "pc", step=KC) as pc:
        kc = fb.smin(fb.op(f"sub i64 {k}, {pc}"), KC)
        first = fb.op(f"icmp eq i64 {pc}, 0")
        # a packed "row" of B is a column j of op(B): op(B)[pc + kk, j]
        _pack(fb, "%B", "%Bp", n, "0", pc, kc, nr, not tb, ldb)
        with fb.loop(m, "ic", step=MC) as ic:
            mc = fb.smin(fb.op(f"sub i64 {m}, {ic}"), MC)
            _pack(fb, "%A", "%Ap", mc, ic, pc, kc, mr, ta, lda)
            with fb.loop(n, "jr", step=nr) as jr:
                bp = fb.gep("float", "%Bp", fb.mul(jr, kc))
                with fb.loop(mc, "ir", step=mr) as ir_:
                    ap = fb.gep("float", "%Ap", fb.mul(ir_, kc))
                    c = fb.gep("float", "%C", fb.add(fb.mul(fb.add(ic, ir_), n), jr))
                    _micro(fb, ap, bp, c, kc, mr, nv, lanes, n, first)
    mod.functions.append(fb.render())
    return mod.render()


def _median_ms(fn, reps: int, inner: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        ts.append((time.perf_counter() - t0) / inner)
    return float(np.median(ts)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    from sporeflow.backends.llvm import hostcpu, jit
    import roofs
    cpu = hostcpu.host()
    lanes = cpu.f32_lanes
    # (MR, vectors per row): MR * vectors accumulators plus the B vectors and a broadcast must
    # fit the register file (32 zmm with AVX-512, 16 ymm otherwise)
    tiles = [(8, 2), (12, 2), (6, 4), (8, 3)] if cpu.vector_bits == 512 else [(4, 2), (6, 2), (8, 1)]
    sg = _openblas_sgemm()
    os.environ["OMP_NUM_THREADS"] = "1"        # the roof of one core (roofs.py reads it)
    print(f"# {cpu.describe()}; one core each; FP32 FMA roof of one core {roofs.fma_gflops():.0f} GFLOP/s")
    print("| shape (m x n x k) | in the MLP step | OpenBLAS | best generated (MR x NR) | generated / OpenBLAS |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for m, n, k, ta, tb, where in SHAPES:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
        c = np.zeros((m, n), np.float32)
        flops = 2.0 * m * n * k
        inner = max(1, int(2e8 // flops))
        blas = _median_ms(lambda: sg(a, b, c, m, n, k, ta, tb), args.reps, inner)
        np.testing.assert_allclose(c, want, rtol=1e-3, atol=1e-3 * np.sqrt(k))
        best = None
        for mr, nv in tiles:
            if m % mr or n % (nv * lanes) or MC % mr:
                continue
            src = sgemm_ir(m, n, k, ta, tb, mr, nv, lanes)
            obj, _ = jit.compile_object(src)
            loaded = jit.Loaded(obj, src)
            fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)(loaded.address("sgemm"))
            apack = np.empty(MC * KC, np.float32)
            bpack = np.empty(KC * n, np.float32)
            c[:] = np.nan
            call = (lambda: fn(a.ctypes.data, b.ctypes.data, c.ctypes.data, apack.ctypes.data, bpack.ctypes.data))
            call()
            np.testing.assert_allclose(c, want, rtol=1e-3, atol=1e-3 * np.sqrt(k))
            t = _median_ms(call, args.reps, inner)
            if best is None or t < best[0]:
                best = (t, mr, nv * lanes, loaded)
        if best is None:
            print(f"| {m}x{n}x{k} | {where} | {blas:.3f} ms | no tile divides the shape | |")
            continue
        gf = lambda t: flops / t / 1e6      # noqa: E731
        print(f"| {m}x{n}x{k}{' A^T' if ta else ''}{' B^T' if tb else ''} | {where} | {blas:.3f} ms "
              f"({gf(blas):.0f} GFLOP/s) | {best[0]:.3f} ms ({gf(best[0]):.0f} GFLOP/s, {best[1]}x{best[2]}) | "
              f"{blas / best[0]:.2f}x |")


def _openblas_sgemm():
    """Single-threaded cblas_sgemm through numpy's OpenBLAS (its thread count set to 1)."""
    import glob
    found = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    assert found, "needs the OpenBLAS numpy ships (numpy.libs/*openblas*)"
    lib = ctypes.CDLL(found[0])
    lib.scipy_openblas_set_num_threads64_(1)
    f = lib.scipy_cblas_sgemm64_
    f.argtypes = [ctypes.c_int] * 3 + [ctypes.c_int64] * 3 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int64,
                                                               ctypes.c_void_p, ctypes.c_int64, ctypes.c_float,
                                                               ctypes.c_void_p, ctypes.c_int64]

    def call(a, b, c, m, n, k, ta, tb):
        f(101, 112 if ta else 111, 112 if tb else 111, m, n, k, 1.0, a.ctypes.data, m if ta else k,
          b.ctypes.data, k if tb else n, 0.0, c.ctypes.data, n)
    return call


if __name__ == "__main__":
    main()
