"""Training summaries a user can plot: `SummaryCollector` (a callback) and `SummaryRecord`.

MindSpore writes MindInsight's binary event files; sporeflow writes the same scalars (loss,
learning rate, eval metrics, and whatever `SummaryRecord.add_value("scalar", ...)` adds) as one
CSV per run, `summary_dir/summary.<time>.<pid>.csv`, columns `step,epoch,tag,value,wall_time`,
flushed after every row so a crashed run keeps what it logged. `plot_summary` (and the
`sporeflow-summary plot DIR -o loss.png` command) draws the curves with matplotlib.

Only scalars are collected: graph, histogram, tensor, image, lineage and landscape collection
(MindInsight features) raise NotImplementedError when asked for explicitly.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import time
from typing import Iterable

import numpy as np

from .callbacks import Callback, loss_value

_SCALAR_KEYS = {"collect_metric"}
_UNSUPPORTED_KEYS = {"collect_graph", "collect_train_lineage", "collect_eval_lineage", "collect_input_data",
                     "collect_dataset_graph", "histogram_regular", "collect_landscape"}
FIELDS = ("step", "epoch", "tag", "value", "wall_time")


class _CsvLog:
    """One CSV file of scalar rows, opened lazily, flushed per row."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"summary.{int(time.time())}.{os.getpid()}.csv")
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(FIELDS)
        self._file.flush()

    def write(self, step: int, epoch: int, tag: str, value: float) -> None:
        self._writer.writerow((int(step), int(epoch), tag, repr(float(value)), f"{time.time():.3f}"))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _scalar(value) -> float:
    if hasattr(value, "asnumpy"):
        value = value.asnumpy()
    a = np.asarray(value, dtype=np.float64)
    if a.size != 1:
        raise ValueError(f"a summary scalar must have one element, got shape {a.shape}")
    return float(a.reshape(()))


class SummaryRecord:
    """MindSpore's SummaryRecord, scalars only: add_value("scalar", tag, value), then record(step)."""

    def __init__(self, log_dir: str, file_prefix: str = "events", file_suffix: str = "_MS", network=None,
                 max_file_size=None, raise_exception: bool = False, export_options=None):
        self._log = _CsvLog(os.fspath(log_dir))
        self._pending: list[tuple[str, float]] = []
        self.log_dir = os.fspath(log_dir)

    @property
    def path(self) -> str:
        return self._log.path

    def add_value(self, plugin: str, name: str, value) -> None:
        if plugin != "scalar":
            raise NotImplementedError(f"SummaryRecord.add_value: only 'scalar' values are supported by sporeflow, "
                                      f"got plugin {plugin!r} (MindInsight's {plugin} view has no sporeflow writer)")
        self._pending.append((str(name), _scalar(value)))

    def record(self, step: int, train_network=None, plugin_filter=None, epoch: int = 0) -> bool:
        for tag, v in self._pending:
            self._log.write(step, epoch, tag, v)
        self._pending.clear()
        return True

    def flush(self) -> None:
        self._log._file.flush()

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> "SummaryRecord":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SummaryCollector(Callback):
    """Logs the loss every `collect_freq` steps, the learning rate with it, and eval metrics at
    each epoch end (Model.fit / train with a valid dataset) to a CSV under `summary_dir`."""

    def __init__(self, summary_dir: str, collect_freq: int = 10, num_process: int = 32,
                 collect_specified_data: dict | None = None, keep_default_action: bool = True,
                 custom_lineage_data=None, collect_tensor_freq=None, max_file_size=None, export_options=None):
        if isinstance(collect_freq, bool) or not isinstance(collect_freq, int) or collect_freq < 1:
            raise ValueError(f"SummaryCollector: collect_freq must be a positive int, got {collect_freq!r}")
        spec = dict(collect_specified_data or {})
        unknown = set(spec) - _SCALAR_KEYS - _UNSUPPORTED_KEYS
        if unknown:
            raise ValueError(f"SummaryCollector: unknown collect_specified_data keys {sorted(unknown)}")
        asked = sorted(k for k in _UNSUPPORTED_KEYS if spec.get(k))
        if asked or custom_lineage_data or collect_tensor_freq:
            raise NotImplementedError(f"SummaryCollector: sporeflow collects scalars only (loss, learning rate, "
                                      f"metrics); {asked or 'lineage/tensor collection'} is not supported; pass "
                                      "collect_specified_data={'collect_metric': True}")
        self.summary_dir, self.collect_freq = os.fspath(summary_dir), collect_freq
        self._metrics = spec.get("collect_metric", True)
        self._log: _CsvLog | None = None

    @property
    def path(self) -> str | None:
        return self._log.path if self._log else None

    def on_train_begin(self, run_context):
        if self._log is None:
            self._log = _CsvLog(self.summary_dir)

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        if not self._metrics or (cb.cur_step_num - 1) % self.collect_freq:
            return
        self._log.write(cb.cur_step_num, cb.cur_epoch_num, "loss", loss_value(cb.net_outputs))
        lr = self._learning_rate(cb)
        if lr is not None:
            self._log.write(cb.cur_step_num, cb.cur_epoch_num, "learning_rate", lr)

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        for name, value in (cb.get("eval_results") or {}).items():
            try:
                self._log.write(cb.cur_step_num, cb.cur_epoch_num, f"eval/{name}", _scalar(value))
            except (TypeError, ValueError):
                continue  # a non-scalar metric (a confusion matrix, say) has no curve to draw

    def on_train_end(self, run_context):
        if self._log is not None:
            self._log.close()

    @staticmethod
    def _learning_rate(cb) -> float | None:
        opt = cb.get("optimizer")
        if opt is None or not hasattr(opt, "get_lr") or getattr(opt, "is_group_lr", False):
            return None
        return _scalar(opt.get_lr())


def read_summary(summary_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{tag: (steps, values)} from every summary CSV in `summary_dir` (oldest file first)."""
    out: dict[str, tuple[list, list]] = {}
    files = sorted(glob.glob(os.path.join(os.fspath(summary_dir), "summary.*.csv")), key=os.path.getmtime)
    if not files:
        raise FileNotFoundError(f"no summary.*.csv files in '{summary_dir}'")
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                steps, values = out.setdefault(row["tag"], ([], []))
                steps.append(int(row["step"]))
                values.append(float(row["value"]))
    return {t: (np.asarray(s), np.asarray(v)) for t, (s, v) in out.items()}


def plot_summary(summary_dir: str, out_png: str, tags: Iterable[str] | None = None) -> str:
    """Draw each tag's curve (loss by default, else every tag) into one PNG; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # optional dependency, not a cycle
        raise ImportError("plotting a summary needs matplotlib: pip install 'sporeflow[plot]'") from None
    data = read_summary(summary_dir)
    wanted = list(tags) if tags else (["loss"] if "loss" in data else sorted(data))
    missing = [t for t in wanted if t not in data]
    if missing:
        raise ValueError(f"tags {missing} are not in the summary (it has {sorted(data)})")
    fig, axes = plt.subplots(len(wanted), 1, figsize=(6, 2.6 * len(wanted)), squeeze=False)
    for ax, tag in zip(axes[:, 0], wanted):
        steps, values = data[tag]
        ax.plot(steps, values, marker="." if len(steps) < 50 else None)
        ax.set_xlabel("step")
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sporeflow-summary", description="Read and plot SummaryCollector logs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plot", help="draw the loss (or --tags) curve to a PNG")
    p.add_argument("summary_dir")
    p.add_argument("-o", "--out", default="summary.png")
    p.add_argument("--tags", default=None, help="comma-separated tags (default: loss)")
    s = sub.add_parser("show", help="print the last value of every tag")
    s.add_argument("summary_dir")
    args = parser.parse_args(argv)
    if args.cmd == "plot":
        print(plot_summary(args.summary_dir, args.out, args.tags.split(",") if args.tags else None))
    else:
        for tag, (steps, values) in sorted(read_summary(args.summary_dir).items()):
            print(f"{tag}: {len(steps)} points, last {values[-1]:.6g} at step {steps[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
