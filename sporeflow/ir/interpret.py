"""The reference interpreter: runs a Graph node by node with each OpDef's numpy `impl`.
It is the oracle that every backend and every pass is tested against."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SporeflowError
from .graph import Graph


def run_graph(graph: Graph, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate `graph` on storage arrays (bf16 as uint16); returns storage arrays."""
    if len(args) != len(graph.inputs):
        raise SporeflowError(f"graph @{graph.name} takes {len(graph.inputs)} inputs, got {len(args)}")
    env: dict[int, np.ndarray] = {}
    for v, a in zip(graph.inputs, args):
        env[id(v)] = np.asarray(a, dtype=v.type.dtype.storage)
    for node in graph.nodes:
        ins = [env[id(v)] for v in node.inputs]
        outs = node.opdef.run(ins, node.attrs, [v.type for v in node.inputs], [v.type for v in node.outputs])
        for v, o in zip(node.outputs, outs):
            env[id(v)] = o
    return [env[id(v)] for v in graph.outputs]
