"""Operator fusion: group nodes by their OpDef `kind` over post-dominators into `fused` nodes.

Phases 0-1 are TVM's `GraphPartitioner::RunFuse` (anchors-design.md 3.2), restated:
  phase 0  an OUT_EWISE_FUSABLE op (matmul, conv2d) fuses into its immediate post-dominator
           when that is elementwise/broadcast and every op on the way is at most BROADCAST;
           an ELEMWISE/BROADCAST op fuses into a post-dominator that is at most INJECTIVE or a
           REDUCE (intermediates at most INJECTIVE; the sink may already hold a matmul).
  phase 1  INJECTIVE ops fuse when every path to the post-dominator is at most INJECTIVE.
  REDUCE never starts a fusion, OPAQUE is a barrier, groups are capped at MAX_GROUP_NODES.
Phase 2 is ours and goes past TVM, which leaves softmax as four kernels: groups that share one
row domain D (every value broadcastable to D, every reduction over the same trailing axes of D)
merge along producer->consumer edges while the union stays convex. Softmax, layer norm and
softmax-cross-entropy become one "row_reduce" kernel that reads each row once from memory,
and elementwise epilogues chain onto a matmul group (one master per group, and no member may
feed the master).

Scalar constants (and broadcasts/casts of them) are cloned into every body that uses them, so
they become literals in generated code instead of kernel arguments.

Decisions can be recorded (sporeflow-ir explain): `fuse(graph, record=fn)` calls
  fn("merge", phase=, rule=, src=, dst=, via=)      for every merge made (nodes, `via` the path),
  fn("refuse", phase=, src=, dst=, category=, reason=)   for every candidate turned down, where
      category is what decided: "kind lattice", "post-dominator", "master" (one matmul/conv per
      group), "size limit", "recompute" (an upsampling broadcast or pad would repeat real
      work per element), "row domain", "cycle" (the union would not be convex or would feed
      its own master) or "bisect" (the opt-bisect limit skipped it);
  fn("partition", graph=, nodes=, succ=, groups=, kinds=)   once per (sub)graph, the result.
With record=None (the default) no reason is computed. Every merge asks the pass manager's
opt-bisect counter (passes/bisect.py) first.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable


from ..ir.graph import Graph, Node, Value
from ..ir.registry import REGISTRY, Kind, get_op
from ..ir.types import Attrs
from .bisect import bisect_step
from .loop_nest import fits as _fits, loop_nest
from .manager import register_pass

MAX_GROUP_NODES = 256
MAX_GROUP_INPUTS = 48
_REPLICABLE_WRAPPERS = ("broadcast_to", "reshape", "cast")
_SINK = -1

Recorder = Callable[..., None]       # record(event, **fields); see the module docstring


def _op_kind(node: Node) -> Kind:
    if node.op == "constant":
        return Kind.OPAQUE     # data, not computation: never a fusion member
    return get_op(node.op).kind


def _replicable(node: Node, rep: set[int]) -> bool:
    if node.op == "constant":
        return node.outputs[0].type.size <= 1
    return node.op in _REPLICABLE_WRAPPERS and id(node.inputs[0].producer) in rep if node.inputs else False


@dataclass
class _Group:
    kind: Kind
    members: list[int]
    master: int | None = None          # index of the OUT_EWISE_FUSABLE node, if any

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class _Partition:
    nodes: list[Node]
    succ: list[list[int]]
    pred: list[list[int]]
    outs: set[int]                        # nodes with a graph output or an unused result
    parent: list[int] = field(default_factory=list)
    groups: dict[int, _Group] = field(default_factory=dict)
    record: Recorder | None = None

    def refuse(self, phase: int, src: int, dst: int, category: str, reason: str) -> None:
        self.record("refuse", phase=phase, src=self.nodes[src],
                    dst=None if dst == _SINK else self.nodes[dst], category=category, reason=reason)

    def describe(self, i: int) -> str:
        return f"{self.nodes[i].op} ({self.group(i).kind.name} group)"

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def group(self, i: int) -> _Group:
        return self.groups[self.find(i)]

    def merge(self, child: int, target: int) -> None:
        c, t = self.find(child), self.find(target)
        if c == t:
            return
        gc, gt = self.groups.pop(c), self.groups[t]
        self.parent[c] = t
        gt.members += gc.members
        if gc.master is not None:      # TVM: the master's pattern propagates to the merged group
            gt.master = gc.master
            gt.kind = max(gt.kind, gc.kind)


# ---------------------------------------------------------------------------------------------
# phases 0-1: TVM's rule over the post-dominator tree
# ---------------------------------------------------------------------------------------------
def _post_dominators(p: _Partition) -> dict[int, int]:
    """Immediate post-dominators of the node DAG (nodes are in topological order), by TVM's
    method: a node's post-dominator is the lowest common ancestor, in the tree built so far,
    of its consumers (and of the sink when it is a graph output). Nodes that reach no output
    are left out. Written here rather than with networkx.immediate_dominators because importing
    networkx costs ~0.13 s, which alone was most of a compile served from the disk cache."""
    ipdom: dict[int, int] = {_SINK: _SINK}
    depth: dict[int, int] = {_SINK: 0}

    def lca(a: int, b: int) -> int:
        while a != b:
            if depth[a] < depth[b]:
                a, b = b, a
            a = ipdom[a]
        return a
    for i in range(len(p.succ) - 1, -1, -1):
        cands = [s for s in p.succ[i] if s in ipdom] + ([_SINK] if i in p.outs else [])
        if not cands:
            continue
        d = cands[0]
        for c in cands[1:]:
            d = lca(d, c)
        ipdom[i], depth[i] = d, depth[d] + 1
    return ipdom


def _path(p: _Partition, src: int, dst: int) -> list[int]:
    """Nodes strictly between src and its post-dominator dst (every path from src reaches dst)."""
    seen, stack = set(), [s for s in p.succ[src] if s != dst]
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        stack.extend(s for s in p.succ[u] if s != dst and s not in seen)
    return sorted(seen)


def _check_path(p: _Partition, src: int, dst: int, path_max: Kind, sink_max: Kind,
                phase: int) -> list[int] | None:
    """The nodes between src and its post-dominator dst when every one's group is at most
    path_max, dst's group at most sink_max, and the union within MAX_GROUP_NODES; else None."""
    mids = _path(p, src, dst)
    if not all(p.group(u).kind <= path_max for u in mids) or not p.group(dst).kind <= sink_max:
        if p.record is not None:
            bad = [u for u in mids if p.group(u).kind > path_max]
            p.refuse(phase, src, dst, "kind lattice",
                     f"{p.describe(bad[0])} on the path to the post-dominator is above {path_max.name}"
                     if bad else f"the post-dominator {p.describe(dst)} is above {sink_max.name}")
        return None
    roots = {p.find(u) for u in mids + [src, dst]}
    costly = _recomputed_work(p, roots)
    if costly is not None:
        if p.record is not None:
            p.refuse(phase, src, dst, "recompute", costly)
        return None
    size = sum(p.groups[r].size for r in roots)
    if size > MAX_GROUP_NODES:
        if p.record is not None:
            p.refuse(phase, src, dst, "size limit", f"the union would have {size} > {MAX_GROUP_NODES} nodes")
        return None
    return mids


RECOMPUTE_LIMIT = 2      # computing ops upstream of an expanding broadcast in one kernel
_FREE = ("reshape", "broadcast_to", "cast", "stop_gradient")
_EXPANDING = ("broadcast_to", "pad")     # ops whose output can have many more elements than their input


def _recomputed_work(p: _Partition, roots: set[int]) -> str | None:
    """Why the union of these groups would recompute real work per element of an expanded
    domain, or None. A fused kernel evaluates every member once per element of its domain, so
    a broadcast_to or pad that multiplies the element count (an upsampling: max-pool's
    gradient spreads each window's masked gradient over the window with interior pads) repeats
    everything above it in the kernel, once per element and per pad operand: past
    RECOMPUTE_LIMIT ops the value is cheaper to materialize (LeNet's pool gradient kernel
    evaluated all four window offsets' mask chains for each of its 301K elements)."""
    members = {u for r in roots for u in p.groups[r].members}
    for b in members:
        n = p.nodes[b]
        if n.op not in _EXPANDING or n.outputs[0].type.size < 2 * max(n.inputs[0].type.size, 1):
            continue
        seen, stack, work = set(), [u for u in p.pred[b] if u in members], 0
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            work += p.nodes[u].op not in _FREE
            stack.extend(v for v in p.pred[u] if v in members and v not in seen)
        if work >= RECOMPUTE_LIMIT:
            return (f"{n.op} {n.inputs[0].type} -> {n.outputs[0].type} would repeat {work} ops "
                    f"per element (limit {RECOMPUTE_LIMIT})")
    return None


def _commit(p: _Partition, src: int, dst: int, mids: list[int], phase: int, rule: str) -> None:
    n, d = p.nodes[src], p.nodes[dst]
    if not bisect_step(f"fuse.{rule}: {n.op} into {d.op} ({n.loc or 'no loc'})"):
        if p.record is not None:
            p.refuse(phase, src, dst, "bisect", "skipped by the opt-bisect limit")
        return
    if p.record is not None:
        p.record("merge", phase=phase, rule=rule, src=n, dst=d, via=[p.nodes[u] for u in mids])
    for u in mids + [src]:
        p.merge(u, dst)


def _tvm_phases(p: _Partition) -> None:
    ipdom = _post_dominators(p)
    rec = p.record
    for phase in (0, 1):
        for i in range(len(p.nodes)):
            dst = ipdom.get(i, _SINK)
            if dst == _SINK or p.find(i) == p.find(dst):
                if dst == _SINK and rec is not None:
                    p.refuse(phase, i, dst, "post-dominator", "it reaches no graph output" if i not in ipdom
                             else "no node post-dominates it: it is a graph output (or unused)" if i in p.outs
                             else "no node post-dominates it: its uses lead to different graph outputs")
                continue
            gk = p.group(i).kind
            own_dst = _op_kind(p.nodes[dst])
            mids = None
            if gk == Kind.OPAQUE or gk == Kind.REDUCE:
                if rec is not None:
                    p.refuse(phase, i, dst, "kind lattice", f"{p.describe(i)}: a REDUCE never starts a fusion"
                             if gk == Kind.REDUCE else "a constant is data, not computation (OPAQUE)"
                             if p.nodes[i].op == "constant" else f"{p.describe(i)}: OPAQUE is a barrier")
                continue
            if gk == Kind.OUT_EWISE_FUSABLE:
                if phase == 0 and own_dst <= Kind.BROADCAST and p.group(dst).master is None:
                    mids = _check_path(p, i, dst, Kind.BROADCAST, Kind.BROADCAST, phase)
                    rule = "out_ewise"
                elif phase == 0 and rec is not None:
                    if own_dst > Kind.BROADCAST:
                        p.refuse(phase, i, dst, "kind lattice", f"{p.describe(i)}: an OUT_EWISE_FUSABLE group fuses "
                                 f"only into an elementwise/broadcast post-dominator; {p.nodes[dst].op} is "
                                 f"{own_dst.name}")
                    else:
                        p.refuse(phase, i, dst, "master", f"the post-dominator {p.nodes[dst].op}'s group "
                                 f"already has a master ({p.nodes[p.group(dst).master].op})")
            elif gk <= Kind.BROADCAST:
                if own_dst <= Kind.INJECTIVE or own_dst == Kind.REDUCE:
                    mids = _check_path(p, i, dst, Kind.INJECTIVE, Kind.OUT_EWISE_FUSABLE, phase)
                    rule = "elemwise"
                elif rec is not None:
                    p.refuse(phase, i, dst, "kind lattice", f"{p.describe(i)}: a {gk.name} group fuses into a "
                             f"post-dominator at most INJECTIVE or a REDUCE; {p.nodes[dst].op} is {own_dst.name}")
            elif gk == Kind.INJECTIVE and phase == 1:
                mids = _check_path(p, i, dst, Kind.INJECTIVE, Kind.INJECTIVE, phase)
                rule = "injective"
            if mids is not None:
                _commit(p, i, dst, mids, phase, rule)


# ---------------------------------------------------------------------------------------------
# phase 2: row-domain merging (softmax / layer norm / cross entropy as one kernel)
# ---------------------------------------------------------------------------------------------
def _row_signature(p: _Partition, members: list[int], why: list | None = None) -> tuple | None:
    """(domain, first reduced axis or None) when the members form one row kernel, else None
    (and, given a list `why`, the reason appended to it)."""
    doms, red = set(), set()
    for i in members:
        n = p.nodes[i]
        k = _op_kind(n)
        if get_op(n.op).monoid is not None:
            shape, axes = n.inputs[0].type.shape, tuple(sorted(n.attrs["axes"]))
            if not axes or axes != tuple(range(axes[0], len(shape))):
                if why is not None:
                    why.append(f"{n.op} over axes {list(axes)} of {list(shape)} is not over trailing axes")
                return None
            doms.add(shape)
            red.add(axes[0])
        elif k == Kind.OUT_EWISE_FUSABLE and i == p.group(i).master:
            doms.add(n.outputs[0].type.shape)
        elif k > Kind.BROADCAST:
            if why is not None:
                why.append(f"{n.op} is {k.name}, not a row-kernel op (elementwise, broadcast, a trailing "
                           f"{'/'.join(n for n, o in REGISTRY.items() if o.monoid)} or the group's master)")
            return None
        else:
            doms.add(n.outputs[0].type.shape)
    if len(red) > 1:
        if why is not None:
            why.append(f"reductions start at different axes {sorted(red)}")
        return None
    rank = max(len(s) for s in doms)
    dom = tuple(max((s[i - rank + len(s)] if i - rank + len(s) >= 0 else 1) for s in doms) for i in range(rank))
    if not all(_fits(s, dom) for s in doms):
        if why is not None:
            why.append(f"shapes {sorted(map(list, doms))} do not all broadcast to one domain")
        return None
    for i in members:                   # every operand must broadcast to the domain too
        n = p.nodes[i]
        if i == p.group(i).master:
            continue
        if not all(_fits(v.type.shape, dom) for v in n.inputs):
            if why is not None:
                why.append(f"an operand of {n.op} ({[list(v.type.shape) for v in n.inputs]}) does not "
                           f"broadcast to the domain {list(dom)}")
            return None
    return dom, (next(iter(red)) if red else None)


def _convex(p: _Partition, members: set[int]) -> bool:
    """No path leaves the member set and comes back, counting every other group as one unit
    (it runs as one kernel: a path into any of its members continues from all of them). Per-node
    convexity is not enough: two groups, each convex, can still feed each other (a cycle)."""
    stack = [s for m in members for s in p.succ[m] if s not in members]
    seen: set[int] = set()
    while stack:
        u = stack.pop()
        if u in members:
            return False
        r = p.find(u)
        if r in seen:
            continue
        seen.add(r)
        stack.extend(s for m in p.groups[r].members for s in p.succ[m])
    return True


def _master_fed_inside(p: _Partition, members: set[int], master: int | None) -> bool:
    if master is None:
        return False
    stack, seen = list(p.pred[master]), set()
    while stack:                        # any member among the master's ancestors?
        u = stack.pop()
        if u in members:
            return True
        if u not in seen:
            seen.add(u)
            stack.extend(p.pred[u])
    return False


def _try_row_merge(p: _Partition, a: int, b: int, edge: tuple[int, int]) -> bool:
    """Merge groups a and b (joined by the producer->consumer edge) when they share a row domain."""
    ga, gb = p.groups[a], p.groups[b]
    why: list | None = [] if p.record is not None else None

    def no(category: str, reason: str) -> bool:
        if why is not None:
            p.refuse(2, edge[0], edge[1], category, reason)
        return False
    if ga.master is not None and gb.master is not None:
        return no("master", f"both groups have a master ({p.nodes[ga.master].op}, {p.nodes[gb.master].op}); "
                  "a group holds one")
    if ga.size + gb.size > MAX_GROUP_NODES:
        return no("size limit", f"the union would have {ga.size + gb.size} > {MAX_GROUP_NODES} nodes")
    sa = _row_signature(p, ga.members, why)
    sb = _row_signature(p, gb.members, why) if sa is not None else None
    if sa is None or sb is None:
        return no("row domain", f"the {'producer' if sa is None else 'consumer'}'s group is not a row "
                  f"kernel: {why[0]}" if why else "")
    if sa[0] != sb[0]:
        return no("row domain", f"row domains differ: {list(sa[0])} vs {list(sb[0])}")
    if sa[1] is not None and sb[1] is not None and sa[1] != sb[1]:
        return no("row domain", f"reductions from axis {sa[1]} vs {sb[1]} of the domain {list(sa[0])}")
    union = set(ga.members) | set(gb.members)
    master = ga.master if ga.master is not None else gb.master
    if not _convex(p, union):
        return no("cycle", "the union is not convex: a path leaves it and comes back (through another "
                  "kernel), so it cannot run as one kernel")
    if _master_fed_inside(p, union, master):
        return no("cycle", f"a member would feed the group's master {p.nodes[master].op} (its own input)")
    sig = _row_signature(p, sorted(union), why)
    if sig is None:
        return no("row domain", f"the union is not one row kernel: {why[0]}" if why else "")
    src, dst = p.nodes[edge[0]], p.nodes[edge[1]]
    rule = "row_domain"
    if not bisect_step(f"fuse.{rule}: {src.op} with {dst.op} ({src.loc or 'no loc'})"):
        return no("bisect", "skipped by the opt-bisect limit")
    if p.record is not None:
        red = "" if sig[1] is None else f", reduced from axis {sig[1]}"
        p.record("merge", phase=2, rule=f"{rule} {list(sig[0])}{red}", src=src, dst=dst, via=[])
    p.merge(a, b)
    return True


def _row_phase(p: _Partition) -> None:
    changed = True
    while changed:
        changed = False
        for i in range(len(p.nodes)):
            for s in p.succ[i]:
                a, b = p.find(i), p.find(s)
                if a == b:
                    continue
                if p.groups[a].kind == Kind.OPAQUE or p.groups[b].kind == Kind.OPAQUE:
                    if p.record is not None:
                        p.refuse(2, i, s, "kind lattice", "an OPAQUE group takes no part in row-domain merging")
                    continue
                if _try_row_merge(p, a, b, (i, s)):
                    changed = True


# ---------------------------------------------------------------------------------------------
# building the fused graph
# ---------------------------------------------------------------------------------------------
def _group_kind_name(p: _Partition, g: _Group) -> str:
    if g.master is not None:
        return "out_ewise"
    ops = [p.nodes[i].op for i in g.members]
    if any(_op_kind(p.nodes[i]) == Kind.REDUCE for i in g.members):
        return "row_reduce" if _row_signature(p, g.members) is not None and any(
            get_op(o).monoid is not None for o in ops) else "reduce"
    if any(_op_kind(p.nodes[i]) == Kind.INJECTIVE for i in g.members):
        return "injective"
    return "elemwise"


def _group_name(ops: list[str]) -> str:
    names = [o for o in ops if o not in ("broadcast_to", "constant")] or ops
    shown = names[:6] + ([f"{len(names) - 6}more"] if len(names) > 6 else [])
    return "fused_" + "_".join(shown)


def partition(graph: Graph, record: Recorder | None = None) -> tuple[list[list[Node]], set[int]]:
    """The fusion groups of `graph`'s top level (lists of nodes, ≥ 2 members each) and the ids
    of the replicable (cloned-into-bodies) nodes. Exposed for tests and tools."""
    rep: set[int] = set()
    for n in graph.nodes:
        if _replicable(n, rep):
            rep.add(id(n))
    nodes = [n for n in graph.nodes if id(n) not in rep]
    index = {id(n): i for i, n in enumerate(nodes)}
    succ: list[list[int]] = [[] for _ in nodes]
    pred: list[list[int]] = [[] for _ in nodes]
    used: set[int] = set()
    for j, n in enumerate(nodes):
        for v in n.inputs:
            used.add(id(v))
            i = index.get(id(v.producer)) if v.producer is not None else None
            if i is not None and j not in succ[i]:
                succ[i].append(j)
                pred[j].append(i)
    graph_outs = {id(v) for v in graph.outputs}
    outs = {i for i, n in enumerate(nodes)
            if any(id(v) in graph_outs or id(v) not in used for v in n.outputs)}
    p = _Partition(nodes, succ, pred, outs, list(range(len(nodes))), record=record)
    for i, n in enumerate(nodes):
        k = _op_kind(n)
        p.groups[i] = _Group(k, [i], i if k == Kind.OUT_EWISE_FUSABLE else None)
    _tvm_phases(p)
    _row_phase(p)
    groups = [sorted(g.members) for g in p.groups.values() if g.size >= 2]
    groups.sort(key=lambda m: m[0])
    _partition_cache[id(graph)] = p
    if record is not None:
        record("partition", graph=graph, nodes=nodes, succ=succ, groups=groups,
               kinds=[_group_kind_name(p, p.group(m[0])) for m in groups])
    return [[nodes[i] for i in m] for m in groups], rep


_partition_cache: dict[int, _Partition] = {}


def fuse(graph: Graph, opt_level: int = 2, record: Recorder | None = None) -> Graph:
    """The fusion pass: a new graph whose fusion groups are `fused` nodes (opt_level 0: unchanged).
    `record` sees every decision (module docstring), subgraphs' included."""
    if opt_level < 1:
        return graph
    return _Fuser(record).run(graph)


def _register() -> None:
    register_pass("fuse", opt_level=2, doc="group nodes into fused kernels (TVM rule + row domains)",
                  replace=True)(lambda g: fuse(g))


_register()


class _Fuser:
    def __init__(self, record: Recorder | None = None):
        self.sub_memo: dict[int, Graph] = {}
        self.record = record

    def run(self, graph: Graph) -> Graph:
        groups, rep = partition(graph, self.record)
        p = _partition_cache.pop(id(graph))
        member_of = {id(n): gi for gi, g in enumerate(groups) for n in g}
        env: dict[int, Value] = {}
        new_inputs = []
        for v in graph.inputs:
            nv = Value(v.type, v.name)
            env[id(v)] = nv
            new_inputs.append(nv)
        # external users of each value (to decide a group's outputs)
        users: dict[int, set] = {}
        for n in graph.nodes:
            for v in n.inputs:
                users.setdefault(id(v), set()).add(member_of.get(id(n), ("node", id(n))))
        graph_outs = {id(v) for v in graph.outputs}
        units = self._units(graph, groups, member_of, rep)
        out_nodes: list[Node] = []
        for unit in units:
            if isinstance(unit, int):
                fused_node = self._emit_group(p, groups[unit], unit, env, users, graph_outs)
                if fused_node.outputs:          # a group nobody reads is dead code: dropped
                    out_nodes.append(fused_node)
            else:
                out_nodes.append(self._copy(unit, env))
        return Graph(graph.name, new_inputs, out_nodes, [env[id(v)] for v in graph.outputs])

    # -- ordering -----------------------------------------------------------------------------
    def _units(self, graph: Graph, groups, member_of, rep) -> list:
        """Topological order of fused groups and remaining nodes (stable by last member position)."""
        live: set[int] = {id(v) for v in graph.outputs}
        for n in graph.nodes:
            if id(n) not in rep and id(n) not in member_of:
                live.update(id(v) for v in n.inputs)
            elif id(n) in member_of:       # a member's non-replicable inputs come from outside
                live.update(id(v) for v in n.inputs if v.producer is None or id(v.producer) not in rep)
        for n in reversed(graph.nodes):
            if id(n) in rep and any(id(v) in live for v in n.outputs):
                live.update(id(v) for v in n.inputs)
        keys, deps, order_pos = [], {}, {}
        unit_of: dict[int, object] = {}
        for pos, n in enumerate(graph.nodes):
            if id(n) in rep and not any(id(v) in live for v in n.outputs):
                continue       # a replicable node only used inside bodies
            u = member_of.get(id(n), None)
            key = ("g", u) if u is not None else ("n", id(n))
            unit_of[id(n)] = key
            if key not in deps:
                keys.append((key, n if u is None else u))
                deps[key] = set()
            # a group sits where its last member was: reads of its inputs by other nodes come
            # first, so a parameter update can still be written over the parameter (memory.py)
            order_pos[key] = pos
        for n in graph.nodes:
            key = unit_of.get(id(n))
            if key is None:
                continue
            for v in n.inputs:
                pk = unit_of.get(id(v.producer)) if v.producer is not None else None
                if pk is not None and pk != key:
                    deps[key].add(pk)
        payload = dict(keys)
        indeg = {k: len(d) for k, d in deps.items()}
        rdeps: dict = {k: [] for k in deps}
        for k, d in deps.items():
            for x in d:
                rdeps[x].append(k)
        heap = [(order_pos[k], i, k) for i, (k, _) in enumerate(keys) if indeg[k] == 0]
        heapq.heapify(heap)
        out, counter = [], len(keys)
        while heap:
            _, _, k = heapq.heappop(heap)
            out.append(payload[k])
            for r in rdeps[k]:
                indeg[r] -= 1
                if indeg[r] == 0:
                    counter += 1
                    heapq.heappush(heap, (order_pos[r], counter, r))
        if len(out) != len(keys):
            raise AssertionError("fusion produced a cyclic unit graph (a non-convex group)")
        return out

    # -- emission -----------------------------------------------------------------------------
    def _attrs(self, node: Node):
        subs = {k: v for k, v in node.attrs.items() if isinstance(v, Graph)}
        if not subs:
            return node.attrs
        done = {}
        for k, g in subs.items():
            if id(g) not in self.sub_memo:
                self.sub_memo[id(g)] = _Fuser(self.record).run(g)
            done[k] = self.sub_memo[id(g)]
        return node.attrs.replace(**done)

    def _copy(self, node: Node, env: dict) -> Node:
        new = Node(node.op, [env[id(v)] for v in node.inputs], self._attrs(node),
                   [v.type for v in node.outputs], node.loc, node.scope)
        for v, nv in zip(node.outputs, new.outputs):
            env[id(v)] = nv
        return new

    def _clone_into(self, v: Value, benv: dict, body_nodes: list) -> Value:
        if id(v) in benv:
            return benv[id(v)]
        n = v.producer
        ins = [self._clone_into(u, benv, body_nodes) for u in n.inputs]
        new = Node(n.op, ins, n.attrs, [o.type for o in n.outputs], n.loc, n.scope)
        body_nodes.append(new)
        for o, no in zip(n.outputs, new.outputs):
            benv[id(o)] = no
        return benv[id(v)]

    def _emit_group(self, p: _Partition, members: list[Node], gi: int, env, users, graph_outs) -> Node:
        member_ids = {id(n) for n in members}
        benv: dict[int, Value] = {}
        body_inputs, ext = [], []
        body_nodes: list[Node] = []
        for n in members:
            for v in n.inputs:
                if id(v) in benv:
                    continue
                prod = v.producer
                if prod is not None and id(prod) in member_ids:
                    continue
                if prod is not None and prod.op in ("constant",) + _REPLICABLE_WRAPPERS and \
                        _is_rep_chain(prod):
                    continue
                bv = Value(v.type, f"in{len(body_inputs)}")
                benv[id(v)] = bv
                body_inputs.append(bv)
                ext.append(env[id(v)])
        body_outs, old_outs = [], []
        for n in members:
            ins = [benv[id(v)] if id(v) in benv else self._clone_into(v, benv, body_nodes) for v in n.inputs]
            new = Node(n.op, ins, self._attrs(n), [o.type for o in n.outputs], n.loc, n.scope)
            body_nodes.append(new)
            for o, no in zip(n.outputs, new.outputs):
                benv[id(o)] = no
                ext_users = users.get(id(o), set()) - {gi}
                if ext_users or id(o) in graph_outs:
                    body_outs.append(no)
                    old_outs.append(o)
        g = p.group(p.nodes.index(members[0]))
        kind = _group_kind_name(p, g)
        name = _group_name([n.op for n in members])
        body = Graph(name, body_inputs, body_nodes, body_outs)
        anchor = members[-1] if g.master is None else p.nodes[g.master]
        node = Node("fused", ext, Attrs(body=body, name=name, kind=kind, **loop_nest(body).attrs()),
                    [v.type for v in body_outs],
                    anchor.loc, anchor.scope)
        for o, no in zip(old_outs, node.outputs):
            env[id(o)] = no
        return node


def _is_rep_chain(n: Node) -> bool:
    if n.op == "constant":
        return n.outputs[0].type.size <= 1
    return n.op in _REPLICABLE_WRAPPERS and n.inputs and n.inputs[0].producer is not None and \
        _is_rep_chain(n.inputs[0].producer)


def fused_summary(graph: Graph) -> list[tuple[str, str, list[str]]]:
    """(name, kind, member ops) of every `fused` node at the top level of `graph`."""
    out = []
    for n in graph.nodes:
        if n.op == "fused":
            out.append((n.attrs["name"], n.attrs["kind"],
                        [m.op for m in n.attrs["body"].nodes if m.op not in ("constant",)]))
    return out
