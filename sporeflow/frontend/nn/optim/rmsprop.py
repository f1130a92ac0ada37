"""RMSProp (MindSpore's ApplyRMSProp / ApplyCenteredRMSProp rules) and Adagrad (ApplyAdagrad)."""
from __future__ import annotations

import numpy as np

from ... import functional as F
from .optimizer import Optimizer


class RMSProp(Optimizer):
    """ms = decay*ms + (1-decay)*g^2; mom = momentum*mom + lr*g / sqrt(ms + eps); p -= mom.
    centered: mg = decay*mg + (1-decay)*g and the denominator is sqrt(ms - mg^2 + eps).
    State as MindSpore: mean_square starts at ones, moment (and mean_grad) at zeros."""

    def __init__(self, params, learning_rate=0.1, decay: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-10,
                 use_locking: bool = False, centered: bool = False, loss_scale: float = 1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if decay < 0 or momentum < 0 or epsilon <= 0:
            raise ValueError(f"RMSProp: need decay >= 0, momentum >= 0 and epsilon > 0, got {decay}, {momentum}, "
                             f"{epsilon}")
        self.decay, self.momentum, self.epsilon, self.centered = float(decay), float(momentum), float(epsilon), \
            centered
        if centered:
            self.mg = self._state("mean_grad")
        self.ms = self._state("mean_square", "ones")
        self.moment = self._state("moment")

    def _update(self, i, p, g, lr):
        d = self.decay
        ms = F.add(F.mul(self.ms[i], d), F.mul(F.mul(g, g), 1.0 - d))
        F.assign(self.ms[i], ms)
        denom = ms
        if self.centered:
            mg = F.add(F.mul(self.mg[i], d), F.mul(g, 1.0 - d))
            F.assign(self.mg[i], mg)
            denom = F.sub(ms, F.mul(mg, mg))
        mom = F.add(F.mul(self.moment[i], self.momentum), F.div(F.mul(g, lr), F.sqrt(F.add(denom, self.epsilon))))
        F.assign(self.moment[i], mom)
        F.assign(p, F.sub(p, mom))


class Adagrad(Optimizer):
    """accum += g^2 (when update_slots); p -= lr * g / sqrt(accum). `accum` is the initial value."""

    def __init__(self, params, accum: float = 0.1, learning_rate=0.001, update_slots: bool = True,
                 loss_scale: float = 1.0, weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if accum < 0:
            raise ValueError(f"Adagrad: accum must be >= 0, got {accum}")
        self.update_slots = update_slots
        self.accum = self._state("accum")
        for s in self.accum:
            s.set_data(np.full(s.shape, accum, np.float32))

    def _update(self, i, p, g, lr):
        acc = self.accum[i]
        if self.update_slots:
            acc = F.add(acc, F.mul(g, g))
            F.assign(self.accum[i], acc)
        F.assign(p, F.sub(p, F.div(F.mul(g, lr), F.sqrt(acc))))
