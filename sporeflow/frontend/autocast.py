"""Calling a Cell whose compute dtype was changed (`Cell.to_float`, `amp.auto_mixed_precision`).

Like the other transforms, the outermost such Cell is traced into a graph of its own, the `amp`
pass (`passes/amp.py`) rewrites it with a plan built from the marks of the Cell and its
sub-Cells, and the result is inlined into whatever is being traced (or run at once eagerly).
So `grad`/`value_and_grad` around the network differentiate the rewritten forward: the backward
runs in the same precision, and the Parameters stay float32 masters (the cast's gradient casts
back). With save_graphs on, the pass writes `amp_<scope>/00_trace.ir` and `01_amp.ir`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..context import get_context
from ..ir import dtypes as D
from ..passes.amp import MODES, AmpPlan, amp_pass
from ..passes.manager import PassManager
from ..core.trace import current_trace
from .transforms import _apply_updates, _rebuild_outputs, _run, _trace


@dataclass(frozen=True)
class CellAmp:
    """How a Cell computes: a mode of passes.amp, the low dtype, op lists, and whether its outputs
    stay in low precision (to_float) or go back to their traced dtype (auto_mixed_precision)."""
    mode: str
    dtype: D.DType = D.float16
    white_ops: frozenset = frozenset()
    black_ops: frozenset = frozenset()
    low_outputs: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mixed precision mode must be one of {MODES}, got {self.mode!r}")


def amp_mark(cell) -> CellAmp | None:
    return cell.__dict__.get("_amp")


def set_amp_mark(cell, mark: CellAmp | None) -> None:
    object.__setattr__(cell, "_amp", mark)


def needs_amp_call(cell) -> bool:
    """The Cell has a mark and no enclosing Cell's amp call already covers it."""
    if amp_mark(cell) is None:
        return False
    tr = current_trace()
    return tr is None or not tr.in_amp


def amp_call(cell, scope: str, args: tuple, kwargs: dict):
    """cell(*args, **kwargs) with the amp pass applied to what it computes."""
    root = amp_mark(cell)
    rules, white, black = [], set(), set()
    for path, sub in cell.cells_and_names():
        m = amp_mark(sub)
        if m is not None:
            rules.append((f"{scope}.{path}" if path else scope, m.mode))
            white |= m.white_ops
            black |= m.black_ops

    def body(*a):
        current_trace().in_amp = True
        return cell(*a, **kwargs)

    t = _trace(body, args, type(cell).__name__)
    plan = AmpPlan(root.dtype, tuple(rules), frozenset(white), frozenset(black), t.n_out if root.low_outputs else 0)
    dump = os.path.join(get_context("save_graphs_path"), f"amp_{scope}") if get_context("save_graphs") else None
    graph = PassManager([amp_pass(plan)], dump_dir=dump).run(t.graph)
    outs = _run(t, graph, [])
    _apply_updates(t, outs[t.n_out:])
    return _rebuild_outputs(t, outs[:t.n_out])
