"""The numpy interpreter backend: runs any graph with the OpDefs' reference `impl`."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ir.interpret import run_graph
from .base import check_inputs, register_backend


class InterpExecutable:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.source = str(graph)
        self.stats = {"nodes": len(graph.nodes)}

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        check_inputs(self.graph, arrays)
        return run_graph(self.graph, arrays)


class InterpBackend:
    name = "interp"

    def compile(self, graph: Graph) -> InterpExecutable:
        return InterpExecutable(graph)


register_backend("interp", InterpBackend)
