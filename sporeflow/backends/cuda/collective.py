"""Collectives in CUDA programs: a host step at the node's place. With an NCCL communicator
(init('nccl')) it hands NCCL the device buffers (nccl_collective.py); otherwise, or for what
NCCL cannot take (a sub-group, bool), it runs the node's reference implementation (ir/comm.py:
MPI, non-blocking with a deadline) on a host copy of the buffer and uploads the result. On the
emulator device memory is host memory, so those copies are free; on a GPU they are a
device->host->device round trip.

The split all-reduce through MPI: the start downloads its operand and starts MPI on that host
buffer, which its slot then holds (only the wait reads it); the wait completes it and uploads
the result, so the kernels launched in between run while the host reduces. The wait tells the
two paths apart by the buffer: a device array came from NCCL, a host array from MPI."""
from __future__ import annotations

import numpy as np

from ...ir import comm
from ...ir.graph import Node
from . import nccl_collective as nccl

# the device-buffer form of each blocking collective, called with (dev, x, **attrs but group)
_ON_DEVICE = {"all_reduce": nccl.all_reduce, "all_gather": nccl.all_gather,
              "broadcast": nccl.broadcast, "reduce_scatter": nccl.reduce_scatter}


def lower_collective(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)
    opdef, attrs = node.opdef, dict(node.attrs)
    on_device, group = _ON_DEVICE[node.op], attrs.get("group")
    device_attrs = {k: v for k, v in attrs.items() if k != "group"}

    def run(dev, env):
        if nccl.on_device(dev, x.type.dtype.storage, group):
            env[dst] = on_device(dev, env[src], **device_attrs)
            return
        res = opdef.run([dev.asnumpy(env[src])], attrs, [x.type], [y.type])[0]
        env[dst] = dev.upload(res)
    pb.host(run, [src], [dst], node.op)


def lower_all_reduce_start(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)
    op, group = node.attrs["op"], node.attrs["group"]

    def run(dev, env):
        if nccl.on_device(dev, x.type.dtype.storage, group):
            env[dst] = nccl.start_all_reduce(dev, env[src], op)
            return
        host = np.array(dev.asnumpy(env[src]), dtype=x.type.dtype.storage, copy=True)
        env[dst] = comm.start_all_reduce(host, host, op, group)     # a host buffer in flight
    pb.host(run, [src], [dst], node.op)


def lower_all_reduce_wait(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)

    def run(dev, env):
        buf = env[src]
        env[dst] = nccl.wait_all_reduce(dev, buf) if dev.is_array(buf) else dev.upload(comm.wait_all_reduce(buf))
    pb.host(run, [src], [dst], node.op)


RULES = {**{name: lower_collective for name in ("all_reduce", "all_gather", "broadcast", "reduce_scatter")},
         "all_reduce_start": lower_all_reduce_start, "all_reduce_wait": lower_all_reduce_wait}
