"""`sporeflow-ir stats`: nodes per op, fused groups, bytes moved and FLOPs per kernel, seconds per pass.

A kernel is a top-level node of the compiled graph (a `fused` node is one kernel); its bytes are
what it reads and writes in memory (inputs + outputs; values inside a fused body stay in
registers), its FLOPs an estimate from the op table below (per output element by default).
"""
from __future__ import annotations

from collections import Counter
from math import prod

from sporeflow.ir.graph import Graph, Node
from sporeflow.ir.registry import Kind, get_op

_FREE = ("constant", "reshape", "broadcast_to", "squeeze", "expand_dims", "tuple", "parameter")


def _matmul_flops(n: Node) -> int:
    a = n.inputs[0].type.shape
    k = a[-2] if n.attrs.get("transpose_a") else a[-1]
    return 2 * n.outputs[0].type.size * k


def _conv_flops(n: Node) -> int:
    w = n.inputs[1].type.shape           # OIHW: each output element is I*kh*kw multiply-adds
    return 2 * n.outputs[0].type.size * prod(w[1:])


def _reduce_flops(n: Node) -> int:
    return n.inputs[0].type.size


FLOPS = {"matmul": _matmul_flops, "batch_matmul": _matmul_flops, "conv2d": _conv_flops}
KIND_FLOPS = {Kind.REDUCE: _reduce_flops}


def node_flops(n: Node) -> int:
    if n.op == "fused":
        return sum(node_flops(m) for m in n.attrs["body"].nodes)
    if n.op in _FREE:
        return 0
    if n.op in FLOPS:
        return FLOPS[n.op](n)
    try:
        kind = get_op(n.op).kind
    except Exception:
        kind = Kind.OPAQUE
    if kind == Kind.INJECTIVE:
        return 0                          # data movement only
    rule = KIND_FLOPS.get(kind)
    if rule is not None:
        return rule(n)
    return sum(v.type.size for v in n.outputs)


def node_bytes(n: Node) -> int:
    vals = list(n.inputs) + list(n.outputs)
    return sum(v.type.size * v.type.dtype.bits // 8 for v in vals)


def op_counts(g: Graph) -> Counter:
    """Ops of every node, fused bodies and control-flow subgraphs included (`fused` itself not)."""
    return Counter(n.op for n in g.walk() if n.op != "fused")


def kernels(g: Graph) -> list[dict]:
    out = []
    for n in g.nodes:
        if n.op in _FREE:
            continue
        name = n.attrs["name"] if n.op == "fused" else n.op
        kind = n.attrs["kind"] if n.op == "fused" else get_op(n.op).kind.name.lower()
        members = len(n.attrs["body"].nodes) if n.op == "fused" else 1
        out.append({"kernel": name, "kind": kind, "members": members,
                    "bytes": node_bytes(n), "flops": node_flops(n)})
    return out


def report(name: str, final: Graph, timings: list[tuple[str, float]], traced: Graph | None = None) -> str:
    lines = [f"== {name}: {len((traced or final).nodes)} traced node(s) -> {len(final.nodes)} after the passes"]
    lines.append("nodes per op:")
    for op, c in sorted(op_counts(final).items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {op:24s} {c}")
    ks = kernels(final)
    fused = [k for k in ks if k["members"] > 1]
    lines.append(f"fused groups: {len(fused)}")
    lines.append("kernels:")
    lines.append(f"  {'kernel':44s} {'kind':12s} {'nodes':>5s} {'bytes':>10s} {'flops':>10s} {'flop/B':>7s}")
    for k in ks:
        ai = k["flops"] / k["bytes"] if k["bytes"] else 0.0
        lines.append(f"  {k['kernel'][:44]:44s} {k['kind']:12s} {k['members']:5d} {k['bytes']:10d} "
                     f"{k['flops']:10d} {ai:7.2f}")
    tb, tf = sum(k["bytes"] for k in ks), sum(k["flops"] for k in ks)
    lines.append(f"  {'total':44s} {'':12s} {'':5s} {tb:10d} {tf:10d}")
    if timings:
        lines.append("compile time per pass:")
        for p, s in timings:
            lines.append(f"  {p:24s} {s * 1e3:9.3f} ms")
    return "\n".join(lines)
