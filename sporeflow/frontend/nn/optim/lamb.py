"""Lamb (layer-wise adaptive moments, MindSpore's rule): Adam moments with bias correction from
global_step, decoupled weight decay, and a per-parameter trust ratio ||p|| / ||update|| clipped
to [0, 10] (1 where ||p|| or ||g|| is zero)."""
from __future__ import annotations

from ....ir import dtypes as D
from ... import functional as F
from .adam import _check_betas
from .optimizer import Optimizer


class Lamb(Optimizer):
    _coupled_decay = False

    def __init__(self, params, learning_rate, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
                 weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        _check_betas("Lamb", beta1, beta2, eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.moments1 = self._state("lamb_m")
        self.moments2 = self._state("lamb_v")

    def _begin_step(self):
        t = F.reshape(F.cast(F.add(self.global_step, 1), D.float32), ())
        self._c1 = F.sub(1.0, F.pow(self.beta1, t))
        self._c2 = F.sub(1.0, F.pow(self.beta2, t))

    def _update(self, i, p, g, lr):
        b1, b2 = self.beta1, self.beta2
        m = F.add(F.mul(self.moments1[i], b1), F.mul(g, 1.0 - b1))
        v = F.add(F.mul(self.moments2[i], b2), F.mul(F.mul(g, g), 1.0 - b2))
        F.assign(self.moments1[i], m)
        F.assign(self.moments2[i], v)
        upd = F.div(F.div(m, self._c1), F.add(F.sqrt(F.div(v, self._c2)), self.eps))
        wd = self._weight_decay[i]
        if wd > 0:
            upd = F.add(upd, F.mul(p, wd))
        w_norm, g_norm, u_norm = F.norm(p), F.norm(g), F.norm(upd)
        one = F.ones_like(w_norm)
        ratio = F.select(F.greater(w_norm, 0.0), F.select(F.greater(g_norm, 0.0), F.div(w_norm, u_norm), one), one)
        ratio = F.clip_by_value(ratio, 0.0, 10.0)
        F.assign(p, F.sub(p, F.mul(upd, F.mul(lr, ratio))))
