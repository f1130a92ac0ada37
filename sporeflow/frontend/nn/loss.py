"""Loss Cells (`LossBase(reduction)` with `get_loss`). Note MindSpore's defaults:
SoftmaxCrossEntropyWithLogits is sparse=False, reduction='none'; SmoothL1Loss is reduction='none'."""
from __future__ import annotations

from ...ir import dtypes as D
from .. import functional as F
from ..cell import Cell
from ..functional.nn_ops import check_class_targets
from ._check import shape_error

_REDUCTIONS = ("mean", "sum", "none")


class LossBase(Cell):
    def __init__(self, reduction: str = "mean", dtype=None):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def get_loss(self, x, weights=1.0):
        """Weight `x`, then reduce it by `self.reduction`."""
        x = F.cast(x, D.float32) if not x.dtype.is_float else x
        if not (isinstance(weights, (int, float)) and weights == 1.0):
            x = F.mul(x, weights)
        if self.reduction == "mean":
            return F.mean(x)
        if self.reduction == "sum":
            return F.sum(x)
        return x


class SoftmaxCrossEntropyWithLogits(LossBase):
    """-sum(labels * log_softmax(logits)) per row; sparse=True takes class indices."""

    def __init__(self, sparse: bool = False, reduction: str = "none"):
        super().__init__(reduction)
        self.sparse = sparse

    def construct(self, logits, labels):
        if logits.ndim != 2:
            raise shape_error(f"SoftmaxCrossEntropyWithLogits: logits must be [N, C], got shape {logits.shape}")
        if self.sparse:
            if not labels.dtype.is_int:
                raise TypeError(f"SoftmaxCrossEntropyWithLogits(sparse=True): labels must be integer class indices, "
                                f"got {labels.dtype.name}")
            if tuple(labels.shape) != (logits.shape[0],):
                raise shape_error(f"SoftmaxCrossEntropyWithLogits(sparse=True): labels shape {labels.shape} does "
                                 f"not match logits {logits.shape}; expected ({logits.shape[0]},)")
            labels = F.one_hot(labels, logits.shape[1], 1.0, 0.0)
        elif tuple(labels.shape) != tuple(logits.shape):
            raise shape_error(f"SoftmaxCrossEntropyWithLogits(sparse=False): labels shape {labels.shape} must equal "
                             f"logits shape {logits.shape} (pass sparse=True for class indices)")
        return self.get_loss(F.softmax_cross_entropy(logits, labels))


class CrossEntropyLoss(LossBase):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def construct(self, logits, labels):
        check_class_targets("CrossEntropyLoss", logits, labels, probabilities=True)
        return F.cross_entropy(logits, labels, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(LossBase):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def construct(self, logits, labels):
        check_class_targets("NLLLoss", logits, labels, probabilities=False)
        return F.nll_loss(logits, labels, self.weight, self.ignore_index, self.reduction)


class MSELoss(LossBase):
    def construct(self, logits, labels):
        d = F.sub(logits, labels)
        return self.get_loss(F.mul(d, d))


class L1Loss(LossBase):
    def construct(self, logits, labels):
        return self.get_loss(F.abs(F.sub(logits, labels)))


class SmoothL1Loss(LossBase):
    def __init__(self, beta: float = 1.0, reduction: str = "none"):
        super().__init__(reduction)
        if beta <= 0:
            raise ValueError(f"SmoothL1Loss: beta must be > 0, got {beta}")
        self.beta = float(beta)

    def construct(self, logits, labels):
        return F.smooth_l1_loss(logits, labels, self.beta, self.reduction)


class BCEWithLogitsLoss(LossBase):
    def __init__(self, reduction: str = "mean", weight=None, pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def construct(self, logits, labels):
        return F.binary_cross_entropy_with_logits(logits, labels, self.weight, self.pos_weight, self.reduction)


class BCELoss(LossBase):
    """-weight * (y * log(x) + (1 - y) * log(1 - x)) on probabilities x; the logs are clamped at
    -100 as MindSpore's BinaryCrossEntropy kernel does, so x = 0 or 1 gives a finite loss."""

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = weight

    def construct(self, logits, labels):
        if tuple(logits.shape) != tuple(labels.shape):
            raise shape_error(f"BCELoss: logits shape {logits.shape} and labels shape {labels.shape} must match")
        lo = F.maximum(F.log(logits), -100.0)
        l1 = F.maximum(F.log(F.sub(1.0, logits)), -100.0)
        loss = F.neg(F.add(F.mul(labels, lo), F.mul(F.sub(1.0, labels), l1)))
        return self.get_loss(loss, 1.0 if self.weight is None else self.weight)


class KLDivLoss(LossBase):
    """target * (log(target) - logits) with logits already log-probabilities (0 where target is 0).
    reduction 'mean' averages every element, 'batchmean' divides the sum by the batch size."""

    def __init__(self, reduction: str = "mean"):
        if reduction not in _REDUCTIONS + ("batchmean",):
            raise ValueError(f"KLDivLoss: reduction must be one of {_REDUCTIONS + ('batchmean',)}, got {reduction!r}")
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.kl_reduction = reduction

    def construct(self, logits, labels):
        if tuple(logits.shape) != tuple(labels.shape):
            raise shape_error(f"KLDivLoss: logits shape {logits.shape} and labels shape {labels.shape} must match")
        pos = F.greater(labels, 0.0)
        safe = F.select(pos, labels, F.ones_like(labels))
        loss = F.select(pos, F.mul(labels, F.sub(F.log(safe), logits)), F.zeros_like(logits))
        out = self.get_loss(loss)
        return F.div(out, logits.shape[0]) if self.kl_reduction == "batchmean" and logits.ndim else out


class HuberLoss(LossBase):
    """0.5 * d^2 where |d| < delta, else delta * (|d| - 0.5 * delta), d = logits - labels."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def construct(self, logits, labels):
        d = F.abs(F.sub(logits, labels))
        quad = F.mul(F.mul(d, d), 0.5)
        lin = F.mul(F.sub(d, 0.5 * self.delta), self.delta)
        return self.get_loss(F.select(F.less(d, self.delta), quad, lin))


__all__ = ["LossBase", "BCELoss", "KLDivLoss", "HuberLoss", "SoftmaxCrossEntropyWithLogits", "CrossEntropyLoss",
           "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "BCEWithLogitsLoss"]
