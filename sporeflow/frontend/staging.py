"""Data sinking: a background thread stages the next sink's batches while the current one runs.

The thread pulls rows (the dataset's own map/batch work runs there), stacks each run of
equally-shaped rows into one buffer per column (the scanned input of a sunk step), moves the
buffers to the device when Tensors live on one, and hands them over through a one-deep queue.
An error raised while staging is re-raised in the caller with the thread's traceback.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator, Sequence

import numpy as np

from . import placement
from .tensor import Tensor

_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def stack_rows(rows: Sequence[tuple], device=None) -> list[list[Tensor]]:
    """Rows (tuples of Tensors) -> segments: each run of rows with the same column types becomes
    one list of stacked Tensors (leading axis = number of rows)."""
    segments: list[list[Tensor]] = []
    start = 0
    sig = lambda r: tuple((x.dtype, tuple(x.shape)) for x in r)  # noqa: E731
    for k in range(1, len(rows) + 1):
        if k == len(rows) or sig(rows[k]) != sig(rows[start]):
            cols = []
            for c, x0 in enumerate(rows[start]):
                arr = np.stack([placement.to_host(r[c]._data) for r in rows[start:k]])
                if device is not None:
                    arr = device.upload(arr)
                cols.append(Tensor._wrap(arr, x0.dtype))
            segments.append(cols)
            start = k
    return segments


class Stager:
    """Runs `sinks` (an iterator of row lists, one list per sink) on a daemon thread, one sink
    ahead of the consumer. `next()` returns the next sink's segments, or None at the end."""

    def __init__(self, sinks: Iterator[list[tuple]], device=None, depth: int = 1):
        self._sinks = sinks
        self._device = device
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sporeflow-sink-staging", daemon=True)
        self._done = False
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for rows in self._sinks:
                if self._stop.is_set():
                    return
                if not self._put(stack_rows(rows, self._device)):
                    return
            self._put(_END)
        except BaseException as e:   # noqa: BLE001  (handed to the consumer, raised there)
            self._put(_Failed(e))

    def next(self) -> list[list[Tensor]] | None:
        if self._done:
            return None
        item = self._queue.get()
        if item is _END:
            self._done = True
            return None
        if isinstance(item, _Failed):
            self._done = True
            e = item.exc
            e.add_note("(raised in sporeflow's dataset staging thread while preparing the next sink's batches; "
                       "the traceback above is that thread's)")
            raise e
        return item

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)

    def __enter__(self) -> "Stager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
