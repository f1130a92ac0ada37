"""Metrics (MindSpore's `mindspore.train` metrics), computed on the host in numpy.

Each metric accumulates with `update(*inputs)` and reports with `eval()`; `clear()` resets it
and `metric(*inputs)` does all three. Inputs may be sporeflow Tensors, numpy arrays, lists or
numbers. `set_indexes([i, j])` picks which of the network's outputs `update` receives (the
`@rearrange_inputs` decorator applies it). The semantics follow MindSpore 2.x exactly
(mindspore-api.md section 3), including its quirks: Loss averages per-batch means, MAE/MSE
divide by the number of samples (not elements), Precision/Recall/F1 return per-class arrays
unless eval(average=True). Metric names in `metrics={'accuracy', 'loss'}` resolve through
get_metric_fn; they are case-sensitive as in MindSpore ('F1').
"""
from __future__ import annotations

import difflib
import functools
import sys
from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np
from ..frontend.tensor import Tensor


def _to_numpy(data: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.asnumpy()
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, (list, tuple, int, float, bool, np.generic)):
        return np.asarray(data)
    raise TypeError(f"metric input must be a Tensor, numpy array, list or number, got {type(data).__name__}")


def rearrange_inputs(func):
    """Decorator for `Metric.update`: pass only the inputs chosen by `set_indexes`, in that order."""
    @functools.wraps(func)
    def wrapper(self, *inputs):
        indexes = self.indexes
        if indexes:
            if max(indexes) >= len(inputs):
                raise ValueError(f"{type(self).__name__}.update: set_indexes({indexes}) needs at least "
                                 f"{max(indexes) + 1} inputs, got {len(inputs)}")
            inputs = tuple(inputs[i] for i in indexes)
        return func(self, *inputs)
    return wrapper


class Metric(metaclass=ABCMeta):
    """Base class: subclasses implement clear(), update(*inputs), eval()."""

    def __init__(self):
        self._indexes = None

    def _convert_data(self, data):
        return _to_numpy(data)

    @staticmethod
    def _check_onehot_data(data: np.ndarray) -> bool:
        """True when `data` (N, C, ...) is one-hot along axis 1."""
        if data.ndim > 1 and np.equal(data ** 2, data).all():
            shp = list(data.shape)
            shp.pop(1)
            return bool(np.equal(data.sum(axis=1), np.ones(shp)).all())
        return False

    @property
    def indexes(self):
        return getattr(self, "_indexes", None)

    def set_indexes(self, indexes):
        """Choose which outputs of the eval network `update` receives, e.g. set_indexes([0, 2])."""
        if not isinstance(indexes, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                     for i in indexes):
            raise ValueError(f"set_indexes expects a list of non-negative ints, got {indexes!r}")
        self._indexes = indexes
        return self

    def __call__(self, *inputs):
        self.clear()
        self.update(*inputs)
        return self.eval()

    @abstractmethod
    def clear(self):
        """Reset the accumulated state."""

    @abstractmethod
    def update(self, *inputs):
        """Accumulate one batch."""

    @abstractmethod
    def eval(self):
        """The metric over everything since clear()."""

    def _two_inputs(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        if len(inputs) != 2:
            raise ValueError(f"For '{type(self).__name__}.update', it needs 2 inputs (predicted value, true value), "
                             f"but got {len(inputs)}")
        return self._convert_data(inputs[0]), self._convert_data(inputs[1])

    def _scores_and_labels(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """y_pred (N, C) scores and y (N,) labels; a one-hot y becomes labels."""
        y_pred, y = self._two_inputs(inputs)
        if y_pred.ndim == y.ndim and self._check_onehot_data(y):
            y = y.argmax(axis=1)
        if y_pred.ndim != 2 or y.reshape(-1).shape[0] != y_pred.shape[0]:
            raise ValueError(f"{type(self).__name__}.update: y_pred must be (N, C) and y (N,), got {y_pred.shape} "
                             f"and {y.shape}")
        return y_pred, y

    def _class_count(self, y_pred: np.ndarray) -> int:
        """The number of classes (columns of y_pred), kept in `self._class_num`: it must not change
        between updates."""
        c = 1 if y_pred.ndim == 1 else y_pred.shape[1]
        if self._class_num == 0:
            self._class_num = c
        elif c != self._class_num:
            raise ValueError(f"{type(self).__name__}.update: class number changed from {self._class_num} to {c} "
                             "between updates")
        return c

    def _empty(self) -> RuntimeError:
        return RuntimeError(f"'{type(self).__name__}' can not be calculated, because the number of samples is 0: "
                            "call update() with a non-empty batch before eval()")


class EvaluationBase(Metric):
    """Base of classification-style metrics: eval_type 'classification' or 'multilabel'."""

    def __init__(self, eval_type: str):
        super().__init__()
        if eval_type not in ("classification", "multilabel"):
            raise ValueError(f"eval_type must be 'classification' or 'multilabel', got {eval_type!r}")
        self._type = eval_type

    def _check_shape(self, y_pred: np.ndarray, y: np.ndarray) -> None:
        name = type(self).__name__
        if self._type == "classification":
            if y_pred.ndim != y.ndim + 1:
                raise ValueError(f"{name}.update (classification): y_pred must have one dimension more than y "
                                 f"(y_pred (N, C), y (N,) labels or (N, C) one-hot), got y_pred {y_pred.shape} and "
                                 f"y {y.shape}")
            if y_pred.shape[0] != y.shape[0]:
                raise ValueError(f"{name}.update: y_pred has {y_pred.shape[0]} samples but y has {y.shape[0]}")
        elif y_pred.shape != y.shape:
            raise ValueError(f"{name}.update (multilabel): y_pred and y must have the same shape, got "
                             f"{y_pred.shape} and {y.shape}")

    def _check_value(self, y_pred: np.ndarray, y: np.ndarray) -> None:
        name = type(self).__name__
        if self._type == "classification":
            if y.size and (np.any(y != np.round(y)) or y.min() < 0 or y.max() >= y_pred.shape[1]):
                raise ValueError(f"{name}.update: labels must be integers in [0, {y_pred.shape[1]}) for "
                                 f"{y_pred.shape[1]} classes, got values in [{y.min()}, {y.max()}]")
        elif not (np.isin(y_pred, (0, 1)).all() and np.isin(y, (0, 1)).all()):
            raise ValueError(f"{name}.update (multilabel): y_pred and y must contain only 0 and 1")

    def _prepare(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        y_pred, y = self._two_inputs(inputs)
        if self._type == "classification" and y_pred.ndim == y.ndim and self._check_onehot_data(y):
            y = y.argmax(axis=1)
        self._check_shape(y_pred, y)
        self._check_value(y_pred, y)
        self._class_count(y_pred)
        return y_pred, y


class Accuracy(EvaluationBase):
    """correct / total. classification: argmax(y_pred, 1) == y; multilabel: exact row match."""

    def __init__(self, eval_type: str = "classification"):
        super().__init__(eval_type)
        self.clear()

    def clear(self):
        self._correct_num, self._total_num, self._class_num = 0, 0, 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._prepare(inputs)
        if self._type == "classification":
            result = np.equal(y_pred.argmax(axis=1), y).reshape(-1)
        else:
            c = self._class_num
            last = y_pred.ndim - 1
            result = np.equal(y_pred.swapaxes(1, last).reshape(-1, c), y.swapaxes(1, last).reshape(-1, c)).all(axis=1)
        self._correct_num += int(result.sum())
        self._total_num += result.shape[0]

    def eval(self) -> float:
        if self._total_num == 0:
            raise self._empty()
        return np.float64(self._correct_num / self._total_num)


class Loss(Metric):
    """Mean of per-batch mean losses (not weighted by batch size, as in MindSpore)."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._sum_loss, self._total_num = 0.0, 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 1:
            raise ValueError(f"For 'Loss.update', it needs 1 input (loss), but got {len(inputs)}")
        loss = self._convert_data(inputs[0]).astype(np.float64)
        if loss.ndim == 0:
            loss = loss.reshape(1)
        if loss.ndim != 1:
            raise ValueError(f"For 'Loss.update', the loss must be 0-d or 1-d, got shape {loss.shape}")
        self._sum_loss += float(loss.mean(-1))
        self._total_num += 1

    def eval(self) -> float:
        if self._total_num == 0:
            raise RuntimeError("'Loss' can not be calculated: update() was not called since clear()")
        return self._sum_loss / self._total_num


class _ErrorSum(Metric):
    """sum(f(y - y_pred)) / number of samples (first dimension of y); subclasses set `_fn`."""

    def __init__(self):
        super().__init__()
        self.clear()

    def clear(self):
        self._error_sum, self._samples_num = 0.0, 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._two_inputs(inputs)
        if y.size != y_pred.size:
            raise ValueError(f"{type(self).__name__}.update: y {y.shape} cannot be reshaped to y_pred {y_pred.shape}")
        err = self._fn(y.reshape(y_pred.shape).astype(np.float64) - y_pred.astype(np.float64))
        self._error_sum += float(err.sum())
        self._samples_num += y.shape[0] if y.ndim else 1

    def eval(self) -> float:
        if self._samples_num == 0:
            raise self._empty()
        return self._error_sum / self._samples_num


class MAE(_ErrorSum):
    """Mean absolute error: sum(|y - y_pred|) / N."""
    _fn = staticmethod(np.abs)


class MSE(_ErrorSum):
    """Mean squared error: sum((y - y_pred)^2) / N."""
    _fn = staticmethod(np.square)


class _PrecisionRecall(EvaluationBase):
    """Per-class true positives over predicted (precision) or actual (recall) positives."""
    _denominator = "positives"

    def __init__(self, eval_type: str = "classification"):
        super().__init__(eval_type)
        self.eps = sys.float_info.min
        self.clear()

    def clear(self):
        self._class_num = 0
        self._true_positives = 0 if self._type == "classification" else np.empty(0)
        self._denom = 0 if self._type == "classification" else np.empty(0)
        self._true_positives_average = 0.0
        self._denom_average = 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._prepare(inputs)
        c = self._class_num
        if self._type == "classification":
            y = np.eye(c)[y.reshape(-1).astype(np.int64)]
            y_pred = np.eye(c)[y_pred.argmax(axis=1).reshape(-1)]
        else:
            # MindSpore's multilabel variant works per sample: (C, N) summed over classes
            y_pred = y_pred.swapaxes(1, 0).reshape(c, -1)
            y = y.swapaxes(1, 0).reshape(c, -1)
        true_positives = (y * y_pred).sum(axis=0)
        denom = (y_pred if self._denominator == "positives" else y).sum(axis=0)
        if self._type == "multilabel":  # per-sample values, concatenated (MindSpore's definition)
            self._true_positives_average += float(np.sum(true_positives / (denom + self.eps)))
            self._denom_average += len(denom)
            self._true_positives = np.concatenate((np.reshape(self._true_positives, -1), true_positives))
            self._denom = np.concatenate((np.reshape(self._denom, -1), denom))
        else:
            self._true_positives = self._true_positives + true_positives
            self._denom = self._denom + denom

    def eval(self, average: bool = False):
        if not isinstance(average, bool):
            raise TypeError(f"{type(self).__name__}.eval: average must be a bool, got {type(average).__name__}")
        if self._class_num == 0:
            raise self._empty()
        if self._type == "multilabel" and average:
            return self._true_positives_average / (self._denom_average + self.eps)
        result = self._true_positives / (self._denom + self.eps)
        return result.mean() if average else result


class Precision(_PrecisionRecall):
    """TP / (TP + FP) per class; eval(average=True) gives the mean over classes."""
    _denominator = "positives"


class Recall(_PrecisionRecall):
    """TP / (TP + FN) per class; eval(average=True) gives the mean over classes."""
    _denominator = "actual"


class Fbeta(Metric):
    """(1 + b^2) TP / (b^2 (TP + FN) + TP + FP) per class."""

    def __init__(self, beta: float):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"Fbeta: beta must be a positive number, got {beta!r}")
        self.eps = sys.float_info.min
        self.beta = float(beta)
        self.clear()

    def clear(self):
        self._true_positives, self._actual_positives, self._positives, self._class_num = 0, 0, 0, 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._scores_and_labels(inputs)
        c = self._class_count(y_pred)
        y = y.reshape(-1).astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= c):
            raise ValueError(f"{type(self).__name__}.update: labels must be in [0, {c}), got [{y.min()}, {y.max()}]")
        y = np.eye(c)[y]
        y_pred = np.eye(c)[y_pred.argmax(axis=1)]
        self._true_positives = self._true_positives + (y * y_pred).sum(axis=0)
        self._actual_positives = self._actual_positives + y.sum(axis=0)
        self._positives = self._positives + y_pred.sum(axis=0)

    def eval(self, average: bool = False):
        if not isinstance(average, bool):
            raise TypeError(f"{type(self).__name__}.eval: average must be a bool")
        if self._class_num == 0:
            raise self._empty()
        b2 = self.beta ** 2
        fbeta = (1.0 + b2) * self._true_positives / (b2 * self._actual_positives + self._positives + self.eps)
        return fbeta.mean() if average else fbeta


class F1(Fbeta):
    """Fbeta with beta = 1."""

    def __init__(self):
        super().__init__(1.0)


class TopKCategoricalAccuracy(Metric):
    """Fraction of samples whose label is among the k highest scores."""

    def __init__(self, k: int):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKCategoricalAccuracy: k must be a positive int, got {k!r}")
        self.k = k
        self.clear()

    def clear(self):
        self._correct_num, self._samples_num = 0, 0

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._scores_and_labels(inputs)
        indices = np.argsort(-y_pred, axis=1, kind="stable")[:, :self.k]
        correct = np.equal(indices, y.reshape(-1, 1)).any(axis=1)
        self._correct_num += int(correct.sum())
        self._samples_num += y_pred.shape[0]

    def eval(self) -> float:
        if self._samples_num == 0:
            raise self._empty()
        return self._correct_num / self._samples_num


class Top1CategoricalAccuracy(TopKCategoricalAccuracy):
    def __init__(self):
        super().__init__(1)


class Top5CategoricalAccuracy(TopKCategoricalAccuracy):
    def __init__(self):
        super().__init__(5)


class ConfusionMatrix(Metric):
    """num_classes x num_classes counts, rows = true class, columns = predicted class.

    normalize: 'no_norm', 'target' (rows sum to 1), 'prediction' (columns), 'all'. A row or
    column with no samples normalizes to NaN, as in MindSpore. Predictions of the same rank as
    the labels are thresholded (>= threshold) when they are floats."""
    TARGET, PREDICTION, ALL, NO_NORM = "target", "prediction", "all", "no_norm"

    def __init__(self, num_classes: int, normalize: str = NO_NORM, threshold: float = 0.5):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be a positive int, got {num_classes!r}")
        if normalize not in (self.TARGET, self.PREDICTION, self.ALL, self.NO_NORM):
            raise ValueError(f"ConfusionMatrix: normalize must be one of 'no_norm', 'target', 'prediction', 'all', "
                             f"got {normalize!r}")
        self.num_classes, self.normalize, self.threshold = num_classes, normalize, float(threshold)
        self.clear()

    def clear(self):
        self.confusion_matrix = np.zeros((self.num_classes, self.num_classes))
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        y_pred, y = self._two_inputs(inputs)
        if y_pred.ndim == y.ndim + 1:
            y_pred = np.argmax(y_pred, axis=1)
        elif y_pred.ndim == y.ndim:
            if y_pred.dtype.kind == "f":
                y_pred = (y_pred >= self.threshold).astype(np.int64)
        else:
            raise ValueError(f"ConfusionMatrix.update: y_pred must have the rank of y or one more, got {y_pred.shape} "
                             f"and {y.shape}")
        y, y_pred = y.reshape(-1).astype(np.int64), y_pred.reshape(-1).astype(np.int64)
        n = self.num_classes
        for what, v in (("y", y), ("y_pred", y_pred)):
            if v.size and (v.min() < 0 or v.max() >= n):
                raise ValueError(f"ConfusionMatrix.update: {what} has class {v.min() if v.min() < 0 else v.max()} "
                                 f"outside [0, {n})")
        self.confusion_matrix += np.bincount(y * n + y_pred, minlength=n * n).reshape(n, n)
        self._is_update = True

    def eval(self) -> np.ndarray:
        if not self._is_update:
            raise RuntimeError("'ConfusionMatrix' can not be calculated: update() was not called since clear()")
        cm = self.confusion_matrix.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.normalize == self.TARGET:
                return cm / cm.sum(axis=1, keepdims=True)
            if self.normalize == self.PREDICTION:
                return cm / cm.sum(axis=0, keepdims=True)
            if self.normalize == self.ALL:
                return cm / cm.sum()
        return cm


_FACTORY: dict[str, type] = {
    "accuracy": Accuracy, "acc": Accuracy, "precision": Precision, "recall": Recall, "F1": F1,
    "topk": TopKCategoricalAccuracy, "top_1_accuracy": Top1CategoricalAccuracy,
    "top_5_accuracy": Top5CategoricalAccuracy, "mae": MAE, "mse": MSE, "loss": Loss,
    "confusion_matrix": ConfusionMatrix,
}
# MindSpore names sporeflow does not implement: asking for one says so, rather than a bare KeyError.
_NOT_IMPLEMENTED = ("dice", "roc", "auc", "bleu_score", "cosine_similarity", "occlusion_sensitivity",
                    "hausdorff_distance", "mean_surface_distance", "root_mean_square_distance", "perplexity",
                    "confusion_matrix_metric")


def names() -> list[str]:
    """The metric names get_metric_fn accepts."""
    return sorted(_FACTORY)


def get_metric_fn(name: str, *args, **kwargs) -> Metric:
    """A new metric from its name, e.g. get_metric_fn('accuracy') or get_metric_fn('topk', 3)."""
    if name not in _FACTORY:
        if name in _NOT_IMPLEMENTED:
            raise NotImplementedError(f"metric '{name}' exists in MindSpore but is not implemented in sporeflow; "
                                      f"available: {names()}")
        close = difflib.get_close_matches(name, list(_FACTORY), n=1, cutoff=0.5) if isinstance(name, str) else []
        if isinstance(name, str) and not close:
            close = [k for k in _FACTORY if k.lower() == name.lower()]
        hint = f" (did you mean '{close[0]}'? names are case-sensitive)" if close else ""
        raise KeyError(f"Unsupported metric name {name!r}{hint}; available: {names()}")
    return _FACTORY[name](*args, **kwargs)


def get_metrics(metrics) -> dict[str, Metric] | None:
    """Normalize Model's `metrics` argument: {name: Metric} or a set/list of names -> {name: Metric}."""
    if metrics is None:
        return None
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            if not isinstance(v, Metric):
                raise TypeError(f"metrics['{k}'] must be a Metric, got {type(v).__name__}")
        return dict(metrics)
    if isinstance(metrics, (set, frozenset, list, tuple)):
        out = {}
        for name in (sorted(metrics) if isinstance(metrics, (set, frozenset)) else metrics):
            if not isinstance(name, str):
                raise TypeError(f"metric names must be str, got {name!r}")
            out[name] = get_metric_fn(name)
        return out
    raise TypeError(f"metrics must be a dict {{name: Metric}} or a set of names, got {type(metrics).__name__}")


__all__ = ["Metric", "EvaluationBase", "rearrange_inputs", "Accuracy", "Loss", "MAE", "MSE", "Precision", "Recall",
           "Fbeta", "F1", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy", "Top5CategoricalAccuracy",
           "ConfusionMatrix", "names", "get_metric_fn", "get_metrics"]
