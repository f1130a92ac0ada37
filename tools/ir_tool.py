#!/usr/bin/env python3
"""sporeflow-ir: look at what sporeflow compiles and experiment with its passes.

  dump SCRIPT.py [--out DIR] [--llvm] [--asm] [ARGS...]   run a script; every compiled function
        leaves NNNN_<name>_traced.ir and _lowered_<backend>.ir, the graph after every pass in
        NNNN_<name>_passes/SS_<pass>.ir, the forward/grad/vmap graphs of the transforms, and with
        --llvm / --asm the LLVM IR (.ll) / host assembly (.s) of each executable (CUDA C, .cu,
        always for the cuda backends). Prints the files written.
  opt FILE.ir [--passes P1,P2] [--verify-each] [--print-after-all] [--time] [--list]
        [--opt-bisect-limit N]   parse, run the named passes in order (mlir-opt style), print
        the result; with a limit only the first N steps apply and every step is listed.
  diff A.ir B.ir [--with-loc]   structural diff: values are compared by what computes them, not by
        their %numbers. Exit 0 when equal, 1 when different (as diff(1)).
  view FILE.ir|SCRIPT.py [-o OUT.html] [--open]   an HTML page with an SVG drawing of the graph.
  explain FILE.ir|SCRIPT.py [--groups-only]   the fusion decisions: groups, rules, and why each boundary stayed.
  bisect SCRIPT.py [--check CMD] [--no-interp]   opt-bisect: the first pass run or rewrite (or
        fusion merge) that changes the results against the interpreter and/or makes CMD fail.
        Exit 1 when it names one, 0 when every step is good, 2 when even no step is good.
  stats FILE.ir|SCRIPT.py   nodes per op, fused groups, bytes/FLOPs per kernel, time per pass.
A SCRIPT.py's traced graphs go through --passes (default: the LLVM pipeline, simplify,fold_transposes,fuse); an
.ir file is taken as written unless --passes is given.
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import runpy
import sys

if __package__ in (None, ""):     # run as a file (python tools/ir_tool.py): import the package beside it
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "tools"
    import tools  # noqa: F401


# ---- dump -------------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name) or "graph"


class _Dumper:
    """Writes the pass-by-pass graphs and the executables' code while the script runs."""

    def __init__(self, out: str, llvm: bool, asm: bool):
        self.out, self.llvm, self.asm = out, llvm, asm
        self.seq = 0
        self.folder: str | None = None
        self.step = 0

    def on_pass(self, stage: str, graph) -> None:
        if stage == "trace":     # numbered as the NNNN_<name>_traced.ir that jit has just saved
            from sporeflow.frontend.jit import _SAVE_SEQ
            self.seq = max(_SAVE_SEQ[0] - 1, 0)
            self.folder = os.path.join(self.out, f"{self.seq:04d}_{_safe(graph.name)}_passes")
            self.step = 0
            os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, f"{self.step:02d}_{stage}.ir"), "w") as f:
            f.write(str(graph))
        self.step += 1

    def on_graph(self, stage: str, payload) -> None:
        if stage != "executable":
            return
        graph, backend, exe = payload
        base = os.path.join(self.out, f"{self.seq:04d}_{_safe(graph.name)}_{backend}")
        src = getattr(exe, "source", None)
        if backend.startswith("cuda") and src:
            _write(base + ".cu", src)
        elif backend == "llvm":
            if self.llvm and src:
                _write(base + ".ll", src)
            if self.asm:
                _write(base + ".s", exe.asm)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def cmd_dump(args) -> int:
    import sporeflow as sf
    from sporeflow.frontend import jit as jit_mod
    from sporeflow.passes import manager
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in ("SPOREFLOW_SAVE_GRAPHS", "SPOREFLOW_SAVE_GRAPHS_PATH")}
    saved_ctx = {k: sf.get_context(k) for k in ("save_graphs", "save_graphs_path")}
    os.environ["SPOREFLOW_SAVE_GRAPHS"] = "1"
    os.environ["SPOREFLOW_SAVE_GRAPHS_PATH"] = out
    sf.set_context(save_graphs=True, save_graphs_path=out)
    before = set(_all_files(out))
    dumper = _Dumper(out, args.llvm, args.asm)
    manager.observers.append(dumper.on_pass)
    jit_mod.graph_observers.append(dumper.on_graph)
    old_argv = sys.argv
    sys.argv = [args.script] + args.script_args
    try:
        runpy.run_path(args.script, run_name="__main__")
    finally:       # in-process callers (tests) get their settings back
        manager.observers.remove(dumper.on_pass)
        jit_mod.graph_observers.remove(dumper.on_graph)
        sys.argv = old_argv
        sf.set_context(**saved_ctx)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    written = sorted(set(_all_files(out)) - before)
    print(f"sporeflow-ir: {len(written)} file(s) in {out}", file=sys.stderr)
    for name in written:
        print(os.path.join(out, name))
    return 0 if written else 1


def _all_files(root: str) -> list[str]:
    return [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]


# ---- opt --------------------------------------------------------------------------------------
def cmd_opt(args) -> int:
    from sporeflow.errors import IRParseError, SporeflowError, VerifyError
    from sporeflow.ir import parse, verify
    from sporeflow.passes import manager
    if args.list:
        for name, info in sorted(manager.PASSES.items()):
            extra = (f"  requires {list(info.requires)}" if info.requires else "") + \
                (f"  preserves {list(info.preserves)}" if info.preserves else "")
            print(f"{name:16s} opt level {info.opt_level}  {info.doc}{extra}")
        return 0
    if not args.file:
        print("sporeflow-ir opt: give an .ir file (or --list)", file=sys.stderr)
        return 2
    names = [p for p in (args.passes or "").split(",") if p]
    timings: list = []
    log = None
    try:
        for n in names:
            manager.get_pass(n)
        graph = parse(open(args.file).read())
        verify(graph)
        if args.opt_bisect_limit is not None:       # LLVM's opt -opt-bisect-limit=N
            import tempfile
            with tempfile.NamedTemporaryFile("r", suffix=".bisect.log", delete=False) as log:
                pass
            manager.set_bisect_limit(args.opt_bisect_limit, log.name)
        for n in names:
            pm = manager.PassManager([n], required=[n], verify_each=args.verify_each)
            graph = pm.run(graph)
            timings += pm.timings
            if args.print_after_all:
                sys.stdout.write(f"// ----- IR after {n} -----\n{graph}")
        verify(graph)
    except (IRParseError, VerifyError) as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    except SporeflowError as e:
        print(f"sporeflow-ir opt: {e}", file=sys.stderr)
        return 2
    finally:
        if log is not None:
            manager.set_bisect_limit(None)
            for line in open(log.name).read().splitlines():
                k, verdict, what = line.split(" ", 2)
                print(f"BISECT: {'running' if verdict == 'run' else 'NOT running'} step ({k}) {what}",
                      file=sys.stderr)
            os.unlink(log.name)
    if not args.print_after_all:
        sys.stdout.write(str(graph))
    if args.time:
        print("pass timings:", file=sys.stderr)
        for n, dt in timings:
            print(f"  {n:16s} {dt * 1e3:9.3f} ms", file=sys.stderr)
        print(f"  {'total':16s} {sum(t for _, t in timings) * 1e3:9.3f} ms", file=sys.stderr)
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
        print(f"sporeflow-ir diff: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 1 if lines else 0


# ---- view / stats / explain / bisect --------------------------------------------------------------
def _pick(args):
    from . import ir_capture
    return ir_capture.load(args.source, args.passes, args.graph, args.script_args)


def cmd_view(args) -> int:
    from . import ir_view
    runs = _pick(args)
    run = runs[-1]
    stage, graph = run.stages[-1]
    out = args.o or (os.path.splitext(os.path.basename(args.source))[0] + ".html")
    title = f"{run.name} after {stage}" if stage not in ("file", "trace") else run.name
    _write(out, ir_view.page(graph, title, args.layout))
    print(os.path.abspath(out))
    if args.open:
        import webbrowser
        webbrowser.open("file://" + os.path.abspath(out))
    return 0


def cmd_stats(args) -> int:
    from . import ir_stats
    for run in _pick(args):
        print(ir_stats.report(run.name, run.final, run.timings, run.traced))
    return 0


def cmd_explain(args) -> int:
    from . import ir_explain
    for run in _pick(args):
        stages = [g for name, g in run.stages]
        names = [name for name, _ in run.stages]
        # the graph the pipeline's fuse pass was given, else the last one (an .ir file as written)
        graph = stages[names.index("fuse") - 1] if "fuse" in names else stages[-1]
        _, reports = ir_explain.explain(graph)
        print(ir_explain.text(reports, boundaries=not args.groups_only))
    return 0


def cmd_bisect(args) -> int:
    from . import ir_bisect
    if args.no_interp and not args.check:
        print("sporeflow-ir bisect: --no-interp needs --check CMD (nothing would decide)", file=sys.stderr)
        return 2
    echo = (lambda s: print("  " + s, file=sys.stderr)) if args.verbose else None
    r = ir_bisect.bisect_script(args.script, args.script_args, args.check, not args.no_interp,
                                args.rtol, args.atol, echo)
    print(ir_bisect.report(r))
    if r.culprit is not None:
        return 1
    return 2 if r.first_bad is not None else 0


def _add_source(p) -> None:
    p.add_argument("source", help="an .ir file or a Python script")
    p.add_argument("script_args", nargs="*", help="arguments for the script (after --)")
    p.add_argument("--passes", default=None, help="passes to run first (script default: simplify,fold_transposes,fuse)")
    p.add_argument("--graph", default=None, help="only the compiled graphs whose name contains this")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sporeflow-ir", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="run a script, write every graph after every pass (+ code)")
    d.add_argument("script")
    d.add_argument("script_args", nargs=argparse.REMAINDER)
    d.add_argument("--out", default="sporeflow_ir")
    d.add_argument("--llvm", action="store_true", help="also write each LLVM executable's IR (.ll)")
    d.add_argument("--asm", action="store_true", help="also write each LLVM executable's assembly (.s)")
    o = sub.add_parser("opt", help="parse an .ir file, run passes, print")
    o.add_argument("file", nargs="?")
    o.add_argument("--passes", default="")
    o.add_argument("--list", action="store_true", help="list the registered passes")
    o.add_argument("--verify-each", "--verify", dest="verify_each", action="store_true",
                   help="verify after every pass")
    o.add_argument("--print-after-all", action="store_true", help="print the IR after every pass")
    o.add_argument("--time", action="store_true", help="report each pass's time on stderr")
    o.add_argument("--opt-bisect-limit", type=int, default=None, metavar="N",
                   help="apply only the first N pass runs / rewrites / fusion merges; list them all on stderr")
    f = sub.add_parser("diff", help="structural diff of two .ir files")
    f.add_argument("a")
    f.add_argument("b")
    f.add_argument("--with-loc", action="store_true", help="also compare scopes and source locations")
    v = sub.add_parser("view", help="draw a graph as a self-contained HTML page")
    v.add_argument("-o", default=None, help="output .html (default: <source>.html here)")
    v.add_argument("--open", action="store_true", help="open the page in a browser")
    v.add_argument("--layout", choices=("auto", "dot", "networkx"), default="auto")
    _add_source(v)
    s = sub.add_parser("stats", help="nodes per op, fused groups, bytes/FLOPs per kernel, time per pass")
    _add_source(s)
    e = sub.add_parser("explain", help="the fusion decisions: groups, their rules, why each boundary stayed")
    e.add_argument("--groups-only", action="store_true", help="leave out the boundaries")
    _add_source(e)
    b = sub.add_parser("bisect", help="opt-bisect: the first pass run or rewrite that changes the results")
    b.add_argument("script")
    b.add_argument("script_args", nargs="*", help="arguments for the script (after --)")
    b.add_argument("--check", default=None, metavar="CMD",
                   help="a shell command that fails (non-zero) on bad results; run with SPOREFLOW_OPT_BISECT_LIMIT=N")
    b.add_argument("--no-interp", action="store_true",
                   help="do not compare the script's compiled graphs with the interpreter (only CMD decides)")
    b.add_argument("--rtol", type=float, default=1e-4)
    b.add_argument("--atol", type=float, default=1e-5)
    b.add_argument("-v", "--verbose", action="store_true", help="print every run's verdict on stderr")
    args = ap.parse_args(argv)
    table = {"dump": cmd_dump, "opt": cmd_opt, "diff": cmd_diff, "view": cmd_view, "stats": cmd_stats,
             "explain": cmd_explain, "bisect": cmd_bisect}
    return table[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
