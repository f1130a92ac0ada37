"""The verifier: definitions before uses, single assignment, known ops with their attributes,
and every node's stored output types equal to what its OpDef infers (subgraph signatures are
checked by the control-flow ops' own inference). Tests run it after every pass."""
from __future__ import annotations

from ..errors import OpTypeError, VerifyError
from .graph import Graph, Node
from .registry import REGISTRY


def _where(g: Graph, i: int, node: Node) -> str:
    at = f"  ({node.scope}  {node.loc})" if node.scope or node.loc else ""
    ins = ", ".join(str(v.type) for v in node.inputs)
    outs = ", ".join(str(v.type) for v in node.outputs)
    return f"in @{g.name}, node {i} `{node.op}({ins}) -> ({outs})`{at}"


def verify(graph: Graph) -> Graph:
    """Raise VerifyError describing the first problem; return the graph when it is valid."""
    _verify(graph, set())
    return graph


def _verify(g: Graph, checked: set[int]) -> None:
    if id(g) in checked:
        return
    checked.add(id(g))
    defined: set[int] = set()
    for v in g.inputs:
        if id(v) in defined:
            raise VerifyError(f"in @{g.name}: input %{v.name} listed twice")
        defined.add(id(v))
    for i, node in enumerate(g.nodes):
        if node.op not in REGISTRY:
            raise VerifyError(f"{_where(g, i, node)}: unknown op {node.op!r}")
        for k, v in enumerate(node.inputs):
            if id(v) not in defined:
                raise VerifyError(f"{_where(g, i, node)}: input {k} is used before it is defined "
                                  "(or comes from another graph)")
        for sub in node.subgraphs():
            _verify(sub, checked)
        try:
            inferred = REGISTRY[node.op].infer_types([v.type for v in node.inputs], node.attrs)
        except OpTypeError as e:
            raise VerifyError(f"{_where(g, i, node)}: {e}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            # hand-written IR can give an attribute of the wrong kind (shape="oops"); the op's
            # inference was not written to diagnose that, so say which attributes it choked on
            raise VerifyError(f"{_where(g, i, node)}: invalid attributes {dict(node.attrs)} "
                              f"({type(e).__name__}: {e})") from None
        stored = [v.type for v in node.outputs]
        if inferred != stored:
            raise VerifyError(f"{_where(g, i, node)}: stored result type(s) "
                              f"({', '.join(map(str, stored))}) but the op infers ({', '.join(map(str, inferred))})")
        for v in node.outputs:
            if id(v) in defined:
                raise VerifyError(f"{_where(g, i, node)}: a result is defined twice")
            defined.add(id(v))
    for k, v in enumerate(g.outputs):
        if id(v) not in defined:
            raise VerifyError(f"in @{g.name}: output {k} is not defined in the graph")
