"""Where Tensor storage lives and where eager ops run.

Under `device_target="GPU"` (backend "cuda", or "cuda-emulated" for the CPU emulator) a Tensor's
storage is an array of the backend's device (a cupy.ndarray; for the emulator an
EmulatedDeviceArray in host memory), created there when the Tensor is made, and copied to the
host only by `asnumpy()` and friends. Eager primitives on device tensors run through the same
generated kernels as compiled code: one small executable per (op, input types, attributes),
cached; there is no numpy fallback. Everywhere else storage is a numpy array and eager ops run
the OpDefs' numpy `impl`, as before.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..backends import get_backend
from ..context import default_backend
from ..ir.graph import Graph
from ..ir.graph import GraphBuilder
from ..backends.base import _INSTANCES

DEVICE_BACKENDS = ("cuda", "cuda-emulated")
_EAGER: dict = {}
_EAGER_LIMIT = 512


def current_device():
    """The device Tensors are created on now (None: host numpy storage)."""
    name = default_backend()
    return get_backend(name).device if name in DEVICE_BACKENDS else None


def device_of(arr):
    """The device an array lives on (None for host arrays)."""
    for name in DEVICE_BACKENDS:
        be = _instance(name)
        if be is not None and be.device_ready and be.device.is_array(arr):
            return be.device
    return None


def _instance(name: str):
    return _INSTANCES.get(name)


def place(arr: np.ndarray):
    """Host storage -> the current device's storage (unchanged when there is none)."""
    dev = current_device()
    return arr if dev is None or dev.is_array(arr) else dev.upload(arr)


def to_host(arr) -> np.ndarray:
    """Any storage -> a host numpy array (a copy for device storage)."""
    if isinstance(arr, np.ndarray) and type(arr) is np.ndarray:
        return arr
    dev = device_of(arr)
    return dev.asnumpy(arr) if dev is not None else np.asarray(arr)


def on_device(arrays: Sequence) -> bool:
    return any(device_of(a) is not None for a in arrays)


def _eager_backend(arrays: Sequence) -> str:
    """Where eager work on these arrays runs: the current device, else the device some of them
    live on (a Parameter left on the device by a compiled step, used eagerly on the CPU)."""
    name = default_backend()
    if name in DEVICE_BACKENDS:
        return name
    return next(n for n in DEVICE_BACKENDS if _instance(n) is not None and _instance(n).device_ready
                and any(_instance(n).device.is_array(a) for a in arrays))


def run_eager(opdef, arrays: list, attrs, in_types: list, out_types: list) -> list:
    """One primitive on device arrays through the backend's kernels (cached per signature)."""
    name = _eager_backend(arrays)
    key = (name, opdef.name, tuple(in_types), attrs)
    try:
        exe = _EAGER.get(key)
    except TypeError:       # an unhashable attribute: compile without the cache
        key, exe = None, None
    if exe is None:
        b = GraphBuilder(f"eager_{opdef.name}")
        ins = [b.add_input(t) for t in in_types]
        exe = get_backend(name).compile(b.finish(b.emit(opdef.name, ins, attrs)))
        if key is not None:
            if len(_EAGER) > _EAGER_LIMIT:
                _EAGER.clear()
            _EAGER[key] = exe
    dev = get_backend(name).device
    return exe(*[a if dev.is_array(a) else dev.upload(a) for a in arrays])


def run_graph_on_device(graph: Graph, arrays: list) -> list:
    """An eager call of a transformed graph (grad, vmap) on device tensors."""
    name = _eager_backend(arrays)
    dev = get_backend(name).device
    return get_backend(name).compile(graph)(*[a if dev.is_array(a) else dev.upload(a) for a in arrays])
