"""The Backend interface: compile(graph) -> Executable. Backends register by name."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import BackendError
from ..ir.graph import Graph


class Executable(Protocol):
    """Callable on storage arrays; returns storage arrays. Exposes `source` and `stats`."""
    graph: Graph
    source: str
    stats: dict

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]: ...


class Backend(Protocol):
    name: str

    def compile(self, graph: Graph) -> Executable: ...


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
