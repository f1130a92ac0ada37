"""The LLVM CPU backend (llvmlite): a graph becomes one module of loop nests, compiled at O3
for the host CPU and cached on disk.

LOWERINGS is the backend's table, one entry per primitive, built from its kernel modules'
tables (an op in two of them fails at import). Ops with two implementations choose in their
one entry:
  matmul      gemm.lower_matmul: float32/float64 (float16/bfloat16 on float32 copies) through
              threaded OpenBLAS blocks when OpenBLAS loads; otherwise, or for other dtypes,
              empty results and k == 0, the kernels_nn loop nest.
  conv2d      conv.lower_conv2d: im2col + BLAS under the same conditions; otherwise the
              kernels_nn loop nest.
  reduce_*    fused._standalone_reduce: the row kernel (trailing axes) or the column kernel
              (leading axes); other axis sets the kernels_elem loop nest.
The table is recorded in each OpDef.lower["llvm"] once, at import.
"""
from __future__ import annotations

from ... import primitives  # noqa: F401  (every primitive is registered before the table is installed)
from ...ir.graph import Graph
from ..base import check_lowerable, install_lowerings, lowering_table, missing_lowerings as _missing
from ..base import register_backend
from . import collective, control, conv, fused, gemm, host_print, kernels_elem, kernels_nn, kernels_shape
from .executable import LLVMExecutable

LOWERINGS = lowering_table("llvm", kernels_elem.RULES, kernels_shape.RULES, kernels_nn.RULES, control.RULES,
                           fused.RULES, conv.RULES, gemm.RULES, collective.RULES, host_print.RULES)


def missing_lowerings() -> list[str]:
    """Primitives of the registry that the LLVM backend cannot lower (the coverage check)."""
    return _missing(LOWERINGS)


class LLVMBackend:
    name = "llvm"
    supports_donation = True     # compile(graph, donate=[(output, input)]): updates in place

    def compile(self, graph: Graph, donate: tuple = ()):
        check_lowerable(graph, "llvm", LOWERINGS)
        return LLVMExecutable(graph, tuple(donate))


install_lowerings("llvm", LOWERINGS)
register_backend("llvm", LLVMBackend)
