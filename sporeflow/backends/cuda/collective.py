"""Collectives in CUDA programs: a host step at the node's place that runs the node's reference
implementation (ir/comm.py: MPI, non-blocking with a deadline) on a host copy of the buffer and
uploads the result. On the emulator device memory is host memory, so the copies are free; on a
GPU they are a device->host->device round trip (NCCL on device pointers is the faster path this
does not take yet)."""
from __future__ import annotations

from ...ir.graph import Node


def lower_collective(pb, node: Node) -> None:
    (x,), (y,) = node.inputs, node.outputs
    src, dst = pb.slot(x), pb.slot(y)
    opdef, attrs = node.opdef, dict(node.attrs)

    def run(dev, env):
        res = opdef.run([dev.asnumpy(env[src])], attrs, [x.type], [y.type])[0]
        env[dst] = dev.upload(res)
    pb.host(run, [src], [dst], node.op)


RULES = {name: lower_collective for name in ("all_reduce", "all_gather", "broadcast", "reduce_scatter")}
