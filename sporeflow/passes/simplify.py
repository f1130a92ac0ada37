"""Simplification passes: dce, cse, fold_constants, algebraic, reshape_broadcast, and
`simplify` (all of them to a fixed point).

Every pass builds a new graph (the input graph is never mutated: jit keeps the traced graph
and may compile it for other backends), recurses into the subgraphs of cond/while_loop/scan/
fused/custom_vjp (their signatures are kept, so the enclosing node stays valid), and keeps
each node's loc/scope (a rewritten node takes those of the node it replaces).
Every rewrite is exact, bit for bit, on every input, NaN/inf/-0 included; e.g. `x + 0.0` is
not folded for floats (it turns -0.0 into +0.0), while `x - 0.0`, `x + (-0.0)` and `x * 1` are.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import dtypes as D
from ..ir.graph import Graph, GraphBuilder, Node, Value
from ..ir.registry import REGISTRY
from ..ir.types import Attrs, ConstValue
from .dce import dce
from .manager import register_pass
from .rewrite import Rebuilder, Rewrite  # noqa: F401  (Rewrite: the signature of the rewrites below)

FOLD_MAX_ELEMENTS = 1 << 16     # results up to this size fold when no larger than an input;
FOLD_MAX_GROWTH = 16            # a result larger than every input (a broadcast) only up to this


# ---- dead code elimination ---------------------------------------------------------------------
register_pass("dce", opt_level=0)(dce)


# ---- common subexpression elimination ------------------------------------------------------------
@register_pass("cse", opt_level=1)
def cse(graph: Graph) -> Graph:
    """Merge nodes with the same op, inputs and attributes (per graph; constants by content)."""
    def rw(node: Node, rb: Rebuilder):
        table = rb.b.__dict__.setdefault("_cse_table", {})   # one table per graph being built
        try:
            key = (node.op, tuple(id(v) for v in node.inputs), node.attrs)
            hash(key)
        except TypeError:
            return None
        if key in table:
            return table[key]
        table[key] = node.outputs
        return None
    return Rebuilder(rw, name="cse").graph(graph)


# ---- constant folding ----------------------------------------------------------------------------
def const_of(v: Value) -> ConstValue | None:
    p = v.producer
    return p.attrs["value"] if p is not None and p.op == "constant" else None


def _foldable(node: Node) -> bool:
    if node.op == "constant" or node.subgraphs() or not node.inputs or not node.opdef.pure:
        return False
    if any(const_of(v) is None for v in node.inputs):
        return False
    out = sum(v.type.size for v in node.outputs)
    biggest = max(v.type.size for v in node.inputs)
    return out <= FOLD_MAX_GROWTH or (out <= FOLD_MAX_ELEMENTS and out <= biggest)


@register_pass("fold_constants", opt_level=1)
def fold_constants(graph: Graph) -> Graph:
    """Evaluate nodes whose inputs are all constants with the op's reference implementation
    (exactly what the interpreter computes); results stay small (no huge broadcasts)."""
    def rw(node: Node, rb: Rebuilder):
        if not _foldable(node):
            return None
        arrays = [const_of(v).array for v in node.inputs]
        with np.errstate(all="ignore"):
            res = REGISTRY[node.op].run(arrays, node.attrs, [v.type for v in node.inputs],
                                        [v.type for v in node.outputs])
        return [rb.emit("constant", [], {"value": ConstValue(r, v.type.dtype)}, node)[0]
                for r, v in zip(res, node.outputs)]
    return Rebuilder(rw, name="fold_constants").graph(graph)


# ---- algebraic identities ------------------------------------------------------------------------
def _all_equal(v: Value, x: float, negzero: bool | None = None) -> bool:
    c = const_of(v)
    if c is None:
        return False
    a = D.to_compute(np.asarray(c.array), c.dtype)
    if not (a == x).all():
        return False
    if negzero is not None and c.dtype.is_float:
        return bool((np.signbit(a) == negzero).all())
    return True


def _lossless(src: D.DType, dst: D.DType) -> bool:
    """Every value of `src` is exactly representable in `dst` (so casting through it is exact)."""
    if src is dst or src is D.bool_:
        return True
    if src.is_float:
        return dst.is_float and dst.bits > src.bits and not (src is D.float16 and dst is D.bfloat16)
    mant = {D.float16: 11, D.bfloat16: 8, D.float32: 24, D.float64: 53}
    if dst.is_float:
        return src.bits - (1 if src.is_signed else 0) <= mant[dst]
    if dst is D.bool_:
        return False
    if src.is_signed:
        return dst.is_signed and dst.bits >= src.bits
    return dst.bits > src.bits or (not dst.is_signed and dst.bits >= src.bits)


def _same(node: Node, x: Value) -> list[Value] | None:
    return [x] if x.type == node.outputs[0].type else None


def _algebraic(node: Node, rb: Rebuilder):
    op, ins = node.op, node.inputs
    if op == "mul":
        for a, c in ((ins[0], ins[1]), (ins[1], ins[0])):
            if _all_equal(c, 1.0):
                return _same(node, a)
    if op == "add":
        for a, c in ((ins[0], ins[1]), (ins[1], ins[0])):
            if not a.dtype.is_float and _all_equal(c, 0) or a.dtype.is_float and _all_equal(c, 0.0, negzero=True):
                return _same(node, a)
    if op == "sub" and (_all_equal(ins[1], 0.0, negzero=False) if ins[0].dtype.is_float else _all_equal(ins[1], 0)):
        return _same(node, ins[0])
    p = ins[0].producer if ins else None
    if op == "neg" and p is not None and p.op == "neg":
        return [p.inputs[0]]
    if op == "cast":
        if ins[0].dtype is node.outputs[0].dtype:
            return [ins[0]]
        src, mid, dst = (p.inputs[0].dtype, p.outputs[0].dtype, node.outputs[0].dtype) if p is not None \
            and p.op == "cast" else (None, None, None)
        # int -> float -> int saturates where a direct int -> int cast wraps: not the same cast
        through_float = src is not None and src.is_int and mid.is_float and dst.is_int
        if p is not None and p.op == "cast" and _lossless(src, mid) and not through_float:
            if p.inputs[0].dtype is node.outputs[0].dtype:
                return [p.inputs[0]]
            return rb.emit("cast", [p.inputs[0]], {"dtype": node.attrs["dtype"]}, node)
    if op == "transpose":
        perm = tuple(node.attrs["perm"])
        if perm == tuple(range(len(perm))):
            return [ins[0]]
        if p is not None and p.op == "transpose":
            q = tuple(p.attrs["perm"][i] for i in perm)
            if q == tuple(range(len(q))):
                return [p.inputs[0]]
            return rb.emit("transpose", [p.inputs[0]], {"perm": q}, node)
    return None


@register_pass("algebraic", opt_level=1)
def algebraic(graph: Graph) -> Graph:
    """x*1, x-0, x+(-0), integer x+0, neg(neg x), exact cast of cast, transpose of transpose."""
    return Rebuilder(_algebraic, name="algebraic").graph(graph)


def _reshape_broadcast(node: Node, rb: Rebuilder):
    op, ins = node.op, node.inputs
    if op not in ("reshape", "broadcast_to"):
        return None
    x, out = ins[0], node.outputs[0]
    if x.type == out.type:
        return [x]
    p = x.producer
    if op == "reshape" and p is not None and p.op == "reshape":
        src = p.inputs[0]
        return [src] if src.type == out.type else rb.emit("reshape", [src], {"shape": out.shape}, node)
    if op == "broadcast_to" and p is not None and p.op == "broadcast_to":
        return rb.emit("broadcast_to", [p.inputs[0]], {"shape": out.shape}, node)
    if op == "broadcast_to" and x.type.size == out.type.size:   # only adds leading 1s: a reshape
        return rb.emit("reshape", [x], {"shape": out.shape}, node)
    return None


@register_pass("reshape_broadcast", opt_level=1)
def reshape_broadcast(graph: Graph) -> Graph:
    """Drop no-op reshapes/broadcasts, merge chains of them."""
    return Rebuilder(_reshape_broadcast, name="reshape_broadcast").graph(graph)


@register_pass("simplify", opt_level=1)
def simplify(graph: Graph) -> Graph:
    """algebraic + reshape_broadcast + fold_constants + cse, then dce; repeated to a fixed point."""
    for _ in range(4):
        n = _count(graph)
        graph = dce(cse(fold_constants(reshape_broadcast(algebraic(graph)))))
        if _count(graph) == n:
            break
    return graph


def _count(g: Graph) -> int:
    return sum(1 for _ in g.walk())
