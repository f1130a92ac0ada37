#!/usr/bin/env python3
"""Print the primitive x rule coverage table and exit non-zero when a primitive lacks `infer` or
`impl` (the rules every op must have). Other columns are informative:

  vjp/jvp/batch  yes | nd (not differentiable) | -      kind  fusion class     amp  policy
  lower[llvm], lower[cuda]  yes | -   (read from each backend's table, LOWERINGS)

    python3 tools/op_coverage.py [--markdown] [--strict COLUMN ...]

--strict COLUMN also fails when a primitive lacks that column (e.g. --strict vjp batch).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COLUMNS = ("infer", "impl", "vjp", "jvp", "batch", "kind", "amp", "lower[llvm]", "lower[cuda]")
REQUIRED = ("infer", "impl")


def coverage() -> dict[str, dict[str, str]]:
    """op -> column -> cell text ("-" where missing)."""
    import sporeflow  # noqa: F401  (registers the primitives and the backends)
    from sporeflow.backends.cuda import LOWERINGS as CUDA
    from sporeflow.backends.llvm import LOWERINGS as LLVM
    from sporeflow.ir.registry import NOT_DIFFERENTIABLE, REGISTRY

    def rule(v) -> str:
        if v is NOT_DIFFERENTIABLE:
            return "nd"
        return "yes" if v is not None else "-"

    table = {}
    for name in sorted(REGISTRY):
        op = REGISTRY[name]
        table[name] = {
            "infer": "yes" if callable(op.infer) else "-", "impl": "yes" if callable(op.impl) else "-",
            "vjp": rule(op.vjp), "jvp": rule(op.jvp), "batch": rule(op.batch),
            "kind": op.kind.name.lower() if op.kind is not None else "-", "amp": op.amp or "-",
            "lower[llvm]": "yes" if name in LLVM else "-",
            "lower[cuda]": "yes" if name in CUDA else "-",
        }
    return table


def render(table: dict, markdown: bool = False) -> str:
    head = ("op",) + COLUMNS
    rows = [(name,) + tuple(cells[c] for c in COLUMNS) for name, cells in table.items()]
    counts = ("total",) + tuple(f"{sum(cells[c] not in ('-',) for cells in table.values())}/{len(table)}"
                                for c in COLUMNS)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows + [counts]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, counts] + rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows] + [fmt(counts)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--strict", nargs="*", default=[], choices=COLUMNS, help="also require these columns")
    args = ap.parse_args(argv)
    table = coverage()
    print(render(table, args.markdown))
    missing = [(name, c) for name, cells in table.items() for c in REQUIRED + tuple(args.strict) if cells[c] == "-"]
    if missing:
        print("\nmissing: " + ", ".join(f"{n}.{c}" for n, c in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
