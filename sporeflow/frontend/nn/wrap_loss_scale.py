"""TrainOneStepWithLossScaleCell and its scale-update Cells (MindSpore's nn.wrap.loss_scale).

One compiled step: loss = network(*inputs); gradients of loss * scale; divided by the scale;
`overflow = not all_finite(grads)`; the update Cell adjusts the scale; the optimizer runs inside
an `ops.cond` on the finite flag, so a step that overflows leaves every parameter and optimizer
state bit-identical and nothing goes back to the host to decide it. Returns (loss, overflow, scale).
"""
from __future__ import annotations

import numbers

import numpy as np

from ...ir import dtypes as D
from .. import functional as F
from ..cell import Cell
from ..tensor import Parameter, Tensor
from ..transforms import value_and_grad
from ..functional.overflow import all_finite
from .wrap import TrainOneStepCell


def _scale_param(value, name: str = "scale_sense") -> Parameter:
    if isinstance(value, Tensor):
        value = float(value.asnumpy().reshape(-1)[0])
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"loss scale must be a number > 0, got {value!r}")
    return Parameter(np.asarray(float(value), np.float32), name=name, requires_grad=False)


class FixedLossScaleUpdateCell(Cell):
    """Keeps the scale; `construct(loss_scale, overflow)` returns overflow."""

    def __init__(self, loss_scale_value):
        super().__init__()
        self.loss_scale_value = float(_scale_param(loss_scale_value).asnumpy())

    def get_loss_scale(self) -> float:
        return self.loss_scale_value

    def construct(self, loss_scale, overflow):
        return overflow


class DynamicLossScaleUpdateCell(Cell):
    """overflow: scale = max(scale / factor, 1); `scale_window` steps since the last overflow (or
    growth): scale *= factor. Counters as MindSpore's (cur_iter from 1, last_overflow_iter 0)."""

    def __init__(self, loss_scale_value, scale_factor, scale_window):
        super().__init__()
        self.loss_scale_value = float(_scale_param(loss_scale_value).asnumpy())
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, numbers.Real) or scale_factor <= 1:
            raise ValueError(f"DynamicLossScaleUpdateCell: scale_factor must be > 1, got {scale_factor!r}")
        if isinstance(scale_window, bool) or not isinstance(scale_window, numbers.Integral) or scale_window < 1:
            raise ValueError(f"DynamicLossScaleUpdateCell: scale_window must be an int >= 1, got {scale_window!r}")
        self.scale_factor, self.scale_window = float(scale_factor), int(scale_window)
        self.cur_iter = Parameter(np.asarray(1, np.int32), name="current_iterator_step", requires_grad=False)
        self.last_overflow_iter = Parameter(np.asarray(0, np.int32), name="last_overflow_iterator_step",
                                            requires_grad=False)

    def get_loss_scale(self) -> float:
        return self.loss_scale_value

    def construct(self, loss_scale, overflow):
        on_overflow = F.select(overflow, F.maximum(F.div(loss_scale, self.scale_factor), 1.0), loss_scale)
        should_inc = F.greater_equal(F.sub(self.cur_iter, self.last_overflow_iter), self.scale_window)
        F.assign(self.last_overflow_iter, F.select(F.logical_or(overflow, should_inc), self.cur_iter,
                                                   self.last_overflow_iter))
        grow = F.logical_and(F.logical_not(overflow), should_inc)
        F.assign(loss_scale, F.select(grow, F.mul(loss_scale, self.scale_factor), on_overflow))
        F.assign_add(self.cur_iter, 1)
        return overflow


class TrainOneStepWithLossScaleCell(TrainOneStepCell):
    """`scale_sense`: an update Cell (Fixed/DynamicLossScaleUpdateCell) or a fixed scale (Tensor)."""

    def __init__(self, network: Cell, optimizer: Cell, scale_sense):
        super().__init__(network, optimizer)
        if isinstance(scale_sense, Cell):
            self.loss_scaling_manager = scale_sense
            self.scale_sense = _scale_param(scale_sense.get_loss_scale())
        elif isinstance(scale_sense, (Tensor, numbers.Real)) and not isinstance(scale_sense, bool):
            self.loss_scaling_manager = None
            self.scale_sense = _scale_param(scale_sense)
        else:
            raise TypeError("TrainOneStepWithLossScaleCell: scale_sense must be an update Cell "
                            f"(DynamicLossScaleUpdateCell, FixedLossScaleUpdateCell) or a Tensor, got "
                            f"{type(scale_sense).__name__}")

    def set_sense_scale(self, sens) -> None:
        """Set the scale (a Tensor or number), as MindSpore's method does."""
        F.assign(self.scale_sense, Tensor(np.asarray(float(_scale_param(sens).asnumpy()), np.float32)))

    def construct(self, *inputs):
        scale = F.stop_gradient(self.scale_sense)   # the value this step uses, read before the update
        (_, loss), grads = value_and_grad(self._scaled_network, None, self.weights, has_aux=True)(scale, *inputs)
        grads = tuple(F.div(g, F.cast(scale, g.dtype)) for g in grads)
        if self.grad_reducer is not None:   # reduced first: every rank sees the same overflow
            grads = self.grad_reducer(grads)
        finite = all_finite(grads)
        overflow = F.logical_not(finite)
        if self.loss_scaling_manager is not None:
            overflow = self.loss_scaling_manager(self.scale_sense, overflow)

        def update(*gs):
            self.optimizer(gs)
            return F.zeros((), D.int32)

        F.cond(finite, update, lambda *gs: F.zeros((), D.int32), *grads)
        return loss, overflow, scale

    def _scaled_network(self, scale, *inputs):
        """(loss * scale, loss): the gradients are those of the scaled loss; loss rides as aux."""
        loss = self.network(*inputs)
        return F.mul(loss, F.cast(scale, loss.dtype)), loss
