"""FixedLossScaleManager and DynamicLossScaleManager (MindSpore's loss-scale managers for Model and
build_train_network). `get_update_cell()` gives the Cell that the compiled step uses;
`update_loss_scale(overflow)` is the host-side rule Model calls after each step, as MindSpore does."""
from __future__ import annotations

import numbers

from ..nn.wrap_loss_scale import DynamicLossScaleUpdateCell, FixedLossScaleUpdateCell


def _positive(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"{where}: {name} must be a number > 0, got {value!r}")
    return float(value)


class LossScaleManager:
    """Base class of the managers."""

    def get_loss_scale(self) -> float:
        raise NotImplementedError(f"{type(self).__name__}.get_loss_scale")

    def update_loss_scale(self, overflow) -> None:
        raise NotImplementedError(f"{type(self).__name__}.update_loss_scale")

    def get_update_cell(self):
        raise NotImplementedError(f"{type(self).__name__}.get_update_cell")


class FixedLossScaleManager(LossScaleManager):
    """A fixed scale. drop_overflow_update=True: a step whose gradients overflow is skipped (the
    step is a TrainOneStepWithLossScaleCell); False: plain TrainOneStepCell with sens=loss_scale, so
    the optimizer must be built with the same loss_scale to undo it."""

    def __init__(self, loss_scale: float = 128.0, drop_overflow_update: bool = True):
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, numbers.Real) or loss_scale < 1:
            raise ValueError(f"FixedLossScaleManager: loss_scale must be >= 1, got {loss_scale!r}")
        self._loss_scale = float(loss_scale)
        self._drop_overflow_update = bool(drop_overflow_update)

    def get_loss_scale(self) -> float:
        return self._loss_scale

    def get_drop_overflow_update(self) -> bool:
        return self._drop_overflow_update

    def update_loss_scale(self, overflow) -> None:
        """The scale is fixed: nothing to update."""

    def get_update_cell(self):
        return FixedLossScaleUpdateCell(self._loss_scale) if self._drop_overflow_update else None


class DynamicLossScaleManager(LossScaleManager):
    """Halves (scale_factor) on overflow, grows after scale_window finite steps; always drops
    overflowing updates."""

    def __init__(self, init_loss_scale: float = 2 ** 24, scale_factor: int = 2, scale_window: int = 2000):
        self.loss_scale = _positive(init_loss_scale, "init_loss_scale", "DynamicLossScaleManager")
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, numbers.Real) or scale_factor <= 1:
            raise ValueError(f"DynamicLossScaleManager: scale_factor must be > 1, got {scale_factor!r}")
        if isinstance(scale_window, bool) or not isinstance(scale_window, numbers.Integral) or scale_window < 1:
            raise ValueError(f"DynamicLossScaleManager: scale_window must be an int >= 1, got {scale_window!r}")
        self.scale_factor, self.scale_window = scale_factor, int(scale_window)
        self.increase_ratio, self.decrease_ratio = scale_factor, 1.0 / scale_factor
        self.cur_iter, self.last_overflow_iter = 1, 0
        self.bad_step_max, self.bad_step = 1000, 0

    def get_loss_scale(self) -> float:
        return self.loss_scale

    def get_drop_overflow_update(self) -> bool:
        return True

    def update_loss_scale(self, overflow) -> None:
        if overflow:
            self.loss_scale = max(self.loss_scale * self.decrease_ratio, 1.0)
            self.last_overflow_iter = self.cur_iter
            self.bad_step += 1
        else:
            if self.cur_iter - self.last_overflow_iter >= self.scale_window:
                self.loss_scale *= self.increase_ratio
                self.last_overflow_iter = self.cur_iter
            self.bad_step = 0
        if self.bad_step > self.bad_step_max:
            raise RuntimeError(f"Dynamic loss scale: {self.bad_step} continuous overflows (more than "
                               f"{self.bad_step_max}); the network diverges")
        self.cur_iter += 1

    def get_update_cell(self):
        return DynamicLossScaleUpdateCell(self.loss_scale, self.scale_factor, self.scale_window)
