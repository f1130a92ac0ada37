"""The built-in passes and each backend's default pipeline, built here explicitly.

The pass modules register their passes with `manager.register_pass` when imported; this
module imports each of them (the registry in manager.py imports none of them, so there is no
import circle) and names the pipelines. The interpreter is the oracle and runs the graph as
traced; the native backends simplify and fuse. A jit's `pipeline=` / set_context(pipeline=)
replaces the default (`resolve`).
"""
from __future__ import annotations

from typing import Sequence

from ..context import get_auto_parallel_context, get_context
from ..ir import comm
from ..ir.graph import Graph
from . import amp, fusion, overlap, simplify, transpose_folding  # noqa: F401  (register "amp"; "fuse";
                                          # "overlap_collectives"; "dce", "cse", ..., "simplify"; "fold_transposes")
from .manager import PassInfo, PassManager, get_pass

_NATIVE = ["simplify", "fold_transposes", "fuse"]

PIPELINES: dict[str, list[str]] = {
    "interp": [],
    "llvm": list(_NATIVE),
    "cuda": list(_NATIVE),
    "cuda-emulated": list(_NATIVE),     # the same graph a GPU gets, run by the CPU emulator
}


def resolve(backend: str, pipeline: Sequence[str] | None = None, disabled: Sequence[str] = (),
            opt_level: int | None = None) -> PassManager:
    """The pass manager a jit runs: `pipeline` (or set_context(pipeline=...), else the backend's
    default); passes named there explicitly are required, so they run whatever their opt level.
    Unknown names raise here, before anything is traced or compiled."""
    if pipeline is None:
        pipeline = get_context("pipeline")
    explicit = pipeline is not None
    names = list(pipeline) if explicit else list(PIPELINES.get(backend, PIPELINES["llvm"]))
    if not explicit and comm.initialized() and get_auto_parallel_context("comm_overlap"):
        names.append("overlap_collectives")   # last, interpreter included: all_reduce -> start/wait
    for n in list(names) + list(disabled):
        if not isinstance(n, PassInfo):
            get_pass(n)
    required = [n if isinstance(n, str) else n.name for n in names] if explicit else []
    return PassManager(names, opt_level=opt_level, disabled=tuple(disabled), required=required)


def run_default_pipeline(graph: Graph, backend: str, pipeline: Sequence[str] | None = None,
                         disabled: Sequence[str] = (), opt_level: int | None = None) -> Graph:
    """What sf.jit runs before `backend` compiles (sporeflow.passes.prepare_for_backend)."""
    return resolve(backend, pipeline, disabled, opt_level).run(graph)
