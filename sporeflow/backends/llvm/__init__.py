"""The LLVM CPU backend (llvmlite): a graph becomes one module of loop nests, compiled at O3
for the host CPU and cached on disk.

Lowering rules live in this package's tables (scalar_ops, kernels_*, control) and are
registered into `REGISTRY[op].lower["llvm"]` at import, so each OpDef holds its LLVM lowering
at run time as DESIGN.md asks and a coverage check can read it there. Why not written inside
the def_op blocks: those blocks were being edited concurrently by the transformation work;
keeping the table here avoided conflicting edits (note for the lead: they can move into the
def_op blocks later without changing anything else).
"""
from __future__ import annotations

from ...errors import BackendError
from ...ir.graph import Graph
from ...ir.registry import REGISTRY
from ..base import register_backend
from . import control, kernels_elem, kernels_nn, kernels_shape
from . import conv, fused, gemm  # issue 5: im2col+BLAS conv2d, fused kernels, threaded GEMM blocks
from . import collective  # MPI collectives: a call out to ir/comm.py at the node's place in the step
from .executable import LLVMExecutable

LOWERINGS = {**kernels_elem.RULES, **kernels_shape.RULES, **kernels_nn.RULES, **control.RULES, **fused.RULES, **conv.RULES, **gemm.RULES,
             **collective.RULES}


def register_lowerings() -> None:
    for name, rule in LOWERINGS.items():
        if name in REGISTRY:
            REGISTRY[name].lower["llvm"] = rule


def missing_lowerings() -> list[str]:
    """Primitives of the registry that the LLVM backend cannot lower (the coverage check)."""
    return sorted(n for n, op in REGISTRY.items() if "llvm" not in op.lower)


class LLVMBackend:
    name = "llvm"
    supports_donation = True     # compile(graph, donate=[(output, input)]): updates in place

    def compile(self, graph: Graph, donate: tuple = ()):
        register_lowerings()     # primitives registered after this package imported
        missing = sorted({n.op for n in graph.walk() if "llvm" not in REGISTRY[n.op].lower})
        if missing:
            raise BackendError(f"llvm backend: no lowering for op(s) {missing} in @{graph.name}")
        return LLVMExecutable(graph, tuple(donate))


register_lowerings()
register_backend("llvm", LLVMBackend)
