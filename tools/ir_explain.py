"""`sporeflow-ir explain`: why the fusion pass grouped what it grouped, and why it stopped.

The fusion pass itself reports every decision (passes/fusion.py, `fuse(graph, record=...)`):
every merge with the rule that made it, every candidate it turned down with the category that
decided (kind lattice, post-dominator, master, size limit, row domain, cycle, bisect). This
module only sorts those records per group and per boundary, so it cannot drift from the pass.

A boundary is a producer -> consumer edge between two kernels (a fused group or a lone node).
For each it shows the pass's last word on the producer in the TVM phases (which only ever try
the producer's immediate post-dominator, phase 0/1) and on that edge in the row-domain phase
(phase 2). Graph inputs and replicated scalar constants are not nodes of the partition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sporeflow.ir.graph import Graph, Node
from sporeflow.passes import fusion


@dataclass
class Decision:
    phase: int
    category: str             # what decided; "merge" for a merge
    reason: str               # the rule for a merge
    src: Node
    dst: Node | None          # the candidate the pass tried (None: no post-dominator)


@dataclass
class Boundary:
    src: Node
    dst: Node
    src_unit: str             # "group K" or "lone"
    dst_unit: str
    decisions: list[Decision]

    @property
    def categories(self) -> list[str]:
        return [d.category for d in self.decisions]


@dataclass
class GroupReport:
    index: int
    name: str
    kind: str
    members: list[Node]
    merges: list[Decision] = field(default_factory=list)


@dataclass
class GraphReport:
    graph: Graph
    names: dict[int, str]                     # id(node) -> "%N op"
    groups: list[GroupReport]
    lone: list[Node]
    boundaries: list[Boundary]

    def name(self, n: Node | None) -> str:
        return "the graph output" if n is None else self.names.get(id(n), n.op)


class Recorder:
    """The `record` callback given to fusion.fuse: collects one GraphReport per partition."""

    def __init__(self) -> None:
        self.reports: list[GraphReport] = []
        self._pending: list[Decision] = []

    def __call__(self, event: str, **f) -> None:
        if event == "merge":
            self._pending.append(Decision(f["phase"], "merge", f["rule"], f["src"], f["dst"]))
        elif event == "refuse":
            self._pending.append(Decision(f["phase"], f["category"], f["reason"], f["src"], f["dst"]))
        elif event == "partition":
            self.reports.append(_report(f["graph"], f["nodes"], f["succ"], f["groups"], f["kinds"],
                                        self._pending))
            self._pending = []


def _value_names(g: Graph) -> dict[int, str]:
    """Each node named as the printer numbers its first result ("%3 exp")."""
    names, k = {}, 0
    for n in g.nodes:
        names[id(n)] = f"%{k} {n.op}" if n.outputs else n.op
        k += len(n.outputs)
    return names


def _report(graph, nodes, succ, groups, kinds, decisions: list[Decision]) -> GraphReport:
    index = {id(n): i for i, n in enumerate(nodes)}
    unit_of = {i: f"group {gi}" for gi, m in enumerate(groups) for i in m}
    reports = [GroupReport(gi, fusion._group_name([nodes[i].op for i in m]), kinds[gi], [nodes[i] for i in m])
               for gi, m in enumerate(groups)]
    tvm_last: dict[int, Decision] = {}           # producer -> the pass's last TVM-phase word on it
    row_last: dict[tuple[int, int], Decision] = {}
    for d in decisions:
        s = index[id(d.src)]
        if d.category == "merge":
            reports[int(unit_of[s].split()[1])].merges.append(d)
            if d.phase < 2:
                tvm_last.pop(s, None)
        elif d.phase < 2:
            tvm_last[s] = d
        else:
            row_last[(s, index[id(d.dst)])] = d
    boundaries = []
    for u, outs in enumerate(succ):
        for v in outs:
            uu, uv = unit_of.get(u, f"lone {u}"), unit_of.get(v, f"lone {v}")
            if uu == uv:
                continue
            ds = [d for d in (tvm_last.get(u), row_last.get((u, v))) if d is not None]
            boundaries.append(Boundary(nodes[u], nodes[v], uu.split()[0] if uu.startswith("lone") else uu,
                                       uv.split()[0] if uv.startswith("lone") else uv, ds))
    lone = [n for i, n in enumerate(nodes) if i not in unit_of]
    return GraphReport(graph, _value_names(graph), reports, lone, boundaries)


def explain(graph: Graph) -> tuple[Graph, list[GraphReport]]:
    """Run the fusion pass on `graph` with a recorder: the fused graph and one report per
    (sub)graph partitioned, the top level first."""
    rec = Recorder()
    out = fusion.fuse(graph, record=rec)
    reports = sorted(rec.reports, key=lambda r: r.graph is not graph)
    return out, reports


def _decision_line(r: GraphReport, b: Boundary, d: Decision) -> str:
    if d.phase == 2:
        where = "row-domain phase"
    else:
        tried = "its post-dominator" if d.dst is b.dst else f"its post-dominator {r.name(d.dst)}"
        if d.dst is None:
            tried = "no post-dominator"
        where = f"TVM phase {d.phase}, tried {tried}"
    return f"      {d.category}: {d.reason}  [{where}]"


def text(reports: list[GraphReport], boundaries: bool = True) -> str:
    out: list[str] = []
    for r in reports:
        out.append(f"graph @{r.graph.name}: {len(r.groups)} fused group(s), {len(r.lone)} lone node(s)")
        for g in r.groups:
            out.append(f"  group {g.index} {g.name} [{g.kind}]: {', '.join(r.name(n) for n in g.members)}")
            for d in g.merges:
                out.append(f"    merged {r.name(d.src)} -> {r.name(d.dst)}: {d.reason} (phase {d.phase})")
        if boundaries and r.boundaries:
            out.append("  boundaries (why not fused further):")
            for b in r.boundaries:
                out.append(f"    {r.name(b.src)} ({b.src_unit}) -> {r.name(b.dst)} ({b.dst_unit})")
                out += [_decision_line(r, b, d) for d in b.decisions] or ["      (no decision recorded)"]
    return "\n".join(out)
