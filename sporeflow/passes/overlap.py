"""overlap_collectives: split each all_reduce into a non-blocking start and a wait, and schedule
the pair so the reduction runs while the rest of the step computes.

A data-parallel step traces as forward, backward, then the bucketed gradient all-reduces, then
the optimizer: a blocking all-reduce leaves the network idle during the backward pass and the
CPU idle during the all-reduce. After this pass, in each graph body:
  * the start of a bucket, and the nodes that feed only it (the bucket's own gradient
    matmuls, reshapes and the concatenation), run as soon as their operands exist: right after
    the last gradient of the bucket is produced, before the rest of the backward pass;
  * the wait runs as late as possible: only when no other node is ready, i.e. just before the
    first reader of the reduced bucket (the optimizer), after every node that does not need it.
The schedule is a priority topological sort (Kahn's algorithm; priority: eager, normal, late,
then the start an eager node serves, then the original index):
deterministic, so every rank issues its collectives in the same order, as MPI requires. Without
starts and waits it reproduces the original order exactly.

Not split: half-precision and bool all-reduces (MPI has no float16 sum; the gradient reducer
syncs half gradients in float32 anyway). Off with set_auto_parallel_context(comm_overlap=False)
(every all-reduce then blocks where the graph puts it) or sf.jit(..., disabled=["overlap_collectives"]).
Runs last in every default pipeline (after fusion, which may regroup nodes) once the communication
world is initialised, the interpreter included; single-process pipelines do not list it.
"""
from __future__ import annotations

import heapq

from ..context import get_auto_parallel_context
from ..ir.graph import Graph, Node
from ..ir.types import Attrs
from .manager import register_pass
from .rewrite import Rebuilder

START, WAIT = "all_reduce_start", "all_reduce_wait"
EAGER, NORMAL, LATE = 0, 1, 2


def _splittable(node: Node) -> bool:
    if node.op != "all_reduce":
        return False
    dt = node.inputs[0].type.dtype
    return not dt.is_half and dt.name != "bool"


def _split(node: Node, rb: Rebuilder):
    if not _splittable(node):
        return None
    attrs = dict(node.attrs)
    (buf,) = rb.emit(START, node.inputs, attrs, node)
    return rb.emit(WAIT, [buf], attrs, node)


def schedule(g: Graph) -> Graph:
    """Reorder g's nodes (and its subgraphs'): starts and what feeds only them as early as
    possible, waits as late as possible, everything else in its original order."""
    nodes = g.nodes
    for node in nodes:
        if node.subgraphs():
            node.attrs = Attrs({k: (schedule(v) if isinstance(v, Graph) else v) for k, v in node.attrs.items()})
    if not any(n.op == START for n in nodes):
        return g
    index = {id(n): i for i, n in enumerate(nodes)}
    users: dict[int, list[Node]] = {id(n): [] for n in nodes}
    for n in nodes:
        for p in {id(v.producer): v.producer for v in n.inputs if v.producer is not None}.values():
            if id(p) in users:
                users[id(p)].append(n)          # once per user, however many operands it takes
    returned = {id(v.producer) for v in g.outputs if v.producer is not None}
    # key: (class, the start an eager node serves, original index): among ready eager nodes
    # those of the earliest-traced start (the first bucket) go first, so it starts soonest
    key = {id(n): (NORMAL, 0, i) for i, n in enumerate(nodes)}
    for i in range(len(nodes) - 1, -1, -1):   # users before producers: their class is known
        n = nodes[i]
        if n.op == START:
            key[id(n)] = (EAGER, i, i)
        elif n.op == WAIT:
            key[id(n)] = (LATE, 0, i)
        elif (n.opdef.pure and users[id(n)] and id(n) not in returned
              and all(key[id(u)][0] == EAGER for u in users[id(n)])):
            key[id(n)] = (EAGER, min(key[id(u)][1] for u in users[id(n)]), i)   # feeds starts only
    pending = {id(n): sum(1 for v in n.inputs if v.producer is not None and id(v.producer) in index)
               for n in nodes}
    ready = [key[id(n)] for n in nodes if pending[id(n)] == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        i = heapq.heappop(ready)[2]
        n = nodes[i]
        order.append(n)
        for u in users[id(n)]:
            pending[id(u)] -= sum(1 for v in u.inputs if v.producer is n)
            if pending[id(u)] == 0:
                heapq.heappush(ready, key[id(u)])
    assert len(order) == len(nodes), "schedule: the graph has a cycle"
    return Graph(g.name, g.inputs, order, g.outputs)


@register_pass("overlap_collectives", opt_level=0,
               doc="split all_reduce into start/wait: start when the operand exists, wait before the first reader")
def overlap_collectives(graph: Graph) -> Graph:
    if not get_auto_parallel_context("comm_overlap"):
        return graph
    if not any(_splittable(n) for n in graph.walk()):
        return graph
    return schedule(Rebuilder(_split).graph(graph))
