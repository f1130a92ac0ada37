"""The loop nest of a fused body: the domain D it iterates, the axes its reductions run over,
and which nest that makes. Fusion computes it once per group and records it on the fused node
(attributes `nest`, `domain`, `reduce_axes`); backends read it from there (backends/llvm/
fused_plan.py then plans how each input is read) instead of deriving it again.

  elementwise  no reduction: one pass over D
  row          reductions over trailing axes [r, rank): per-row passes
  column       reductions over leading axes [0, c) that are the body's only sinks and outputs
  none         no single nest expresses the body (the backend lowers it member by member)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph
from ..ir.registry import REGISTRY, Kind
from ..ir.types import Attrs

NEST_ATTRS = ("nest", "domain", "reduce_axes")


@dataclass(frozen=True)
class LoopNest:
    kind: str                     # "elementwise" | "row" | "column" | "none"
    domain: tuple = ()
    reduce_axes: tuple = ()

    def attrs(self) -> dict:
        return {"nest": self.kind, "domain": self.domain, "reduce_axes": self.reduce_axes}

    @staticmethod
    def of(attrs) -> "LoopNest":
        return LoopNest(attrs["nest"], tuple(attrs["domain"]), tuple(attrs["reduce_axes"]))


NONE = LoopNest("none")


def fits(shape, dom) -> bool:
    """`shape` broadcasts to the domain (trailing alignment, size-1 dims)."""
    return len(shape) <= len(dom) and all(s in (1, d) for s, d in zip(shape[::-1], dom[::-1]))


def loop_nest(body: Graph) -> LoopNest:
    nodes = body.nodes
    masters = [n for n in nodes if REGISTRY[n.op].kind == Kind.OUT_EWISE_FUSABLE]
    if len(masters) > 1:
        return NONE
    master = masters[0] if masters else None
    in_ids = {id(v) for v in body.inputs}
    if master is not None and not all(id(v) in in_ids for v in master.inputs):
        return NONE
    epi = [n for n in nodes if n is not master]
    reds = [n for n in epi if REGISTRY[n.op].monoid is not None]
    # a reduction without keepdims drops axes, so its result does not align with the domain
    # by trailing dims (it is one value per row of it): only its input says what D is
    squeezed = {id(n.outputs[0]) for n in reds if not n.attrs.get("keepdims", False)}
    shapes = [v.type.shape for n in epi for v in n.outputs if id(v) not in squeezed] + \
        [v.type.shape for n in reds for v in n.inputs]
    if not shapes:
        return NONE
    rank = max(len(s) for s in shapes)
    dom = tuple(max((s[i - rank + len(s)] if i - rank + len(s) >= 0 else 1) for s in shapes) for i in range(rank))
    if not reds:
        return LoopNest("elementwise", dom)
    firsts, leads = set(), set()
    for n in reds:
        axes = tuple(sorted(n.attrs["axes"]))
        if n.inputs[0].type.shape != dom or not axes:
            return NONE
        if axes == tuple(range(axes[0], len(dom))):
            firsts.add(axes[0])
        elif axes == tuple(range(len(axes))):
            leads.add(len(axes))
        else:
            return NONE
    if len(firsts) + len(leads) != 1:
        return NONE
    if firsts:
        return LoopNest("row", dom, tuple(range(firsts.pop(), rank)))
    col = leads.pop()
    red_outs = {id(n.outputs[0]) for n in reds}   # column: reductions are sinks and the only outputs
    if master is not None or any(id(u) in red_outs for n in nodes for u in n.inputs) or \
            not all(id(v) in red_outs for v in body.outputs):
        return NONE
    return LoopNest("column", dom, tuple(range(col)))


def with_nest(attrs: Attrs) -> Attrs:
    """A fused node's attributes with the nest of its (possibly rewritten) body: passes that
    rebuild a fused body call this, so the recorded nest always describes the body."""
    return Attrs({**attrs, **loop_nest(attrs["body"]).attrs()})
