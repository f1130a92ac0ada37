"""Structured control flow: cond, while_loop, scan. Each carries subgraphs in its attributes.

cond(pred, *operands; then_branch, else_branch): both branches take the operands and return
    the same types.
while_loop(*carry; cond_graph, body_graph): cond_graph(carry) -> bool[]; body(carry) -> carry.
scan(*carry, *xs; body, num_carry, length, reverse): body(carry, x_t) -> (carry, y_t); the
    results are the final carry and the ys stacked along a new leading axis.

vmap: cond with a batched predicate becomes a `select` between both branches, each run on the
whole batch (as JAX does): both branches execute, so an expensive or failing branch costs or
fails for every example, and a NaN/Inf produced by the branch not taken can still reach
gradients through the select (the usual `where` gradient caveat). With an unbatched predicate
the cond stays a cond whose branches are batched. while_loop with a batched predicate runs
while *any* example's predicate holds; examples that are done keep their carry (each update
goes through a select on their own predicate).
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import bool_, int32
from ..ir.graph import Graph, Value
from ..ir.registry import Kind, def_op, get_op
from ..ir.types import Attrs, TensorType
from .common import fail, lax
from .batching import axis_size, materialize, moveaxis, reshape
from ..core.trace import current_trace, inline
from ..core.tracer import Tracer
from ..ir.interpret import run_graph
from ..passes.autodiff import vjp_graph
from ..passes.dce import dce
from ..passes.forward import jvp_graph
from ..passes import vmap as V


def _run(graph: Graph, args):
    return run_graph(graph, list(args))



# ---- batching (vmap) helpers ------------------------------------------------------------------
def _canon(args, dims, size, want):
    """Arguments with their batch axis at 0 where `want` is not None (broadcast if needed)."""
    return [materialize(a, d, size, 0) if w is not None else a for a, d, w in zip(args, dims, want)]


def _fixpoint(graph, fixed_dims: list, carry_dims: list, size: int, n_carry: int):
    """Loop carries (the graph's first inputs, then `fixed_dims`): a carry is batched if it enters
    batched or the body makes it batched. Iterate until the set of batched carries is stable."""
    dims = list(carry_dims)
    while True:
        _, out = V.batch_graph(graph, dims + fixed_dims, size)
        new = [0 if (d is not None or o is not None) else None for d, o in zip(dims, out[:n_carry])]
        if new == dims:
            return dims, out
        dims = new


# ---- cond ------------------------------------------------------------------------------------
def batch_cond(args, dims, then_branch, else_branch):
    size = axis_size(args, dims)
    pred, ops, pd, odims = args[0], list(args[1:]), dims[0], list(dims[1:])
    gt, dt = V.batch_graph(then_branch, odims, size)
    ge, de = V.batch_graph(else_branch, odims, size)
    if pd is None:
        if dt != de:   # an output batched in one branch only: batch it in both
            want = [0 if (a is not None or b is not None) else None for a, b in zip(dt, de)]
            gt, dt = V.batch_graph(then_branch, odims, size, want)
            ge, de = V.batch_graph(else_branch, odims, size, want)
        return lax.multi("cond", pred, *ops, then_branch=gt, else_branch=ge), dt
    t_outs, e_outs = inline(gt, ops), inline(ge, ops)
    p = moveaxis(pred, pd, 0)
    outs = []
    for t, e, a, b in zip(t_outs, e_outs, dt, de):
        t, e = materialize(t, a, size), materialize(e, b, size)
        outs.append(lax.select(reshape(p, (size,) + (1,) * (t.ndim - 1)), t, e))
    return outs, [0] * len(outs)


# ---- while_loop ---------------------------------------------------------------------------------
def _bound(max_iter) -> dict:
    """The optional `max_iter` attribute of a while_loop, carried to the loops rules derive."""
    return {} if max_iter is None else {"max_iter": max_iter}


def batch_while(args, dims, cond_graph, body_graph, max_iter=None):
    size, n = axis_size(args, dims), len(args)
    cdims, _ = _fixpoint(body_graph, [], [0 if d is not None else None for d in dims], size, n)
    _, pdims = V.batch_graph(cond_graph, cdims, size)
    if pdims[0] is None:      # every example takes the same number of steps
        carry = _canon(args, dims, size, cdims)
        cg, _ = V.batch_graph(cond_graph, cdims, size)
        bg, _ = V.batch_graph(body_graph, cdims, size, cdims)
        return lax.multi("while_loop", *carry, cond_graph=cg, body_graph=bg, **_bound(max_iter)), cdims
    # batched predicate: every carry batched; run while any example continues, mask the updates
    carry = _canon(args, dims, size, [0] * n)
    cg, _ = V.batch_graph(cond_graph, [0] * n, size, [0])
    bg, _ = V.batch_graph(body_graph, [0] * n, size, [0] * n)
    types = [c._type for c in carry]

    def any_cond(*xs):
        p = lax.convert(inline(cg, xs)[0], int32)
        return [lax.gt(lax.reduce_max(p, axes=(0,), keepdims=False), lax.full((), 0, int32))]

    def masked_body(*xs):
        p = inline(cg, xs)[0]
        new = inline(bg, xs)
        return [lax.select(reshape(p, (size,) + (1,) * (x.ndim - 1)), nx, x) for nx, x in zip(new, xs)]
    cond2 = V.trace_graph(any_cond, types, "cond_graph")
    body2 = V.trace_graph(masked_body, types, "body_graph")
    return lax.multi("while_loop", *carry, cond_graph=cond2, body_graph=body2, **_bound(max_iter)), [0] * n


# ---- scan ------------------------------------------------------------------------------------------
def batch_scan(args, dims, body, num_carry, length, reverse):
    """Batched xs move their batch axis to 1 (so each step's slice is batched at 0); carries are
    batched at 0 when they enter batched or become batched; stacked ys are batched at 1."""
    size, nc = axis_size(args, dims), num_carry
    carry, xs, cd, xd = args[:nc], args[nc:], dims[:nc], dims[nc:]
    xs = [x if d is None else moveaxis(x, d, 1) for x, d in zip(xs, xd)]
    x_step = [None if d is None else 0 for d in xd]
    cdims, out = _fixpoint(body, x_step, [0 if d is not None else None for d in cd], size, nc)
    ydims = [None if d is None else 0 for d in out[nc:]]
    g, _ = V.batch_graph(body, cdims + x_step, size, cdims + ydims)
    carry = _canon(carry, cd, size, cdims)
    outs = lax.multi("scan", *carry, *xs, body=g, num_carry=nc, length=length, reverse=reverse)
    return outs, cdims + [None if d is None else 1 for d in ydims]


def _check_sig(what: str, g, ins, outs=None):
    if not isinstance(g, Graph):
        fail(f"{what} must be a graph")
    if g.in_types != list(ins):
        fail(f"{what} takes ({', '.join(map(str, g.in_types))}) but is given ({', '.join(map(str, ins))})")
    if outs is not None and g.out_types != list(outs):
        fail(f"{what} returns ({', '.join(map(str, g.out_types))}), expected ({', '.join(map(str, outs))})")


def _cond_infer(ts, attrs):
    if not ts or ts[0].dtype is not bool_ or ts[0].shape != ():
        fail("predicate must be bool[]", ts)
    t, e = attrs["then_branch"], attrs["else_branch"]
    _check_sig("then_branch", t, ts[1:])
    _check_sig("else_branch", e, ts[1:], t.out_types)
    return list(t.out_types)


def _cond_impl(pred, *ops, then_branch, else_branch):
    return _run(then_branch if bool(pred) else else_branch, ops)


# ---- autodiff of control flow: the rules transform the subgraphs with the same passes ----------
def _float_mask(types) -> list[bool]:
    return [t.dtype.is_float for t in types]


def _zeros_for(douts, outs):
    """Cotangents/tangents of every float value, zeros where None."""
    return [d if d is not None else lax.zeros_like(o) for d, o in zip(douts, outs) if o.dtype.is_float]


def _spread(vals, mask):
    """Values for the True slots of mask, None elsewhere."""
    it = iter(vals)
    return [next(it) if m else None for m in mask]


def _cond_vjp(ins, outs, douts, then_branch, else_branch):
    pred, ops = ins[0], ins[1:]
    mask = _float_mask(then_branch.in_types)
    gt = vjp_graph(then_branch, mask, keep_outputs=False, name="then_vjp")
    ge = vjp_graph(else_branch, mask, keep_outputs=False, name="else_vjp")
    grads = lax.multi("cond", pred, *ops, *_zeros_for(douts, outs), then_branch=gt, else_branch=ge)
    return [None] + _spread(grads, mask)


def _cond_jvp(primals, tangents, then_branch, else_branch):
    pred, ops = primals[0], primals[1:]
    mask = _float_mask(then_branch.in_types)
    gt, ge = jvp_graph(then_branch, mask, "then_jvp"), jvp_graph(else_branch, mask, "else_jvp")
    res = lax.multi("cond", pred, *ops, *_zeros_for(tangents[1:], ops), then_branch=gt, else_branch=ge)
    n = len(then_branch.outputs)
    return res[:n], _spread(res[n:], _float_mask(then_branch.out_types))


cond = def_op("cond", infer=_cond_infer, impl=_cond_impl, kind=Kind.OPAQUE, compute_in_f32=False,
              attr_names=("then_branch", "else_branch"), vjp=_cond_vjp, jvp=_cond_jvp, batch=batch_cond)


def _while_infer(ts, attrs):
    _check_sig("cond_graph", attrs["cond_graph"], ts, [TensorType((), bool_)])
    _check_sig("body_graph", attrs["body_graph"], ts, ts)
    return list(ts)


def _while_impl(*carry, cond_graph, body_graph, max_iter=None):
    carry = list(carry)
    while bool(_run(cond_graph, carry)[0]):
        carry = _run(body_graph, carry)
    return carry


def _while_jvp(primals, tangents, cond_graph, body_graph, max_iter=None):
    """Carry (primal, tangent) through the loop; the condition reads the primals only."""
    mask = _float_mask(body_graph.in_types)
    body = jvp_graph(body_graph, mask, "body_jvp")
    extra = [Value(t, "") for t, m in zip(body_graph.in_types, mask) if m]
    cg = Graph(cond_graph.name, cond_graph.inputs + extra, cond_graph.nodes, cond_graph.outputs)
    res = lax.multi("while_loop", *primals, *_zeros_for(tangents, primals), cond_graph=cg, body_graph=body,
                    **_bound(max_iter))
    n = len(primals)
    return res[:n], _spread(res[n:], mask)


def _deps(graph: Graph) -> list[set[int]]:
    """For each output of `graph`, the input positions it depends on."""
    pos = {id(v): {i} for i, v in enumerate(graph.inputs)}
    for node in graph.nodes:
        d = set().union(*[pos.get(id(v), set()) for v in node.inputs]) if node.inputs else set()
        for o in node.outputs:
            pos[id(o)] = d
    return [pos.get(id(v), set()) for v in graph.outputs]


def _const_eval(x, budget=[0]):
    """The concrete value of a Tracer whose producers are all constants (else None)."""
    if not isinstance(x, Tracer):
        return x._data
    memo: dict[int, np.ndarray] = {}

    def ev(v, depth=0):
        if id(v) in memo:
            return memo[id(v)]
        node = v.producer
        if node is None or depth > 200 or node.subgraphs():
            raise LookupError
        args = [ev(i, depth + 1) for i in node.inputs]
        outs = node.opdef.run(args, node.attrs, [i.type for i in node.inputs], [o.type for o in node.outputs])
        for o, r in zip(node.outputs, outs):
            memo[id(o)] = r
        return memo[id(v)]
    try:
        return ev(x._value)
    except LookupError:
        return None


def _static_trip_count(ins, cond_graph, body_graph, limit=1_000_000):
    """Trip count of a loop whose condition depends only on carries that start as constants and
    are updated from each other alone (a counter); None when it depends on data."""
    need = set().union(*_deps(cond_graph))
    body_deps = _deps(body_graph)
    while True:
        more = need.union(*[body_deps[i] for i in need]) if need else set()
        if more == need:
            break
        need = more
    need = sorted(need)
    init = [_const_eval(ins[i]) for i in need]
    if any(v is None for v in init):
        return None
    sub = lambda g, outs: dce(Graph(g.name, [g.inputs[i] for i in need], g.nodes, outs))  # noqa: E731
    cg = sub(cond_graph, cond_graph.outputs)
    bg = sub(body_graph, [body_graph.outputs[i] for i in need])
    carry, n = init, 0
    while bool(_run(cg, carry)[0]):
        carry, n = _run(bg, carry), n + 1
        if n > limit:
            return None
    return n


DEFAULT_MAX_ITER = 1000   # set_context(max_call_depth=...)'s default, for loops built without the attribute


def _masked_step(cond_graph: Graph, body_graph: Graph) -> Graph:
    """One step of a bounded loop: the body's update where the condition holds, else the carry."""
    def step(*xs):
        p = inline(cond_graph, xs)[0]
        new = inline(body_graph, xs)
        return [lax.select(lax.broadcast_to(p, shape=x._type.shape), nx, x) for nx, x in zip(new, xs)]
    return V.trace_graph(step, body_graph.in_types, body_graph.name + "_masked")


def _poison_if(flag, grads: list) -> list:
    """NaN where `flag` (a bool scalar) holds: the loop ran past the taped bound."""
    out = []
    for g in grads:
        if g is None or not g._type.dtype.is_float:
            out.append(g)
            continue
        nan = lax.full(g._type.shape, float("nan"), g._type.dtype)
        out.append(lax.select(lax.broadcast_to(flag, shape=g._type.shape), nan, g))
    return out


def _while_vjp(ins, outs, douts, cond_graph, body_graph, max_iter=None):
    """When the condition only reads a counter that starts from constants, the loop is a scan of
    that length and differentiates as one. Otherwise (a data-dependent trip count) reverse mode
    differentiates a bounded loop, MindSpore's way: a scan of `max_iter` masked steps (each
    applies the body where the condition holds and keeps the carry after it fails), which tapes
    the carry of every step. If the condition still holds after max_iter steps the taped loop
    is not the loop that ran, and the gradient is NaN rather than silently truncated."""
    n = _static_trip_count(ins, cond_graph, body_graph)
    if n is not None:
        return _scan_vjp(ins, outs, douts, body=body_graph, num_carry=len(ins), length=n, reverse=False)
    bound = DEFAULT_MAX_ITER if max_iter is None else int(max_iter)
    step = _masked_step(cond_graph, body_graph)
    final = lax.multi("scan", *ins, body=step, num_carry=len(ins), length=bound, reverse=False)
    still_running = inline(cond_graph, final)[0]
    grads = _scan_vjp(ins, final, douts, body=step, num_carry=len(ins), length=bound, reverse=False)
    return _poison_if(still_running, grads)


while_loop = def_op("while_loop", infer=_while_infer, impl=_while_impl, kind=Kind.OPAQUE, compute_in_f32=False,
                    attr_names=("cond_graph", "body_graph"), vjp=_while_vjp, jvp=_while_jvp, batch=batch_while)


def _scan_infer(ts, attrs):
    nc, length = attrs["num_carry"], attrs["length"]
    if not 0 <= nc <= len(ts) or length < 0:
        fail(f"num_carry={nc} must be in [0, {len(ts)}] and length={length} >= 0", ts)
    carry, xs = ts[:nc], ts[nc:]
    if any(x.ndim == 0 or x.shape[0] != length for x in xs):
        fail(f"every scanned input needs leading axis of length {length}", ts)
    body = attrs["body"]
    _check_sig("body", body, list(carry) + [TensorType(x.shape[1:], x.dtype) for x in xs])
    if body.out_types[:nc] != list(carry):
        fail("body must return the carry types first")
    return list(carry) + [TensorType((length,) + y.shape, y.dtype) for y in body.out_types[nc:]]


def _scan_impl(*args, body, num_carry, length, reverse):
    carry, xs = list(args[:num_carry]), args[num_carry:]
    n_y = len(body.outputs) - num_carry
    ys = [[None] * length for _ in range(n_y)]
    for step in range(length):
        t = length - 1 - step if reverse else step
        out = _run(body, carry + [x[t] for x in xs])
        carry = out[:num_carry]
        for j in range(n_y):
            ys[j][t] = out[num_carry + j]
    stacked = [np.stack(y) if length else np.zeros((0,) + body.out_types[num_carry + j].shape,
                                                    body.out_types[num_carry + j].dtype.storage)
               for j, y in enumerate(ys)]
    return carry + stacked


def _record_in_place(outs, body, rec, length):
    """When `outs` come from a scan node just emitted into the current trace (the autodiff pass
    replays the forward graph before calling rules), give that node the recording body and the
    extra outputs in place, so the forward loop runs once. A while_loop with a static trip count
    becomes that scan. Returns the new outputs' Tracers, or None when the producer is not such
    a node."""
    tr = current_trace()
    node = outs[0]._value.producer if outs and isinstance(outs[0], Tracer) else None
    if (tr is None or node is None or outs[0]._trace is not tr or [o._value for o in outs] != node.outputs
            or not any(n is node for n in reversed(tr.builder.nodes))):
        return None
    if node.op == "scan" and node.attrs["body"] is body:
        attrs = node.attrs.replace(body=rec)
    elif node.op == "while_loop" and node.attrs["body_graph"] is body:
        attrs = Attrs(body=rec, num_carry=len(node.inputs), length=length, reverse=False)
    else:
        return None
    types = get_op("scan").infer_types([v.type for v in node.inputs], attrs)
    node.op, node.attrs = "scan", attrs
    extra = [Value(t, "", node, i) for i, t in enumerate(types) if i >= len(node.outputs)]
    node.outputs.extend(extra)
    return [tr.tracer(v) for v in extra]


def _scan_vjp(ins, outs, douts, body, num_carry, length, reverse):
    """Rematerializing reverse scan. A forward scan records the carry entering every step (the
    only residual); a scan in the opposite direction runs the body's VJP graph (which replays
    the step) on (carry_t, x_t) with the cotangents of (carry_t+1, y_t). Captured values ride
    along as pass-through carries: they are not recorded (every step sees the initial value) and
    their gradients accumulate through the carry cotangent. The forward loop runs once: the
    original node is extended in place with the recording outputs (see _record_in_place)."""
    nc = num_carry
    carry, xs = list(ins[:nc]), list(ins[nc:])
    fixed = [i for i in range(nc) if body.outputs[i] is body.inputs[i]]
    moving = [i for i in range(nc) if i not in fixed]
    rec = Graph(body.name + "_rec", body.inputs, body.nodes, body.outputs + [body.inputs[i] for i in moving])
    carries_t = _record_in_place(outs, body, rec, length)
    if carries_t is None:
        stacked = lax.multi("scan", *carry, *xs, body=rec, num_carry=nc, length=length, reverse=reverse)
        carries_t = stacked[len(body.outputs):]
    in_mask = _float_mask(body.in_types)
    out_mask = _float_mask(body.out_types)
    vg = vjp_graph(body, in_mask, keep_outputs=False, name=body.name + "_vjp")
    n_in, n_ct_c = len(body.inputs), sum(out_mask[:nc])
    v_in, v_ct = vg.inputs[:n_in], vg.inputs[n_in:]
    n_gc = sum(in_mask[:nc])
    assert n_ct_c == n_gc, "scan carries keep their types"
    # backward body: carries = (cotangents of the float carries, fixed carries);
    # scanned inputs = (recorded moving carries, x_t, ct_y_t)
    v_fixed = [v_in[i] for i in fixed]
    bwd = Graph(body.name + "_bwd", v_ct[:n_ct_c] + v_fixed + [v_in[i] for i in moving] + v_in[nc:] + v_ct[n_ct_c:],
                vg.nodes, vg.outputs[:n_gc] + v_fixed + vg.outputs[n_gc:])
    ct_carry = _zeros_for(douts[:nc], outs[:nc])
    ct_ys = _zeros_for(douts[nc:], outs[nc:])
    res = lax.multi("scan", *ct_carry, *[carry[i] for i in fixed], *carries_t, *xs, *ct_ys, body=bwd,
                    num_carry=n_gc + len(fixed), length=length, reverse=not reverse)
    return _spread(res[:n_gc], in_mask[:nc]) + _spread(res[n_gc + len(fixed):], in_mask[nc:])


def _scan_jvp(primals, tangents, body, num_carry, length, reverse):
    """Scan the body's JVP graph: carries (c, dc), scanned inputs (x, dx), results (c', dc', y, dy)."""
    nc = num_carry
    in_mask, out_mask = _float_mask(body.in_types), _float_mask(body.out_types)
    jg = jvp_graph(body, in_mask, body.name + "_jvp")
    n_in, n_out = len(body.inputs), len(body.outputs)
    t_in, t_out = jg.inputs[n_in:], jg.outputs[n_out:]
    tc_in, tc_out = sum(in_mask[:nc]), sum(out_mask[:nc])
    g = Graph(jg.name, jg.inputs[:nc] + t_in[:tc_in] + jg.inputs[nc:n_in] + t_in[tc_in:], jg.nodes,
              jg.outputs[:nc] + t_out[:tc_out] + jg.outputs[nc:n_out] + t_out[tc_out:])
    tans = _zeros_for(tangents, primals)
    res = lax.multi("scan", *primals[:nc], *tans[:tc_in], *primals[nc:], *tans[tc_in:], body=g,
                    num_carry=nc + tc_in, length=length, reverse=reverse)
    outs = res[:nc] + res[nc + tc_in:nc + tc_in + n_out - nc]
    touts = res[nc:nc + tc_in] + res[nc + tc_in + n_out - nc:]
    return outs, _spread(touts, out_mask)


scan = def_op("scan", infer=_scan_infer, impl=_scan_impl, kind=Kind.OPAQUE, compute_in_f32=False,
              attr_names=("body", "num_carry", "length", "reverse"), vjp=_scan_vjp, jvp=_scan_jvp,
              batch=batch_scan)
