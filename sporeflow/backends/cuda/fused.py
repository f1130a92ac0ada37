"""Fused bodies (passes/fusion.py) as CUDA kernels, planned exactly as for the LLVM backend
(the loop nest fusion recorded, then llvm/fused_plan.analyze: how each input is read, scalar literals,
the pass level of each value):

  elementwise  one grid-stride loop over the output domain; every member is one C statement
               from the scalar table (scalar.py); nothing is materialized.
  row          reductions over trailing axes (softmax, layer norm, cross entropy, row sums):
               one block per row (grid-stride over rows), one pass over the row per reduction
               level; each pass reduces per thread, then across the block with warp shuffles
               and one shared-memory partial per warp (prelude sf_block_reduce).
  column       reductions over leading axes: one thread per column walking the rows, so every
               warp reads consecutive addresses.
  master       a matmul/conv2d master runs first (its own lowering: GEMM) into the group's
               output or a temporary; the epilogue is then one of the above reading it.
A body none of these express is lowered member by member with each member's own rule.
Half types compute in float32 and round after every member, as the interpreter does.
"""
from __future__ import annotations

import numpy as np

from ...ir.graph import Graph, Node, Value
from ...ir.registry import REGISTRY
from ..llvm.fused_plan import REDUCE_OPS, Plan, analyze
from ...passes.loop_nest import LoopNest
from . import ctypes_c as C
from .module import ELEMENTWISE_BLOCK, Kernel, coords, grid_for, grid_stride, linear, MAX_GRID
from .scalar import SCALAR

_OPS = {"sum": "SfSum", "max": "SfMax", "min": "SfMin"}


class _Emitter:
    """C statements evaluating body values at one domain point."""

    def __init__(self, plan: Plan, body: Graph, ptr_of_arg):
        self.plan, self.body = plan, body
        self.ptr_of_arg = ptr_of_arg            # access.arg -> C pointer name
        self.nodes = {id(n.outputs[0]): n for n in body.nodes if len(n.outputs) == 1}
        self.memo: dict[int, str] = {}
        self.lines: list[str] = []
        self.count = 0

    def var(self, ctype: str, expr: str) -> str:
        self.count += 1
        name = f"v{self.count}"
        self.lines.append(f"{ctype} {name} = {expr};")
        return name

    def value(self, v: Value, index_of) -> str:
        key = id(v)
        if key in self.memo:
            return self.memo[key]
        if key in self.plan.consts:
            r = C.literal(self.plan.consts[key], v.dtype)
        elif key in self.plan.access:
            acc = self.plan.access[key]
            r = self.var(C.compute(v.dtype), C.load(acc.dtype, f"{self.ptr_of_arg(acc.arg)}[{index_of(acc.strides)}]"))
        else:
            n = self.nodes[key]
            args = [self.value(u, index_of) for u in n.inputs]
            expr = SCALAR[n.op](args, [u.dtype for u in n.inputs], v.dtype, n.attrs)
            r = self.var(C.compute(v.dtype), C.rounded(v.dtype, expr))
        self.memo[key] = r
        return r

    def take(self, indent: str) -> str:
        out = "".join(f"{indent}{ln}\n" for ln in self.lines)
        self.lines = []
        return out


def _params(body: Graph, plan: Plan, outs_used: list) -> tuple[list, callable]:
    params = [(C.storage(v.dtype), f"in{k}", False) for k, v in enumerate(body.inputs)]
    params += [(C.storage(v.dtype), f"out{k}", True) for k, v in outs_used]
    if plan.master is not None:
        params.append((C.storage(plan.master.outputs[0].dtype), "mres", False))
    return params, (lambda arg: "mres" if arg < 0 else f"in{arg}")


def _outputs(body: Graph, plan: Plan):
    return [(k, v) for k, v in enumerate(body.outputs) if not (plan.master and v is plan.master.outputs[0])]


def elementwise_kernel(name: str, body: Graph, plan: Plan) -> Kernel:
    dom = plan.dom
    total = int(np.prod(dom, dtype=np.int64))
    outs = _outputs(body, plan)
    params, ptr = _params(body, plan, outs)
    em = _Emitter(plan, body, ptr)
    cs = [f"c{k}" for k in range(len(dom))]
    vals = [em.value(v, lambda st: linear(cs, st)) for _, v in outs]
    # every output of the element is computed before any is stored: an output may share its
    # buffer with an input
    stores = "".join(f"    out{k}[i] = {C.store(v.dtype, val)};\n" for (k, v), val in zip(outs, vals))
    src = grid_stride(total) + coords("c", "i", dom) + em.take("    ") + stores + "  }\n"
    return Kernel(name, params, src, grid_for(total), ELEMENTWISE_BLOCK)


def _row_block(inner: int) -> int:
    b = 32
    while b < inner and b < 256:
        b *= 2
    return b


def row_kernel(name: str, body: Graph, plan: Plan) -> Kernel:
    dom, r = plan.dom, plan.r
    rows = int(np.prod(dom[:r], dtype=np.int64))
    inner = int(np.prod(dom[r:], dtype=np.int64))
    outs = _outputs(body, plan)
    params, ptr = _params(body, plan, outs)
    em = _Emitter(plan, body, ptr)
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    max_level = max(plan.level[id(v)] for v in body.outputs)
    rc = [f"r{k}" for k in range(r)]
    ic = [f"j{k}" for k in range(len(dom) - r)]
    src = [f"  for (long long row = blockIdx.x; row < {rows}LL; row += gridDim.x) {{\n", coords("r", "row", dom[:r])]
    row_memo: dict[int, str] = {}
    for p in range(max_level + 1):
        em.memo = dict(row_memo)
        for v in _row_values_at(plan, body, p):
            em.value(v, lambda st: linear(rc, st[:r]))
        src.append(em.take("    "))
        row_memo.update({k: em.memo[k] for k in em.memo if k in plan.row_vals})
        pass_reds = [n for n in reds if plan.level[id(n.inputs[0])] == p]
        stores = [(k, v) for k, v in outs if id(v) not in plan.row_vals and plan.level[id(v)] == p]
        if not pass_reds and not stores:
            continue
        accs = {}
        for n in pass_reds:
            dt = n.outputs[0].dtype
            accs[id(n)] = a = f"acc{len(row_memo)}_{id(n) % 100000}"
            src.append(f"    {C.compute(dt)} {a} = {_identity(n)};\n")
        src.append(f"    for (long long j = threadIdx.x; j < {inner}LL; j += blockDim.x) {{\n")
        src.append(coords("j", "j", dom[r:], "      "))
        em.memo = dict(row_memo)
        idx = lambda st: linear(rc + ic, st)  # noqa: E731
        updates = []
        for n in pass_reds:
            x = em.value(n.inputs[0], idx)
            updates.append(f"{accs[id(n)]} = {_OPS[REDUCE_OPS[n.op]]}::f({accs[id(n)]}, {x});")
        vals = [em.value(v, idx) for _, v in stores]
        src.append(em.take("      "))
        src.extend(f"      {u}\n" for u in updates)
        src.extend(f"      out{k}[row * {inner}LL + j] = {C.store(v.dtype, val)};\n" for (k, v), val in zip(stores, vals))
        src.append("    }\n")
        for n in pass_reds:
            a, dt = accs[id(n)], n.outputs[0].dtype
            src.append(f"    {a} = sf_block_reduce<{_OPS[REDUCE_OPS[n.op]]}>({a}, ({C.compute(dt)}){_identity(n)});\n")
            row_memo[id(n.outputs[0])] = C.rounded(dt, a) if dt.is_half else a
    em.memo = dict(row_memo)
    row_outs = [(k, v) for k, v in outs if id(v) in plan.row_vals]
    if row_outs:
        vals = [em.value(v, lambda st: linear(rc, st[:r])) for _, v in row_outs]
        src.append(em.take("    "))
        src.append("    if (threadIdx.x == 0) {\n")
        src.extend(f"      out{k}[row] = {C.store(v.dtype, val)};\n" for (k, v), val in zip(row_outs, vals))
        src.append("    }\n")
    src.append("  }\n")
    return Kernel(name, params, "".join(src), max(1, min(rows, MAX_GRID)), _row_block(inner), sync=True)


def column_kernel(name: str, body: Graph, plan: Plan) -> Kernel:
    dom, k = plan.dom, plan.col
    rows = int(np.prod(dom[:k], dtype=np.int64))
    cols = int(np.prod(dom[k:], dtype=np.int64))
    outs = _outputs(body, plan)
    params, ptr = _params(body, plan, outs)
    em = _Emitter(plan, body, ptr)
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    rc = [f"r{q}" for q in range(k)]
    cc = [f"c{q}" for q in range(len(dom) - k)]
    src = [grid_stride(cols, "c"), coords("c", "c", dom[k:])]
    accs = {id(n): f"acc{q}" for q, n in enumerate(reds)}
    src.extend(f"    {C.compute(n.outputs[0].dtype)} {accs[id(n)]} = {_identity(n)};\n" for n in reds)
    src.append(f"    for (long long row = 0; row < {rows}LL; ++row) {{\n")
    src.append(coords("r", "row", dom[:k], "      "))
    em.memo = {}
    ups = []
    for n in reds:
        x = em.value(n.inputs[0], lambda st: linear(rc + cc, st))
        ups.append(f"{accs[id(n)]} = {_OPS[REDUCE_OPS[n.op]]}::f({accs[id(n)]}, {x});")
    src.append(em.take("      "))
    src.extend(f"      {u}\n" for u in ups)
    src.append("    }\n")
    red_of = {id(n.outputs[0]): n for n in reds}
    for q, v in outs:
        n = red_of[id(v)]
        src.append(f"    out{q}[c] = {C.store(v.dtype, accs[id(n)])};\n")
    src.append("  }\n")
    return Kernel(name, params, "".join(src), grid_for(cols), ELEMENTWISE_BLOCK)


def _identity(n: Node) -> str:
    dt = n.outputs[0].dtype
    kind = REDUCE_OPS[n.op]
    if kind == "sum":
        return C.literal(0, dt)
    return C.lowest(dt) if kind == "max" else C.highest(dt)


def _row_values_at(plan: Plan, body: Graph, p: int):
    return [n.outputs[0] for n in body.nodes if n.op not in REDUCE_OPS and len(n.outputs) == 1
            and id(n.outputs[0]) in plan.row_vals and plan.level[id(n.outputs[0])] <= p
            and id(n.outputs[0]) not in plan.consts]


def _row_layout_ok(plan: Plan, body: Graph) -> bool:
    """Row-valued inputs must be readable from the row coordinates alone."""
    return all(plan.access[id(v)].strides is not None for v in body.inputs if id(v) in plan.access
               and _used(body, v, plan))


def _used(body: Graph, v: Value, plan: Plan) -> bool:
    master_ins = {id(u) for u in plan.master.inputs} if plan.master is not None else set()
    return any(u is v for n in body.nodes if n is not plan.master for u in n.inputs) or (
        id(v) not in master_ins and any(o is v for o in body.outputs))


def plan_kernel(name: str, body: Graph, nest: LoopNest) -> tuple[Plan | None, Kernel | None]:
    """The kernel of a fused body with loop nest `nest`, or (plan, None) / (None, None) where the
    body is lowered member by member."""
    plan = analyze(body, nest)
    if plan is None or not _row_layout_ok(plan, body):
        return None, None
    if plan.col is not None:
        return plan, column_kernel(name, body, plan)
    if plan.r is not None:
        return plan, row_kernel(name, body, plan)
    return plan, elementwise_kernel(name, body, plan)


def lower_body_kernel(pb, name: str, body: Graph, in_slots: list, out_vals: list, nest: LoopNest) -> bool:
    """Launch the planned kernel of `body` (loop nest `nest`) reading `in_slots`, writing
    `out_vals` (the node's outputs, one per body output). False when the body has no plan
    (lower it member by member)."""
    plan, kernel = plan_kernel(pb.module.unique(name), body, nest)
    if kernel is None:
        return False
    tail = []
    if plan.master is not None:     # the master's result is the kernel's last pointer
        mv = plan.master.outputs[0]
        k = next((q for q, o in enumerate(body.outputs) if o is mv), None)
        mslot = pb.slot(out_vals[k]) if k is not None else pb.new_slot()
        minputs = [in_slots[[id(x) for x in body.inputs].index(id(u))] for u in plan.master.inputs]
        MASTERS[plan.master.op](pb, plan.master, minputs, (mslot, mv.type.shape, mv.type.dtype.storage))
        tail.append(mslot)
    pb.launch(kernel, list(in_slots), [pb.alloc_for(out_vals[k]) for k, _ in _outputs(body, plan)], tail)
    return True


MASTERS: dict = {}     # op -> rule(pb, node, in_slots, (out slot, shape, dtype)); filled by gemm.py
