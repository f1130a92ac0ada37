"""auto_mixed_precision / custom_mixed_precision: mark Cells with the mode the amp pass applies.

MindSpore rewrites the network with cast-inserting wrappers; sporeflow only marks Cells
(`frontend/autocast.CellAmp`) and the `amp` pass (passes/amp.py) does the rewriting on the traced
graph. The network object is returned marked in place, so its parameters keep their names. The
levels (mindspore-api.md section 8):
  O0   nothing
  O1   white-list Cells and white-list ops (OpDef.amp == LOW) in low precision, the rest float32
  O2   everything in low precision except the black-list Cells (BatchNorm kept in float32 unless
       keep_batchnorm_fp32=False, LayerNorm always)
  O3   everything in low precision
  auto op-level lists: OpDef.amp LOW ops low, NEVER ops float32, the others follow their inputs
Outputs of the converted network are cast back to float32 (MindSpore's `_OutputTo32`).
"""
from __future__ import annotations

from ...ir import dtypes as D
from ...passes.amp import black_ops, white_ops
from ..autocast import CellAmp, set_amp_mark
from ..cell import Cell
from ..functional import primitives as P
from .. import nn

LEVELS = ("O0", "O1", "O2", "O3", "auto")
WHITE_CELLS = (nn.Dense, nn.Conv1d, nn.Conv2d, nn.Conv2dTranspose, nn.LSTMCell, nn.RNNCell, nn.GRUCell)
BATCHNORM_CELLS = (nn.BatchNorm1d, nn.BatchNorm2d)
BLACK_CELLS = BATCHNORM_CELLS + (nn.LayerNorm,)
# MindSpore primitive classes -> the sporeflow primitives they become (white/black lists may name them)
PRIMITIVE_OPS = {"MatMul": ("matmul",), "BatchMatMul": ("matmul",), "Conv2D": ("conv2d",),
                 "Exp": ("exp",), "Log": ("log",), "Pow": ("pow",), "Sqrt": ("sqrt",), "Rsqrt": ("rsqrt",),
                 "ReduceSum": ("reduce_sum",), "ReduceMean": ("reduce_sum",), "Erf": ("erf",),
                 "Sin": ("sin",), "Cos": ("cos",), "Tanh": ("tanh",)}


def get_white_list() -> list:
    """A copy of the white list used at O1 (Cells, then primitive classes)."""
    return list(WHITE_CELLS) + [getattr(P, n) for n in ("MatMul", "BatchMatMul") if hasattr(P, n)]


def get_black_list() -> list:
    """A copy of the black list used at O2 (Cells kept in float32)."""
    return list(BLACK_CELLS)


def _check(network, dtype, where: str) -> None:
    if not isinstance(network, Cell):
        raise TypeError(f"{where}: network must be a Cell, got {type(network).__name__}")
    if dtype not in (D.float16, D.bfloat16):
        raise ValueError(f"{where}: dtype must be float16 or bfloat16, got {dtype}")
    # converting again replaces the earlier marks (MindSpore would stack a second set of casts)
    for _, c in network.cells_and_names():
        set_amp_mark(c, None)


def _mark_cells(network: Cell, classes: tuple, mark: CellAmp) -> None:
    for _, c in network.cells_and_names():
        if c is not network and isinstance(c, classes):
            set_amp_mark(c, mark)


def auto_mixed_precision(network: Cell, amp_level: str = "O0", dtype=D.float16, keep_batchnorm_fp32: bool = True):
    """Return `network` set to compute at `amp_level` in `dtype` (float16 or bfloat16)."""
    if amp_level not in LEVELS:
        raise ValueError(f"auto_mixed_precision: amp_level must be one of {LEVELS}, got {amp_level!r}")
    if amp_level == "O0":
        if not isinstance(network, Cell):
            raise TypeError(f"auto_mixed_precision: network must be a Cell, got {type(network).__name__}")
        return network
    _check(network, dtype, "auto_mixed_precision")
    f32, low = CellAmp("fp32", dtype), CellAmp("low", dtype)
    if amp_level == "O1":
        set_amp_mark(network, CellAmp("fp32", dtype, white_ops=white_ops()))
        _mark_cells(network, WHITE_CELLS, low)
    elif amp_level == "O2":
        set_amp_mark(network, low)
        _mark_cells(network, BLACK_CELLS if keep_batchnorm_fp32 else (nn.LayerNorm,), f32)
    elif amp_level == "O3":
        set_amp_mark(network, low)
    else:
        set_amp_mark(network, CellAmp("auto", dtype, white_ops=white_ops(), black_ops=black_ops()))
    return network


def _split(lst, where: str) -> tuple[tuple, frozenset]:
    cells, ops = [], set()
    for item in lst:
        if isinstance(item, type) and issubclass(item, Cell):
            cells.append(item)
        elif isinstance(item, type) and item.__name__ in PRIMITIVE_OPS:
            ops.update(PRIMITIVE_OPS[item.__name__])
        else:
            raise TypeError(f"{where}: list entries must be Cell classes or primitive classes of "
                            f"{sorted(PRIMITIVE_OPS)}, got {item!r}")
    return tuple(cells), frozenset(ops)


def custom_mixed_precision(network: Cell, *, white_list=None, black_list=None, dtype=D.float16):
    """Exactly one list: white_list runs the listed Cells/primitives low and the rest float32;
    black_list keeps the listed ones float32 and runs the rest low."""
    if (white_list is None) == (black_list is None):
        raise ValueError("custom_mixed_precision: give exactly one of white_list and black_list")
    _check(network, dtype, "custom_mixed_precision")
    if white_list is not None:
        cells, ops = _split(white_list, "custom_mixed_precision")
        set_amp_mark(network, CellAmp("fp32", dtype, white_ops=ops))
        _mark_cells(network, cells, CellAmp("low", dtype))
    else:
        cells, ops = _split(black_list, "custom_mixed_precision")
        set_amp_mark(network, CellAmp("low", dtype, black_ops=ops))
        _mark_cells(network, cells, CellAmp("fp32", dtype))
    return network
