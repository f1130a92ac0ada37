"""Data-parallel step rate on this machine: one process, two processes with blocking all-reduces, two
with the overlapped start/wait schedule, and the overlapped one with MPICH's asynchronous progress
thread (without it, MPICH advances a started reduction only inside MPI calls).

    python bench/bench_dp_overlap.py [--repeats 5] [--steps 200] [--bucket-mb 0.05]

Each configuration runs examples/train_digits_dp.py in a fresh launch; the configurations alternate
within each repeat so that the machine's drift hits them alike. Prints the median steps/s and the
collectives' share of step time of each, and the ratios to the blocking run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "train_digits_dp.py")
RESULT = re.compile(r"([\d.]+) steps/s after the first, collectives (\d+)% of step time")

# name -> (processes, extra example arguments, extra environment)
CONFIGS: dict[str, tuple[int, list[str], dict[str, str]]] = {
    "1 process": (1, [], {}),
    "2 blocking": (2, ["--no-overlap"], {}),
    "2 overlapped": (2, [], {}),
    "2 overlapped + async progress": (2, [], {"MPICH_ASYNC_PROGRESS": "1"}),
}


def run_once(processes: int, extra: list[str], env_extra: dict[str, str], steps: int,
             bucket_mb: float) -> tuple[float, float]:
    """(steps/s, collective share) of one launch, read from rank 0's summary line."""
    args = [sys.executable, EXAMPLE, "--steps", str(steps), "--bucket-mb", str(bucket_mb), *extra]
    if processes > 1:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun is None:
            raise SystemExit("no mpirun on PATH: pip install -e '.[dist]' installs mpi4py and an MPI wheel")
        args = [mpirun, "-n", str(processes), *args]
    env = {**os.environ, **env_extra}
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=False)
    match = RESULT.search(out.stdout)
    if out.returncode or match is None:
        raise SystemExit(f"{' '.join(args)} failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return float(match.group(1)), int(match.group(2)) / 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--bucket-mb", type=float, default=0.05)
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    for r in range(args.repeats):
        for name, (n, extra, env) in CONFIGS.items():
            results[name].append(run_once(n, extra, env, args.steps, args.bucket_mb))
            print(f"  repeat {r + 1}: {name}: {results[name][-1][0]:.1f} steps/s", file=sys.stderr)
    blocking = statistics.median(s for s, _ in results["2 blocking"])
    print(f"digits CNN data parallel, {args.steps} steps, global batch 64, buckets of {args.bucket_mb} MB, "
          f"{os.cpu_count()} cores, medians of {args.repeats} alternated launches")
    print(f"{'configuration':32s} {'steps/s':>9s} {'collectives':>12s} {'vs blocking':>12s}")
    for name, runs in results.items():
        rate = statistics.median(s for s, _ in runs)
        share = statistics.median(c for _, c in runs)
        print(f"{name:32s} {rate:9.1f} {100 * share:11.0f}% {rate / blocking:11.2f}x")


if __name__ == "__main__":
    main()
