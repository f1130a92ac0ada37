"""Iterators over a dataset, fed by a background thread that prefetches rows into a bounded queue.

The thread runs the whole pipeline (sources, maps, batching) epoch after epoch and may run
ahead of the consumer by `config.get_prefetch_size()` items, across epoch boundaries too.
- An exception in the pipeline is re-raised in the consumer: the original exception object,
  message and type, with the producer's traceback (and, for user code in map, a note naming
  the row and columns).
- Stopping early (break, or dropping the iterator) never hangs: the thread only blocks on the
  queue with a timeout and watches a stop event, set by stop() or when the iterator is
  garbage-collected (the thread holds no reference to the iterator, so it can be collected).
- Epoch indices are claimed when the consumer starts an epoch, not when the producer prefetches
  it, so the data order does not depend on thread timing.
"""
from __future__ import annotations

import queue
import threading
import weakref

import numpy as np

from ...errors import DatasetError
from ...ir import dtypes as D
from . import config
from ...frontend.tensor import Tensor

_EPOCH_END = object()
_DONE = object()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


def _produce(dataset, base: int, num_epochs: int, seed: int, q: queue.Queue, stop: threading.Event) -> None:
    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    try:
        e = 0
        while num_epochs < 0 or e < num_epochs:
            gen = dataset._rows(base + e, seed)
            try:
                for row in gen:
                    if not put(row):
                        return
            finally:
                gen.close()
            if not put(_EPOCH_END):
                return
            e += 1
        put(_DONE)
    except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which re-raises it)
        put(_Failure(exc))


def _shutdown(stop: threading.Event, q: queue.Queue) -> None:
    stop.set()
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


_NATIVE = {np.dtype(d.storage): d for d in D.ALL_DTYPES if d is not D.bfloat16}


def _to_tensor(a: np.ndarray, column: str):
    if a.dtype.kind in "USO":
        return a  # strings stay numpy arrays (sporeflow tensors are numeric)
    dt = _NATIVE.get(a.dtype)
    if dt is not None and a.flags.c_contiguous and a.flags.owndata and a.flags.writeable:
        return Tensor._wrap(a, dt)
    try:
        return Tensor(a)
    except TypeError as e:
        raise DatasetError(f"column '{column}' has numpy dtype {a.dtype}, which has no sporeflow tensor type ({e}); "
                           "add a map with transforms.TypeCast") from None


class PipelineIterator:
    """Yields one epoch per `for` loop: lists of Tensors (tuple iterator) or dicts (dict
    iterator); numpy arrays with output_numpy=True."""

    def __init__(self, dataset, columns, num_epochs: int, output_numpy: bool, as_dict: bool):
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or (num_epochs < 1 and num_epochs != -1):
            raise ValueError(f"num_epochs must be a positive int or -1, got {num_epochs!r}")
        names = dataset.get_col_names()
        for c in columns or ():
            if c not in names:
                raise ValueError(f"create_tuple_iterator: column '{c}' is not a column of the dataset; columns: {names}")
        self._names = list(columns) if columns else names
        self._idx = [names.index(c) for c in self._names]
        self._dataset = dataset
        self._num_epochs = num_epochs
        self._output_numpy = bool(output_numpy)
        self._as_dict = as_dict
        self._base = dataset._next_epoch
        self._epoch = 0
        self._in_epoch = False
        self._done = False
        self._q: queue.Queue = queue.Queue(maxsize=config.get_prefetch_size())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, name="sporeflow-dataset-prefetch", daemon=True,
                                        args=(dataset, self._base, num_epochs, config.get_seed(), self._q, self._stop))
        self._finalizer = weakref.finalize(self, _shutdown, self._stop, self._q)
        self._thread.start()

    def __iter__(self):
        return self

    def _get(self):
        while True:
            try:
                return self._q.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    return _Failure(RuntimeError("the dataset prefetch thread ended without finishing its epoch"))

    def __next__(self):
        if self._done or (self._num_epochs > 0 and self._epoch >= self._num_epochs):
            raise StopIteration
        if not self._in_epoch:
            self._in_epoch = True
            self._dataset._next_epoch = max(self._dataset._next_epoch, self._base + self._epoch + 1)
        item = self._get()
        if item is _EPOCH_END:
            self._in_epoch = False
            self._epoch += 1
            raise StopIteration
        if item is _DONE:
            self._done = True
            self.stop()
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            self.stop()
            raise item.exc
        row = [item[i] for i in self._idx]
        if not self._output_numpy:
            row = [_to_tensor(a, n) for a, n in zip(row, self._names)]
        return dict(zip(self._names, row)) if self._as_dict else row

    def stop(self) -> None:
        """Stop the prefetch thread (also done when the iterator is garbage-collected)."""
        self._done = True
        self._finalizer()

    def get_col_names(self) -> list[str]:
        return list(self._names)
