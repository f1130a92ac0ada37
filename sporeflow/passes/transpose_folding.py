"""Transpose folding: `matmul(transpose(a), b)` becomes `matmul(a, b, transpose_a=True)`, for
every op whose OpDef lists its operands' `transpose_flags`.

A user who writes `ops.matmul(x.T, d)` or `ops.matmul(x, w.T)` (numpy style, as MindSpore
tutorials do) gets a transpose node feeding the product. Lowered as written, that transpose is
a full copy of the operand before the GEMM (512x128 float32: 0.1 ms on one core, a quarter of the
512x512x128 product's own time), while BLAS reads either layout at the same speed through its
transpose flags. So a transpose that swaps the last two axes and keeps the batch axes in place
is folded into the matmul's flag (XLA's TransposeFolding does the same). The transpose node stays
when something else uses it.

Not in `simplify`: those rewrites are exact bit for bit, and this one hands the GEMM the same
products in a layout of its choosing, so the summation order is the BLAS kernel's (the
interpreter's matmul is numpy's, for which the result is the same to rounding). The interpreter
pipeline does not run it; the native ones do.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node, Value
from .dce import dce
from .manager import register_pass
from .rewrite import Rebuilder


def _swaps_last_two(node: Node | None) -> bool:
    if node is None or node.op != "transpose":
        return False
    perm = tuple(node.attrs["perm"])
    n = len(perm)
    return n >= 2 and perm == tuple(range(n - 2)) + (n - 1, n - 2)


def _fold(node: Node, rb: Rebuilder) -> list[Value] | None:
    """Any op whose OpDef names `transpose_flags` (matmul: transpose_a, transpose_b)."""
    if not _foldable(node):
        return None
    ins, attrs = list(node.inputs), dict(node.attrs)
    for i, flag in enumerate(node.opdef.transpose_flags):
        p = ins[i].producer
        if _swaps_last_two(p):
            ins[i] = p.inputs[0]
            attrs[flag] = not attrs[flag]
    return rb.emit(node.op, ins, attrs, node)


@register_pass("fold_transposes", opt_level=1)
def fold_transposes(graph: Graph) -> Graph:
    """Fold a last-two-axes transpose feeding a matmul into its transpose_a / transpose_b (and
    drop the transposes nothing else uses). A graph with nothing to fold comes back as it is:
    the rebuild and dce cost 1.8 ms of an MLP train step's warm compile, which folds nothing."""
    if not any(_foldable(n) for n in graph.walk()):
        return graph
    return dce(Rebuilder(_fold, name="fold_transposes").graph(graph))


def _foldable(node: Node) -> bool:
    flags = node.opdef.transpose_flags
    return bool(flags) and any(_swaps_last_two(v.producer) for v in node.inputs[:len(flags)])
