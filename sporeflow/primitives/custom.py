"""custom_vjp: a forward subgraph with a user-written backward subgraph (Cell.bprop).

custom_vjp(*operands; fwd, bwd): runs `fwd(*operands)`. Its VJP inlines
`bwd(*operands, *outputs, *douts)`, which returns one gradient per float operand (captured
Parameters get zeros: as in MindSpore, a Cell with a custom bprop gives no parameter grads).
Forward mode differentiates `fwd` itself (a bprop says nothing about JVPs). The backward graph
is ordinary IR, so higher-order derivatives go through it.
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.registry import Kind, def_op
from .common import fail, lax
from .batching import axis_size, materialize
from ..passes import vmap as V
from ..core.trace import current_trace, inline
from ..ir.interpret import run_graph
from ..passes.forward import jvp_graph


def _run(graph: Graph, args):
    return run_graph(graph, list(args))


def _infer(ts, attrs):
    fwd, bwd = attrs["fwd"], attrs["bwd"]
    if not isinstance(fwd, Graph) or not isinstance(bwd, Graph):
        fail("fwd and bwd must be graphs")
    if fwd.in_types != list(ts):
        fail(f"fwd takes ({', '.join(map(str, fwd.in_types))})", ts)
    floats_out = [t for t in fwd.out_types if t.dtype.is_float]
    if bwd.in_types != list(ts) + fwd.out_types + floats_out:
        fail("bwd must take (operands, outputs, cotangents of the float outputs)", ts)
    if bwd.out_types != [t for t in ts if t.dtype.is_float]:
        fail("bwd must return one gradient per float operand", ts)
    return list(fwd.out_types)


def _inline_prefixed(graph: Graph, args) -> list:
    """Emit `graph` into the current trace, its nodes' scopes under the current prefix
    (`grad/<cell scope>` while the autodiff pass runs this rule)."""
    tr = current_trace()
    env = {id(v): a for v, a in zip(graph.inputs, args)}
    for node in graph.nodes:
        vals = [tr.lift(env[id(v)]) for v in node.inputs]
        res = tr.builder.emit(node.op, vals, node.attrs, loc=node.loc, scope=tr.scope_prefix + node.scope)
        env.update((id(v), tr.tracer(o)) for v, o in zip(node.outputs, res))
    return [env[id(v)] for v in graph.outputs]


def _vjp(ins, outs, douts, fwd, bwd):
    cts = [d if d is not None else lax.zeros_like(o) for d, o in zip(douts, outs) if o.dtype.is_float]
    grads = iter(_inline_prefixed(bwd, list(ins) + list(outs) + cts))
    return [next(grads) if x.dtype.is_float else None for x in ins]


def _jvp(primals, tangents, fwd, bwd):
    mask = [x.dtype.is_float for x in primals]
    jg = jvp_graph(fwd, mask, fwd.name + "_jvp")
    tans = [t if t is not None else lax.zeros_like(x) for t, x in zip(tangents, primals) if x.dtype.is_float]
    res = inline(jg, list(primals) + tans)
    n = len(fwd.outputs)
    it = iter(res[n:])
    return res[:n], [next(it) if t.dtype.is_float else None for t in fwd.out_types]


# ---- custom_vjp -------------------------------------------------------------------------------------
def batch_custom_vjp(args, dims, fwd, bwd):
    """Batch the forward and the user's backward graph alike. Every operand is made batched (at
    axis 0): the backward graph takes operands, outputs and cotangents, and whether a later
    grad's cotangents are batched is not known here, so all of its inputs are taken batched."""
    size = axis_size(args, dims)
    ops = [materialize(a, d, size) for a, d in zip(args, dims)]
    fb, _ = V.batch_graph(fwd, [0] * len(args), size, [0] * len(fwd.outputs))
    bb, _ = V.batch_graph(bwd, [0] * len(bwd.inputs), size, [0] * len(bwd.outputs))
    return lax.multi("custom_vjp", *ops, fwd=fb, bwd=bb), [0] * len(fwd.outputs)


custom_vjp = def_op("custom_vjp", infer=_infer, impl=lambda *xs, fwd, bwd: _run(fwd, xs), kind=Kind.OPAQUE,
                    compute_in_f32=False, attr_names=("fwd", "bwd"), vjp=_vjp, jvp=_jvp,
                    doc="fwd(*operands) with a user-defined backward graph bwd (Cell.bprop)",
                    batch=batch_custom_vjp)
