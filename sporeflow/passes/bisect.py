"""LLVM's opt-bisect counter: every pass run and every rewrite a pass would make asks `step`
first (so do fusion merges and the memory plan's in-place writes and buffer reuses); past
the limit the answer is no and the pass (or rewrite) is skipped. With the limit at N
exactly the first N steps apply, so the first N steps of two runs of one program are the same
and `sporeflow-ir bisect` can binary-search N for the first step that changes the results.

SPOREFLOW_OPT_BISECT_LIMIT=N (or set_bisect_limit(N)) sets the limit (unset: everything runs,
the counter still counts); SPOREFLOW_OPT_BISECT_LOG=FILE appends one line per step,
"N run|skip what". A module of its own, below the manager and the rewriters that consult it.
"""
from __future__ import annotations

import os


class _Bisect:
    def __init__(self) -> None:
        env = os.environ.get("SPOREFLOW_OPT_BISECT_LIMIT", "")
        self.limit: int | None = int(env) if env.strip() else None
        self.log_path: str | None = os.environ.get("SPOREFLOW_OPT_BISECT_LOG") or None
        self.count = 0

    def step(self, what: str) -> bool:
        self.count += 1
        ok = self.limit is None or self.count <= self.limit
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(f"{self.count} {'run' if ok else 'skip'} {what}\n")
        return ok


_BISECT = _Bisect()


def bisect_step(what: str) -> bool:
    """May the next pass run / rewrite `what` be applied? Passes call it once per rewrite they
    would make (e.g. "algebraic: mul (net.py:3)") and skip the rewrite on False."""
    return _BISECT.step(what)


def set_bisect_limit(limit: int | None, log_path: str | None = None) -> None:
    """Apply only the first `limit` bisect steps from now on (None: all); restarts the count."""
    _BISECT.limit, _BISECT.log_path, _BISECT.count = limit, log_path, 0


def bisect_count() -> int:
    """Steps asked since the last set_bisect_limit (or the start)."""
    return _BISECT.count
