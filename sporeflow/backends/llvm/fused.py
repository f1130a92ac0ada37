"""Rendering `fused` nodes (passes/fusion.py) as single loop nests.

A fused body becomes one of:
  elementwise  one loop nest over the output domain D; every member is evaluated per element
               with the scalar rules of scalar_ops (reused), except exp/tanh in float32, which
               use the single-precision polynomials of math_f32.py (8x faster than the double
               ones); inputs are read through broadcast strides, scalar constants become
               literals. Nothing is materialized.
  row          D = rows x inner (reductions over the same trailing axes): per row, one pass per
               reduction level over the row (softmax: max, then sum of exp, then the quotient),
               so the row is read from memory once and stays in L1/L2 between passes. Float sums
               are blocked: 16-lane partial sums (a `reassoc` flag on that fadd only, so LLVM
               vectorizes it) within blocks of BLOCK elements, blocks added in double: accurate
               over long rows, unlike a sequential float sum.
  master       a matmul/conv2d "master" runs first (its own lowering: BLAS), into the output
               buffer when it is a group output, else into scratch; its elementwise or row
               epilogue is then one of the two above with the master's result as an input.
  accumulating a body that is exactly `out = acc + master(...)`, where the master can add acc in
               its own call (ACCUMULATING_MASTERS: matmul, BLAS beta = 1): no epilogue at all.
Half types (float16/bfloat16) compute in float32 and round after every member, exactly as the
interpreter rounds after every primitive (ir/dtypes.py promises that all backends agree bit for
bit); the values stay in registers, so the rounding costs a few integer ops, no memory.
Anything else (a body the renderer does not recognize) is inlined node by node with each
member's own lowering, so every fused node compiles.

Which of these a body takes, and how each input is read, is planned in fused_plan.py.

The loop nest is emitted as its own function `k(ptr noalias ..., i64 start, i64 end)` over the
outermost dimension, and large kernels run it on all cores through libgomp (parallel.py).
"""
from __future__ import annotations

import numpy as np

from ...ir.graph import Graph, Node, Value
from ...ir.registry import REGISTRY
from .fused_plan import REDUCE_OPS, VIEW_OPS, Plan, analyze
from .gemm import lower_matmul_accumulating
from ...passes.loop_nest import LoopNest, loop_nest
from .irgen import BYTES, SHORT_LOOP, FnBuilder, compute_ty, fconst, storage_ty
from .kernels_elem import REDUCE_LOOPS, collapse, contiguous_strides, _init
from .parallel import emit_parallel_for
from . import hostcpu
from .scalar_ops import SCALAR_RULES, from_compute, scalar_rule, to_compute
from .codegen import nbytes

_SUF = {"float": "f32", "double": "f64"}
BLOCK = 1024          # elements per float partial-sum block in row reductions


# ---------------------------------------------------------------------------------------------
# emission
# ---------------------------------------------------------------------------------------------
class _Emitter:
    """Evaluates body values at one domain index inside a kernel function."""

    def __init__(self, b: FnBuilder, plan: Plan, ptrs: list[str], body: Graph):
        self.b, self.plan, self.ptrs, self.body = b, plan, ptrs, body
        self.nodes = {id(n.outputs[0]): n for n in body.nodes if len(n.outputs) == 1}
        self.memo: dict[int, str] = {}
        self.saved: dict[int, str] = {}     # id -> row buffer of a value materialized earlier
        self.j: str | None = None           # the inner index while in a row pass

    def load(self, v: Value, idx: str) -> str:
        acc = self.plan.access[id(v)]
        ptr = self.ptrs[acc.arg] if acc.arg >= 0 else self.ptrs[-1]
        return to_compute(self.b, self.b.load(storage_ty(acc.dtype), ptr, idx), acc.dtype)

    def value(self, v: Value, index_of) -> str:
        """`index_of(strides)` gives the linear index for domain strides at the current point."""
        key = id(v)
        if key in self.memo:
            return self.memo[key]
        if key in self.plan.consts:
            c = self.plan.consts[key]
            ty = compute_ty(v.dtype)
            if v.dtype.is_float:
                r = fconst(float(c), ty)
            elif v.dtype.name == "bool":
                r = "true" if c else "false"
            else:
                r = str(int(c))
        elif key in self.plan.access:
            r = self.load(v, index_of(self.plan.access[key].strides))
        elif key in self.saved:
            r = self.b.load(compute_ty(v.dtype), self.saved[key], self.j)
        else:
            n = self.nodes[key]
            args = [self.value(u, index_of) for u in n.inputs]
            rule = scalar_rule(n.op, v.dtype)
            r = round_half(self.b, rule(self.b, args, [u.dtype for u in n.inputs], v.dtype, n.attrs), v.dtype)
        self.memo[key] = r
        return r


def round_half(b: FnBuilder, val: str, dt) -> str:
    """A member's float32 result rounded to its half type and widened back (no-op otherwise)."""
    return to_compute(b, from_compute(b, val, dt), dt) if dt.is_half else val


def _store(b: FnBuilder, v: Value, val: str, ptr: str, idx: str) -> None:
    b.store(storage_ty(v.dtype), from_compute(b, val, v.dtype), ptr, idx)


# ops a body's cost (the threading threshold) counts 8x; _HEAVY below adds the ones worth
# keeping in a row buffer rather than recomputing in a later pass
TRANSCENDENTAL = ("exp", "log", "tanh", "sin", "cos", "erf", "pow")
# Elementwise bodies with a transcendental are latency chains (exp: ~25 dependent vector ops):
# LLVM's cost model keeps them at one vector per iteration, and a core's FP scheduler then
# holds about one iteration, so the chain runs nearly serially. Interleaved vectors let it
# overlap chains, as many as the registers hold. The gelu*sigmoid chain at 1M: on one core of
# an AVX2 Zen 3 (16 ymm registers) 2.6-2.9 ms at one, 2.0-2.2 at two, 2.5-3.0 at three (spills);
# on two cores of an AVX-512 Zen 4 (32 zmm registers) 0.45 ms at two, 0.40 at four.
def _latency_interleave() -> int:
    return 4 if hostcpu.host().has("avx512f") else 2


def _cost(body: Graph) -> int:
    return 1 + sum(8 if n.op in TRANSCENDENTAL else 1 for n in body.nodes)


def _kernel_args(fx, node, ins, outs, plan, body):
    """Pointers the kernel reads/writes: body inputs, outputs, and the master's result last."""
    ptrs = list(ins) + list(outs)
    if plan.master is not None:
        mv = plan.master.outputs[0]
        k = next((i for i, o in enumerate(body.outputs) if o is mv), None)
        dst = outs[k] if k is not None else fx.scratch(mv.type.size * BYTES[storage_ty(mv.dtype)])
        rule = REGISTRY[plan.master.op].lower["llvm"]
        mins = [ins[[id(x) for x in body.inputs].index(id(u))] for u in plan.master.inputs]
        fx.b.emit(f"; fused master {plan.master.op}")
        rule(fx, plan.master, mins, [dst])
        ptrs.append(dst)
    return ptrs


def _row_interleave(inner: int) -> int:
    """Independent vector accumulators for a row reduction: 4 hide the add latency, but a row of
    fewer vectors cannot use them (a 10-class log-softmax asked for 4 and the loop vectorizer
    spent 7 ms of the MLP step's compile weighing plans it could not take)."""
    return max(1, min(4, inner // hostcpu.host().f32_lanes))


def _emit_elementwise(fx, node, ins, outs, plan: Plan, body: Graph) -> None:
    dom = plan.dom
    ptrs = _kernel_args(fx, node, ins, outs, plan, body)
    n_in = len(ins)
    outputs = [(k, v) for k, v in enumerate(body.outputs) if not (plan.master and v is plan.master.outputs[0])]
    all_strides = [a.strides for a in plan.access.values() if a.strides is not None] + \
                  [contiguous_strides(dom)]
    shp, sts = collapse(dom, all_strides)
    if not shp:
        shp, sts = [1], [[0] for _ in all_strides]
    keyed = {tuple(s): t for s, t in zip(map(tuple, all_strides), sts)}
    out_st = sts[-1]
    total = int(np.prod(dom, dtype=np.int64))

    def body_fn(kb: FnBuilder, kptrs: list[str], start: str, end: str) -> None:
        em = _Emitter(kb, plan, kptrs, body)
        latency = shp[-1] >= SHORT_LOOP and any(n.op in TRANSCENDENTAL for n in body.nodes)
        ic = _latency_interleave() if latency else 0     # (a short inner loop is left to full unrolling)
        with kb.loop(end, "e0", start=start, interleave=ic if len(shp) == 1 else 0) as i0:
            with kb.loops(shp[1:], "e", interleave=ic) as rest:
                idx = [i0] + rest

                def index_of(strides):
                    return kb.linear(idx, keyed[tuple(strides)])
                em.memo.clear()
                # every output of this element is computed before any is stored: an output may
                # share its buffer with an input (in place / donated, passes/memory.py)
                vals = [em.value(v, index_of) for _, v in outputs]
                oidx = kb.linear(idx, out_st)
                for (k, v), val in zip(outputs, vals):
                    _store(kb, v, val, kptrs[n_in + k], oidx)

    emit_parallel_for(fx, node.attrs["name"], ptrs, shp[0], body_fn, total * _cost(body))


def _emit_row(fx, node, ins, outs, plan: Plan, body: Graph) -> None:
    dom, r = plan.dom, plan.r
    ptrs = _kernel_args(fx, node, ins, outs, plan, body)
    n_in = len(ins)
    rows = int(np.prod(dom[:r], dtype=np.int64))
    inner = int(np.prod(dom[r:], dtype=np.int64))
    # every access is split into (row stride, inner strides); the inner part is collapsed
    accs = {k: a for k, a in plan.access.items() if a.strides is not None}
    full_st = contiguous_strides(dom)
    row_shp, row_sts = collapse(dom[:r], [a.strides[:r] for a in accs.values()] + [full_st[:r]])
    in_shp, in_sts = collapse(dom[r:], [a.strides[r:] for a in accs.values()] + [full_st[r:]])
    if len(row_shp) > 1 or len(in_shp) > 1:
        return False                               # non-contiguous row layouts: generic path
    rs = {k: (row_sts[j][0] if row_shp else 0) for j, k in enumerate(accs)}
    ist = {k: (in_sts[j][0] if in_shp else 0) for j, k in enumerate(accs)}
    out_row_st = row_sts[-1][0] if row_shp else 0
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    max_level = max(plan.level[id(v)] for v in body.outputs)
    outputs = [(k, v) for k, v in enumerate(body.outputs) if not (plan.master and v is plan.master.outputs[0])]
    keep = _materialized(plan, body, inner)

    def body_fn(kb: FnBuilder, kptrs: list[str], start: str, end: str) -> None:
        em = _Emitter(kb, plan, kptrs, body)
        # expensive values a later pass needs again (softmax's exp) are kept in a row buffer
        # on this thread's stack instead of being recomputed
        bufs = {key: kb.alloca(compute_ty(v.dtype), "rowbuf", inner) for key, v in keep.items()}
        accs_slot = {id(n): kb.alloca("double" if _is_fsum(n) else compute_ty(n.outputs[0].dtype), "acc")
                     for n in reds}
        part = {id(n): kb.alloca(compute_ty(n.outputs[0].dtype), "part") for n in reds if _is_fsum(n)}
        # float max/min: maxnum/minnum (a reduction LLVM vectorizes; llvm.maximum's was scalar,
        # 100 ms for a 4096^2 row max) plus an OR of "is NaN", so NaN still propagates as in numpy
        nans = {id(n): kb.alloca("i8", "nan") for n in reds if _is_fminmax(n)}
        with kb.loop(end, "row", start=start) as row:
            row_memo: dict[int, str] = {}

            def row_index(key):
                return kb.mul(row, rs[key]) if rs[key] else "0"
            for p in range(max_level + 1):
                # row values available at this level (reductions already finalized)
                em.memo = dict(row_memo)
                for v in _row_values_at(plan, body, p):
                    if id(v) not in em.memo:
                        em.value(v, lambda st, v=v: _row_idx(kb, row, plan, st, r))
                row_memo.update({k: em.memo[k] for k in em.memo if k in plan.row_vals})
                pass_reds = [n for n in reds if plan.level[id(n.inputs[0])] == p]
                stores = [(k, v) for k, v in outputs if id(v) not in plan.row_vals and plan.level[id(v)] == p]
                if not pass_reds and not stores and not any(plan.level[key] == p for key in keep):
                    continue
                for n in pass_reds:
                    ty = "double" if _is_fsum(n) else compute_ty(n.outputs[0].dtype)
                    kb.store(ty, _red_init(n, ty), accs_slot[id(n)])
                    if id(n) in nans:
                        kb.store("i8", "0", nans[id(n)])
                blocked = any(_is_fsum(n) for n in pass_reds) and inner > BLOCK
                step = BLOCK if blocked else max(inner, 1)
                with kb.loop(inner, "blk", step=step) as b0:
                    bend = kb.smin(kb.add(b0, step), inner) if blocked else inner
                    for n in pass_reds:
                        if _is_fsum(n):
                            kb.store(compute_ty(n.outputs[0].dtype), "0.0", part[id(n)])
                    ic = _row_interleave(inner) if pass_reds else 0
                    with kb.loop(bend, "j", start=b0 if blocked else 0, interleave=ic) as j:
                        em.memo = dict(row_memo)
                        em.j = j
                        em.saved = {key: bufs[key] for key in bufs if plan.level[key] < p}

                        def index_of(strides, j=j):
                            key = next(k for k, a in accs.items() if a.strides == strides)
                            return kb.add(row_index(key), kb.mul(j, ist[key]) if ist[key] else "0")
                        for n in pass_reds:
                            x = em.value(n.inputs[0], index_of)
                            _accumulate(kb, n, x, part.get(id(n), accs_slot[id(n)]), nans.get(id(n)))
                        for key, v in keep.items():
                            if plan.level[key] == p:
                                kb.store(compute_ty(v.dtype), em.value(v, index_of), bufs[key], j)
                        orow = kb.mul(row, out_row_st) if out_row_st else "0"
                        for k, v in stores:
                            _store(kb, v, em.value(v, index_of), kptrs[n_in + k], kb.add(orow, j))
                    for n in pass_reds:
                        if _is_fsum(n):
                            cty = compute_ty(n.outputs[0].dtype)
                            pv = kb.load(cty, part[id(n)])
                            pv = kb.op(f"fpext {cty} {pv} to double") if cty != "double" else pv
                            kb.store("double", kb.op(f"fadd double {kb.load('double', accs_slot[id(n)])}, {pv}"),
                                     accs_slot[id(n)])
                for n in pass_reds:
                    ty = "double" if _is_fsum(n) else compute_ty(n.outputs[0].dtype)
                    val = kb.load(ty, accs_slot[id(n)])
                    cty = compute_ty(n.outputs[0].dtype)
                    if ty != cty:
                        val = kb.op(f"fptrunc double {val} to {cty}")
                    if id(n) in nans:
                        isnan = kb.op(f"icmp ne i8 {kb.load('i8', nans[id(n)])}, 0")
                        val = kb.op(f"select i1 {isnan}, {cty} 0x7FF8000000000000, {cty} {val}")
                    row_memo[id(n.outputs[0])] = round_half(kb, val, n.outputs[0].dtype)
            # row-valued outputs (one value per row)
            em.memo = dict(row_memo)
            for k, v in outputs:
                if id(v) in plan.row_vals:
                    val = em.value(v, lambda st: _row_idx(kb, row, plan, st, r))
                    _store(kb, v, val, kptrs[n_in + k], row)

    emit_parallel_for(fx, node.attrs["name"], ptrs, rows, body_fn, rows * inner * _cost(body))
    return True


def _emit_col(fx, node, ins, outs, plan: Plan, body: Graph) -> None:
    """Reductions over leading axes: per column accumulators, rows streamed in order, so every
    load is contiguous and the column loop vectorizes; float sums accumulate in double."""
    dom, k = plan.dom, plan.col
    accs = {key: a for key, a in plan.access.items() if a.strides is not None}
    full_st = contiguous_strides(dom)
    row_shp, row_sts = collapse(dom[:k], [a.strides[:k] for a in accs.values()] + [full_st[:k]])
    col_shp, col_sts = collapse(dom[k:], [a.strides[k:] for a in accs.values()] + [full_st[k:]])
    if len(row_shp) > 1 or len(col_shp) > 1:
        return False
    rows = int(np.prod(dom[:k], dtype=np.int64))
    cols = int(np.prod(dom[k:], dtype=np.int64))
    rs = {key: (row_sts[j][0] if row_shp else 0) for j, key in enumerate(accs)}
    cs = {key: (col_sts[j][0] if col_shp else 0) for j, key in enumerate(accs)}
    reds = [n for n in body.nodes if n.op in REDUCE_OPS]
    slot_ty = {id(n): "double" if _is_fsum(n) else compute_ty(n.outputs[0].dtype) for n in reds}
    slots = [fx.scratch(max(cols, 1) * BYTES[slot_ty[id(n)]]) for n in reds]
    ptrs = list(ins) + list(outs) + slots
    n_in, n_out = len(ins), len(outs)
    out_of = {id(v): j for j, v in enumerate(body.outputs)}

    def body_fn(kb: FnBuilder, kptrs: list[str], start: str, end: str) -> None:
        em = _Emitter(kb, plan, kptrs, body)
        acc_p = kptrs[n_in + n_out:]
        with kb.loop(end, "c0", start=start) as j:
            for n, a in zip(reds, acc_p):
                kb.store(slot_ty[id(n)], _red_init(n, slot_ty[id(n)]), a, j)
        def rows_step(i0: str, nr: int) -> None:
            """Rows i0 .. i0+nr-1 combined in the compute type, then one update of the
            accumulator: a quarter of the accumulator traffic (and still float sums of only
            COL_UNROLL terms before the double accumulation)."""
            with kb.loop(end, "cj", start=start) as j:
                for n, a in zip(reds, acc_p):
                    ty, cty = slot_ty[id(n)], compute_ty(n.outputs[0].dtype)
                    dt = n.outputs[0].dtype
                    comb = None
                    for t in range(nr):
                        em.memo = {}
                        i = kb.add(i0, t)

                        def index_of(strides, i=i, j=j):
                            key = next(q for q, a in accs.items() if a.strides == strides)
                            return kb.add(kb.mul(i, rs[key]) if rs[key] else "0",
                                          kb.mul(j, cs[key]) if cs[key] else "0")
                        x = em.value(n.inputs[0], index_of)
                        if comb is None:
                            comb = x
                        elif REDUCE_OPS[n.op] == "sum":
                            comb = kb.op(f"{'fadd' if dt.is_float else 'add'} {cty} {comb}, {x}")
                        else:
                            comb = SCALAR_RULES["maximum" if REDUCE_OPS[n.op] == "max" else "minimum"](
                                kb, [comb, x], [dt, dt], dt, None)
                    if ty != cty:
                        comb = kb.op(f"fpext {cty} {comb} to double")
                    cur = kb.load(ty, a, j)
                    if REDUCE_OPS[n.op] == "sum":
                        r = kb.op(f"{'fadd' if dt.is_float else 'add'} {ty} {cur}, {comb}")
                    else:
                        r = SCALAR_RULES["maximum" if REDUCE_OPS[n.op] == "max" else "minimum"](kb, [cur, comb],
                                                                                          [dt, dt], dt, None)
                    kb.store(ty, r, a, j)
        full = rows - rows % COL_UNROLL
        if full:
            with kb.loop(full, "ri", step=COL_UNROLL) as i0:
                rows_step(i0, COL_UNROLL)
        if rows % COL_UNROLL:
            with kb.loop(rows, "rr", start=full) as i0:
                rows_step(i0, 1)
        with kb.loop(end, "c1", start=start) as j:
            for n, a in zip(reds, acc_p):
                ty, cty = slot_ty[id(n)], compute_ty(n.outputs[0].dtype)
                val = kb.load(ty, a, j)
                if ty != cty:
                    val = kb.op(f"fptrunc double {val} to {cty}")
                v = n.outputs[0]
                if id(v) in out_of:
                    _store(kb, v, val, kptrs[n_in + out_of[id(v)]], j)

    emit_parallel_for(fx, node.attrs["name"], ptrs, cols, body_fn, rows * cols * _cost(body))
    return True


COL_UNROLL = 4            # rows combined per accumulator update in column kernels
MAX_ROW_BUFFER = 16384     # elements; a row buffer lives on the kernel's stack (64 KiB in f32)
_HEAVY = TRANSCENDENTAL + ("div", "sqrt", "rsqrt")


def _materialized(plan: Plan, body: Graph, inner: int) -> dict[int, Value]:
    """Full values computed in one pass, used by a later one, and costly to recompute."""
    if inner > MAX_ROW_BUFFER:
        return {}
    later_use: set[int] = set()
    for n in body.nodes:
        if n.op in REDUCE_OPS or not n.outputs or id(n.outputs[0]) in plan.row_vals:
            continue
        lv = plan.level.get(id(n.outputs[0]), 0)
        for u in n.inputs:
            if plan.level.get(id(u), 0) < lv and id(u) not in plan.row_vals:
                later_use.add(id(u))
    out = {}
    for n in body.nodes:
        v = n.outputs[0] if len(n.outputs) == 1 else None
        if v is None or id(v) not in later_use or id(v) in plan.access or id(v) in plan.consts:
            continue
        if _cone_has_heavy(n, plan):
            out[id(v)] = v
    return out


def _cone_has_heavy(n: Node, plan: Plan) -> bool:
    stack, seen = [n], set()
    while stack:
        m = stack.pop()
        if m.op in _HEAVY:
            return True
        for u in m.inputs:
            if u.producer is not None and id(u) not in plan.access and id(u) not in plan.row_vals \
                    and id(u.producer) not in seen:
                seen.add(id(u.producer))
                stack.append(u.producer)
    return False


def _row_idx(kb, row, plan, strides, r):
    """Linear index of a row value (inner strides are zero) at row `row`."""
    rows_shape = plan.dom[:r]
    rst = contiguous_strides(rows_shape)
    acc = "0"
    rem = row
    for d, (s_row, s) in enumerate(zip(rst, strides[:r])):
        q = kb.op(f"udiv i64 {rem}, {s_row}", "i") if s_row != 1 else rem
        if d + 1 < len(rst):
            rem = kb.op(f"urem i64 {rem}, {s_row}", "i")
        if s:
            acc = kb.add(acc, kb.mul(q, s))
    return acc


def _row_values_at(plan: Plan, body: Graph, p: int):
    return [n.outputs[0] for n in body.nodes if n.op not in REDUCE_OPS and len(n.outputs) == 1
            and id(n.outputs[0]) in plan.row_vals and plan.level[id(n.outputs[0])] <= p
            and id(n.outputs[0]) not in plan.consts]


def _is_fsum(n: Node) -> bool:
    return REDUCE_OPS.get(n.op) == "sum" and n.outputs[0].dtype.is_float


def _red_init(n: Node, ty: str) -> str:
    kind = REDUCE_OPS[n.op]
    dt = n.outputs[0].dtype
    if kind == "sum":
        return "0.0" if dt.is_float else "0"
    return _init(dt, kind, ty)


def _is_fminmax(n: Node) -> bool:
    return REDUCE_OPS.get(n.op) in ("max", "min") and n.outputs[0].dtype.is_float


def _accumulate(kb: FnBuilder, n: Node, x: str, slot: str, nan_slot: str | None = None) -> None:
    dt = n.outputs[0].dtype
    ty = compute_ty(dt)
    a = kb.load(ty, slot)
    kind = REDUCE_OPS[n.op]
    if nan_slot is not None:
        # compare + select with nnan nsz: the form LLVM's loop vectorizer recognizes as a float
        # max/min reduction next to the NaN flag's or-reduction (llvm.maxnum beside that flag
        # stayed scalar on LLVM 20: 93 ms for a 4096^2 row max). A NaN input makes `r` poison,
        # but then the flag is set and the final select returns NaN without looking at `r`
        pred = "ogt" if kind == "max" else "olt"
        keep = kb.op(f"fcmp nnan nsz {pred} {ty} {a}, {x}")
        r = kb.op(f"select nnan nsz i1 {keep}, {ty} {a}, {ty} {x}")
        kb.store(ty, r, slot)
        isnan = kb.op(f"zext i1 {kb.op(f'fcmp uno {ty} {x}, 0.0')} to i8")
        kb.store("i8", kb.op(f"or i8 {kb.load('i8', nan_slot)}, {isnan}"), nan_slot)
        return
    if kind == "sum":
        # reassoc on this add only: LLVM keeps 16-lane partial sums (a blocked summation)
        r = kb.op(f"fadd reassoc {ty} {a}, {x}") if dt.is_float else kb.op(f"add {ty} {a}, {x}")
    else:
        r = SCALAR_RULES["maximum" if kind == "max" else "minimum"](kb, [a, x], [dt, dt], dt, None)
    kb.store(ty, r, slot)


# ---------------------------------------------------------------------------------------------
def _inline(fx, node, ins, outs) -> None:
    """Generic path: each member with its own lowering, every value (outputs included) in
    its own arena slot, outputs copied out at the end: an output may share its buffer with an
    input (passes/memory.py plans in place), so nothing is stored there before all reads."""
    body: Graph = node.attrs["body"]
    for v, p in zip(body.inputs, ins):
        fx.ptrs[id(v)] = p
    for n in body.nodes:
        rule = REGISTRY[n.op].lower["llvm"]
        if n.op != "constant":
            for v in n.outputs:
                fx.ptrs[id(v)] = fx.b.gep("i8", "%arena", fx.cg.alloc(nbytes(v)))
        rule(fx, n, [fx.ptrs[id(u)] for u in n.inputs], [fx.ptrs.get(id(v), "") for v in n.outputs])
    for k, v in enumerate(body.outputs):
        fx.b.memcpy(outs[k], fx.ptrs[id(v)], nbytes(v))


# Masters that add an accumulator in their own call (BLAS's beta = 1), for a body that is exactly
# `out = acc + master(...)`: rule(fx, master, master's input pointers, acc pointer, out pointer)
# -> whether it emitted the group.
ACCUMULATING_MASTERS = {"matmul": lower_matmul_accumulating}


def _accumulation(body: Graph) -> tuple[Node, Value] | None:
    """(master, accumulator) when `body` is `out = acc + master(...)` with acc and the master's
    operands all body inputs and the master accumulating (ACCUMULATING_MASTERS)."""
    if len(body.nodes) != 2 or len(body.outputs) != 1:
        return None
    master, add = body.nodes
    if master.op not in ACCUMULATING_MASTERS or add.op != "add" or body.outputs[0] is not add.outputs[0]:
        return None
    prod = master.outputs[0]
    others = [v for v in add.inputs if v is not prod]
    inputs = {id(v) for v in body.inputs}
    if len(others) != 1 or id(others[0]) not in inputs or any(id(v) not in inputs for v in master.inputs):
        return None
    if not others[0].type == prod.type == add.outputs[0].type:
        return None
    return master, others[0]


def _lower_accumulating(fx, node, ins, outs) -> bool:
    found = _accumulation(node.attrs["body"])
    if found is None:
        return False
    master, acc = found
    pos = {id(v): i for i, v in enumerate(node.attrs["body"].inputs)}
    return ACCUMULATING_MASTERS[master.op](fx, master, [ins[pos[id(v)]] for v in master.inputs],
                                         ins[pos[id(acc)]], outs[0])


def lower_fused(fx, node, ins, outs) -> None:
    body: Graph = node.attrs["body"]
    if not body.outputs or _lower_accumulating(fx, node, ins, outs):
        return
    plan = analyze(body, LoopNest.of(node.attrs))
    how = "inline" if plan is None else "column" if plan.col is not None else "row" if plan.r is not None \
        else "elementwise"
    fx.b.emit(f"; fused {node.attrs['name']} ({node.attrs['kind']}): {how}")
    if plan is None:
        return _inline(fx, node, ins, outs)
    if any(a.strides is None for k, a in plan.access.items() if _used_elementwise(body, k, plan)):
        return _inline(fx, node, ins, outs)
    if plan.r is None and plan.col is None:
        return _emit_elementwise(fx, node, ins, outs, plan, body)
    emit = _emit_col if plan.col is not None else _emit_row
    if not emit(fx, node, ins, outs, plan, body):
        _inline(fx, node, ins, outs)


def _used_elementwise(body: Graph, key: int, plan: Plan) -> bool:
    """Whether the kernel reads value `key` at domain indices: as an input of a member other
    than the master, or as an output. A view (reshape/broadcast_to) with strides of its own
    does not count: the kernel reads through those (x[b, i] reshaped to [b, i, 1] for a
    per-sample outer product), never `key` itself."""
    master_ins = {id(u) for u in plan.master.inputs} if plan.master is not None else set()

    def reads(n: Node) -> bool:
        if n is plan.master:
            return False
        acc = plan.access.get(id(n.outputs[0])) if n.op in VIEW_OPS else None
        return acc is None or acc.strides is None
    return any(id(u) == key for n in body.nodes if reads(n) for u in n.inputs) or (
        key not in master_ins and any(id(v) == key for v in body.outputs))


class _Standalone:
    """A reduction outside any fusion group, seen as a one-member fused body."""

    def __init__(self, node: Node):
        x = Value(node.inputs[0].type, "in0")
        member = Node(node.op, [x], node.attrs, [v.type for v in node.outputs], node.loc, node.scope)
        self.attrs = {"name": node.op, "kind": "reduce", "body": Graph(node.op, [x], [member], member.outputs)}


def _standalone_reduce(op: str):
    """reduce_sum/max/min over trailing axes (row kernel) or leading axes (column kernel: the
    generic loop nest reads columns with a stride of a whole row, 0.3 GB/s on 4096^2). Other
    axis sets that end with the last axis (a conv bias gradient: (0, 2, 3) of NCHW) run as a
    row reduction of the trailing run into a scratch buffer, then the rest of the axes over
    it (_split_reduce); anything else keeps the generic kernel."""

    def rule(fx, node, ins, outs) -> None:
        if _split_reduce(fx, node, ins, outs, rule):
            return
        fake = _Standalone(node)
        body = fake.attrs["body"]
        plan = analyze(body, loop_nest(body))     # a reduction outside any fused group
        if plan is None or (plan.r is None and plan.col is None) or \
                not (_emit_col if plan.col is not None else _emit_row)(fx, fake, ins, outs, plan, body):
            REDUCE_LOOPS[op](fx, node, ins, outs)
    return rule


def _split_reduce(fx, node, ins, outs, rule) -> bool:
    """reduce(x, A) as reduce(reduce(x, trailing run of A), rest of A) when both are non-empty;
    the trailing stage is a row kernel, the rest (usually the batch axis) a column kernel over
    a buffer smaller by the trailing run. Float sums round to the compute type once between
    the stages."""
    x = node.inputs[0]
    axes, nd = sorted(node.attrs["axes"]), x.type.ndim
    trail = []
    for k in range(nd - 1, -1, -1):
        if k not in axes:
            break
        trail.insert(0, k)
    rest = [k for k in axes if k not in trail]
    if not trail or not rest or x.type.size == 0:
        return False
    mid_shape = tuple(x.shape[:trail[0]])
    mid_t = type(x.type)(mid_shape, x.type.dtype)
    first = Node(node.op, [x], {"axes": tuple(trail), "keepdims": False}, [mid_t], node.loc, node.scope)
    mid = fx.scratch(nbytes(first.outputs[0]))
    rule(fx, first, ins, [mid])
    # keepdims only adds size-1 dims: the same buffer layout as the squeezed result
    out_t = type(x.type)(tuple(d for k, d in enumerate(x.shape) if k not in axes), x.type.dtype)
    second = Node(node.op, [first.outputs[0]], {"axes": tuple(rest), "keepdims": False}, [out_t],
                  node.loc, node.scope)
    rule(fx, second, [mid], outs)
    return True


RULES = {"fused": lower_fused, **{op: _standalone_reduce(op) for op in REDUCE_OPS}}
