"""Collectives in CUDA programs: a host step at the node's place that runs the node's reference
implementation (ir/comm.py: MPI, non-blocking with a deadline) on a host copy of the buffer and
uploads the result. On the emulator device memory is host memory, so the copies are free; on a
GPU they are a device->host->device round trip (NCCL on device pointers is the faster path this
does not take yet).

The split all-reduce: the start downloads its operand and starts MPI on that host buffer, which
its slot then holds (only the wait reads it); the wait completes it and uploads the result, so
the kernels launched in between run while the host reduces."""
from __future__ import annotations

import numpy as np

from ...ir import comm
from ...ir.graph import Node


def lower_collective(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)
    opdef, attrs = node.opdef, dict(node.attrs)

    def run(dev, env):
        res = opdef.run([dev.asnumpy(env[src])], attrs, [x.type], [y.type])[0]
        env[dst] = dev.upload(res)
    pb.host(run, [src], [dst], node.op)


def lower_all_reduce_start(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)
    op, group = node.attrs["op"], node.attrs["group"]

    def run(dev, env):
        host = np.array(dev.asnumpy(env[src]), dtype=x.type.dtype.storage, copy=True)
        env[dst] = comm.start_all_reduce(host, host, op, group)     # a host buffer in flight
    pb.host(run, [src], [dst], node.op)


def lower_all_reduce_wait(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)

    def run(dev, env):
        env[dst] = dev.upload(comm.wait_all_reduce(env[src]))
    pb.host(run, [src], [dst], node.op)


RULES = {**{name: lower_collective for name in ("all_reduce", "all_gather", "broadcast", "reduce_scatter")},
         "all_reduce_start": lower_all_reduce_start, "all_reduce_wait": lower_all_reduce_wait}
