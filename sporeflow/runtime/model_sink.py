"""Model's dataset sink mode: each "epoch" is one sink, run as ONE compiled scan.

MindSpore's contract (mindspore-api.md sections 1 and 9), here compiled for real on every
backend instead of silently falling back on CPU:
  * sink_size=k > 0: an epoch is k steps; the dataset repeats without end and the next epoch
    continues where the last stopped; total steps = epoch * k; batch_num = k.
  * sink_size=-1: an epoch is one pass over the dataset.
  * step_begin/step_end fire once per sink, cur_step_num advances by the sink's step count, and
    net_outputs is the last step's output (what LossMonitor prints).
The batches of the next sink are staged by a background thread (frontend/staging.py) while the
current sink runs. Consecutive batches of one shape form one scan; a shorter last batch is a
second, shorter scan in the same sink.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..frontend import placement
from ..frontend.pytree import tree_flatten
from ..frontend.sink import dataset_rows, last_step
from ..frontend.staging import Stager, stack_rows
from ..frontend.tensor import Tensor


def group_rows(rows: Iterator[tuple], n: int) -> Iterator[tuple]:
    """Concatenate each `n` consecutive rows along the batch axis (gradient accumulation: a
    step sees n dataset batches as its n micro-batches); a last incomplete group is dropped."""
    if n <= 1:
        yield from rows
        return
    buf: list[tuple] = []
    for row in rows:
        buf.append(row)
        if len(buf) == n:
            yield tuple(Tensor._wrap(np.concatenate([placement.to_host(r[c]._data) for r in buf]), x.dtype)
                        for c, x in enumerate(buf[0]))
            buf = []


class TrainSink:
    """The staged sinks of one Model.train/fit call, and running one of them."""

    def __init__(self, model, dataset, sink_size: int, epoch: int, initial_epoch: int, check):
        if isinstance(sink_size, bool) or not isinstance(sink_size, int) or sink_size == 0 or sink_size < -1:
            raise ValueError(f"Model.train: sink_size must be -1 (the whole dataset) or a positive int, got "
                             f"{sink_size!r}")
        self.model, self.dataset, self.check = model, dataset, check
        self.acc = model._grad_accumulation
        size = model._dataset_size(dataset) // self.acc
        self.sink_size = sink_size
        self.batch_num = sink_size if sink_size > 0 else size
        sinks = epoch - initial_epoch
        if sink_size > 0:
            start = initial_epoch * sink_size      # resuming continues the stream where it was
            gen = self._fixed(size, start, sinks)
        else:
            gen = self._passes(initial_epoch, epoch)
        self.stager = Stager(gen, placement.current_device())
        self.step = model._sunk(model._train_network)

    def _rows(self, epoch: int) -> Iterator[tuple]:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return group_rows((self.check(r) for r in dataset_rows(self.dataset)), self.acc)

    def _fixed(self, size: int, start: int, sinks: int) -> Iterator[list[tuple]]:
        if size == 0:
            raise ValueError("Model.train: the dataset is empty")
        p, skip = divmod(start, size)

        def stream():
            q, s = p, skip
            while True:
                for r in self._rows(q):
                    if s:
                        s -= 1
                        continue
                    yield r
                q += 1
        rows = stream()
        for _ in range(sinks):
            yield [next(rows) for _ in range(self.sink_size)]

    def _passes(self, first: int, last: int) -> Iterator[list[tuple]]:
        for e in range(first, last):
            yield list(self._rows(e))

    def run(self, cb) -> None:
        """Run the next sink: cb.net_outputs = the last step's output, cur_step_num += steps."""
        segments = self.stager.next()
        if segments is None:
            raise RuntimeError("Model.train: the dataset ran out of batches in sink mode")
        out = None
        for seg in segments:
            out = self.step(seg)
            n = int(seg[0].shape[0])
            cb.cur_step_num += n
            for t in range(n):     # the host side of loss scaling, per step as without sinking
                self.model._host_loss_scale(_step_of(out, t))
        cb.net_outputs = last_step(out)

    def close(self) -> None:
        self.stager.close()


def _step_of(out, t: int):
    if isinstance(out, tuple):
        return tuple(_step_of(o, t) for o in out)
    return Tensor._wrap(out._data[t], out.dtype) if isinstance(out, Tensor) else out


def eval_sink(model, dataset, check) -> tuple[list, int]:
    """The whole eval dataset as one sink: a list of per-step outputs and the step count."""
    step = model._sunk(model._eval_network)
    rows = [check(r) for r in dataset_rows(dataset)]
    outs: list = []
    for seg in stack_rows(rows, placement.current_device()):
        out = step(seg)
        outs.extend(_step_of(out, t) for t in range(int(seg[0].shape[0])))
    return outs, len(rows)


def precompile_sink(model, cell, row: tuple, length: int) -> None:
    """Compile the sunk graph of `cell` for `length` steps of rows like `row` (Model.build)."""
    stacked = [Tensor._wrap(np.stack([placement.to_host(x._data)] * length), x.dtype) for x in row]
    model._sunk(cell).compiled_for(stacked, tree_flatten((tuple(stacked), {}))[1])
