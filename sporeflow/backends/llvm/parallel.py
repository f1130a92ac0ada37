"""Multi-threaded loops through the OpenMP runtime, called directly from the generated IR.

backend-derisk.md 1c measured three ways to use both cores: Python threads cost 30-40 us per
dispatch and lose below ~100K elements; `GOMP_parallel(outlined, data, nthreads, 0)` from the
IR costs a few us (libgomp keeps its pool) and gave x1.7-2.1 on cache-resident kernels. So a
kernel is emitted as its own function over a range of its outermost loop,
    void @k(ptr noalias %p0, ..., i64 %start, i64 %end)
plus an outlined `@k_omp(ptr %data)` that takes this thread's share of [0, n). The caller
runs `@k(.., 0, n)` directly when the work is small (below PARALLEL_WORK, in element-ops; a
few us of fork/join would dominate) and `GOMP_parallel` otherwise. The split is static and
contiguous, so results do not depend on the thread count (each element is computed by the
same code whichever thread runs it).
"""
from __future__ import annotations

import os
from typing import Callable

from .irgen import FnBuilder

PARALLEL_WORK = int(os.environ.get("SPOREFLOW_PARALLEL_WORK", 1 << 16))
_gomp_loaded: bool | None = None


def gomp_available() -> bool:
    """Load libgomp into the process so the JIT linker resolves GOMP_parallel (once)."""
    global _gomp_loaded
    if _gomp_loaded is None:
        try:
            import llvmlite.binding as llvm
            llvm.load_library_permanently("libgomp.so.1")
            _gomp_loaded = os.environ.get("SPOREFLOW_NUM_THREADS", "") != "1"
        except Exception:      # no libgomp: everything runs single-threaded, still correct
            _gomp_loaded = False
    return _gomp_loaded


def team_size() -> int:
    """Threads of a parallel region (passed to GOMP_parallel explicitly, so a kernel may index
    per-thread scratch by omp_get_thread_num())."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0] or os.cpu_count() or 1))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def emit_parallel_for(fx, name: str, ptrs: list[str], n: int, body: Callable, work: int) -> None:
    """Emit kernel `body(kb, kptrs, start, end)` over [0, n) and call it from `fx`."""
    mod = fx.cg.mod
    base = mod.unique("k_" + "".join(c if c.isalnum() else "_" for c in name)[:40] + "_")
    # parameter names must not collide with FnBuilder temporaries (%p<n>, %t<n>, ...).
    # One parameter per distinct buffer: the memory planner puts an output in place of an
    # input it replaces, and two noalias parameters naming one buffer let LLVM move a store
    # before the load it overwrites (a GRU gradient came out wrong once its kernel was not
    # inlined). Through one pointer the in-place access is a same-index dependence, which
    # the vectorizer handles without runtime overlap checks.
    first: dict[tuple, int] = {}
    param_of = [first.setdefault(fx.b.location(p), len(first)) for p in ptrs]
    ptrs = [p for k, p in enumerate(ptrs) if param_of.index(param_of[k]) == k]   # one per buffer
    params = ", ".join(f"ptr noalias %kbuf_{k}" for k in range(len(ptrs)))
    # internal: an external kernel was also kept beside its callers, so LLVM compiled it twice
    # (an MLP train step: 7 of its kernels, ~15% of the cold compile). noinline (#1): inlined
    # into its thread wrapper, a kernel went through the function simplification passes twice,
    # once alone and again inside the wrapper (MLP train step 0.165 -> 0.150 s of LLVM without
    # it); one call per thread per launch is all it costs, and constant bounds still reach it
    # (interprocedural constant propagation of an internal function's arguments).
    kb = FnBuilder(base, f"internal void @{base}({params}{', ' if ptrs else ''}i64 %kstart, i64 %kend) #1", mod)
    body(kb, [f"%kbuf_{q}" for q in param_of], "%kstart", "%kend")
    mod.functions.append(kb.render())
    b = fx.b
    args = ", ".join(f"ptr {p}" for p in ptrs)
    sep = ", " if ptrs else ""
    if n <= 1 or work < PARALLEL_WORK or not gomp_available():
        b.emit(f"call void @{base}({args}{sep}i64 0, i64 {n})")
        return
    _emit_outlined(mod, base, len(ptrs), n)
    data = b.alloca("ptr", "omp", len(ptrs) + 1)
    for k, p in enumerate(ptrs):
        b.store("ptr", p, data, k)
    b.emit(f"call void @GOMP_parallel(ptr @{base}_omp, ptr {data}, i32 {team_size()}, i32 0)")


def _emit_outlined(mod, base: str, nptr: int, n: int) -> None:
    """n travels as a constant (shapes are static)."""
    mod.declare("declare void @GOMP_parallel(ptr, ptr, i32, i32)")
    mod.declare("declare i32 @omp_get_thread_num()")
    mod.declare("declare i32 @omp_get_num_threads()")
    ob = FnBuilder(base + "_omp", f"internal void @{base}_omp(ptr %data) #0", mod)
    ptrs = [ob.load("ptr", "%data", k) for k in range(nptr)]
    t = ob.op("sext i32 " + ob.op("call i32 @omp_get_thread_num()") + " to i64")
    nt = ob.op("sext i32 " + ob.op("call i32 @omp_get_num_threads()") + " to i64")
    ntm1 = ob.op(f"sub i64 {nt}, 1")
    chunk = ob.op(f"sdiv i64 {ob.op(f'add i64 {n}, {ntm1}')}, {nt}")
    s = ob.op(f"mul i64 {t}, {chunk}")
    s = ob.op(f"select i1 {ob.op(f'icmp slt i64 {s}, {n}')}, i64 {s}, i64 {n}")
    e = ob.op(f"add i64 {s}, {chunk}")
    e = ob.op(f"select i1 {ob.op(f'icmp slt i64 {e}, {n}')}, i64 {e}, i64 {n}")
    args = ", ".join(f"ptr {p}" for p in ptrs)
    ob.emit(f"call void @{base}({args}{', ' if ptrs else ''}i64 {s}, i64 {e})")
    mod.functions.append(ob.render())
