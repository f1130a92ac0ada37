"""Graph -> Graph passes and the pipelines that run them before a backend compiles.

`prepare_for_backend` is the single entry `sf.jit` calls; passes/pipelines.py names what runs.
"""
from __future__ import annotations

from ..ir.graph import Graph
from .pipelines import run_default_pipeline


def prepare_for_backend(graph: Graph, backend: str, pipeline=None, disabled=(), opt_level=None) -> Graph:
    """Run `pipeline` (default: set_context(pipeline=...), else the backend's) on `graph`."""
    return run_default_pipeline(graph, backend, pipeline, disabled, opt_level)
