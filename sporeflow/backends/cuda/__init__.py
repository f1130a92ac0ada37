"""The CUDA backend: the lowered, fused graph rendered as CUDA C (one translation unit per
graph), compiled by NVRTC for the device's sm_XX and launched on CuPy arrays; or, with
backend="cuda-emulated", the same CUDA C compiled with g++ against emulator/cucpu.h and run
on the CPU (CI has no GPU). The emulated backend also compiles every translation unit with
NVRTC when it is installed (the `gpu` extra), so the code is checked as valid CUDA and its
register/shared-memory use is reported in `stats["nvrtc"]`.

The lowering table is lowering.LOWERINGS (one entry per primitive), recorded in each
`REGISTRY[op].lower["cuda"]` once, at import, as the LLVM backend does with its own.
"""
from __future__ import annotations

import os

from ... import primitives  # noqa: F401  (every primitive is registered before the table is installed)
from ...ir.graph import Graph
from ..base import check_lowerable, install_lowerings, missing_lowerings as _missing
from ..base import register_backend
from . import compiler
from .device import CupyDevice, EmulatedDevice
from .executable import CudaExecutable
from .lowering import LOWERINGS


def missing_lowerings() -> list[str]:
    """Primitives of the registry that the CUDA backend cannot lower (the coverage check)."""
    return _missing(LOWERINGS)


def _check_lowerable(graph: Graph, backend: str) -> None:
    check_lowerable(graph, backend, LOWERINGS)


class CudaBackend:
    """Kernels on a CUDA device through CuPy (fails clearly where there is none)."""
    name = "cuda"
    supports_donation = True

    def __init__(self):
        self._device = None

    @property
    def device_ready(self) -> bool:
        return self._device is not None

    @property
    def device(self) -> CupyDevice:
        if self._device is None:
            self._device = CupyDevice(int(os.environ.get("SPOREFLOW_CUDA_DEVICE", "0")))
        return self._device

    def compile(self, graph: Graph, donate: tuple = ()) -> CudaExecutable:
        _check_lowerable(graph, self.name)
        return CudaExecutable(graph, self.device, donate)


class EmulatedCudaBackend:
    """The same kernels on the CPU emulator; NVRTC checks each translation unit when present
    (SPOREFLOW_CUDA_NVRTC_CHECK=0 skips that)."""
    name = "cuda-emulated"
    supports_donation = True

    device_ready = True

    def __init__(self):
        self.device = EmulatedDevice()

    def compile(self, graph: Graph, donate: tuple = ()) -> CudaExecutable:
        _check_lowerable(graph, self.name)
        exe = CudaExecutable(graph, self.device, donate)
        why = compiler.nvrtc_available() if os.environ.get("SPOREFLOW_CUDA_NVRTC_CHECK", "1") != "0" else "disabled"
        if why is None:
            _, log = compiler.nvrtc_compile(exe.source)
            exe.stats["nvrtc"] = compiler.resources(log)
        else:
            exe.stats["nvrtc"] = f"skipped: {why}"
        return exe


install_lowerings("cuda", LOWERINGS)
register_backend("cuda", CudaBackend)
register_backend("cuda-emulated", EmulatedCudaBackend)
