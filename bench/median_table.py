"""The README's benchmark table from several `bench/run.py --json` files: the median time per
workload and framework, and for each peer the median of the per-run ratios peer / sporeflow with
their range (one machine is noisy; a ratio taken inside one run cancels most of its drift).

    python3 bench/median_table.py run1.json run2.json run3.json ...
"""
from __future__ import annotations

import json
import statistics
import sys

PEERS = ("numpy", "jax", "torch")


def _load(paths: list[str]) -> list[dict[tuple[str, str], float]]:
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append({(r["workload"], r["framework"]): r["ms"] for r in json.load(f)})
    return runs


def _fmt_time(ms: float, workload: str) -> str:
    return f"{ms / 1000:.3f} s" if workload.startswith("compile") else f"{ms:.2f} ms"


def table(paths: list[str]) -> str:
    runs = _load(paths)
    workloads = list(dict.fromkeys(w for run in runs for (w, _) in run))
    lines = ["| workload | sporeflow | " + " | ".join(PEERS) + " |", "|---|---|" + "---|" * len(PEERS)]
    for w in workloads:
        own = [run[(w, "sporeflow")] for run in runs if (w, "sporeflow") in run]
        if not own:
            continue
        cells = [_fmt_time(statistics.median(own), w)]
        for peer in PEERS:
            pairs = [(run[(w, peer)], run[(w, "sporeflow")]) for run in runs
                     if (w, peer) in run and (w, "sporeflow") in run]
            if not pairs:
                cells.append("")
                continue
            ratios = [p / s for p, s in pairs]
            cells.append(f"{_fmt_time(statistics.median(p for p, _ in pairs), w)} "
                         f"**×{statistics.median(ratios):.2f}** ({min(ratios):.2f}-{max(ratios):.2f})")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(f"medians of {len(sys.argv) - 1} runs")
    print(table(sys.argv[1:]))
