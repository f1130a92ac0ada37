"""Dead code elimination, the one the pipelines, autodiff, forward mode, the transforms and the
control-flow rules share: every primitive is pure, so a node whose results nobody uses goes,
in the graph and in every subgraph. The input graph is never mutated (jit keeps the traced
graph, and a gradient graph's subgraphs are shared with its forward graph).
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.types import Attrs
from .loop_nest import with_nest
from .rewrite import Rebuilder


def dce(graph: Graph) -> Graph:
    """Remove nodes whose results are never used, recursing into subgraphs. The graph may list
    nodes that read values it does not have (a subgraph cut down to some of its inputs): they
    must be dead, and go before anything is copied."""
    live = Graph(graph.name, graph.inputs, graph.live_nodes(), graph.outputs)
    return _dce(Rebuilder(None).graph(live))


def _dce(g: Graph) -> Graph:
    keep = g.live_nodes()
    for node in keep:
        if node.subgraphs():
            node.attrs = Attrs({k: (_dce(v) if isinstance(v, Graph) else v) for k, v in node.attrs.items()})
            if node.op == "fused":           # the recorded loop nest describes the pruned body
                node.attrs = with_nest(node.attrs)
    return Graph(g.name, g.inputs, keep, g.outputs)
