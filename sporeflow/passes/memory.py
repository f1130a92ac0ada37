"""Memory planning: liveness-based buffer reuse, in-place updates, and donation of inputs.

An analysis, not a rewrite: `plan_memory(graph, donate)` returns a MemoryPlan that a backend
follows when it allocates. Rules:
  * graph inputs are the caller's buffers; constants are the compiler's. Neither is planned,
    except a *donated* input (a Parameter or optimizer state the step updates), whose buffer
    receives the matching output: the update is written back into its own buffer, no copy.
  * an intermediate value takes a free buffer of the same byte size (or a new one); a buffer
    is free after the last use of the value in it. Graph outputs are never reused.
  * a node writes in place into an input when the input dies at that node, has the output's
    exact type, and the node reads each element before writing the same element: elementwise
    ops, and fused groups whose non-master members are all elementwise (a matmul master then
    computes into scratch, which is the renderer's side of the contract).
Each in-place write and each reuse of a freed buffer is one opt-bisect step (passes/bisect.py):
past the limit the value gets a buffer of its own, which is always correct.

Why the LLVM code generator calls this itself rather than running it as a named pipeline pass:
the plan is per generated function, and the backend decides which subgraphs become functions and
which scan carries it donates; a pass ahead of codegen would have to repeat those decisions, and
codegen would still need a fallback for graphs compiled without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..ir.graph import Graph, Node, Value
from ..ir.registry import Kind, get_op
from .bisect import bisect_step

INPUT = "input"


@dataclass
class MemoryPlan:
    buffer_of: dict[int, int | tuple]        # id(Value) -> buffer index, or ("input", i) for donated inputs
    buffer_bytes: list[int]                  # size of each planned buffer
    inplace: dict[int, int] = field(default_factory=dict)   # id(out Value) -> id(in Value) it overwrites
    donated: dict[int, int] = field(default_factory=dict)   # graph output index -> graph input index
    naive_bytes: int = 0                     # one buffer per intermediate value

    @property
    def planned_bytes(self) -> int:
        return sum(self.buffer_bytes)

    def describe(self, graph: Graph) -> str:
        lines = [f"memory plan @{graph.name}: {len(self.buffer_bytes)} buffers, {self.planned_bytes} bytes "
                 f"(naive {self.naive_bytes}), {len(self.inplace)} in place, donated outputs {self.donated}"]
        for k, node in enumerate(graph.nodes):
            for v in node.outputs:
                b = self.buffer_of.get(id(v))
                tag = " in-place" if id(v) in self.inplace else ""
                lines.append(f"  node {k} {node.op}: {v.type} -> {b}{tag}")
        return "\n".join(lines)


def _elementwise_safe(node: Node) -> bool:
    """True when output element i depends only on input elements at i (after broadcasting)."""
    if node.op == "fused":
        body = node.attrs["body"]
        members = [n for n in body.nodes if n.op != "constant"]
        masters = [n for n in members if get_op(n.op).kind == Kind.OUT_EWISE_FUSABLE]
        outs = {id(v) for v in body.outputs}
        if any(id(v) in outs for m in masters for v in m.outputs):
            # the master (BLAS) would write an output before the epilogue reads. (Renderers
            # evaluate every output of an element before storing any: backends/llvm/fused.py.)
            return False
        return len(masters) <= 1 and all(get_op(n.op).kind <= Kind.BROADCAST for n in members
                                          if n not in masters)
    return get_op(node.op).kind <= Kind.BROADCAST and node.op not in ("constant",)


def _carry_slot(node: Node, out: Value, src: Value) -> bool:
    """A loop (scan, while_loop) copies its initial carries into the carry outputs before it
    reads anything else, so carry output c may live in carry input c's buffer when that input
    is read nowhere else by the node (loop sinking keeps Parameters in place this way)."""
    if node.op not in ("scan", "while_loop"):
        return False
    nc = node.attrs["num_carry"] if node.op == "scan" else len(node.inputs)
    c = next((i for i, o in enumerate(node.outputs[:nc]) if o is out), None)
    return c is not None and node.inputs[c] is src and sum(u is src for u in node.inputs) == 1


def _master_operands(node: Node) -> set[int]:
    """Positions of a fused node's inputs that feed its matmul/conv master (never overwritten)."""
    if node.op != "fused":
        return set()
    body = node.attrs["body"]
    pos = {id(v): i for i, v in enumerate(body.inputs)}
    out = set()
    for n in body.nodes:
        if get_op(n.op).kind == Kind.OUT_EWISE_FUSABLE:
            out.update(pos[id(v)] for v in n.inputs if id(v) in pos)
    return out


def _nbytes(v: Value) -> int:
    return v.type.size * v.type.dtype.storage.itemsize


def _last_uses(graph: Graph) -> dict[int, int]:
    """id(value) -> index of the last node that reads it; len(nodes) for graph outputs (they live
    to the end); unread values are absent."""
    last: dict[int, int] = {}
    for k, node in enumerate(graph.nodes):
        for v in node.inputs:
            last[id(v)] = k
    for v in graph.outputs:
        last[id(v)] = len(graph.nodes)
    return last


def plan_memory(graph: Graph, donate: Sequence[tuple[int, int]] = ()) -> MemoryPlan:
    """Plan the buffers of `graph`'s top level. `donate`: (output index, input index) pairs whose
    input buffer may receive the output (same type required; checked here)."""
    last_use = _last_uses(graph)
    in_pos = {id(v): i for i, v in enumerate(graph.inputs)}
    out_pos: dict[int, list[int]] = {}
    for j, v in enumerate(graph.outputs):
        out_pos.setdefault(id(v), []).append(j)

    donors = {}                               # output index -> input index, type-checked
    for j, i in donate:
        if graph.outputs[j].type == graph.inputs[i].type and id(graph.outputs[j]) not in in_pos:
            donors.setdefault(j, i)
    plan = MemoryPlan({}, [])
    free: dict[int, list[int]] = {}           # byte size -> free buffer indices
    holders: dict[object, int] = {}           # buffer -> number of live values in it
    const_ids = set()

    def release(v: Value) -> None:
        b = plan.buffer_of.get(id(v))
        if b is None or isinstance(b, tuple):
            return
        holders[b] -= 1
        if holders[b] == 0:
            free.setdefault(plan.buffer_bytes[b], []).append(b)

    for k, node in enumerate(graph.nodes):
        if node.op == "constant":
            const_ids.update(id(v) for v in node.outputs)
            continue
        safe = _elementwise_safe(node)
        protected = _master_operands(node)
        used_inputs: set[int] = set()
        for v in node.outputs:
            plan.naive_bytes += _nbytes(v)
            target = None
            # 1. a donated input buffer (the update written into its own parameter)
            for j in out_pos.get(id(v), []):
                i = donors.get(j)
                if i is None or i in plan.donated.values():
                    continue
                src = graph.inputs[i]
                lu = last_use.get(id(src), -1)
                reads_here = any(u is src for u in node.inputs)
                if lu < k or (lu == k and safe and not any(
                        u is src and p in protected for p, u in enumerate(node.inputs))) or (
                        lu == k and _carry_slot(node, v, src)):
                    target = (INPUT, i)
                    plan.donated[j] = i
                    if reads_here:
                        plan.inplace[id(v)] = id(src)
                    break
            # 2. in place over an intermediate input that dies here
            if target is None and safe and id(v) not in out_pos:
                for p, u in enumerate(node.inputs):
                    b = plan.buffer_of.get(id(u))
                    if (b is None or isinstance(b, tuple) or p in protected or id(u) in used_inputs
                            or u.type != v.type or last_use.get(id(u)) != k or holders.get(b) != 1
                            or sum(x is u for x in node.inputs) != 1):
                        continue
                    if not bisect_step(f"memory.inplace: {node.op} over its input {p} ({node.loc or 'no loc'})"):
                        break
                    target = b
                    used_inputs.add(id(u))
                    plan.inplace[id(v)] = id(u)
                    holders[b] += 1
                    break
            # 3. a free buffer of the same size, or a new one
            if target is None:
                size = _nbytes(v)
                pool = free.get(size)
                if pool and id(v) not in out_pos and bisect_step(
                        f"memory.reuse: {node.op} in a freed buffer ({node.loc or 'no loc'})"):
                    target = pool.pop()
                else:
                    target = len(plan.buffer_bytes)
                    plan.buffer_bytes.append(size)
                    holders[target] = 0
                holders[target] += 1
            plan.buffer_of[id(v)] = target
        # values whose last use is this node die now (after all outputs are placed)
        for v in {id(u): u for u in node.inputs}.values():
            if last_use.get(id(v)) == k and id(v) not in in_pos and id(v) not in const_ids:
                release(v)
        for v in node.outputs:
            if id(v) not in last_use:         # never used: dead right away
                release(v)
    return plan


def check_plan(graph: Graph, plan: MemoryPlan) -> None:
    """Raise AssertionError if two values that are live at the same time share a buffer (other
    than an in-place pair at its node). Used by tests, cheap enough for debugging runs."""
    first = {id(v): -1 for v in graph.inputs}
    for k, node in enumerate(graph.nodes):
        for v in node.outputs:
            first[id(v)] = k
    last = _last_uses(graph)
    by_buf: dict = {}
    for vid, b in plan.buffer_of.items():
        by_buf.setdefault(b, []).append(vid)
    for j, i in plan.donated.items():
        by_buf.setdefault((INPUT, i), []).append(id(graph.inputs[i]))
    for b, vids in by_buf.items():
        spans = sorted((first[v], last.get(v, first[v]), v) for v in set(vids))
        end, owner = spans[0][1], spans[0][2]
        for s, e, v in spans[1:]:
            if not (s > end or (s == end and plan.inplace.get(v) == owner)):
                raise AssertionError(f"buffer {b}: a value defined at node {s} overwrites one live until "
                                     f"node {end} (in-place only when declared)")
            end, owner = max(end, e), v
