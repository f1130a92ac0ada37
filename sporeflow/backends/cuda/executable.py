"""The compiled graph on a device: checks its inputs, runs the host program (program.py).

Inputs must be the device's arrays (cupy.ndarray on this device; numpy arrays for the emulator,
whose device memory is host memory) of exactly the compiled shape and dtype; host arrays given
to a GPU executable are refused with a message saying to move them first, never copied
silently. Outputs stay on the device (`device.asnumpy` copies one to the host). Donated inputs
(Parameters a train step updates) receive their update in their own buffer.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from ...errors import BackendError
from ...ir.graph import Graph
from .module import Module
from .program import build_program
from . import compiler


class _Bound:
    """The device plus one loaded module: what program steps call."""

    def __init__(self, dev, module):
        self._dev, self._module = dev, module
        self.launch = module.launch

    def __getattr__(self, name):
        return getattr(self._dev, name)


class CudaExecutable:
    def __init__(self, graph: Graph, device, donate: tuple = ()):
        self.graph, self.device = graph, device
        t0 = time.perf_counter()
        self.module = Module(graph.name)
        self.program = build_program(self.module, graph)
        self.source = self.module.source()
        t1 = time.perf_counter()
        self._bound = _Bound(device, device.load(self.module))
        t2 = time.perf_counter()
        self.donated = {j: i for j, i in donate}
        self._lock = threading.Lock()
        self.stats = {"nodes": len(graph.nodes), "kernels": len(self.module.kernels),
                      "steps": len(self.program.steps), "device": device.describe(),
                      "codegen_seconds": t1 - t0, "compile_seconds": t2 - t1}

    def check(self, arrays) -> None:
        g = self.graph
        if len(arrays) != len(g.inputs):
            raise BackendError(f"@{g.name} takes {len(g.inputs)} inputs, got {len(arrays)}")
        for i, (v, a) in enumerate(zip(g.inputs, arrays)):
            if not self.device.is_array(a):
                where = "a host (numpy) array" if isinstance(a, np.ndarray) else type(a).__name__
                raise BackendError(f"@{g.name} input {i} (%{v.name or i}) is {where}, not an array on "
                                   f"{self.device.describe()}; move it to the device first (sf.Tensor under "
                                   "device_target='GPU', or cupy.asarray)")
            if tuple(a.shape) != v.type.shape or a.dtype != v.type.dtype.storage:
                raise BackendError(f"@{g.name} input {i} (%{v.name or i}) must be {v.type} "
                                   f"(storage {v.type.dtype.storage}), got {a.dtype}{list(a.shape)}")

    def __call__(self, *arrays) -> list:
        self.check(arrays)
        arrays = [a if a.flags.c_contiguous else self.device.copy(a) for a in arrays]
        with self._lock:
            outs = self.program.run(self._bound, list(arrays))
        for j, i in self.donated.items():     # the update lands in the Parameter's own buffer
            dst = arrays[i]
            if outs[j] is not dst and dst.flags.writeable:
                dst[...] = outs[j]
                outs[j] = dst
        return outs

    @property
    def kernel_resources(self) -> dict:
        """registers / shared memory per kernel, from NVRTC's ptxas report (sm_90 by default)."""
        _, log = compiler.nvrtc_compile(self.source, getattr(self.device, "arch", compiler.DEFAULT_ARCH))
        return compiler.resources(log)
