"""Loop sinking of a jitted step: `k` steps in one compiled call, and `sf.data_sink`.

`SunkStep(jit_fn)(stacked)` traces the step once for one step's input types, runs the
backend's pipeline on the step graph, wraps it in a scan over the stacked inputs
(passes/sink.py) and compiles that, with each updated Parameter donated as in a plain jit
call: the parameters are updated in place, and the results of every step come back stacked.
One compiled graph per (step signature, number of steps).

While a sunk call runs, Ctrl-C is held back until its parameter updates are written, so an
interrupt leaves the parameters at the end of the last completed sink (checkpointable).
"""
from __future__ import annotations

import signal
import threading
import time
import weakref
from typing import Any, Callable, Iterator

from ..backends import get_backend
from ..context import default_backend
from ..ir.graph import Graph, Value
from ..passes import prepare_for_backend
from ..passes.sink import sink_graph
from .jit import Compiled, JitFunction, Traced, save_graph
from .pytree import tree_flatten, tree_unflatten
from .tensor import Tensor
from . import placement
from .staging import Stager


def lower_sunk(traced: Traced, length: int, backend: str | None = None) -> Compiled:
    """Compile `length` steps of `traced` as one scan (see module doc)."""
    name = backend or traced.backend or default_backend()
    t0 = time.perf_counter()
    g = prepare_for_backend(traced.graph, name, **traced.passes)   # the jit's pipeline/disabled/opt_level
    n_data = len(g.inputs) - len(traced.captured)
    captured = list(traced.captured)
    extra = [p for p in traced.updated if all(p is not c for c in captured)]
    if extra:   # assigned without being read: the scan still needs its value to carry
        g = Graph(g.name, g.inputs + [Value(p._type, p.name) for p in extra], g.nodes, g.outputs)
        captured += extra
    pos = {id(p): n_data + i for i, p in enumerate(captured)}
    updates = [(traced.n_outputs + k, pos[id(p)]) for k, p in enumerate(traced.updated)]
    sg = sink_graph(g, n_data, updates, length)
    save_graph(sg, f"sink{length}_{name}")
    sunk = Traced(sg, captured, traced.updated, traced.in_tree, traced.dyn_mask, traced.out_tree,
                  traced.out_static, traced.n_outputs, traced.trace_seconds, name, traced.passes)
    be = get_backend(name)
    if getattr(be, "supports_donation", False):
        exe = be.compile(sg, donate=tuple(sunk.donation()))
    else:
        exe = be.compile(sg)
    return Compiled(sunk, exe, time.perf_counter() - t0)


class _HeldInterrupt:
    """Defer SIGINT while a sunk call and its write-back run (main thread only)."""

    def __enter__(self):
        self.hit = False
        self.old = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.old = signal.signal(signal.SIGINT, self._note)
            except ValueError:
                self.old = None
        return self

    def _note(self, signum, frame) -> None:
        self.hit = True

    def __exit__(self, *exc) -> bool:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        if self.hit and exc[0] is None:
            raise KeyboardInterrupt
        return False


class SunkStep:
    """`k` calls of a JitFunction as one compiled scan (module doc)."""

    def __init__(self, step: JitFunction):
        self.step = step
        self._cache: dict[tuple, Compiled] = {}

    def compiled_for(self, stacked: list[Tensor], td) -> Compiled:
        length = int(stacked[0].shape[0])
        rows = [Tensor._wrap(placement.to_host(x._data)[0], x.dtype) for x in stacked]
        key = (self.step._key(rows, td).as_tuple(), length)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = lower_sunk(self.step._trace(rows, td), length, self.step.backend)
        return hit

    def __call__(self, stacked: list[Tensor]) -> Any:
        """`stacked`: one Tensor per step argument, with a leading axis of the step count.
        Returns the step's outputs, each stacked over the steps."""
        _, td = tree_flatten((tuple(stacked), {}))
        compiled = self.compiled_for(stacked, td)
        with _HeldInterrupt():
            return compiled(list(stacked))

    def cache_size(self) -> int:
        return len(self._cache)


def last_step(out: Any) -> Any:
    """The last step's value of each stacked output."""
    leaves, td = tree_flatten(out)
    return tree_unflatten(td, [Tensor._wrap(x._data[-1], x.dtype) if isinstance(x, Tensor) else x for x in leaves])


def dataset_rows(dataset) -> Iterator[tuple]:
    """One pass over `dataset` (a sporeflow/MindSpore-style dataset or any iterable of rows)
    as tuples of Tensors."""
    it = dataset.create_tuple_iterator(num_epochs=1) if hasattr(dataset, "create_tuple_iterator") else iter(dataset)
    for row in it:
        if isinstance(row, dict):
            row = tuple(row.values())
        elif not isinstance(row, (tuple, list)):
            row = (row,)
        yield tuple(x if isinstance(x, Tensor) else Tensor(x) for x in row)


def repeated_rows(dataset, start_pass: int = 0, skip: int = 0) -> Iterator[tuple]:
    """The dataset repeated without end (pass p sees set_epoch(p) when the dataset has it),
    starting `skip` rows into pass `start_pass`."""
    p = start_pass
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(p)
        n = 0
        for row in dataset_rows(dataset):
            n += 1
            if skip:
                skip -= 1
                continue
            yield row
        if n == 0:
            raise ValueError(f"data sinking: the dataset ({type(dataset).__name__}) is empty")
        p += 1


def chunks(rows: Iterator[tuple], size: int, count: int | None = None) -> Iterator[list[tuple]]:
    """`count` (None: unlimited) lists of `size` consecutive rows."""
    made = 0
    while count is None or made < count:
        chunk = [next(rows) for _ in range(size)]
        made += 1
        yield chunk


def data_sink(fn: Callable, dataset, sink_size: int = 1, jit_config=None, input_signature=None) -> Callable:
    """ms.data_sink: each call of the result runs `fn` on the next `sink_size` batches of
    `dataset` (continuing through it, epoch after epoch) as ONE compiled scan, with the batches
    staged by a background thread, and returns the last step's result. Unlike MindSpore on
    CPU, this sinks for real on every backend. `jit_config`/`input_signature` are accepted
    (the step is always compiled)."""
    if isinstance(sink_size, bool) or not isinstance(sink_size, int) or sink_size < 1:
        raise ValueError(f"data_sink: sink_size must be a positive int, got {sink_size!r}")
    step = fn if isinstance(fn, JitFunction) else JitFunction(fn, name=getattr(fn, "__name__", None))
    sunk = SunkStep(step)
    state: dict = {}

    def sink_process(*args, **kwargs):
        if args or kwargs:
            raise TypeError("data_sink: the returned function takes no arguments; the dataset supplies fn's inputs")
        stager = state.get("stager")
        if stager is None:
            stager = state["stager"] = Stager(chunks(repeated_rows(dataset), sink_size), placement.current_device())
            weakref.finalize(sink_process, stager.close)   # the staging thread ends with the function
        out = None
        for segment in stager.next():
            out = sunk(segment)
        return last_step(out)
    sink_process.__name__ = getattr(fn, "__name__", "data_sink")
    sink_process.sunk = sunk
    return sink_process


__all__ = ["SunkStep", "lower_sunk", "data_sink", "last_step", "dataset_rows", "repeated_rows", "chunks"]
