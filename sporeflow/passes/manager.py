"""The pass manager: named Graph -> Graph passes, pipelines as data, verify/time/dump per pass.

As TVM's PassContext (anchors-design.md 3.3): every pass is registered once with a name and
an opt level; a pipeline is a list of names; a pass runs when its name is not disabled and
(it is required or its opt level <= the pipeline's opt level). After each pass the manager
can run the verifier (sf.set_context(verify_each_pass=True); tests turn it on), records the
pass's wall time, and with sf.set_context(save_graphs=True, save_graphs_path=DIR) writes the
IR as DIR/00_trace.ir, DIR/01_<pass>.ir, ... (each readable by sporeflow.ir.parse; a later
compile overwrites the files of the previous one, as MindSpore's save_graphs does).

Users register their own pass with @register_pass("name") and run their own pipeline with
run_pipeline(graph, ["name", "dce"]) or PassManager([...]).run(graph), or give it to a jit:
sf.jit(f, pipeline=["simplify", "name", "fuse"], disabled=[...], opt_level=1) or
sf.set_context(pipeline=[...]) (see passes/pipelines.py, which registers the built-in passes
and names each backend's default pipeline).

The pass interface: a pass is a pure function Graph -> Graph (it builds a new graph or returns
its argument; it never mutates nodes in place), registered with
  name       how pipelines, `disabled=` and dumps call it;
  opt_level  it runs when its level <= the pipeline's opt level, or when it is named in `required`;
  requires   passes that must have run earlier in the same pipeline (checked before anything runs);
  preserves  analyses it keeps valid (documentation for readers of dumps; the manager caches no
             analyses today, so nothing is invalidated).

Tools hook in without changing results: `observers` see the graph after every stage, and
`bisect_step` (passes/bisect.py) numbers every pass run and every rewrite a pass offers to it
(LLVM's opt-bisect; Rebuilder rewrites, fusion merges and memory-plan reuses ask it): with
SPOREFLOW_OPT_BISECT_LIMIT=N (or set_bisect_limit(N)) only the first N run, the rest are
skipped; SPOREFLOW_OPT_BISECT_LOG=FILE appends one line per step ("N run|skip what").
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import SporeflowError, VerifyError
from ..ir.graph import Graph
from ..ir.printer import print_graph
from ..ir.verify import verify
from ..context import get_context
from .bisect import bisect_count, bisect_step, set_bisect_limit  # noqa: F401  (the pass API names them)

log = logging.getLogger("sporeflow.passes")

PassFn = Callable[[Graph], Graph]


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: PassFn
    opt_level: int
    doc: str = ""
    requires: tuple[str, ...] = ()      # passes that must run before this one in the pipeline
    preserves: tuple[str, ...] = ()     # analyses left valid (documentation; none are cached)


PASSES: dict[str, PassInfo] = {}

last_timings: list[tuple[str, float]] = []   # (pass name, seconds) of the latest pipeline run

# fn(stage, graph) after the trace ("trace") and after every pass that ran (its name): the IR tool
# writes its dumps from here; an observer must not change the graph
observers: list[Callable[[str, Graph], None]] = []


def register_pass(name: str, opt_level: int = 1, doc: str = "", replace: bool = False,
                  requires: Sequence[str] = (), preserves: Sequence[str] = ()):
    """Decorator: register `fn(graph) -> graph` under `name` (once; replace=True to override)."""
    def deco(fn: PassFn) -> PassFn:
        if name in PASSES and not replace:
            raise SporeflowError(f"pass {name!r} is already registered (pass replace=True to override it)")
        PASSES[name] = PassInfo(name, fn, opt_level, doc or (fn.__doc__ or "").strip().split("\n")[0],
                                tuple(requires), tuple(preserves))
        return fn
    return deco


def get_pass(name: str) -> PassInfo:
    if name not in PASSES:
        raise SporeflowError(f"unknown pass {name!r}; registered passes: {sorted(PASSES)}")
    return PASSES[name]


@dataclass
class PassManager:
    pipeline: Sequence[str]
    opt_level: int | None = None              # None: sf.get_context("opt_level")
    disabled: Sequence[str] = ()
    required: Sequence[str] = ()
    verify_each: bool | None = None           # None: sf.get_context("verify_each_pass")
    dump_dir: str | None = None               # None: save_graphs_path when save_graphs is on
    timings: list = field(default_factory=list)

    def _settings(self) -> tuple[int, bool, str | None]:
        opt = get_context("opt_level") if self.opt_level is None else self.opt_level
        ver = get_context("verify_each_pass") if self.verify_each is None else self.verify_each
        dump = self.dump_dir
        if dump is None and get_context("save_graphs"):
            dump = get_context("save_graphs_path")
        return opt, ver, dump

    def enabled(self, info: PassInfo, opt: int) -> bool:
        if info.name in self.disabled:
            return False
        return info.name in self.required or info.opt_level <= opt

    def run(self, graph: Graph) -> Graph:
        opt, ver, dump = self._settings()
        # a name, or a PassInfo with its options bound (passes.amp.amp_pass(plan)); unknown names
        # fail before anything runs
        infos = [n if isinstance(n, PassInfo) else get_pass(n) for n in self.pipeline]
        for i, info in enumerate(infos):
            missing = [r for r in info.requires if r not in {x.name for x in infos[:i]}]
            if missing:
                raise SporeflowError(f"pass {info.name!r} requires {missing} earlier in the pipeline "
                                     f"{[x.name for x in infos]}")
        self.timings = []
        step = 0
        if dump:
            os.makedirs(dump, exist_ok=True)
            _write(dump, step, "trace", graph)
        for obs in observers:
            obs("trace", graph)
        for info in infos:
            if not self.enabled(info, opt):
                continue
            if not bisect_step(f"pass {info.name}"):
                continue
            t0 = time.perf_counter()
            out = info.fn(graph)
            dt = time.perf_counter() - t0
            if not isinstance(out, Graph):
                raise SporeflowError(f"pass {info.name!r} returned {type(out).__name__}, not a Graph")
            self.timings.append((info.name, dt))
            log.debug("pass %s: %.3f ms, %d -> %d nodes", info.name, dt * 1e3, len(graph.nodes), len(out.nodes))
            if ver:
                try:
                    verify(out)
                except VerifyError as e:
                    raise VerifyError(f"after pass {info.name!r}: {e}") from None
            graph = out
            step += 1
            if dump:
                _write(dump, step, info.name, graph)
            for obs in observers:
                obs(info.name, graph)
        last_timings[:] = self.timings
        return graph


def _write(folder: str, step: int, name: str, graph: Graph) -> None:
    with open(os.path.join(folder, f"{step:02d}_{name}.ir"), "w") as f:
        f.write(print_graph(graph))


def run_pipeline(graph: Graph, pipeline: Sequence[str], **options) -> Graph:
    return PassManager(list(pipeline), **options).run(graph)
