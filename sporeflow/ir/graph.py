"""The SSA graph: Value, Node, Graph, and the GraphBuilder that every tracer and pass uses.

A Graph owns its inputs, its nodes in a valid topological order, and its outputs. A Value is
defined exactly once: as a graph input or as an output of one node. Nodes carry the user's
source location (`loc`, "file.py:12") and Cell scope (`scope`, "net.fc1"); passes keep both
when they can. Subgraphs (for cond/while_loop/scan/fused kernels) live in node attributes.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .registry import get_op
from .types import Attrs, TensorType


class Value:
    """An SSA value. `producer` is None for graph inputs."""
    __slots__ = ("type", "name", "producer", "index", "__weakref__")

    def __init__(self, type: TensorType, name: str = "", producer: "Node | None" = None, index: int = 0):
        self.type = type
        self.name = name
        self.producer = producer
        self.index = index

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self) -> str:
        return f"%{self.name or hex(id(self))[-6:]}: {self.type}"


class Node:
    __slots__ = ("op", "inputs", "attrs", "outputs", "loc", "scope")

    def __init__(self, op: str, inputs: Sequence[Value], attrs: Attrs, out_types: Sequence[TensorType],
                 loc: str = "", scope: str = ""):
        self.op = op
        self.inputs = list(inputs)
        self.attrs = attrs if isinstance(attrs, Attrs) else Attrs(attrs)
        self.outputs = [Value(t, "", self, i) for i, t in enumerate(out_types)]
        self.loc = loc
        self.scope = scope

    @property
    def opdef(self):
        return get_op(self.op)

    def subgraphs(self) -> list["Graph"]:
        return [v for _, v in sorted(self.attrs.items()) if isinstance(v, Graph)]

    def __repr__(self) -> str:
        return f"Node({self.op}, {[str(v.type) for v in self.inputs]} -> {[str(v.type) for v in self.outputs]})"


class Graph:
    """inputs -> nodes -> outputs. Hash/eq by identity (graphs sit in Attrs as subgraphs)."""

    def __init__(self, name: str, inputs: Sequence[Value], nodes: Sequence[Node], outputs: Sequence[Value]):
        self.name = name
        self.inputs = list(inputs)
        self.nodes = list(nodes)
        self.outputs = list(outputs)

    @property
    def in_types(self) -> list[TensorType]:
        return [v.type for v in self.inputs]

    @property
    def out_types(self) -> list[TensorType]:
        return [v.type for v in self.outputs]

    def walk(self) -> Iterable[Node]:
        """Every node, nested subgraphs' nodes included (pre-order)."""
        for n in self.nodes:
            yield n
            for g in n.subgraphs():
                yield from g.walk()

    def live_nodes(self) -> list[Node]:
        """The nodes some of whose results reach the outputs, in order (dead code elimination
        keeps these: every primitive is pure). Subgraphs are not looked into."""
        live = {id(v) for v in self.outputs}
        keep = []
        for node in reversed(self.nodes):
            if any(id(v) in live for v in node.outputs):
                keep.append(node)
                live.update(id(v) for v in node.inputs)
        keep.reverse()
        return keep

    def __str__(self) -> str:
        return print_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs>"


class GraphBuilder:
    """Appends nodes with inferred output types; `finish` seals a Graph."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []

    def add_input(self, type: TensorType, name: str = "") -> Value:
        v = Value(type, name)
        self.inputs.append(v)
        return v

    def emit(self, op: str, inputs: Sequence[Value], attrs: Attrs | dict | None = None,
             loc: str = "", scope: str = "") -> list[Value]:
        attrs = attrs if isinstance(attrs, Attrs) else Attrs(attrs or {})
        out_types = get_op(op).infer_types([v.type for v in inputs], attrs)
        node = Node(op, inputs, attrs, out_types, loc, scope)
        self.nodes.append(node)
        return node.outputs

    def emit_node(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    def finish(self, outputs: Sequence[Value]) -> Graph:
        return Graph(self.name, self.inputs, self.nodes, outputs)


from .printer import print_graph  # noqa: E402  (Graph.__str__; the printer reads Graph)
