"""The print primitive in CUDA programs: a host step at the node's place in the program that
copies the printed tensors to the host, formats them as MindSpore does and writes them to
sys.stdout (as JAX's debug print does through a host callback). A device-side printf would
interleave threads' output, could not print bfloat16 or MindSpore's layout, and is flushed only
at synchronisation points; the host step keeps the program order of prints exactly."""
from __future__ import annotations

import sys

import numpy as np

from ...ir.dtypes import to_compute
from ...ir.graph import Node
from ...primitives.debug import format_parts


def lower_print(pb, node: Node) -> None:
    token, *xs = node.inputs
    srcs = [pb.slot(v) for v in node.inputs]
    dst = pb.slot(node.outputs[0])
    parts, types = tuple(node.attrs["parts"]), [v.type for v in xs]

    def run(dev, env):
        arrays = [to_compute(dev.asnumpy(env[s]), t.dtype) for s, t in zip(srcs[1:], types)]
        sys.stdout.write(format_parts(parts, arrays, [t.dtype for t in types]) + "\n")
        sys.stdout.flush()
        env[dst] = dev.upload(np.asarray(dev.asnumpy(env[srcs[0]]) + 1, np.int32))
    pb.host(run, srcs, [dst], node.op)


RULES = {"print": lower_print}
