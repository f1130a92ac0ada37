"""ProgressBar: a live per-epoch bar (step, loss, steps/s, ETA), beyond MindSpore.

On a terminal the bar redraws in place with '\\r'; otherwise (a log file, CI, a pipe) it prints a
plain line every `print_every` steps and one at the end of each epoch, so logs stay readable.
"""
from __future__ import annotations

import sys
import time

from .callbacks import Callback, loss_value


def _fmt_time(s: float) -> str:
    s = max(int(round(s)), 0)
    return f"{s // 60:d}:{s % 60:02d}"


class ProgressBar(Callback):
    def __init__(self, width: int = 30, stream=None, print_every: int | None = None, live: bool | None = None):
        if width < 5:
            raise ValueError("ProgressBar: width must be >= 5")
        self.width = width
        self.stream = stream
        self.live = live
        self.print_every = print_every

    def _out(self):
        return self.stream or sys.stdout

    def _is_live(self) -> bool:
        if self.live is not None:
            return self.live
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    def on_train_epoch_begin(self, run_context):
        cb = run_context.original_args()
        self._t0 = time.perf_counter()
        self._n = 0
        self._total = cb.batch_num
        self._epoch = cb.cur_epoch_num
        self._epochs = cb.get("epoch_num", 0) + cb.get("initial_epoch", 0)
        self._every = self.print_every or max(self._total // 4, 1)

    def _line(self, loss: float, final: bool) -> str:
        dt = time.perf_counter() - self._t0
        rate = self._n / dt if dt > 0 else 0.0
        frac = self._n / self._total if self._total else 1.0
        filled = int(round(frac * self.width))
        bar = "=" * max(filled - 1, 0) + (">" if 0 < filled < self.width else "=" if filled else "") + \
            "." * (self.width - filled)
        tail = f"{_fmt_time(dt)} total" if final else f"ETA {_fmt_time((self._total - self._n) / rate if rate else 0)}"
        return (f"epoch {self._epoch}/{self._epochs} [{bar}] {self._n}/{self._total} "
                f"loss: {loss:.4f} {rate:.1f} steps/s {tail}")

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        self._n += 1
        self._loss = loss_value(cb.net_outputs)
        out = self._out()
        if self._is_live():
            out.write("\r" + self._line(self._loss, False))
            out.flush()
        elif self._n % self._every == 0 and self._n != self._total:
            print(self._line(self._loss, False), file=out, flush=True)

    def on_train_epoch_end(self, run_context):
        if not getattr(self, "_n", 0):
            return
        cb = run_context.original_args()
        line = self._line(self._loss, True)
        metrics = cb.get("metrics")
        if metrics:
            line += " - " + ", ".join(f"{k}: {float(v):.4f}" if _is_num(v) else f"{k}: {v}" for k, v in metrics.items())
        out = self._out()
        if self._is_live():
            out.write("\r" + line + "\n")
            out.flush()
        else:
            print(line, file=out, flush=True)


def _is_num(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
