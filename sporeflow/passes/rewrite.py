"""Rebuilder: copy a graph node by node through a rewrite function (the simplification passes,
amp and user passes are written as rewrites). The input graph is never mutated; subgraphs of
cond/while_loop/scan/fused/custom_vjp are rebuilt once each, keeping their signatures.
Every replacement a rewrite offers is one opt-bisect step ("<name>: <op> (<loc>)"); past the
limit the node is kept as it was (nodes the rewrite already emitted are left for dce).
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph, GraphBuilder, Node, Value
from ..ir.types import Attrs
from .bisect import bisect_step
from .loop_nest import with_nest

# A rewrite sees the node (with already-rewritten inputs) and returns replacement values for
# its outputs, or None to keep it.
Rewrite = Callable[[Node, "Rebuilder"], "list[Value] | None"]


class Rebuilder:
    """Copies a graph node by node through a rewrite function."""

    def __init__(self, rewrite: Rewrite | None, recurse: bool = True, name: str | None = None):
        self.rewrite = rewrite
        self.recurse = recurse
        self.name = name or getattr(rewrite, "__name__", "rewrite")   # how bisect steps call it
        self.sub_cache: dict[int, Graph] = {}

    def graph(self, g: Graph) -> Graph:
        b = GraphBuilder(g.name)
        env: dict[int, Value] = {}
        for v in g.inputs:
            env[id(v)] = b.add_input(v.type, v.name)
        self.b = b
        for node in g.nodes:
            attrs = node.attrs
            if self.recurse and node.subgraphs():
                attrs = Attrs({k: (self.sub(v) if isinstance(v, Graph) else v) for k, v in node.attrs.items()})
                if node.op == "fused":       # the recorded loop nest describes the rewritten body
                    attrs = with_nest(attrs)
            new = Node(node.op, [env[id(v)] for v in node.inputs], attrs, [v.type for v in node.outputs],
                       node.loc, node.scope)
            self.b = b
            repl = self.rewrite(new, self) if self.rewrite else None
            if repl is not None and not bisect_step(f"{self.name}: {node.op} ({node.loc or 'no loc'})"):
                repl = None
            if repl is None:
                b.emit_node(new)
                repl = new.outputs
            for old, nv in zip(node.outputs, repl):
                env[id(old)] = nv
        return b.finish([env[id(v)] for v in g.outputs])

    def sub(self, g: Graph) -> Graph:
        if id(g) not in self.sub_cache:
            saved = getattr(self, "b", None)
            self.sub_cache[id(g)] = self.graph(g)
            self.b = saved
        return self.sub_cache[id(g)]

    def emit(self, op: str, inputs: list[Value], attrs: dict, like: Node) -> list[Value]:
        """A new node in the graph being built, with `like`'s loc and scope."""
        return self.b.emit(op, inputs, Attrs(attrs), like.loc, like.scope)
