"""Overflow detection for loss scaling: all_finite and init_status (MindSpore's mindspore.amp names;
they live here so that nn's TrainOneStepWithLossScaleCell and sporeflow.amp share them)."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .math_ops import all, isfinite, logical_and


def init_status() -> Tensor:
    """MindSpore's overflow-status buffer (an Ascend NPU register there): eight float32 zeros.
    sporeflow checks the gradients themselves (all_finite), so the status carries no state."""
    return Tensor(np.zeros((8,), np.float32))


def all_finite(inputs, status=None) -> Tensor:
    """A bool scalar: every element of every tensor of `inputs` (a tensor or a tuple/list) is finite."""
    leaves = [x for x in (inputs if isinstance(inputs, (tuple, list)) else [inputs])]
    if not leaves:
        raise ValueError("all_finite: inputs is empty")
    ok = None
    for x in leaves:
        if not isinstance(x, Tensor):
            raise TypeError(f"all_finite: inputs must be Tensors, got {type(x).__name__}")
        f = all(isfinite(x)) if x.dtype.is_float else Tensor(np.asarray(True))
        ok = f if ok is None else logical_and(ok, f)
    return ok
