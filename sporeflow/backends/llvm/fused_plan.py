"""Planning a fused body (passes/fusion.py) for the LLVM renderer (fused.py). The domain D and
the loop nest (elementwise; row: reductions over trailing axes; column: reductions over leading
axes; an optional matmul/conv2d master first) are fusion's, recorded on the fused node
(passes/loop_nest.py); this plans how each input is read (strides over D through
broadcast/reshape views), which members are scalar literals, and the pass level of each value
in a row kernel. `analyze` returns None for a body it cannot plan; the renderer then inlines it
node by node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ... import primitives  # noqa: F401  (REDUCE_OPS below reads the registered reductions)
from ...ir.dtypes import bf16_bits_to_f32, bfloat16
from ...ir.graph import Graph, Node
from ...ir.registry import REGISTRY, Kind
from ...passes.loop_nest import LoopNest, fits
from .kernels_elem import contiguous_strides
from .scalar_ops import SCALAR_RULES

# reductions a row/column kernel accumulates: op -> its combiner (OpDef.monoid)
REDUCE_OPS = {name: op.monoid for name, op in REGISTRY.items() if op.monoid is not None}
VIEW_OPS = ("broadcast_to", "reshape")


@dataclass
class Access:
    """A body input read at domain indices through element strides over D (None when its
    shape does not broadcast to D); `own` are the strides over its own shape."""
    arg: int
    strides: list[int] | None
    dtype: object
    own: list[int] | None = None


@dataclass
class Plan:
    dom: tuple
    r: int | None                                   # first reduced axis (row plan) or None
    master: Node | None
    access: dict[int, Access] = field(default_factory=dict)   # id(Value) -> access (views of inputs)
    consts: dict[int, float] = field(default_factory=dict)     # id(Value) -> scalar literal
    col: int | None = None                          # column plan: reduced leading axes [0, col)
    level: dict[int, int] = field(default_factory=dict)
    row_vals: set = field(default_factory=set)      # ids of values constant along the row


def _unit_reshape_strides(src_shape, src_strides, dst_shape):
    """Strides of a reshape that only inserts/removes size-1 dims, else None."""
    a = [(d, s) for d, s in zip(src_shape, src_strides) if d != 1]
    bdims = [d for d in dst_shape if d != 1]
    if [d for d, _ in a] != bdims:
        return None
    it = iter(s for _, s in a)
    return [0 if d == 1 else next(it) for d in dst_shape]


def _dom_strides(shape_strides, shape, dom):
    """Own-shape strides -> strides over the domain (trailing alignment, size-1 dims broadcast)."""
    pad = len(dom) - len(shape)
    return [0] * pad + [0 if d == 1 else s for d, s in zip(shape, shape_strides)]


def analyze(body: Graph, nest: LoopNest) -> Plan | None:
    """The plan of a body whose loop nest fusion recorded (`nest`), or None when no nest
    expresses it or an input cannot be read through strides over the domain."""
    if nest.kind == "none":
        return None
    master = next((n for n in body.nodes if REGISTRY[n.op].kind == Kind.OUT_EWISE_FUSABLE), None)
    epi = [n for n in body.nodes if n is not master]
    dom = nest.domain
    r = nest.reduce_axes[0] if nest.kind == "row" else None
    col = len(nest.reduce_axes) if nest.kind == "column" else None
    plan = Plan(dom, r, master, col=col)
    for k, v in enumerate(body.inputs):
        own = contiguous_strides(v.type.shape)
        plan.access[id(v)] = Access(k, _dom_strides(own, v.type.shape, dom) if fits(v.type.shape, dom) else None,
                                     v.type.dtype, own)
    if master is not None:
        mv = master.outputs[0]
        if not fits(mv.type.shape, dom):
            return None
        own = contiguous_strides(mv.type.shape)
        plan.access[id(mv)] = Access(-1, _dom_strides(own, mv.type.shape, dom), mv.type.dtype, own)
    for n in epi:
        v = n.outputs[0] if len(n.outputs) == 1 else None
        if v is None:
            return None
        if n.op == "constant":
            if v.type.size != 1:
                return None
            arr = n.attrs["value"].array
            if v.dtype is bfloat16:          # bf16 constants are stored as their bits
                arr = bf16_bits_to_f32(arr)
            plan.consts[id(v)] = arr.reshape(-1)[0]
            continue
        if n.op in VIEW_OPS:
            src = n.inputs[0]
            if id(src) in plan.consts:
                plan.consts[id(v)] = plan.consts[id(src)]
                continue
            acc = plan.access.get(id(src))
            if acc is None or acc.strides is None and n.op == "broadcast_to":
                return None
            if n.op == "reshape":
                own = _unit_reshape_strides(src.type.shape, acc.own, v.type.shape)
                if own is None or not fits(v.type.shape, dom):
                    return None
                plan.access[id(v)] = Access(acc.arg, _dom_strides(own, v.type.shape, dom), acc.dtype, own)
            else:
                if not fits(v.type.shape, dom):
                    return None
                own = _dom_strides(acc.own, src.type.shape, v.type.shape)
                plan.access[id(v)] = Access(acc.arg, _dom_strides(own, v.type.shape, dom), acc.dtype, own)
            continue
        if n.op not in SCALAR_RULES and n.op not in REDUCE_OPS:
            return None
        if not fits(v.type.shape, dom) and not (n.op in REDUCE_OPS and not n.attrs["keepdims"]):
            return None
    if col is not None:
        return plan
    if not _levels(plan, body, epi):
        return None
    for v in body.outputs:               # outputs: full domain, or one value per row
        if id(v) in plan.consts or (id(v) in plan.access and v.producer is None):
            return None
        if v.type.shape != dom and not (r is not None and id(v) in plan.row_vals
                                        and v.type.size == int(np.prod(dom[:r], dtype=np.int64))):
            if not (master is not None and v is master.outputs[0]):
                return None
    return plan


def _levels(plan: Plan, body: Graph, epi: list[Node]) -> bool:
    """Pass level of every value; row values (constant along the reduced axes)."""
    r, dom = plan.r, plan.dom
    for v in body.inputs:
        plan.level[id(v)] = 0
        if r is not None and _is_row_shape(v.type.shape, dom, r):
            plan.row_vals.add(id(v))
    if plan.master is not None:
        plan.level[id(plan.master.outputs[0])] = 0
    for n in epi:
        v = n.outputs[0]
        if id(v) in plan.consts:
            plan.level[id(v)] = 0
            plan.row_vals.add(id(v))
            continue
        if n.op in REDUCE_OPS:
            plan.level[id(v)] = plan.level[id(n.inputs[0])] + 1
            plan.row_vals.add(id(v))
            continue
        plan.level[id(v)] = max((plan.level[id(u)] for u in n.inputs), default=0)
        if n.op not in VIEW_OPS and any(not fits(u.type.shape, dom) for u in n.inputs) and \
                not all(id(u) in plan.row_vals for u in n.inputs):
            return False      # a [rows] value (no keepdims) mixed with full ones: alignment differs
        if r is not None and all(id(u) in plan.row_vals for u in n.inputs) and _is_row_shape(v.type.shape, dom, r):
            plan.row_vals.add(id(v))
        elif r is not None and _is_row_shape(v.type.shape, dom, r) and n.op not in VIEW_OPS:
            return False      # a row-shaped value computed from full ones: not expressible
    return True


def _is_row_shape(shape, dom, r) -> bool:
    if not fits(shape, dom):
        return tuple(shape) == tuple(dom[:r])
    pad = len(dom) - len(shape)
    return all(shape[i - pad] == 1 for i in range(max(r, pad), len(dom)))
