"""`sf.jit`: trace once per signature, compile with a backend, run natively afterwards.

The cache key is built from named parts (argument structure, tensor types, static values,
captured parameter types, the Cells' train flags, the backend); when a call misses, the part
that differs from the closest cached entry is logged and kept in `last_retrace_reason`, as
JAX's explain-cache-misses does. The staged API `jit(f).trace(*args)` returns the graph.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..context import default_backend, get_auto_parallel_context, get_context
from ..errors import ShapeError, SporeflowError, TracerError
from ..ir import comm
from ..ir.graph import Graph
from ..core.source import api_boundary
from .autograph import convert
from .pytree import TreeDef, flatten_call, join_leaves, split_leaves, tree_flatten, tree_unflatten
from .tensor import Parameter, Tensor
from ..core.trace import Trace, current_trace
from ..backends import get_backend
from ..passes import prepare_for_backend
from ..passes.pipelines import resolve

log = logging.getLogger("sporeflow.jit")
RETRACE_WARNING = 10   # trace count at which a function gets one warning that it keeps retracing


def _is_dynamic(x) -> bool:
    return isinstance(x, (Tensor, np.ndarray))


# argument types flatten_call may take as leaves without walking them (none is a container)
_LEAF_TYPES = (Tensor, Parameter, np.ndarray, int, float, bool)


def _static_key(x):
    try:
        hash(x)
    except TypeError:
        raise SporeflowError(
            f"sf.jit: argument of type {type(x).__name__} is neither a Tensor nor hashable; pass tensors, "
            "Python scalars, strings or tuples of them") from None
    return (type(x).__name__, x)


@dataclass
class CacheKey:
    """Every part is a tuple of hashable values, not of strings: the key is built at every call
    (formatting the types cost a few µs per argument); `_describe_change` formats them."""
    structure: TreeDef
    types: tuple        # (position, TensorType) of a Tensor, (position, dtype, shape) of an array
    static: tuple
    modes: tuple
    params: tuple       # (name, type) of every Parameter of the Cells involved
    param_ids: tuple    # their identities: a replaced Parameter object means a new graph
    backend: str

    def parts(self) -> dict:
        return {"argument structure": self.structure, "tensor types": self.types, "static values": self.static,
                "train flags": self.modes, "parameter types": self.params, "parameter objects": self.param_ids,
                "backend": self.backend}

    def as_tuple(self) -> tuple:
        return tuple(self.parts().values())


def _show_type(entry: tuple) -> str:
    """'#0 f32[2,3]' for a Tensor argument, '#0 float32[2, 3]' for a numpy array."""
    if len(entry) == 2:
        return f"#{entry[0]} {entry[1]}"
    return f"#{entry[0]} {entry[1]}{list(entry[2])}"


_SHOW_ENTRY: dict[str, Callable[[Any], str]] = {"tensor types": _show_type,
                                                "parameter types": lambda e: f"{e[0]}: {e[1]}"}


def _describe_change(name: str, old, new) -> str:
    """'tensor types changed: #0 f32[2,3] -> #0 f32[4,3]', listing only the differing entries."""
    if name == "parameter objects":
        return "parameter objects changed (a Cell's Parameter was replaced by another object)"
    show = _SHOW_ENTRY.get(name, str)
    if isinstance(old, tuple) and isinstance(new, tuple) and len(old) == len(new) and name != "argument structure":
        diffs = [f"{show(o)} -> {show(n)}" for o, n in zip(old, new) if o != n]
        more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
        return f"{name} changed: " + ", ".join(diffs[:3]) + more
    if name in _SHOW_ENTRY:
        old, new = ([show(e) for e in v] for v in (old, new))
    return f"{name} changed: {old} -> {new}"


_SAVE_SEQ = [0]

# fn(stage, graph) for every graph save_graph is given (traced, lowered, forward/grad/vmap of the
# transforms) and fn("executable", (graph, backend, executable)) after each compile: the IR tool
# (sporeflow-ir dump) writes its files from here
graph_observers: list[Callable[[str, Any], None]] = []

# fn(compiled, arrays) before a compiled function runs, with its host arguments (explicit and
# captured): `sporeflow-ir bisect` checks the executable against the interpreter on them; an
# observer must not change them
call_observers: list[Callable[[Any, list], None]] = []


def save_graph(graph: Graph, stage: str) -> str | None:
    """With set_context(save_graphs=True) (or env SPOREFLOW_SAVE_GRAPHS=1), write the graph as
    `<save_graphs_path>/NNNN_<graph>_<stage>.ir` (MindSpore's NN_<pass> naming); returns the path."""
    import os
    for obs in graph_observers:
        obs(stage, graph)
    if not (get_context("save_graphs") or os.environ.get("SPOREFLOW_SAVE_GRAPHS", "0") not in ("", "0")):
        return None
    out_dir = os.environ.get("SPOREFLOW_SAVE_GRAPHS_PATH") or get_context("save_graphs_path")
    os.makedirs(out_dir, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in graph.name) or "graph"
    path = os.path.join(out_dir, f"{_SAVE_SEQ[0]:04d}_{safe}_{stage}.ir")
    _SAVE_SEQ[0] += 1
    with open(path, "w") as f:
        f.write(str(graph))
    return path


def _save_analyze_fail(trace: Trace, err: Exception) -> None:
    """With save_graphs on, a failed trace leaves what it recorded so far in analyze_fail.ir
    (as MindSpore does) and the error says where."""
    partial = trace.builder.finish([])
    partial.name = f"{trace.builder.name}_analyze_fail"
    path = save_graph(partial, "analyze_fail")
    if path:
        err.add_note(f"the graph traced up to the error: {path}")


@dataclass
class Traced:
    """A traced function: its graph and how to call it."""
    graph: Graph
    captured: list            # Parameters (implicit inputs after the explicit ones)
    updated: list             # Parameters whose new values follow the user outputs
    in_tree: TreeDef
    dyn_mask: tuple
    out_tree: TreeDef
    out_static: dict          # position -> non-tensor output value
    n_outputs: int
    trace_seconds: float = 0.0
    backend: str | None = None     # the jit's backend: lower() with no argument uses it
    passes: dict = field(default_factory=dict)   # the jit's pipeline / disabled / opt_level

    def donation(self) -> list[tuple[int, int]]:
        """(output index, input index) for each Parameter the step updates, which a backend that
        supports donation writes in place: the graph's inputs are the explicit arguments then
        the captured Parameters, its outputs the user outputs then the updates."""
        n_explicit = len(self.graph.inputs) - len(self.captured)
        pos = {id(p): n_explicit + i for i, p in enumerate(self.captured)}
        return [(self.n_outputs + k, pos[id(p)]) for k, p in enumerate(self.updated) if id(p) in pos]

    def lower(self, backend: str | None = None) -> "Compiled":
        name = backend or self.backend or default_backend()
        t0 = time.perf_counter()
        save_graph(self.graph, "traced")
        g = prepare_for_backend(self.graph, name, **self.passes)
        save_graph(g, f"lowered_{name}")
        comm.check_graph(g)     # ranks agree on the step before its first collective runs
        be = get_backend(name)
        if getattr(be, "supports_donation", False):   # updated Parameters are written in place
            exe = be.compile(g, donate=tuple(self.donation()))
        else:
            exe = be.compile(g)
        for obs in graph_observers:
            obs("executable", (g, name, exe))
        return Compiled(self, exe, time.perf_counter() - t0)


@dataclass
class Compiled:
    traced: Traced
    executable: Any
    compile_seconds: float

    @property
    def source(self) -> str:
        return self.executable.source

    def __call__(self, dyn_leaves: list) -> Any:
        t = self.traced
        arrays = [x._data if isinstance(x, Tensor) else Tensor(x)._data for x in dyn_leaves]
        arrays += [p._data for p in t.captured]
        for obs in call_observers:
            obs(self, arrays)
        dev = getattr(self.executable, "device", None)
        if dev is not None:     # host tensors given to a device executable move there (once for
            # Parameters: their updates come back on the device)
            arrays = [a if dev.is_array(a) else dev.upload(a) for a in arrays]
        outs = self.executable(*arrays)
        results = [Tensor._wrap(a, v.type.dtype, v.type) for a, v in zip(outs[:t.n_outputs], t.graph.outputs)]
        for p, a in zip(t.updated, outs[t.n_outputs:]):
            p._assign_storage(a)
        return join_leaves(t.out_tree, t.out_static, results)


class JitFunction:
    """The callable `sf.jit` returns."""

    def __init__(self, fn: Callable, backend: str | None = None, name: str | None = None,
                 passes: dict | None = None):
        self.fn = fn
        self.backend = backend
        self.passes = dict(passes or {})   # pipeline=, disabled=, opt_level= of sf.jit
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self._cache: dict[tuple, Compiled] = {}
        self._keys: list[CacheKey] = []
        self.last_retrace_reason: str | None = None
        self.trace_count = 0
        functools.update_wrapper(self, fn, updated=()) if callable(fn) and hasattr(fn, "__name__") else None

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        attr = f"__sf_jit_{id(self)}"
        bound = instance.__dict__.get(attr)
        if bound is None:
            bound = JitFunction(functools.partial(self.fn, instance), self.backend, self.name, self.passes)
            instance.__dict__[attr] = bound
        return bound

    # -- key ----------------------------------------------------------------------------------
    def _key(self, leaves: list, td: TreeDef) -> CacheKey:
        types = tuple((i, x._type) if isinstance(x, Tensor) else (i, x.dtype, x.shape)
                      for i, x in enumerate(leaves) if _is_dynamic(x))
        static = tuple((i, _static_key(x)) for i, x in enumerate(leaves) if not _is_dynamic(x))
        cells = self._cells(leaves)
        params = [p for c in cells for p in c.get_parameters()]
        return CacheKey(td, types, static, tuple(c.training_signature() for c in cells),
                        tuple((p.name, p._type) for p in params), tuple(id(p) for p in params),
                        self._backend_key())

    def _backend_key(self) -> str:
        """The backend and the passes it will run (a new pipeline is a new compiled graph)."""
        key = self.backend or default_backend()
        pipeline = self.passes.get("pipeline", get_context("pipeline"))
        opt = self.passes.get("opt_level", get_context("opt_level"))
        extra = {"pipeline": pipeline, "disabled": self.passes.get("disabled"),
                 "opt_level": None if opt == 2 else opt,      # 2: the default level, left out
                 "comm_overlap": None if get_auto_parallel_context("comm_overlap") else False}
        shown = [f"{k}={list(v) if isinstance(v, (list, tuple)) else v}" for k, v in extra.items()
                 if v is not None and v != ()]
        return key + (f" ({', '.join(shown)})" if shown else "")

    def _cells(self, leaves) -> list:
        Cell = _cell_class()
        found: dict[int, Any] = {}
        _reachable_cells(self.fn, found, depth=4)
        for x in leaves:
            if isinstance(x, Cell):
                found.setdefault(id(x), x)
        return list(found.values())

    def _explain(self, key: CacheKey) -> str:
        if not self._keys:
            return "first call"
        best, best_diff = None, None
        for k in self._keys:
            diff = [name for name, v in key.parts().items() if k.parts()[name] != v]
            if best_diff is None or len(diff) <= len(best_diff):  # ties: the most recent entry
                best, best_diff = k, diff
        details = [_describe_change(name, best.parts()[name], key.parts()[name]) for name in best_diff]
        return "; ".join(details) or "unknown"

    # -- tracing ----------------------------------------------------------------------------------
    @api_boundary
    def trace(self, *args, **kwargs) -> Traced:
        leaves, td = tree_flatten((args, kwargs))
        return self._trace(leaves, td)

    def _trace(self, leaves: list, td: TreeDef) -> Traced:
        t0 = time.perf_counter()
        self.trace_count += 1
        with Trace(self.name) as tr:
            call_leaves = []
            for i, x in enumerate(leaves):
                if _is_dynamic(x):
                    t = x if isinstance(x, Tensor) else Tensor(x)
                    call_leaves.append(tr.new_input(t._type, f"arg{i}"))
                else:
                    call_leaves.append(x)
            args, kwargs = tree_unflatten(td, call_leaves)
            try:
                out = convert(self.fn)(*args, **kwargs)
            except (ShapeError, TracerError) as e:
                _save_analyze_fail(tr, e)
                raise
            out_leaves, out_td = tree_flatten(out)
            out_static, tensors = split_leaves(out_leaves, lambda x: isinstance(x, Tensor))
            for x in out_static.values():
                if isinstance(x, (list, tuple, dict)):   # a subclass pytree does not open up
                    raise SporeflowError(
                        f"sf.jit: {self.name} returned a {type(x).__name__}, a container sporeflow cannot "
                        "look into; return tuples, lists, dicts, OrderedDicts or namedtuples of tensors")
            graph, captured, updated = tr.finish(tensors)
        for c in captured:
            if not isinstance(c, Parameter):
                raise SporeflowError("sf.jit: the function captured a value traced by an enclosing transform")
        return Traced(graph, captured, updated, td, tuple(_is_dynamic(x) for x in leaves), out_td, out_static,
                      len(tensors), time.perf_counter() - t0, self.backend, self.passes)

    @api_boundary
    def __call__(self, *args, **kwargs):
        if current_trace() is not None:
            return convert(self.fn)(*args, **kwargs)   # nested: inline into the enclosing trace
        leaves, td = flatten_call(args, kwargs, _LEAF_TYPES)
        return self._compiled_for(leaves, td)([x for x in leaves if _is_dynamic(x)])

    @api_boundary
    def lower(self, *args, **kwargs) -> Compiled:
        """Trace and compile for the signature of these arguments without running anything
        (JAX's jit(f).lower(*args).compile()); the result is cached, so a later call with the
        same signature runs it. Model.build compiles its steps ahead of training with this."""
        if current_trace() is not None:
            raise SporeflowError(f"sf.jit: {self.name}.lower() inside a traced function; call it outside")
        leaves, td = tree_flatten((args, kwargs))
        return self._compiled_for(leaves, td)

    def _compiled_for(self, leaves: list, td: TreeDef) -> Compiled:
        """The cached executable for this signature, traced and compiled on a miss."""
        key = self._key(leaves, td)
        compiled = self._cache.get(key.as_tuple())
        reason = None
        if compiled is not None:
            stale = [f"{getattr(p, 'name', '?')}: {v.type} -> {p._type}" for p, v in zip(
                compiled.traced.captured, compiled.traced.graph.inputs[len(key.types):]) if p._type != v.type]
            if stale:
                reason = "captured Parameter changed shape or dtype: " + ", ".join(stale)
                compiled = None
        if compiled is None:
            reason = reason or self._explain(key)
            if self._keys:
                level = logging.WARNING if get_context("jit_explain") else logging.INFO
                log.log(level, "sf.jit: retracing %s because %s", self.name, reason)
                if len(self._keys) + 1 == RETRACE_WARNING:
                    log.warning("sf.jit: %s has been traced %d times (last because %s); shapes, dtypes or "
                                "static arguments keep changing", self.name, RETRACE_WARNING, reason)
            self.last_retrace_reason = reason
            compiled = self._trace(leaves, td).lower(self.backend)
            self._cache[key.as_tuple()] = compiled
            self._keys.append(key)
        return compiled

    def sf_wrapped(self) -> list:
        return [self.fn]

    def cache_size(self) -> int:
        return len(self._cache)


def _cell_class() -> type:
    """nn.Cell (cell.py imports this module, so the module is imported at the end of this one
    and the class read when a call needs it)."""
    return _cell.Cell


def _reachable_cells(obj, found: dict, depth: int) -> None:
    """Cells whose train flags/Parameters a trace of `obj` can depend on: obj itself, partial
    arguments, a bound method's self, what a function's closure and globals name, and what a
    transform wrapper holds (`sf_wrapped()`, e.g. sf.vmap's function or CellList members), so
    that jit(vmap(net)) or jit(grad(lambda x: net(x))) retrace when net.set_train() changes."""
    Cell = _cell_class()
    if isinstance(obj, Cell):
        found.setdefault(id(obj), obj)
        return
    if depth <= 0:
        return
    kids: list = []
    if isinstance(obj, functools.partial):
        kids = [obj.func, *obj.args, *obj.keywords.values()]
    elif isinstance(obj, (list, tuple)):
        kids = list(obj[:256])
    elif hasattr(obj, "sf_wrapped"):
        kids = list(obj.sf_wrapped())
    elif hasattr(obj, "__func__") and hasattr(obj, "__self__"):
        kids = [obj.__self__, obj.__func__]
    elif hasattr(obj, "__code__"):
        kids = [c.cell_contents for c in (obj.__closure__ or ()) if _has_contents(c)]
        if not _is_library(obj):    # sporeflow's module globals hold no user Cell; walking them
            g = getattr(obj, "__globals__", {})    # was 40 of the 48 visits of a grad step's key
            kids += [g[n] for n in obj.__code__.co_names if n in g]
    for k in kids:
        if isinstance(k, Cell) or callable(k) or isinstance(k, (list, tuple)):
            if not isinstance(k, type):
                _reachable_cells(k, found, depth - 1)


def _is_library(fn) -> bool:
    """A function of sporeflow itself (its closure may still hold the user's function)."""
    return (getattr(fn, "__module__", None) or "").startswith("sporeflow.")


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:   # an empty closure cell (a name not assigned yet)
        return False


def jit(fn: Callable | None = None, backend: str | None = None, *, function: Callable | None = None,
        pipeline: Sequence[str] | None = None, disabled: Sequence[str] = (), opt_level: int | None = None,
        **options):
    """Compile `fn` (a function or a Cell): @jit, @jit(backend="llvm"), jit(fn), jit(cell, "interp").
    pipeline=[pass names] replaces the backend's default passes (user passes registered with
    sporeflow.passes.manager.register_pass included; every named pass runs whatever its opt level),
    disabled=[names] skips passes, opt_level= overrides set_context(opt_level=...). Unknown pass
    names raise here. MindSpore's other options (jit_config, capture_mode, jit_level, dynamic, ...)
    are accepted and have no effect: sporeflow always traces."""
    fn = fn if fn is not None else function
    backend = backend or None   # MindSpore's default is backend=''
    if "passes" in options:
        raise TypeError("sf.jit: the option is pipeline=[pass names], not passes=")
    passes: dict = {}
    if pipeline is not None:
        passes["pipeline"] = tuple(pipeline)
    if disabled:
        passes["disabled"] = tuple(disabled)
    if opt_level is not None:
        passes["opt_level"] = opt_level
    if passes:
        resolve(backend or default_backend(), passes.get("pipeline"), passes.get("disabled", ()), opt_level)
    if fn is None:
        return lambda f: JitFunction(f, backend, passes=passes)
    return JitFunction(fn, backend, passes=passes)


def mutable(input_data, dynamic_len: bool = False):
    """ms.mutable: MindSpore uses it to stop retracing on tuple/list/dict inputs of tensors;
    sf.jit already treats every tensor inside a pytree as a traced input (only the structure and
    the types are in the cache key), so it returns its argument."""
    if dynamic_len:
        raise NotImplementedError("mutable(dynamic_len=True): sequences whose length varies between calls are "
                                  "not supported; each length is its own compiled graph")
    return input_data


def jit_class(cls: type) -> type:
    """ms.jit_class: marks a class whose instances and methods are used inside compiled code.
    Tracing runs Python, so any class already works there; the mark only records the intent."""
    if not isinstance(cls, type):
        raise TypeError(f"jit_class decorates a class, got {type(cls).__name__}")
    cls.__sf_jit_class__ = True
    return cls


class JitConfig:
    """ms.JitConfig(jit_level=..., exc_mode=..., ...): accepted for compatibility (Cell.set_jit_config);
    the options have no effect in sporeflow."""

    def __init__(self, jit_level: str = "", exc_mode: str = "auto", jit_syntax_level: str = "",
                 debug_level: str = "RELEASE", infer_boost: str = "off", **kwargs):
        self.jit_config_dict = dict(jit_level=jit_level, exc_mode=exc_mode, jit_syntax_level=jit_syntax_level,
                                    debug_level=debug_level, infer_boost=infer_boost, **kwargs)

    def __repr__(self) -> str:
        return f"JitConfig({self.jit_config_dict})"


from . import cell as _cell  # noqa: E402  (cell.py imports JitFunction from here)
