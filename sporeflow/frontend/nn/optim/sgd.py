"""SGD (with optional momentum/dampening/nesterov) and Momentum, with MindSpore's update rules."""
from __future__ import annotations

from ... import functional as F
from .optimizer import Optimizer


class SGD(Optimizer):
    """v = g on the first step, then v = u*v + (1-dampening)*g; p -= lr*v (nesterov: lr*(g + u*v)).
    Weight decay is added to the gradient of every parameter, as MindSpore's SGD kernel does."""
    _coupled_decay = False

    def __init__(self, params, learning_rate=0.1, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay=0.0, nesterov: bool = False, loss_scale: float = 1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if momentum < 0 or dampening < 0:
            raise ValueError(f"SGD: momentum and dampening must be >= 0, got {momentum}, {dampening}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening == 0")
        self.momentum_value, self.dampening, self.nesterov = float(momentum), float(dampening), nesterov
        self.accum = self._state("accum")
        self.stat = self._state("stat", "ones")
        self._sgd_decay = [float(weight_decay) if not self.is_group else wd for wd in self._weight_decay]

    def _update(self, i, p, g, lr):
        wd = self._sgd_decay[i]
        if wd > 0:
            g = F.add(g, F.mul(p, wd))
        u = self.momentum_value
        if u > 0:
            acc, stat = self.accum[i], self.stat[i]
            new_acc = F.select(F.greater(stat, 0.0), g, F.add(F.mul(acc, u), F.mul(g, 1.0 - self.dampening)))
            F.assign(acc, new_acc)
            g = F.add(g, F.mul(new_acc, u)) if self.nesterov else new_acc
        F.assign(self.stat[i], F.zeros_like(self.stat[i]))
        F.assign(p, F.sub(p, F.mul(g, lr)))


class Momentum(Optimizer):
    """v = u*v + g; p -= lr*v (use_nesterov: p -= lr*g + lr*u*v)."""

    def __init__(self, params, learning_rate, momentum: float, weight_decay=0.0, loss_scale: float = 1.0,
                 use_nesterov: bool = False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if momentum < 0:
            raise ValueError(f"Momentum: momentum must be >= 0, got {momentum}")
        self.use_nesterov = use_nesterov
        self._scalar("momentum", float(momentum))
        self.moments = self._state("moments")

    def _update(self, i, p, g, lr):
        u = self.momentum
        v = F.add(F.mul(self.moments[i], u), g)
        F.assign(self.moments[i], v)
        step = F.add(F.mul(g, lr), F.mul(F.mul(v, u), lr)) if self.use_nesterov else F.mul(v, lr)
        F.assign(p, F.sub(p, step))
