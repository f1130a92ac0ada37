"""Adam (bias-corrected through beta1_power/beta2_power, L2 weight decay on the gradient; with
use_amsgrad the denominator uses vhat = max(vhat, v), MindSpore's ApplyAdamWithAmsgrad) and
AdamWeightDecay (decoupled decay, no bias correction: MindSpore's AdamWeightDecay rule)."""
from __future__ import annotations

from ... import functional as F
from .optimizer import Optimizer


def _check_betas(who: str, beta1: float, beta2: float, eps: float) -> None:
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0 and eps > 0):
        raise ValueError(f"{who}: need 0 <= beta1, beta2 < 1 and eps > 0, got {beta1}, {beta2}, {eps}")


class Adam(Optimizer):
    def __init__(self, params, learning_rate=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 use_locking: bool = False, use_nesterov: bool = False, weight_decay=0.0, loss_scale: float = 1.0,
                 use_amsgrad: bool = False):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        _check_betas("Adam", beta1, beta2, eps)
        if use_amsgrad and use_nesterov:
            raise ValueError("Adam: use_amsgrad and use_nesterov cannot both be True")
        self.use_amsgrad = use_amsgrad
        self.beta1, self.beta2, self.eps, self.use_nesterov = float(beta1), float(beta2), float(eps), use_nesterov
        self.moment1 = self._state("moment1")
        self.moment2 = self._state("moment2")
        if use_amsgrad:
            self.vhat = self._state("vhat")
        self._scalar("beta1_power", 1.0)
        self._scalar("beta2_power", 1.0)

    def _begin_step(self):
        b1p = F.mul(self.beta1_power, self.beta1)
        b2p = F.mul(self.beta2_power, self.beta2)
        F.assign(self.beta1_power, b1p)
        F.assign(self.beta2_power, b2p)
        self._corr = F.div(F.sqrt(F.sub(1.0, b2p)), F.sub(1.0, b1p))

    def _update(self, i, p, g, lr):
        b1, b2 = self.beta1, self.beta2
        m = F.add(self.moment1[i], F.mul(F.sub(g, self.moment1[i]), 1.0 - b1))
        v = F.add(self.moment2[i], F.mul(F.sub(F.mul(g, g), self.moment2[i]), 1.0 - b2))
        F.assign(self.moment1[i], m)
        F.assign(self.moment2[i], v)
        num = F.add(F.mul(m, b1), F.mul(g, 1.0 - b1)) if self.use_nesterov else m
        if self.use_amsgrad:
            v = F.maximum(self.vhat[i], v)
            F.assign(self.vhat[i], v)
        step = F.div(F.mul(num, F.mul(lr, self._corr)), F.add(F.sqrt(v), self.eps))
        F.assign(p, F.sub(p, step))


class AdamWeightDecay(Optimizer):
    """m, v as Adam; p -= lr * (m / (sqrt(v) + eps) + weight_decay * p). Decay skips 'beta'/'gamma'
    parameters unless groups say otherwise."""
    _coupled_decay = False

    def __init__(self, params, learning_rate=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
                 weight_decay=0.0):
        super().__init__(learning_rate, params, weight_decay)
        _check_betas("AdamWeightDecay", beta1, beta2, eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.moments1 = self._state("adam_m")
        self.moments2 = self._state("adam_v")

    def _update(self, i, p, g, lr):
        b1, b2 = self.beta1, self.beta2
        m = F.add(F.mul(self.moments1[i], b1), F.mul(g, 1.0 - b1))
        v = F.add(F.mul(self.moments2[i], b2), F.mul(F.mul(g, g), 1.0 - b2))
        F.assign(self.moments1[i], m)
        F.assign(self.moments2[i], v)
        upd = F.div(m, F.add(F.sqrt(v), self.eps))
        wd = self._weight_decay[i]
        if wd > 0:
            upd = F.add(upd, F.mul(p, wd))
        F.assign(p, F.sub(p, F.mul(upd, lr)))


AdamW = AdamWeightDecay
