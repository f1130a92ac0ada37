"""The machine's roofs, measured by the runner itself (so each table's fractions refer to the
machine and moment it ran on): FP32 FMA GFLOP/s from a generated register-resident FMA loop at
the host's vector width (12 independent accumulator chains per thread, all threads through
Python threads calling the native function: ctypes releases the GIL), and memory GB/s from
multi-threaded passes over a 256 MiB buffer: a copy (STREAM counting, 8 bytes per float) and a
read-only sum (4 bytes); the memory roof is the larger."""
from __future__ import annotations

import ctypes
import os
import threading
import time

import numpy as np

CHAINS = 12


def _fma_ir(lanes: int) -> str:
    v = f"<{lanes} x float>"
    # distinct starting values: with one shared start LLVM proved the chains equal and merged
    # them into one, rotated through register moves, so the loop no longer measured the FMA pipes
    phis = "\n".join(f"  %a{c} = phi {v} [ splat (float {1 + c / 16:.6e}), %entry ], [ %n{c}, %loop ]"
                      for c in range(CHAINS))
    fmas = "\n".join(f"  %n{c} = call {v} @llvm.fma.v{lanes}f32({v} %a{c}, {v} splat (float 5.000000e-01), "
                     f"{v} splat (float 2.500000e-01))" for c in range(CHAINS))
    s = "%a0"
    sums = []
    for c in range(1, CHAINS):
        sums.append(f"  %s{c} = fadd {v} {s}, %a{c}")
        s = f"%s{c}"
    return f"""declare {v} @llvm.fma.v{lanes}f32({v}, {v}, {v})
define void @fma_roof(ptr %out, i64 %n) {{
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
{phis}
{fmas}
  %i1 = add i64 %i, 1
  %c = icmp ult i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
{chr(10).join(sums)}
  store {v} {s}, ptr %out, align 4
  ret void
}}
"""


def _threads() -> int:
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "") or os.cpu_count() or 1))
    except ValueError:
        return os.cpu_count() or 1


def _parallel(fn, nthreads: int) -> float:
    ts = [threading.Thread(target=fn) for _ in range(nthreads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def fma_gflops(reps: int = 5) -> float:
    from sporeflow.backends.llvm import hostcpu, jit
    lanes = hostcpu.host().f32_lanes
    ir = _fma_ir(lanes)
    obj, _ = jit.compile_object(ir)
    lib = jit.Loaded(obj, ir)
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(lib.address("fma_roof"))
    out = np.zeros(lanes, np.float32)
    n, nt = 2_000_000, _threads()
    fn(out.ctypes.data, 1000)
    best = min(_parallel(lambda: fn(out.ctypes.data, n), nt) for _ in range(reps))
    return nt * n * CHAINS * lanes * 2 / best / 1e9


def memory_gbs(reps: int = 5, n: int = 64 << 20) -> tuple[float, float]:
    """(copy GB/s with 8 bytes per float, read-only sum GB/s with 4), all threads."""
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    nt = _threads()
    parts = np.array_split(np.arange(n), nt)
    bounds = [(p[0], p[-1] + 1) for p in parts]
    np.copyto(dst, src)

    def timed(work) -> float:
        best = float("inf")
        for _ in range(reps):
            ts = [threading.Thread(target=work, args=(i,)) for i in range(nt)]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            best = min(best, time.perf_counter() - t0)
        return best

    def copy(i):
        lo, hi = bounds[i]
        np.copyto(dst[lo:hi], src[lo:hi])

    def read(i):
        lo, hi = bounds[i]
        src[lo:hi].sum()
    return 8 * n / timed(copy) / 1e9, 4 * n / timed(read) / 1e9


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown CPU"
