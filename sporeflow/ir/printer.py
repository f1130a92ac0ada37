"""Deterministic IR text. One statement per line; subgraphs print before the graph that uses
them and are referenced as @name. `parser.parse` reads this text back exactly:

  graph @mlp(%x: f32[4,8], %w: f32[8,2]) -> (f32[4,2]) {
    %0: f32[4,2] = matmul(%x, %w) {transpose_a=false, transpose_b=false}   # net.fc1  mlp.py:12
    return %0
  }
"""
from __future__ import annotations

import json
import math
import re

from .dtypes import DType, bf16_bits_to_f32, bfloat16
from .graph import Graph, Value
from .types import ConstValue

COMMENT_COLUMN = 60
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def fmt_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def fmt_const(c: ConstValue) -> str:
    a = c.array
    if c.dtype is bfloat16:
        a = bf16_bits_to_f32(a)
    flat = a.reshape(-1).tolist()
    if c.dtype.is_float:
        body = ", ".join(fmt_float(v) for v in flat)
    elif c.dtype.name == "bool":
        body = ", ".join("true" if v else "false" for v in flat)
    else:
        body = ", ".join(str(int(v)) for v in flat)
    return f"dense<{c.dtype.short}[{','.join(map(str, a.shape))}]>[{body}]"


def fmt_attr(v, names: dict[int, str]) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, DType):
        return v.short
    if isinstance(v, Graph):
        return "@" + names[id(v)]
    if isinstance(v, ConstValue):
        return fmt_const(v)
    if isinstance(v, tuple):
        inner = ", ".join(fmt_attr(x, names) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise TypeError(f"attribute value {v!r} of type {type(v).__name__} cannot be printed")


def _collect_subgraphs(g: Graph, order: list[Graph], seen: set[int]) -> None:
    for node in g.nodes:
        for sub in node.subgraphs():
            if id(sub) not in seen:
                seen.add(id(sub))
                _collect_subgraphs(sub, order, seen)
                order.append(sub)


def ident(name: str, fallback: str) -> str:
    """`name` as an IR identifier: other characters become '_', a leading digit gets '_' in front
    (CellList parameters are named "0.weight"); idempotent, so printing parsed text is stable."""
    if not name:
        return fallback
    s = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    return s if _IDENT.match(s) else "_" + s


def _unique(base: str, used: set[str]) -> str:
    """`base`, or the first free base_1, base_2, ...; marked as used."""
    name, k = base, 1
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def _graph_names(graphs: list[Graph]) -> dict[int, str]:
    used: set[str] = set()
    return {id(g): _unique(ident(g.name or "", "graph"), used) for g in graphs}


def _print_one(g: Graph, gname: str, gnames: dict[int, str], lines: list[str]) -> None:
    vnames: dict[int, str] = {}
    used: set[str] = set()
    params = []
    for i, v in enumerate(g.inputs):
        name = _unique(ident(v.name, f"arg{i}"), used)
        vnames[id(v)] = name
        params.append(f"%{name}: {v.type}")

    def ref(v: Value) -> str:
        return "%" + vnames.get(id(v), "<undefined>")

    outs = ", ".join(str(t) for t in g.out_types)
    lines.append(f"graph @{gname}({', '.join(params)}) -> ({outs}) {{")
    counter = 0
    for node in g.nodes:
        results = []
        for v in node.outputs:
            vnames[id(v)] = str(counter)
            results.append(f"%{counter}: {v.type}")
            counter += 1
        attrs = ""
        if node.attrs:
            attrs = " {" + ", ".join(f"{k}={fmt_attr(val, gnames)}" for k, val in node.attrs.items()) + "}"
        stmt = f"  {', '.join(results)} = {node.op}({', '.join(ref(v) for v in node.inputs)}){attrs}"
        if node.scope or node.loc:
            comment = "# " + node.scope + ("  " + node.loc if node.loc else "")
            stmt = stmt.ljust(COMMENT_COLUMN - 1) + " " + comment
        lines.append(stmt)
    lines.append("  return " + ", ".join(ref(v) for v in g.outputs) if g.outputs else "  return")
    lines.append("}")


def print_graph(g: Graph) -> str:
    """The whole module: every subgraph (first use order, innermost first), then `g`."""
    order: list[Graph] = []
    _collect_subgraphs(g, order, {id(g)})
    order.append(g)
    gnames = _graph_names(order)
    lines: list[str] = []
    for sub in order:
        _print_one(sub, gnames[id(sub)], gnames, lines)
        if sub is not g:
            lines.append("")
    return "\n".join(lines) + "\n"
