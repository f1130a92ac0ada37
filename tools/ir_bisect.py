"""`sporeflow-ir bisect`: LLVM's opt-bisect for sporeflow's pass pipeline.

Every pass run and every rewrite a pass makes is one numbered step (passes/bisect.py: the pass
manager asks before each pass, Rebuilder before each replacement, fusion before each merge).
With the limit at N only the first N steps apply. The script is run once with no limit to
count the steps, then the smallest N whose run is bad is found by binary search: step N is
the first one that changes the results.

A run is bad when
  - a function the script compiled gives other results than the interpreter on the graph as
    traced, on the arguments of its first call (jit's call_observers; --no-interp turns this
    off), or the script raises; and/or
  - CMD (--check, a shell command) exits non-zero when run with SPOREFLOW_OPT_BISECT_LIMIT=N.
The script runs in this process (passes it registers are unregistered after each run; its
standard output is swallowed unless --verbose).
"""
from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field

import numpy as np

from sporeflow.frontend import jit as jit_mod
from sporeflow.ir.graph import Graph
from sporeflow.ir.interpret import run_graph
from sporeflow.passes import bisect, manager, pipelines


@dataclass
class Outcome:
    steps: list[str]                                   # "what" of every step asked, in order
    problems: list[str] = field(default_factory=list)  # why the run is bad (empty: good)
    compared: int = 0                                  # executables checked against the interpreter

    @property
    def bad(self) -> bool:
        return bool(self.problems)


class _Checker:
    """Checks each compiled function, on its first call, against the interpreter on the graph
    as traced, with that call's arguments (the executable is run once more on copies)."""

    def __init__(self, rtol: float, atol: float):
        self.rtol, self.atol = rtol, atol
        self.seen: set[int] = set()
        self.problems: list[str] = []
        self.compared = 0

    def on_call(self, compiled, arrays: list) -> None:
        exe = compiled.executable
        if id(compiled) in self.seen or getattr(exe, "device", None) is not None:
            return                   # device executables: left to --check
        self.seen.add(id(compiled))
        backend = compiled.traced.backend or type(exe).__name__
        self._compare(compiled.traced.graph, backend, exe, [np.array(a) for a in arrays], "its first call's")

    def _compare(self, traced: Graph, backend: str, exe, args: list, which: str) -> bool:
        """False when they agree (or are not comparable on these inputs), else True, noted."""
        try:
            want = run_graph(traced, [a.copy() for a in args])
        except Exception:            # noqa: BLE001  (random inputs the graph rejects: not comparable)
            return False
        try:
            got = exe(*[a.copy() for a in args])
        except Exception as e:       # noqa: BLE001
            self.problems.append(f"@{traced.name} on {backend} raised {type(e).__name__}: {e}")
            return True
        self.compared += 1
        bad = False
        for k, (w, g) in enumerate(zip(want, got)):
            g = np.asarray(g)
            if g.shape != w.shape:
                self.problems.append(f"@{traced.name} on {backend}: output {k} has shape {g.shape}, "
                                     f"the interpreter's {w.shape}")
                bad = True
                continue
            wf, gf = w.astype(np.float64), g.astype(np.float64)
            if not np.allclose(gf, wf, rtol=self.rtol, atol=self.atol, equal_nan=True):
                both = np.isfinite(wf) & np.isfinite(gf)
                err = np.abs(gf - wf)[both].max() if both.any() else float("nan")
                self.problems.append(f"@{traced.name} on {backend}: output {k} differs from the interpreter "
                                     f"on {which} arguments (max abs difference {err:.3g})")
                bad = True
        return bad


def run_in_process(script: str, args: list[str], limit: int | None, rtol: float, atol: float,
                   quiet: bool = True) -> Outcome:
    log = tempfile.NamedTemporaryFile("r", suffix=".bisect.log", delete=False)
    log.close()
    checker = _Checker(rtol, atol)
    saved_passes, saved_pipes = dict(manager.PASSES), {k: list(v) for k, v in pipelines.PIPELINES.items()}
    jit_mod.call_observers.append(checker.on_call)
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    bisect.set_bisect_limit(limit, log.name)
    problems: list[str] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            problems.append(f"the script exited with {e.code}")
    except Exception as e:          # noqa: BLE001  (a pass that breaks the program is what we look for)
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"{f.filename}:{f.lineno}" for f in reversed(tb) if f.filename == script), "")
        problems.append(f"the script raised {type(e).__name__}: {e}" + (f" ({where})" if where else ""))
    finally:
        bisect.set_bisect_limit(None)
        jit_mod.call_observers.remove(checker.on_call)
        sys.argv, sys.path[:] = old_argv, old_path
        manager.PASSES.clear()
        manager.PASSES.update(saved_passes)
        pipelines.PIPELINES.clear()
        pipelines.PIPELINES.update(saved_pipes)
    steps = _read_log(log.name)
    return Outcome(steps, checker.problems + problems, checker.compared)


def run_command(cmd: str, limit: int | None) -> Outcome:
    with tempfile.NamedTemporaryFile("r", suffix=".bisect.log", delete=False) as log:
        pass
    env = dict(os.environ, SPOREFLOW_OPT_BISECT_LOG=log.name)
    env.pop("SPOREFLOW_OPT_BISECT_LIMIT", None)
    if limit is not None:
        env["SPOREFLOW_OPT_BISECT_LIMIT"] = str(limit)
    r = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True)
    problems = [] if r.returncode == 0 else [f"`{cmd}` exited with {r.returncode}" +
                                             (f": {r.stderr.strip().splitlines()[-1]}" if r.stderr.strip() else "")]
    return Outcome(_read_log(log.name), problems)


def _read_log(path: str) -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    finally:
        os.unlink(path)
    return [line.split(" ", 2)[2] for line in lines]


@dataclass
class Result:
    culprit: int | None            # the first bad step (1-based), None when there is none
    steps: list[str]
    first_bad: Outcome | None      # the run at the culprit's limit
    tried: list[tuple[int | None, bool]]   # (limit, bad) of every run, in order
    note: str = ""


def bisect_script(script: str, args: list[str] = (), check: str | None = None, interp: bool = True,
                  rtol: float = 1e-4, atol: float = 1e-5, echo=None) -> Result:
    """Find the first opt-bisect step that makes a run of `script` (and/or `check`) bad."""
    tried: list[tuple[int | None, bool]] = []

    def run(limit: int | None) -> Outcome:
        outs = []
        if interp:
            outs.append(run_in_process(script, list(args), limit, rtol, atol, quiet=echo is None))
        if check:
            outs.append(run_command(check, limit))
        o = Outcome(max((x.steps for x in outs), key=len), [p for x in outs for p in x.problems],
                    sum(x.compared for x in outs))
        tried.append((limit, o.bad))
        if echo:
            echo(f"limit {'none' if limit is None else limit}: {len(o.steps)} steps, "
                 f"{'BAD: ' + o.problems[0] if o.bad else 'good'}")
        return o
    full = run(None)
    steps = full.steps
    if not full.bad:
        return Result(None, steps, None, tried, f"every one of the {len(steps)} steps applied gives good results"
                      + ("" if full.compared or check else " (no executable was compared: nothing compiled?)"))
    zero = run(0)
    if zero.bad:
        return Result(None, steps, zero, tried, "the results are bad even with every step skipped: "
                      "not a pass (the backend, the interpreter or the check itself)")
    lo, hi, bad_at_hi = 0, len(steps), full       # run(lo) good, run(hi) bad
    while hi - lo > 1:
        mid = (lo + hi) // 2
        o = run(mid)
        if o.bad:
            hi, bad_at_hi = mid, o
        else:
            lo = mid
    return Result(hi, steps, bad_at_hi, tried)


def report(r: Result) -> str:
    if r.culprit is None:
        return "sporeflow-ir bisect: " + r.note + (f"\n  {r.first_bad.problems[0]}" if r.first_bad else "")
    lines = [f"sporeflow-ir bisect: the first bad step is {r.culprit} of {len(r.steps)}: {r.steps[r.culprit - 1]}",
             f"  with it: {r.first_bad.problems[0]}" if r.first_bad and r.first_bad.problems else "",
             f"  reproduce: SPOREFLOW_OPT_BISECT_LIMIT={r.culprit} (good at {r.culprit - 1}), "
             f"SPOREFLOW_OPT_BISECT_LOG=FILE lists the steps",
             f"  {len(r.tried)} runs"]
    return "\n".join(x for x in lines if x)
