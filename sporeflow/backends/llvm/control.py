"""Structured control flow as native control flow: cond/while_loop/scan call their subgraphs'
functions (a whole scan is one native call, its loop runs in machine code); fused and
custom_vjp inline their body into the current function.

Carries live in the node's output buffers: the initial values are copied in (unless the
planner put the carry output in the initial value's own buffer), each step's body writes the
next carry into scratch slots, which are then copied back (a body may return an input
unchanged, so reading and writing the same buffer in one step must be avoided); a scan body
writes the carries the planner can update in place directly, and reads a carry it returns
unchanged from the initial value's buffer when nothing reads the final one (see lower_scan).
"""
from __future__ import annotations

from .codegen import nbytes


def _call(fx, g, ins: list[str], outs: list[str], fn: str | None = None) -> None:
    fn = fn or fx.cg.function_for(g)
    fx.b.emit(f"call void {fn}(ptr {fx.ptr_array(ins)}, ptr {fx.ptr_array(outs)}, ptr %arena)")


def lower_cond(fx, node, ins, outs) -> None:
    b = fx.b
    pred = b.op(f"icmp ne i8 {b.load('i8', ins[0])}, 0")
    then, els, done = b.label("cthen"), b.label("celse"), b.label("cdone")
    b.emit(f"br i1 {pred}, label %{then}, label %{els}")
    b.start_block(then)
    _call(fx, node.attrs["then_branch"], ins[1:], outs)
    b.br(done)
    b.start_block(els)
    _call(fx, node.attrs["else_branch"], ins[1:], outs)
    b.br(done)
    b.start_block(done)


def _carry_scratch(fx, values) -> list[str]:
    return [fx.scratch(nbytes(v)) for v in values]


def lower_while(fx, node, ins, outs) -> None:
    b = fx.b
    for src, dst, v in zip(ins, outs, node.outputs):
        if src != dst:          # a donated carry already holds its initial value
            b.memcpy(dst, src, nbytes(v))
    flag = fx.scratch(1)
    tmp = _carry_scratch(fx, node.outputs)
    head, body, done = b.label("whead"), b.label("wbody"), b.label("wdone")
    b.br(head)
    b.start_block(head)
    _call(fx, node.attrs["cond_graph"], outs, [flag])
    go = b.op(f"icmp ne i8 {b.load('i8', flag)}, 0")
    b.emit(f"br i1 {go}, label %{body}, label %{done}")
    b.start_block(body)
    _call(fx, node.attrs["body_graph"], outs, tmp)
    for src, dst, v in zip(tmp, outs, node.outputs):
        b.memcpy(dst, src, nbytes(v))
    b.br(head)
    b.start_block(done)


def lower_scan(fx, node, ins, outs) -> None:
    """The carries stay in the node's carry outputs for the whole loop (a donated carry output is
    the initial value's own buffer: nothing is copied in). The body is compiled with each carry
    output donated to its carry input, so an update the planner can write in place (a Parameter
    step) lands in the carry buffer directly, and a pass-through carry is never copied; only
    the other carries go through scratch slots."""
    b = fx.b
    body = node.attrs["body"]
    nc, length, reverse = node.attrs["num_carry"], node.attrs["length"], node.attrs["reverse"]
    carry_vals = node.outputs[:nc]
    read_only = _unused_passthrough_carries(fx, node, ins, outs)
    carries = [ins[c] if c in read_only else outs[c] for c in range(nc)]
    for c, (src, dst, v) in enumerate(zip(ins[:nc], outs[:nc], carry_vals)):
        if src != dst and c not in read_only:
            b.memcpy(dst, src, nbytes(v))
    fn = fx.cg.function_for(body, tuple((c, c) for c in range(nc)), frozenset(range(nc)))
    bfn = fx.cg.fns[id(body)]
    direct = set(bfn.plan.donated) | set(bfn.keep)
    tmp = [outs[c] if c in direct else fx.scratch(nbytes(v)) for c, v in enumerate(carry_vals)]
    xs, ys = node.inputs[nc:], node.outputs[nc:]
    with b.loop(length, "st") as t:
        tt = b.op(f"sub i64 {length - 1}, {t}", "i") if reverse else t
        x_ptrs = [b.gep("i8", p, b.mul(tt, nbytes(v) // max(length, 1))) for p, v in zip(ins[nc:], xs)]
        y_ptrs = [b.gep("i8", p, b.mul(tt, nbytes(v) // max(length, 1))) for p, v in zip(outs[nc:], ys)]
        _call(fx, body, carries + x_ptrs, tmp + y_ptrs, fn)
        for c, (src, dst, v) in enumerate(zip(tmp, outs[:nc], carry_vals)):
            if c not in direct:
                b.memcpy(dst, src, nbytes(v))


def _unused_passthrough_carries(fx, node, ins, outs) -> set[int]:
    """Carries the body returns unchanged (how a scan body sees closed-over values, e.g. the
    weights of a gradient-accumulation scan) whose final value nobody reads: the body reads the
    initial value's buffer directly, so it is never copied into the carry output (2.7 MB per
    step for the MLP 784-512-512-10). Not when some output of the scan was planned into that
    buffer: the loop's writes would overwrite it while it is still read."""
    body = node.attrs["body"]
    used = {id(v) for n in fx.g.nodes for v in n.inputs} | {id(v) for v in fx.g.outputs}
    taken = {fx.b.location(o) for o in outs}
    return {c for c in range(node.attrs["num_carry"])
            if body.outputs[c] is body.inputs[c] and id(node.outputs[c]) not in used
            and fx.b.location(ins[c]) not in taken}


def _inline(attr: str):
    """Lower the body subgraph's nodes right here; outputs alias the body's result buffers."""
    def rule(fx, node, ins, outs) -> None:
        body = node.attrs[attr]
        for v, p in zip(body.inputs, ins):
            fx.ptrs[id(v)] = p
        for inner in body.nodes:
            fx._lower(inner)
        for v, o in zip(body.outputs, node.outputs):
            fx.ptrs[id(o)] = fx.ptr(v)
    return rule


RULES = {"cond": lower_cond, "while_loop": lower_while, "scan": lower_scan, "custom_vjp": _inline("fwd")}
