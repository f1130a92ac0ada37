"""Graphs to look at: an .ir file, or what a script compiles (captured through the pass manager's
observers while the script runs in this process)."""
from __future__ import annotations

import os
import runpy
import sys
from dataclasses import dataclass, field

from sporeflow.ir import parse, verify
from sporeflow.ir.graph import Graph
from sporeflow.passes import manager
from sporeflow.passes.pipelines import PIPELINES


@dataclass
class PipelineRun:
    """One run of a pass pipeline: the graph after every stage and each pass's seconds."""
    name: str
    stages: list[tuple[str, Graph]] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def traced(self) -> Graph:
        return self.stages[0][1]

    @property
    def final(self) -> Graph:
        return self.stages[-1][1]


def run_script(script: str, args: list[str] = ()) -> list[PipelineRun]:
    """Run `script` as __main__ and return every pipeline run it caused, in order."""
    runs: list[PipelineRun] = []

    def observe(stage: str, graph: Graph) -> None:
        if stage == "trace":
            runs.append(PipelineRun(graph.name))
        runs[-1].stages.append((stage, graph))
    manager.observers.append(observe)
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        manager.observers.remove(observe)
        sys.argv, sys.path[:] = old_argv, old_path
    return runs


def run_passes(graph: Graph, names: list[str], verify_each: bool = False) -> tuple[Graph, list]:
    """Run the named passes in order, all of them (naming a pass requires it, whatever its opt
    level); returns the graph and [(pass, seconds)]."""
    pm = manager.PassManager(list(names), required=list(names), verify_each=verify_each)
    return pm.run(graph), pm.timings


DEFAULT_PASSES = ",".join(PIPELINES["llvm"])      # the LLVM pipeline: simplify,fold_transposes,fuse


def load(source: str, passes: str | None, graph_name: str | None = None, script_args=()) -> list[PipelineRun]:
    """`source` is an .ir file (drawn as written unless `passes` are given) or a script (its
    traced graphs through `passes`, default the LLVM pipeline). `graph_name` keeps the graphs
    whose name contains it."""
    if source.endswith(".py"):
        runs = run_script(source, list(script_args))
        names = (DEFAULT_PASSES if passes is None else passes)
    else:
        g = parse(open(source).read())
        verify(g)
        runs = [PipelineRun(g.name, [("file", g)])]
        names = passes or ""
    out = []
    for r in runs:
        if graph_name and graph_name not in r.name:
            continue
        stages = [("trace", r.traced)]
        timings = []
        g = r.traced
        for name in [p for p in names.split(",") if p]:
            g, t = run_passes(g, [name])
            stages.append((name, g))
            timings += t
        out.append(PipelineRun(r.name, stages, timings))
    if not out:
        raise SystemExit(f"sporeflow-ir: no compiled graph in {source}"
                         + (f" named like {graph_name!r}" if graph_name else ""))
    return out
