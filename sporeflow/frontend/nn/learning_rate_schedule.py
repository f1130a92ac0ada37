"""Learning-rate schedules: Cells called with the optimizer's `global_step` (int32 [1]) inside the
compiled step, and the list builders (`piecewise_constant_lr`, ...) that return Python lists."""
from __future__ import annotations

import math

from ...ir import dtypes as D
from .. import functional as F
from ..cell import Cell


class LearningRateSchedule(Cell):
    """Subclasses implement construct(global_step) -> scalar float32 learning rate."""

    def _step(self, global_step):
        return F.reshape(F.cast(global_step, D.float32), ())

    def _fraction(self, global_step, steps: int):
        """min(step, steps) / steps."""
        return F.div(F.minimum(self._step(global_step), float(steps)), float(steps))


class ExponentialDecayLR(LearningRateSchedule):
    """lr * decay_rate ** (step / decay_steps); floor of the exponent when is_stair."""

    def __init__(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False):
        super().__init__()
        if decay_steps <= 0:
            raise ValueError(f"ExponentialDecayLR: decay_steps must be > 0, got {decay_steps}")
        self.learning_rate, self.decay_rate, self.decay_steps, self.is_stair = \
            float(learning_rate), float(decay_rate), int(decay_steps), is_stair

    def _progress(self, global_step):
        """step / decay_steps, floored when is_stair."""
        p = F.div(self._step(global_step), float(self.decay_steps))
        return F.floor(p) if self.is_stair else p

    def construct(self, global_step):
        p = self._progress(global_step)
        return F.mul(F.pow(self.decay_rate, p), self.learning_rate)


class NaturalExpDecayLR(ExponentialDecayLR):
    """lr * exp(-decay_rate * step / decay_steps)."""

    def construct(self, global_step):
        p = self._progress(global_step)
        return F.mul(F.exp(F.mul(p, -self.decay_rate)), self.learning_rate)


class InverseDecayLR(ExponentialDecayLR):
    """lr / (1 + decay_rate * step / decay_steps)."""

    def construct(self, global_step):
        p = self._progress(global_step)
        return F.div(self.learning_rate, F.add(F.mul(p, self.decay_rate), 1.0))


class CosineDecayLR(LearningRateSchedule):
    """min_lr + 0.5 (max_lr - min_lr)(1 + cos(pi * min(step, decay_steps) / decay_steps))."""

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int):
        super().__init__()
        if decay_steps <= 0 or min_lr >= max_lr or min_lr < 0:
            raise ValueError(f"CosineDecayLR: need 0 <= min_lr < max_lr and decay_steps > 0, got "
                             f"{min_lr}, {max_lr}, {decay_steps}")
        self.min_lr, self.max_lr, self.decay_steps = float(min_lr), float(max_lr), int(decay_steps)

    def construct(self, global_step):
        p = self._fraction(global_step, self.decay_steps)
        c = F.add(F.cos(F.mul(p, math.pi)), 1.0)
        return F.add(F.mul(c, 0.5 * (self.max_lr - self.min_lr)), self.min_lr)


class PolynomialDecayLR(LearningRateSchedule):
    """(lr - end) * (1 - min(step, decay_steps)/decay_steps) ** power + end."""

    def __init__(self, learning_rate: float, end_learning_rate: float, decay_steps: int, power: float,
                 update_decay_steps: bool = False):
        super().__init__()
        if decay_steps <= 0 or power <= 0:
            raise ValueError("PolynomialDecayLR: decay_steps and power must be > 0")
        if update_decay_steps:
            raise ValueError("PolynomialDecayLR: update_decay_steps=True is not supported yet")
        self.learning_rate, self.end_learning_rate = float(learning_rate), float(end_learning_rate)
        self.decay_steps, self.power = int(decay_steps), float(power)

    def construct(self, global_step):
        p = self._fraction(global_step, self.decay_steps)
        base = F.pow(F.sub(1.0, p), self.power)
        return F.add(F.mul(base, self.learning_rate - self.end_learning_rate), self.end_learning_rate)


class WarmUpLR(LearningRateSchedule):
    """lr * min(step, warmup_steps) / warmup_steps."""

    def __init__(self, learning_rate: float, warmup_steps: int):
        super().__init__()
        if warmup_steps <= 0:
            raise ValueError(f"WarmUpLR: warmup_steps must be > 0, got {warmup_steps}")
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)

    def construct(self, global_step):
        p = self._fraction(global_step, self.warmup_steps)
        return F.mul(p, self.learning_rate)


# ---- list builders (per-step Python lists, passed as learning_rate) ----------------------------------
def _check_steps(total_step: int, step_per_epoch: int, decay_epoch: int) -> None:
    for name, v in (("total_step", total_step), ("step_per_epoch", step_per_epoch), ("decay_epoch", decay_epoch)):
        if not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def piecewise_constant_lr(milestone, learning_rates) -> list[float]:
    """learning_rates[i] for steps in [milestone[i-1], milestone[i])."""
    if len(milestone) != len(learning_rates):
        raise ValueError("piecewise_constant_lr: milestone and learning_rates must have the same length")
    out, last = [], 0
    for m, lr in zip(milestone, learning_rates):
        if m <= last:
            raise ValueError(f"piecewise_constant_lr: milestone must be strictly increasing, got {list(milestone)}")
        out += [float(lr)] * (m - last)
        last = m
    return out


def _epoch_progress(i: int, step_per_epoch: int, decay_epoch: int, is_stair: bool) -> float:
    """epoch / decay_epoch at step i, floored when is_stair."""
    p = math.floor(i / step_per_epoch) / decay_epoch
    return math.floor(p) if is_stair else p


def exponential_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    _check_steps(total_step, step_per_epoch, decay_epoch)
    return [learning_rate * decay_rate ** _epoch_progress(i, step_per_epoch, decay_epoch, is_stair)
            for i in range(total_step)]


def natural_exp_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    _check_steps(total_step, step_per_epoch, decay_epoch)
    out = []
    for i in range(total_step):
        e = math.floor(i / step_per_epoch)
        if is_stair:
            e = math.floor(e / decay_epoch) * decay_epoch
        out.append(learning_rate * math.exp(-decay_rate * e))
    return out


def inverse_decay_lr(learning_rate, decay_rate, total_step, step_per_epoch, decay_epoch, is_stair=False):
    _check_steps(total_step, step_per_epoch, decay_epoch)
    return [learning_rate / (1 + decay_rate * _epoch_progress(i, step_per_epoch, decay_epoch, is_stair))
            for i in range(total_step)]


def cosine_decay_lr(min_lr, max_lr, total_step, step_per_epoch, decay_epoch):
    _check_steps(total_step, step_per_epoch, decay_epoch)
    out = []
    for i in range(total_step):
        e = min(math.floor(i / step_per_epoch), decay_epoch)
        out.append(min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * e / decay_epoch)))
    return out


def polynomial_decay_lr(learning_rate, end_learning_rate, total_step, step_per_epoch, decay_epoch, power,
                        update_decay_epoch=False):
    _check_steps(total_step, step_per_epoch, decay_epoch)
    out = []
    for i in range(total_step):
        e = math.floor(i / step_per_epoch)
        d = decay_epoch
        if update_decay_epoch:
            d = decay_epoch * max(math.ceil(e / decay_epoch), 1)
        else:
            e = min(e, decay_epoch)
        out.append((learning_rate - end_learning_rate) * (1 - e / d) ** power + end_learning_rate)
    return out


def warmup_lr(learning_rate, total_step, step_per_epoch, warmup_epoch):
    _check_steps(total_step, step_per_epoch, warmup_epoch)
    return [learning_rate * min(math.floor(i / step_per_epoch) + 1, warmup_epoch) / warmup_epoch
            for i in range(total_step)]


__all__ = ["LearningRateSchedule", "ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR", "CosineDecayLR",
           "PolynomialDecayLR", "WarmUpLR", "piecewise_constant_lr", "exponential_decay_lr", "natural_exp_decay_lr",
           "inverse_decay_lr", "cosine_decay_lr", "polynomial_decay_lr", "warmup_lr"]
