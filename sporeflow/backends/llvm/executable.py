"""The compiled graph: checks its inputs, then runs one native call.

Native code never sees a buffer it was not compiled for: `check_inputs` refuses wrong shapes
or dtypes with an error naming the input; non-contiguous or misaligned arrays (views,
transposes, slices) are copied to a dense C-order buffer first, never passed as raw pointers.
"""
from __future__ import annotations

import ctypes
import sys
import threading
import time
import weakref

import numpy as np

from ...ir.graph import Graph
from ..base import check_inputs
from . import host_callback, jit
from .codegen import generate

POOL_MIN_BYTES = 1 << 16   # smaller outputs come from malloc's free lists anyway
POOL_DEPTH = 2


def _dead() -> None:
    """A weak reference that never matches: an input slot not filled yet."""
    return None


_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class LLVMExecutable:
    """Callable on storage arrays; `.source` is the LLVM IR, `.asm` the host assembly."""

    def __init__(self, graph: Graph, donate: tuple = ()):
        self.graph = graph
        t0 = time.perf_counter()
        # donated: output j is computed into input i's own buffer (a Parameter updated in place)
        self.source, self.arena_bytes, self.entry, self.donated = generate(graph, donate)
        t1 = time.perf_counter()
        objs, stats = jit.compile_object(self.source)
        t2 = time.perf_counter()
        self._loaded = jit.Loaded(objs, self.source)
        self._fn = _ENTRY(self._loaded.address(self.entry))
        t3 = time.perf_counter()
        self._call_lock = threading.Lock()
        self._arena = np.empty(max(self.arena_bytes, 64), np.uint8)
        self._n_in, self._n_out = len(graph.inputs), len(graph.outputs)
        self._out_types = [(v.type.shape, v.type.dtype.storage) for v in graph.outputs]
        self._pool: dict[int, list] = {}
        # The pointer tables the native entry reads, kept between calls: a slot is refilled only
        # when its array is not the one it was filled from (`.ctypes.data` costs ~0.8 us per
        # array; a train step passes the same Parameters every call). Inputs are held by weak
        # reference, so a finished batch is freed as before; outputs come from the pool with
        # their pointers.
        self._ins_p = (ctypes.c_void_p * max(self._n_in, 1))()
        self._outs_p = (ctypes.c_void_p * max(self._n_out, 1))()
        self._ins_from: list = [_dead] * self._n_in
        self._entry_args = (ctypes.addressof(self._ins_p), ctypes.addressof(self._outs_p), self._arena.ctypes.data)
        self.stats = dict(stats, nodes=len(graph.nodes), ir_lines=self.source.count("\n"),
                          arena_bytes=self.arena_bytes, object_bytes=sum(map(len, objs)), codegen_ir_seconds=t1 - t0,
                          compile_seconds=t2 - t1, load_seconds=t3 - t2)
        self._asm: tuple[str, str] | None = None

    @property
    def asm(self) -> str:
        if self._asm is None:
            self._asm = jit.optimized_ir_and_asm(self.source)
        return self._asm[1]

    @property
    def optimized_source(self) -> str:
        if self._asm is None:
            self._asm = jit.optimized_ir_and_asm(self.source)
        return self._asm[0]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        check_inputs(self.graph, arrays)
        arrays = [a if a.flags.c_contiguous and a.flags.aligned else np.ascontiguousarray(a) for a in arrays]
        if self.donated:    # only writable buffers are written in place; others are copied first
            arrays = [a if a.flags.writeable or i not in self.donated.values() else a.copy()
                      for i, a in enumerate(arrays)]
        ins_p, ins_from = self._ins_p, self._ins_from
        with self._call_lock:   # the arena and the pointer tables are per executable: one call at a time
            for i, a in enumerate(arrays):
                if ins_from[i]() is not a:
                    ins_from[i] = weakref.ref(a)
                    ins_p[i] = a.ctypes.data
            outs = []
            for j, (shape, dt) in enumerate(self._out_types):
                if j in self.donated:
                    o, ptr = arrays[self.donated[j]], ins_p[self.donated[j]]
                else:
                    o, ptr = self._new_output(j, shape, dt)
                outs.append(o)
                self._outs_p[j] = ptr
            self._fn(*self._entry_args)
            host_callback.raise_pending()
            for j, o in enumerate(outs):
                if j not in self.donated and o.nbytes >= POOL_MIN_BYTES:
                    pool = self._pool.setdefault(j, [])
                    pool.insert(0, (o, self._outs_p[j]))
                    del pool[POOL_DEPTH:]
        return outs

    def _new_output(self, j: int, shape, dt) -> tuple[np.ndarray, int]:
        """One of the last two calls' output arrays that nothing references any more, else a new
        one: a fresh 64 MiB array costs ~4 ms of page faults per call, which was 40% of a 4096^2
        softmax. Only arrays nobody can observe are reused (reference count). While `y = f(x)`
        runs, y still holds the last output, so a loop of it alternates two buffers (when the
        referenced entry was dropped instead, every call allocated: 12.5-13.5 ms against 9.5-9.7
        for the softmax)."""
        pool = self._pool.get(j, [])
        for k in range(len(pool) - 1, -1, -1):   # oldest first; a referenced one stays pooled,
            o = pool[k][0]                       # so `y = f(x)` in a loop alternates two buffers
            if sys.getrefcount(o) == 3:     # the pool's entry, `o` and getrefcount's argument
                return pool.pop(k)
        o = np.empty(shape, dt)
        return o, o.ctypes.data
