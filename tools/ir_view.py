"""`sporeflow-ir view`: one self-contained HTML page with an SVG drawing of a graph.

Layered top-down layout by Graphviz `dot` when it is installed (the fused groups are its
clusters), else by networkx (topological generations as the layers of multipartite_layout).
Nodes are coloured by their OpDef kind; the members of each `fused` node are drawn inside a box
named after it; Cell scopes are dashed clusters; edges carry their value's type; hovering a node
shows its IR line and source location (a <title> tooltip and the panel at the top).
"""
from __future__ import annotations

import html
import json
import shutil
import subprocess
from dataclasses import dataclass

import networkx as nx

from sporeflow.ir.graph import Graph, Node
from sporeflow.ir.printer import _collect_subgraphs, _graph_names, _print_one
from sporeflow.ir.registry import Kind, get_op

NODE_W, NODE_H, LAYER_H, GAP_X = 150, 34, 78, 28

KIND_COLOURS = {
    "ELEMWISE": "#8fd18f", "BROADCAST": "#b8e0a0", "INJECTIVE": "#9cc8f0", "REDUCE": "#f0c070",
    "OUT_EWISE_FUSABLE": "#f08c8c", "OPAQUE": "#c8b0e0", "input": "#dddddd", "output": "#dddddd",
    "constant": "#f4f4f4",
}


@dataclass
class Item:
    """One drawn box: a node (a fused body's member drawn in its group), an input or the return."""
    key: str
    label: str
    kind: str
    line: str
    loc: str = ""
    scope: str = ""
    group: str = ""


def _kind(n: Node) -> str:
    if n.op == "constant":
        return "constant"
    try:
        return get_op(n.op).kind.name
    except Exception:
        return Kind.OPAQUE.name


def _lines_of(g: Graph) -> dict[int, str]:
    """id(node) -> its printed IR line, for `g` and every subgraph."""
    order: list = []
    _collect_subgraphs(g, order, {id(g)})
    order.append(g)
    names = _graph_names(order)
    out: dict[int, str] = {}
    for sub in order:
        lines: list[str] = []
        _print_one(sub, names[id(sub)], names, lines)
        body = [ln for ln in lines[1:-1] if not ln.lstrip().startswith("return")]
        for n, ln in zip(sub.nodes, body):
            out[id(n)] = ln.split("  #")[0].strip()
    return out


def drawing(g: Graph) -> tuple[list[Item], list[tuple[str, str, str]]]:
    """The items and (src, dst, type) edges of `g`'s top level, fused bodies expanded."""
    lines = _lines_of(g)
    items: list[Item] = []
    edges: list[tuple[str, str, str]] = []
    src: dict[int, str] = {}            # id(value) -> key of the item that produces it
    for i, v in enumerate(g.inputs):
        key = f"in{i}"
        items.append(Item(key, f"%{v.name or 'arg' + str(i)}", "input", f"input {i}: {v.type}"))
        src[id(v)] = key

    def add(n: Node, group: str, env: dict[int, str]) -> None:
        key = f"n{len(items)}"
        items.append(Item(key, n.op, _kind(n), lines.get(id(n), n.op), n.loc, n.scope, group))
        for v in n.inputs:
            if id(v) in env:
                edges.append((env[id(v)], key, str(v.type)))
        for v in n.outputs:
            env[id(v)] = key

    for gi, n in enumerate(g.nodes):
        if n.op != "fused":
            add(n, "", src)
            continue
        body = n.attrs["body"]
        group = f"{n.attrs['name']} [{n.attrs['kind']}]#{gi}"
        benv = {id(bv): src[id(v)] for bv, v in zip(body.inputs, n.inputs) if id(v) in src}
        for m in body.nodes:
            add(m, group, benv)
        for bv, v in zip(body.outputs, n.outputs):
            src[id(v)] = benv[id(bv)]
    items.append(Item("out", "return", "output", "return " + ", ".join(str(v.type) for v in g.outputs)))
    for v in g.outputs:
        if id(v) in src:
            edges.append((src[id(v)], "out", str(v.type)))
    return items, edges


# ---- layout -----------------------------------------------------------------------------------
def _layout_networkx(items: list[Item], edges) -> dict[str, tuple[float, float]]:
    dag = nx.DiGraph()
    dag.add_nodes_from(it.key for it in items)
    dag.add_edges_from((a, b) for a, b, _ in edges)
    layer = {k: i for i, gen in enumerate(nx.topological_generations(dag)) for k in gen}
    order = {it.key: j for j, it in enumerate(items)}
    group = {it.key: it.group for it in items}
    ordered = nx.DiGraph()              # within a layer: members of one group side by side
    for k in sorted(dag.nodes, key=lambda k: (layer[k], group[k], order[k])):
        ordered.add_node(k, layer=layer[k])
    ordered.add_edges_from(dag.edges)
    pos = nx.multipartite_layout(ordered, subset_key="layer", align="horizontal")
    xs = sorted({round(float(p[0]), 9) for p in pos.values()})
    widest = max(sum(1 for k in layer if layer[k] == i) for i in set(layer.values()))
    span = (xs[-1] - xs[0]) or 1.0
    width = (widest - 1) * (NODE_W + GAP_X)
    return {k: (float(p[0] - xs[0]) / span * width + NODE_W, layer[k] * LAYER_H + NODE_H + 40)
            for k, p in pos.items()}


def _layout_dot(items: list[Item], edges) -> dict[str, tuple[float, float]] | None:
    exe = shutil.which("dot")
    if exe is None:
        return None
    lines = ["digraph G {", "  rankdir=TB; nodesep=0.3; ranksep=0.6;",
             f"  node [shape=box, fixedsize=true, width={NODE_W / 72:.3f}, height={NODE_H / 72:.3f}];"]
    groups: dict[str, list[str]] = {}
    for it in items:
        if it.group:
            groups.setdefault(it.group, []).append(it.key)
        else:
            lines.append(f'  "{it.key}";')
    for gi, (name, keys) in enumerate(groups.items()):
        lines.append(f"  subgraph cluster_{gi} {{ " + " ".join(f'"{k}";' for k in keys) + " }")
    lines += [f'  "{a}" -> "{b}";' for a, b, _ in edges]
    lines.append("}")
    r = subprocess.run([exe, "-Tplain"], input="\n".join(lines), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None
    pos, height = {}, 0.0
    for ln in r.stdout.splitlines():
        f = ln.split()
        if f and f[0] == "graph":
            height = float(f[3])
        elif f and f[0] == "node":
            pos[f[1].strip('"')] = (float(f[2]) * 72 + 20, (height - float(f[3])) * 72 + 60)
    return pos if len(pos) == len(items) else None


def layout(items: list[Item], edges, engine: str = "auto") -> tuple[dict, str]:
    if engine in ("auto", "dot"):
        pos = _layout_dot(items, edges)
        if pos is not None:
            return pos, "graphviz dot"
        if engine == "dot":
            raise SystemExit("sporeflow-ir view: Graphviz `dot` is not installed (apt-get install graphviz)")
    return _layout_networkx(items, edges), "networkx multipartite_layout"


# ---- SVG / HTML -------------------------------------------------------------------------------
def _bbox(points: list[tuple[float, float]], pad: float) -> tuple[float, float, float, float]:
    x0 = min(p[0] for p in points) - NODE_W / 2 - pad
    y0 = min(p[1] for p in points) - NODE_H / 2 - pad
    x1 = max(p[0] for p in points) + NODE_W / 2 + pad
    y1 = max(p[1] for p in points) + NODE_H / 2 + pad
    return x0, y0, x1 - x0, y1 - y0


def svg(items: list[Item], edges, pos: dict) -> str:
    e = html.escape
    out: list[str] = []
    scopes: dict[str, list[str]] = {}
    for it in items:              # constants are literals cloned where used: they do not outline a scope
        parts = it.scope.split("/") if it.scope and it.kind != "constant" else []
        for d in range(1, len(parts) + 1):
            scopes.setdefault("/".join(parts[:d]), []).append(it.key)
    depth = max((s.count("/") for s in scopes), default=0)
    for s in sorted(scopes, key=lambda s: s.count("/")):
        x, y, w, h = _bbox([pos[k] for k in scopes[s]], 22 + 8 * (depth - s.count("/")))
        out.append(f'<g class="scope"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="8" '
                   f'fill="none" stroke="#7a7aaa" stroke-dasharray="5,4"/>'
                   f'<text x="{x + 6:.1f}" y="{y + 12:.1f}" class="scopelabel">{e(s)}</text></g>')
    groups: dict[str, list[str]] = {}
    for it in items:
        if it.group:
            groups.setdefault(it.group, []).append(it.key)
    for name, keys in groups.items():
        x, y, w, h = _bbox([pos[k] for k in keys], 9)
        out.append(f'<g class="group"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" '
                   f'fill="#fff8d0" fill-opacity="0.55" stroke="#c09000" stroke-width="1.6"/>'
                   f'<text x="{x + 4:.1f}" y="{y - 3:.1f}" class="grouplabel">{e(name.split("#")[0])}</text></g>')
    for a, b, t in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        y1, y2 = y1 + NODE_H / 2, y2 - NODE_H / 2
        my = (y1 + y2) / 2
        out.append(f'<g class="edge"><path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{my:.1f} {x2:.1f},{my:.1f} '
                   f'{x2:.1f},{y2:.1f}" fill="none" stroke="#555" marker-end="url(#arrow)"/>'
                   f'<text x="{(x1 + x2) / 2 + 3:.1f}" y="{my:.1f}" class="shape">{e(t)}</text></g>')
    for it in items:
        x, y = pos[it.key]
        tip = it.line + (f"\n{it.loc}" if it.loc else "") + (f"\nscope {it.scope}" if it.scope else "")
        out.append(f'<g class="node" data-key="{it.key}" data-line="{e(it.line)}" data-loc="{e(it.loc)}" '
                   f'data-kind="{it.kind}"><title>{e(tip)}</title>'
                   f'<rect x="{x - NODE_W / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{NODE_W}" height="{NODE_H}" '
                   f'rx="4" fill="{KIND_COLOURS.get(it.kind, "#ffffff")}" stroke="#333"/>'
                   f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">{e(it.label[:22])}</text></g>')
    w = max(p[0] for p in pos.values()) + NODE_W + 60
    h = max(p[1] for p in pos.values()) + NODE_H + 60
    defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="0 0 {w:.0f} {h:.0f}">{defs}' + "".join(out) + "</svg>")


_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener('error', function (ev) { errors.push(String(ev.message)); });
  var panel = document.getElementById('info');
  var nodes = document.querySelectorAll('g.node');
  nodes.forEach(function (n) {
    n.addEventListener('mouseenter', function () {
      panel.textContent = n.dataset.line + (n.dataset.loc ? '    ' + n.dataset.loc : '');
    });
  });
  var shown = 0;
  nodes.forEach(function (n) { var b = n.getBBox(); if (b.width > 0 && b.height > 0) shown++; });
  document.body.setAttribute('data-nodes-shown', String(shown));
  document.body.setAttribute('data-errors', String(errors.length));
})();
"""


def legend() -> str:
    cells = "".join(f'<span class="key" style="background:{c}">{k.lower()}</span>' for k, c in KIND_COLOURS.items())
    return f'<div class="legend">{cells}<span class="key grp">fused group</span>' \
           f'<span class="key scp">Cell scope</span></div>'


def page(g: Graph, title: str, engine: str = "auto") -> str:
    items, edges = drawing(g)
    pos, used = layout(items, edges, engine)
    meta = {"graph": g.name, "nodes": len(items), "edges": len(edges), "layout": used}
    style = ("body{font:13px sans-serif;margin:0}header{position:sticky;top:0;background:#fff;padding:6px 10px;"
             "border-bottom:1px solid #ccc}#info{font:12px monospace;white-space:pre;min-height:1.3em;color:#333}"
             "svg text{font:12px sans-serif}svg text.shape{font:10px monospace;fill:#666}"
             "svg text.grouplabel{font:11px sans-serif;fill:#8a6500}svg text.scopelabel{font:11px sans-serif;"
             "fill:#55558a}g.node:hover rect{stroke-width:3}.key{display:inline-block;padding:1px 6px;"
             "margin-right:4px;border:1px solid #999;font-size:11px}.grp{border:2px solid #c09000}"
             ".scp{border:1px dashed #7a7aaa}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body data-graph='{html.escape(json.dumps(meta))}'>"
            f"<header><b>{html.escape(title)}</b> — {len(items)} nodes, {len(edges)} edges, layout: {used}"
            f"{legend()}<div id='info'>hover a node for its IR line and source location</div></header>"
            f"{svg(items, edges, pos)}<script>{_SCRIPT}</script></body></html>")
