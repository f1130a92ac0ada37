"""Loss scaling for the functional recipe (MindSpore 2.x `mindspore.amp`): StaticLossScaler and
DynamicLossScaler (all_finite and init_status are in functional/overflow.py).

The scalers keep their state in Parameters (`scale_value`, `counter`), so under sf.jit `scale`,
`unscale` and `adjust` are part of the one compiled step and the new scale is written back like
any parameter update; eagerly they act at once.
"""
from __future__ import annotations

import numbers

import numpy as np

from ...ir import dtypes as D
from .. import functional as F
from ..pytree import tree_map
from ..tensor import Parameter


def _positive(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"{where}: {name} must be a number > 0, got {value!r}")
    return float(value)


class LossScaler:
    """Base class: scale(inputs), unscale(inputs), adjust(grads_finite)."""

    def scale(self, inputs):
        raise NotImplementedError(f"{type(self).__name__}.scale")

    def unscale(self, inputs):
        raise NotImplementedError(f"{type(self).__name__}.unscale")

    def adjust(self, grads_finite):
        raise NotImplementedError(f"{type(self).__name__}.adjust")


class StaticLossScaler(LossScaler):
    """A fixed scale: adjust leaves it as it is and returns False, as in MindSpore."""

    def __init__(self, scale_value):
        self.scale_value = Parameter(np.asarray(_positive(scale_value, "scale_value", "StaticLossScaler"),
                                                np.float32), name="scale_value", requires_grad=False)

    def scale(self, inputs):
        return tree_map(lambda x: F.mul(x, F.cast(self.scale_value, x.dtype)), inputs)

    def unscale(self, inputs):
        return tree_map(lambda x: F.div(x, F.cast(self.scale_value, x.dtype)), inputs)

    def adjust(self, grads_finite):
        return False


class DynamicLossScaler(StaticLossScaler):
    """On a non-finite step: scale = max(scale / factor, 1) and the window count restarts; after
    `scale_window` finite steps in a row: scale *= factor (unless that overflows float32)."""

    def __init__(self, scale_value, scale_factor, scale_window):
        super().__init__(scale_value)
        self.scale_factor = _positive(scale_factor, "scale_factor", "DynamicLossScaler")
        if isinstance(scale_window, bool) or not isinstance(scale_window, numbers.Integral) or scale_window < 1:
            raise ValueError(f"DynamicLossScaler: scale_window must be an int >= 1, got {scale_window!r}")
        self.scale_window = int(scale_window)
        self.counter = Parameter(np.asarray(0, np.int32), name="counter", requires_grad=False)

    def adjust(self, grads_finite):
        finite = F.cast(grads_finite, D.bool_)
        scale = F.cast(self.scale_value, D.float32)
        grown = F.mul(scale, self.scale_factor)
        at_window = F.equal(self.counter, self.scale_window - 1)
        on_finite = F.select(F.logical_and(at_window, F.isfinite(grown)), grown, scale)
        on_overflow = F.maximum(F.div(scale, self.scale_factor), 1.0)
        F.assign(self.scale_value, F.select(finite, on_finite, on_overflow))
        nxt = F.select(at_window, F.zeros_like(self.counter), F.add(self.counter, 1))
        F.assign(self.counter, F.select(finite, nxt, F.zeros_like(self.counter)))
        return True
