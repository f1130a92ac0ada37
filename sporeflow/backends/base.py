"""The Backend interface: compile(graph) -> Executable. Backends register by name."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import BackendError
from ..ir.graph import Graph
from ..ir.registry import REGISTRY


class Executable(Protocol):
    """Callable on storage arrays; returns storage arrays. Exposes `source` and `stats`."""
    graph: Graph
    source: str
    stats: dict

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]: ...


class Backend(Protocol):
    name: str

    def compile(self, graph: Graph) -> Executable: ...


def lowering_table(backend: str, *parts: dict) -> dict:
    """The backend's one table op -> lowering, from the tables of its kernel modules. An op named
    by two of them is an error here: which rule ran used to depend on the order of a dict merge;
    where an op has two implementations, its one entry chooses between them."""
    table: dict = {}
    for part in parts:
        for op, rule in part.items():
            if op in table:
                raise BackendError(f"{backend} backend: two lowerings for {op!r} ({table[op].__module__} and "
                                   f"{rule.__module__}); give the op one entry that picks its implementation")
            table[op] = rule
    return table


def install_lowerings(backend: str, table: dict) -> None:
    """Record each rule in its OpDef (`REGISTRY[op].lower[backend]`, where kernels that lower
    members of a fused body look them up), once, when the backend is imported; the backend
    imports the primitives first, so every op of the table is registered."""
    unknown = sorted(set(table) - set(REGISTRY))
    if unknown:
        raise BackendError(f"{backend} backend: lowerings for unregistered op(s) {unknown}")
    for op, rule in table.items():
        REGISTRY[op].lower[backend] = rule


def missing_lowerings(table: dict) -> list[str]:
    """Registered primitives the table cannot lower (the coverage check)."""
    return sorted(set(REGISTRY) - set(table))


def check_lowerable(graph: Graph, backend: str, table: dict) -> None:
    missing = sorted({n.op for n in graph.walk() if n.op not in table})
    if missing:
        raise BackendError(f"{backend} backend: no lowering for op(s) {missing} in @{graph.name}")


_FACTORIES: dict[str, Callable[[], Backend]] = {}
_INSTANCES: dict[str, Backend] = {}


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    _FACTORIES[name] = factory


def get_backend(name: str) -> Backend:
    if name not in _INSTANCES:
        if name not in _FACTORIES:
            raise BackendError(f"unknown backend {name!r}; available: {sorted(_FACTORIES)}")
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def check_inputs(graph: Graph, arrays: Sequence[np.ndarray]) -> None:
    """Refuse inputs the graph was not compiled for, before any native code sees them."""
    if len(arrays) != len(graph.inputs):
        raise BackendError(f"@{graph.name} takes {len(graph.inputs)} inputs, got {len(arrays)}")
    for i, (v, a) in enumerate(zip(graph.inputs, arrays)):
        if not isinstance(a, np.ndarray) or a.shape != v.type.shape or a.dtype != v.type.dtype.storage:
            got = f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
            raise BackendError(f"@{graph.name} input {i} (%{v.name or i}) must be {v.type} "
                               f"(numpy {v.type.dtype.storage}), got {got}")
