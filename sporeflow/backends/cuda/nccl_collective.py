"""Collectives on device buffers through NCCL, when `communication.init('nccl')` made a world
communicator: the step hands NCCL the buffers' device pointers on a CUDA stream, with no copy
through the host. collective.py takes this path per call when `on_device` says it can, and
the host path (MPI on a host copy) otherwise: sub-groups (NCCL has the world communicator
only), dtypes NCCL has no type for (bool), or no NCCL communicator.

A blocking collective is enqueued on the compute stream and its completion polled with the
communication deadline (ir/comm.wait), so a dead rank raises CommTimeoutError instead of
hanging in the stream; the communicator is then aborted (NCCL cannot recover one whose peer
died). The split all-reduce enqueues on a side stream that first waits for the compute
stream's work so far; kernels launched between start and wait run alongside it, and the wait
polls the side stream's event and makes the compute stream wait for it."""
from __future__ import annotations

import numpy as np

from ...ir import comm

_DTYPES = {np.dtype(np.float16): "NCCL_FLOAT16", np.dtype(np.float32): "NCCL_FLOAT32",
           np.dtype(np.float64): "NCCL_FLOAT64", np.dtype(np.int8): "NCCL_INT8", np.dtype(np.uint8): "NCCL_UINT8",
           np.dtype(np.int32): "NCCL_INT32", np.dtype(np.uint32): "NCCL_UINT32",
           np.dtype(np.int64): "NCCL_INT64", np.dtype(np.uint64): "NCCL_UINT64"}
_OPS = {"sum": "NCCL_SUM", "prod": "NCCL_PROD", "max": "NCCL_MAX", "min": "NCCL_MIN"}

# split all-reduces in flight: the output buffer's pointer -> (marker, input kept alive, what, bytes)
IN_FLIGHT: dict[int, tuple] = {}


def on_device(dev, dtype, group: str | None) -> bool:
    """Whether a collective of this dtype over this group runs through NCCL on `dev`'s buffers."""
    w = comm.WORLD
    return (w.nccl is not None and w.nccl_memory == dev.memory and np.dtype(dtype) in _DTYPES
            and comm.group_name(group) == w.world_group)


def _const(table: dict, key) -> int:
    return getattr(comm.WORLD.nccl_api, table[key])


def _contiguous(dev, a):
    return a if a.flags.c_contiguous else dev.copy(a)


def _finish(marker, what: str, nbytes: int) -> None:
    try:
        comm.wait(marker, what, None, nbytes)
    except comm.CommTimeoutError:
        comm.WORLD.nccl.abort()
        comm.WORLD.nccl = None      # later collectives go through MPI, which times out in turn
        raise


def _collective(dev, x, shape, what: str, enqueue):
    """A new buffer of `shape` holding the collective of `x`: `enqueue(comm, src, dst, count,
    dtype code, stream)` puts it on the compute stream; waited for with the deadline."""
    x = _contiguous(dev, x)
    out = dev.empty(tuple(shape), x.dtype)
    stream = dev.comm_stream(False)
    enqueue(comm.WORLD.nccl, dev.pointer(x), dev.pointer(out), x.size, _const(_DTYPES, x.dtype),
            dev.stream_handle(stream))
    _finish(dev.marker(stream), what, x.nbytes)
    return out


def all_reduce(dev, x, op: str):
    return _collective(dev, x, x.shape, f"all_reduce({op})",
                       lambda c, src, dst, n, dt, s: c.allReduce(src, dst, n, dt, _const(_OPS, op), s))


def all_gather(dev, x):
    return _collective(dev, x, (comm.size(None) * x.shape[0],) + tuple(x.shape[1:]), "all_gather",
                       lambda c, src, dst, n, dt, s: c.allGather(src, dst, n, dt, s))


def broadcast(dev, x, root: int):
    return _collective(dev, x, x.shape, f"broadcast(root={root})",
                       lambda c, src, dst, n, dt, s: c.broadcast(src, dst, n, dt, root, s))


def reduce_scatter(dev, x, op: str):
    ranks = comm.size(None)
    return _collective(dev, x, (x.shape[0] // ranks,) + tuple(x.shape[1:]), f"reduce_scatter({op})",
                       lambda c, src, dst, n, dt, s: c.reduceScatter(src, dst, n // ranks, dt, _const(_OPS, op), s))


def start_all_reduce(dev, x, op: str):
    """Enqueue all_reduce(x) on the side stream and return its output buffer at once."""
    x = _contiguous(dev, x)
    out = dev.empty(x.shape, x.dtype)
    stream = dev.comm_stream(True)
    comm.WORLD.nccl.allReduce(dev.pointer(x), dev.pointer(out), x.size, _const(_DTYPES, x.dtype),
                              _const(_OPS, op), dev.stream_handle(stream))
    # x stays referenced until the wait: the step frees its slot after the start, and its
    # memory must not be reused while the side stream still reads it
    IN_FLIGHT[dev.pointer(out)] = (dev.marker(stream), x, f"all_reduce({op})", x.nbytes)
    return out


def wait_all_reduce(dev, buf):
    """Wait, with the deadline, for the all-reduce started into `buf`; `buf` is then its result."""
    entry = IN_FLIGHT.pop(dev.pointer(buf), None)
    if entry is not None:
        marker, _, what, nbytes = entry
        _finish(marker, what, nbytes)
        dev.join(marker)
    return buf
