"""Where kernels run: a CUDA device through CuPy, or the CPU emulator.

Both expose the same few calls the host program makes (program.py): empty/upload/copy/assign
buffers, read a predicate, `load(module)` and `launch(kernel, grid, block, arrays)`, and
`gemm` — cuBLAS through `cupy.matmul` on the GPU; in the emulator numpy's matmul stands in for
that one call (every other operation runs the generated CUDA C). The emulator's "device
memory" is host memory (numpy arrays), so its results need no copy back.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from ...errors import BackendError
from . import compiler


class EmulatedDeviceArray(np.ndarray):
    """The emulator's device memory: host memory, marked as the device's so that placement is
    checked exactly as on a GPU (an executable refuses a plain numpy array)."""


def _dev(a: np.ndarray) -> EmulatedDeviceArray:
    return a.view(EmulatedDeviceArray)


class _Done:
    """The emulator's completion marker: its kernels have finished when their launch returns."""
    @staticmethod
    def Test() -> bool:
        return True


class _EventMarker:
    """A CUDA event recorded after enqueued work; `Test()` as an MPI request's, so the
    communication layer's deadline wait (ir/comm.wait) polls it."""
    def __init__(self, event):
        self.event = event

    def Test(self) -> bool:
        return self.event.done


class EmulatedDevice:
    """The CPU emulator (emulator/cucpu.h): blocks on `workers` OS threads, CUDA threads as
    fibres. `order` 0 runs each block's threads 0..n-1, 1 in reverse (race checks)."""
    name = "cuda-emulated"
    memory = "host"            # whose pointers its buffers are (collectives on device buffers)

    def __init__(self, workers: int | None = None, order: int | None = None):
        self.workers = workers or int(os.environ.get("SPOREFLOW_CUCPU_WORKERS", min(os.cpu_count() or 1, 2)))
        self.order = int(os.environ.get("SPOREFLOW_CUCPU_REVERSE", "0")) if order is None else order
        self.launches = 0          # kernels run (tests check that eager ops launch kernels)

    def describe(self) -> str:
        return f"CPU emulator ({self.workers} worker threads, thread order {'reversed' if self.order else 'forward'})"

    # buffers
    def empty(self, shape, dtype):
        return _dev(np.empty(shape, dtype))

    def upload(self, a):
        return _dev(np.array(a, copy=True, order="C"))

    def copy(self, a):
        return _dev(np.array(a, copy=True, order="C"))

    def assign(self, dst, t: int, src) -> None:
        dst[t] = src

    def reshape(self, a, shape):
        return a.reshape(shape)

    def read_bool(self, a) -> bool:
        return bool(np.asarray(a).reshape(-1)[0])

    def asnumpy(self, a) -> np.ndarray:
        return np.array(a, copy=True).view(np.ndarray)

    def is_array(self, a) -> bool:
        return isinstance(a, EmulatedDeviceArray)

    # streams for collectives on device buffers (nccl.py): one in-order stream, work done at return
    def pointer(self, a) -> int:
        return a.ctypes.data

    def comm_stream(self, side: bool):
        return None

    def stream_handle(self, stream) -> int:
        return 0

    def marker(self, stream) -> _Done:
        return _Done()

    def join(self, marker) -> None:
        pass

    # code
    def load(self, module) -> "EmulatedModule":
        path = compiler.emulator_library(module.source(), module.emulator_exports())
        return EmulatedModule(ctypes.CDLL(str(path)), self)

    def gemm(self, a, b, ta: bool, tb: bool):
        """Stands in for cuBLAS (cupy.matmul) in the emulator."""
        a = np.swapaxes(a, -1, -2) if ta else a
        b = np.swapaxes(b, -1, -2) if tb else b
        return _dev(np.ascontiguousarray(np.matmul(a.view(np.ndarray), b.view(np.ndarray))))


class EmulatedModule:
    def __init__(self, lib, dev: EmulatedDevice):
        self.lib, self.dev = lib, dev
        self._fns: dict = {}

    def launch(self, name: str, grid: int, block: int, arrays: list) -> None:
        fn = self._fns.get(name)
        if fn is None:
            fn = getattr(self.lib, f"cucpu_launch_{name}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
            self._fns[name] = fn
        g = (ctypes.c_uint * 3)(grid, 1, 1)
        b = (ctypes.c_uint * 3)(block, 1, 1)
        ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        self.dev.launches += 1
        if fn(g, b, ptrs, self.dev.order, self.dev.workers) != 0:
            raise BackendError(f"cuda-emulated: kernel {name} deadlocked (divergent __syncthreads); see stderr")


class CupyDevice:
    """A CUDA device through CuPy: arrays are cupy.ndarray from CuPy's memory pool, modules are
    cubins from NVRTC for this device's sm_XX."""
    name = "cuda"
    memory = "cuda"

    def __init__(self, device_id: int = 0):
        try:
            import cupy
        except ImportError as e:
            raise BackendError(f"the cuda backend needs CuPy ({e}); install the gpu extra: pip install -e '.[gpu]'. "
                               "Without a GPU, backend='cuda-emulated' runs the same kernels on the CPU.") from None
        if not cupy.cuda.is_available():
            raise BackendError("the cuda backend found no CUDA device (no GPU or no driver). Without a GPU, "
                               "backend='cuda-emulated' runs the same generated kernels on the CPU emulator.")
        self.cp = cupy
        self.device_id = device_id
        self.device = cupy.cuda.Device(device_id)
        cc = self.device.compute_capability
        self.arch = str(cc)
        self._side = None          # the stream overlapped collectives run on

    def describe(self) -> str:
        return f"CUDA device {self.device_id} (sm_{self.arch})"

    def empty(self, shape, dtype):
        with self.device:
            return self.cp.empty(shape, dtype)

    def upload(self, a):
        with self.device:
            return self.cp.asarray(a)

    def copy(self, a):
        with self.device:
            return a.copy()

    def assign(self, dst, t: int, src) -> None:
        dst[t] = src

    def reshape(self, a, shape):
        return a.reshape(shape)

    def read_bool(self, a) -> bool:
        return bool(self.cp.asnumpy(a).reshape(-1)[0])

    def asnumpy(self, a) -> np.ndarray:
        return self.cp.asnumpy(a)

    def is_array(self, a) -> bool:
        return isinstance(a, self.cp.ndarray) and a.device.id == self.device_id

    # streams for collectives on device buffers (nccl.py)
    def pointer(self, a) -> int:
        return a.data.ptr

    def comm_stream(self, side: bool):
        """The stream a collective goes on: the compute stream, or (side) a second stream that
        first waits for the work enqueued so far, so kernels launched after it run alongside."""
        cur = self.cp.cuda.get_current_stream()
        if not side:
            return cur
        if self._side is None:
            with self.device:
                self._side = self.cp.cuda.Stream(non_blocking=True)
        self._side.wait_event(cur.record())
        return self._side

    def stream_handle(self, stream) -> int:
        return stream.ptr

    def marker(self, stream) -> _EventMarker:
        return _EventMarker(stream.record())

    def join(self, marker) -> None:
        """The compute stream waits for the marked work (a collective on the side stream)."""
        self.cp.cuda.get_current_stream().wait_event(marker.event)

    def load(self, module) -> "CupyModule":
        cubin, _ = compiler.nvrtc_compile(module.source(), self.arch)
        with self.device:
            return CupyModule(self.cp.RawModule(code=cubin), self)

    def gemm(self, a, b, ta: bool, tb: bool):
        with self.device:
            a = self.cp.swapaxes(a, -1, -2) if ta else a
            b = self.cp.swapaxes(b, -1, -2) if tb else b
            return self.cp.ascontiguousarray(self.cp.matmul(a, b))


class CupyModule:
    def __init__(self, raw, dev: CupyDevice):
        self.raw, self.dev = raw, dev
        self._fns: dict = {}

    def launch(self, name: str, grid: int, block: int, arrays: list) -> None:
        fn = self._fns.get(name)
        if fn is None:
            fn = self._fns[name] = self.raw.get_function(name)
        fn((grid,), (block,), tuple(arrays))
