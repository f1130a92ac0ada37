#!/usr/bin/env python3
"""The IR tool: look at what sporeflow compiles.

  ir_tool.py dump [--out DIR] SCRIPT.py [ARGS...]   run a script with save_graphs on; every
        compiled function leaves NNNN_<name>_traced.ir and NNNN_<name>_lowered_<backend>.ir in DIR
        (default ./sporeflow_ir); prints the files written.
  ir_tool.py opt FILE.ir [--passes P1,P2] [--verify] [--list]   parse, run the named passes of the
        pass manager (sporeflow/passes/manager.py; e.g. simplify, fuse) in order, print the result.
  ir_tool.py diff A.ir B.ir [--with-loc]   structural diff: values are compared by what computes
        them, not by their %numbers, so an inserted node shows as one line, not as a renumbering
        of everything after it. Exit 0 when equal, 1 when different (as diff(1)).
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- dump -------------------------------------------------------------------------------------
def cmd_dump(args) -> int:
    import sporeflow as sf
    out = os.path.abspath(args.out)
    os.environ["SPOREFLOW_SAVE_GRAPHS"] = "1"
    os.environ["SPOREFLOW_SAVE_GRAPHS_PATH"] = out
    sf.set_context(save_graphs=True, save_graphs_path=out)
    before = set(os.listdir(out)) if os.path.isdir(out) else set()
    sys.argv = [args.script] + args.script_args
    runpy.run_path(args.script, run_name="__main__")
    written = sorted(set(os.listdir(out)) - before) if os.path.isdir(out) else []
    print(f"ir_tool: {len(written)} graph file(s) in {out}", file=sys.stderr)
    for name in written:
        print(os.path.join(out, name))
    return 0 if written else 1


# ---- opt --------------------------------------------------------------------------------------
def _builtin_passes() -> dict:
    """Passes that can run before the pass manager exists (graph -> graph functions)."""
    table = {}
    try:
        from sporeflow.passes.fusion import fuse
        table["fuse"] = fuse
    except ImportError:
        pass
    try:
        from sporeflow.passes.autodiff import dce
        table["dce"] = dce
    except ImportError:
        pass
    return table


def run_passes(graph, names: list[str], verify_each: bool = False):
    """Run the named passes in order (all of them: naming a pass requires it, whatever its opt
    level), through the pass manager when it exists."""
    from sporeflow.errors import SporeflowError
    from sporeflow.ir import verify
    try:
        from sporeflow.passes import manager
    except ImportError:
        manager = None
    if manager is not None:
        try:
            return manager.PassManager(list(names), required=list(names), verify_each=verify_each).run(graph)
        except SporeflowError as e:
            if "unknown pass" in str(e):
                raise SystemExit(f"ir_tool opt: {e}") from None
            raise
    table = _builtin_passes()
    for name in names:
        if name not in table:
            raise SystemExit(f"ir_tool opt: unknown pass {name!r}; available: {sorted(table)}")
        graph = table[name](graph)
        if verify_each:
            verify(graph)
    return graph


def cmd_opt(args) -> int:
    from sporeflow.errors import IRParseError, VerifyError
    from sporeflow.ir import parse, verify
    if args.list:
        from sporeflow.passes.manager import PASSES
        for name, info in sorted(PASSES.items()):
            print(f"{name:16s} opt level {info.opt_level}  {info.doc}")
        return 0
    try:
        graph = parse(open(args.file).read())
        verify(graph)
        names = [p for p in (args.passes or "").split(",") if p]
        graph = run_passes(graph, names, args.verify)
        verify(graph)
    except (IRParseError, VerifyError) as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(str(graph))
    return 0


# ---- diff -------------------------------------------------------------------------------------
def _structural_lines(graph, with_loc: bool) -> list[tuple[str, str]]:
    """(key, text) per line of every graph of the module: key names each value by a hash of the
    computation that defines it (op, attributes, types, the inputs' keys), not by its number."""
    from sporeflow.ir.printer import fmt_attr, print_graph
    from sporeflow.ir.printer import _collect_subgraphs, _graph_names

    order: list = []
    _collect_subgraphs(graph, order, {id(graph)})
    order.append(graph)
    gnames = _graph_names(order)
    texts = print_graph(graph).splitlines()
    text_iter = iter(t for t in texts if t.strip() and not t.startswith("graph ") and t != "}")
    out = []
    for g in order:
        keys: dict[int, str] = {}
        for i, v in enumerate(g.inputs):
            keys[id(v)] = f"in{i}:{v.type}"
        out.append((f"graph @{gnames[id(g)]}({', '.join(keys[id(v)] for v in g.inputs)}) -> "
                    f"({', '.join(map(str, g.out_types))})",
                    f"graph @{gnames[id(g)]}({', '.join(str(v.type) for v in g.inputs)})"))
        for node in g.nodes:
            attrs = ", ".join(f"{k}={fmt_attr(v, gnames)}" for k, v in node.attrs.items())
            base = f"{node.op}({', '.join(keys[id(v)] for v in node.inputs)}){{{attrs}}}"
            if with_loc:
                base += f"#{node.scope}  {node.loc}"
            h = hashlib.blake2b(base.encode(), digest_size=6).hexdigest()
            for k, v in enumerate(node.outputs):
                keys[id(v)] = f"{h}.{k}"
            text = next(text_iter)
            if not with_loc and "#" in text:
                text = text[:text.index("#")].rstrip()
            out.append((f"{h}: {base} -> {[str(v.type) for v in node.outputs]}", text))
        out.append((f"return {[keys[id(v)] for v in g.outputs]}", next(text_iter)))
    return out


def structural_diff(a_text: str, b_text: str, with_loc: bool = False, names=("a", "b")) -> list[str]:
    from sporeflow.ir import parse
    la = _structural_lines(parse(a_text), with_loc)
    lb = _structural_lines(parse(b_text), with_loc)
    ka, kb = [k for k, _ in la], [k for k, _ in lb]
    if ka == kb:
        return []
    lines = [f"--- {names[0]}", f"+++ {names[1]}"]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        lines.append(f"@@ {names[0]} lines {i1 + 1}-{i2}, {names[1]} lines {j1 + 1}-{j2} @@")
        lines += ["-" + la[i][1] for i in range(i1, i2)]
        lines += ["+" + lb[j][1] for j in range(j1, j2)]
    return lines


def cmd_diff(args) -> int:
    from sporeflow.errors import IRParseError
    try:
        lines = structural_diff(open(args.a).read(), open(args.b).read(), args.with_loc, (args.a, args.b))
    except IRParseError as e:
        print(f"ir_tool diff: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 1 if lines else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ir_tool.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="run a script with save_graphs on")
    d.add_argument("script")
    d.add_argument("script_args", nargs=argparse.REMAINDER)
    d.add_argument("--out", default="sporeflow_ir")
    o = sub.add_parser("opt", help="parse an .ir file, run passes, print")
    o.add_argument("file", nargs="?")
    o.add_argument("--passes", default="")
    o.add_argument("--list", action="store_true", help="list the registered passes")
    o.add_argument("--verify", action="store_true", help="verify after every pass")
    f = sub.add_parser("diff", help="structural diff of two .ir files")
    f.add_argument("a")
    f.add_argument("b")
    f.add_argument("--with-loc", action="store_true", help="also compare scopes and source locations")
    args = ap.parse_args(argv)
    return {"dump": cmd_dump, "opt": cmd_opt, "diff": cmd_diff}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
