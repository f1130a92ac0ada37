"""Callbacks (`mindspore.train.Callback` and the built-ins), RunContext and the manager Model uses.

The hooks and their order are MindSpore 2.x's (mindspore-api.md section 2): the `on_train_*` and
`on_eval_*` hooks delegate by default to the legacy `begin/epoch_begin/step_begin/step_end/
epoch_end/end`, which the built-ins (LossMonitor, TimeMonitor) implement.
ModelCheckpoint/CheckpointConfig live in callback_checkpoint.py, ProgressBar in progress.py.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable

import numpy as np

from ..frontend.tensor import Tensor
from ..frontend.tensor import Parameter

_LEGACY = ("begin", "epoch_begin", "step_begin", "step_end", "epoch_end", "end")


class Callback:
    """Base class. Override the `on_train_*` / `on_eval_*` hooks (each takes a RunContext)."""

    def __enter__(self) -> "Callback":
        return self

    def __exit__(self, *err) -> None:
        pass

    # legacy hooks (what the new ones call by default)
    def begin(self, run_context): pass
    def epoch_begin(self, run_context): pass
    def step_begin(self, run_context): pass
    def step_end(self, run_context): pass
    def epoch_end(self, run_context): pass
    def end(self, run_context): pass

    def on_train_begin(self, run_context): self.begin(run_context)
    def on_train_epoch_begin(self, run_context): self.epoch_begin(run_context)
    def on_train_step_begin(self, run_context): self.step_begin(run_context)
    def on_train_step_end(self, run_context): self.step_end(run_context)
    def on_train_epoch_end(self, run_context): self.epoch_end(run_context)
    def on_train_end(self, run_context): self.end(run_context)

    def on_eval_begin(self, run_context): self.begin(run_context)
    def on_eval_epoch_begin(self, run_context): self.epoch_begin(run_context)
    def on_eval_step_begin(self, run_context): self.step_begin(run_context)
    def on_eval_step_end(self, run_context): self.step_end(run_context)
    def on_eval_epoch_end(self, run_context): self.epoch_end(run_context)
    def on_eval_end(self, run_context): self.end(run_context)


class InternalCallbackParam(dict):
    """The `cb_params` dict, with attribute access (users may add their own fields)."""

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"cb_params has no field {key!r}") from None

    def __setattr__(self, key: str, value) -> None:
        self[key] = value


class RunContext:
    def __init__(self, original_args):
        if not isinstance(original_args, dict):
            raise TypeError(f"RunContext: original_args must be a dict, got {type(original_args).__name__}")
        self._original_args = original_args
        self._stop_requested = False

    def original_args(self):
        return self._original_args

    def request_stop(self) -> None:
        self._stop_requested = True

    def get_stop_requested(self) -> bool:
        return self._stop_requested


class CallbackManager:
    """Calls one hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def __getattr__(self, hook: str) -> Callable:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(run_context):
            for cb in self.callbacks:
                getattr(cb, hook)(run_context)
        return call


def normalize_callbacks(callbacks) -> list[Callback]:
    if callbacks is None:
        return []
    cbs = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    for cb in cbs:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
    return cbs


def _legacy_user_hooks(cb: Callback) -> list[str]:
    found = []
    for cls in type(cb).__mro__:
        if cls in (Callback, object) or cls.__module__.startswith("sporeflow."):
            continue
        found += [n for n in _LEGACY if n in cls.__dict__]
    return sorted(set(found))


def check_legacy(callbacks: list[Callback], in_fit: bool) -> None:
    """User callbacks with legacy hook names: a warning in train/eval, a ValueError in fit (as MindSpore)."""
    for cb in callbacks:
        names = _legacy_user_hooks(cb)
        if not names:
            continue
        msg = (f"callback {type(cb).__name__} defines the legacy hooks {names}; use on_train_*/on_eval_* "
               f"(e.g. on_train_step_end instead of step_end)")
        if in_fit:
            raise ValueError(msg + ": Model.fit does not accept legacy hooks, because they would also run during "
                             "the validation passes")
        warnings.warn(msg, DeprecationWarning, stacklevel=3)


def is_internal(cb: Callback) -> bool:
    return type(cb).__module__.startswith("sporeflow.runtime.") and not isinstance(cb, TimeMonitor)


def loss_value(outputs) -> float:
    """The scalar loss of `net_outputs`: the first element of a tuple, the mean of a tensor."""
    if isinstance(outputs, (tuple, list)) and outputs:
        outputs = outputs[0]
    if isinstance(outputs, Tensor):
        return float(np.mean(outputs.asnumpy()))
    if isinstance(outputs, (int, float, np.number, np.ndarray)):
        return float(np.mean(outputs))
    raise TypeError(f"cannot read a loss from net_outputs of type {type(outputs).__name__}")


def step_in_epoch(cb_params) -> int:
    return (cb_params.cur_step_num - 1) % max(cb_params.batch_num, 1) + 1


# ---- built-ins ---------------------------------------------------------------------------------------
class LossMonitor(Callback):
    """Prints "epoch: E step: S, loss is L" every `per_print_times` steps (counted globally, as
    MindSpore does); a NaN/Inf loss stops training with a ValueError."""

    def __init__(self, per_print_times: int = 1):
        if not isinstance(per_print_times, int) or isinstance(per_print_times, bool) or per_print_times < 0:
            raise ValueError(f"LossMonitor: per_print_times must be an int >= 0, got {per_print_times!r}")
        self._per_print_times = per_print_times
        self._last_print_time = 0

    def on_train_begin(self, run_context):
        self._last_print_time = run_context.original_args().cur_step_num

    def step_end(self, run_context):
        cb = run_context.original_args()
        loss = loss_value(cb.net_outputs)
        s = step_in_epoch(cb)
        if math.isnan(loss) or math.isinf(loss):
            raise ValueError(f"In epoch: {cb.cur_epoch_num} step: {s}, loss is NAN or INF, training process cannot "
                             "continue, terminating training.")
        if self._per_print_times and cb.cur_step_num - self._last_print_time >= self._per_print_times:
            self._last_print_time = cb.cur_step_num
            print(f"epoch: {cb.cur_epoch_num} step: {s}, loss is {loss}", flush=True)

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        metrics = cb.get("metrics")
        if metrics:
            print(f"Eval result: epoch {cb.cur_epoch_num}, metrics: {metrics}", flush=True)


class TimeMonitor(Callback):
    """Prints "Train epoch time: X ms, per step time: Y ms" ("Eval ..." in eval) at each epoch end."""

    def __init__(self, data_size: int | None = None, data_time: bool = False):
        if data_size is not None and (not isinstance(data_size, int) or data_size <= 0):
            raise ValueError(f"TimeMonitor: data_size must be a positive int or None, got {data_size!r}")
        self.data_size, self.data_time = data_size, data_time
        self.epoch_time = 0.0
        self._timers: dict[str, list] = {}

    # one timer per mode: in fit, the validation pass runs inside the train epoch
    def epoch_begin(self, run_context):
        mode = run_context.original_args().get("mode", "train")
        self._timers[mode] = [time.perf_counter(), time.perf_counter(), 0.0]   # epoch start, data start, data sum

    def step_begin(self, run_context):
        t = self._timers.get(run_context.original_args().get("mode", "train"))
        if t is not None and t[1] is not None:
            t[2] += time.perf_counter() - t[1]
            t[1] = None

    def step_end(self, run_context):
        t = self._timers.get(run_context.original_args().get("mode", "train"))
        if t is not None:
            t[1] = time.perf_counter()

    def epoch_end(self, run_context):
        cb = run_context.original_args()
        mode = cb.get("mode", "train")
        t = self._timers.pop(mode, None)
        if t is None:
            return
        ms = (time.perf_counter() - t[0]) * 1000
        self.epoch_time = ms
        steps = (self.data_size if mode == "train" else None) or cb.batch_num or 1
        line = f"{str(mode).title()} epoch time: {ms:5.3f} ms, per step time: {ms / steps:5.3f} ms"
        if self.data_time:
            line += f" (data time: {t[2] * 1000 / steps:5.3f} ms)"
        print(line, flush=True)


class History(Callback):
    """history = {"net_output": [mean loss per epoch], <metric>: [...]}; epoch = {"epoch": [1, 2, ...]}."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: dict[str, list] = {}

    def on_train_begin(self, run_context):
        self.epoch.setdefault("epoch", [])
        self._losses: list[float] = []

    def on_train_epoch_begin(self, run_context):
        self._losses = []

    def on_train_step_end(self, run_context):
        self._losses.append(loss_value(run_context.original_args().net_outputs))

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        self.epoch["epoch"].append(cb.cur_epoch_num)
        if self._losses:
            self.history.setdefault("net_output", []).append(float(np.mean(self._losses)))
        for k, v in (cb.get("eval_results") or cb.get("metrics") or {}).items():
            self.history.setdefault(k, []).append(v)


class LambdaCallback(Callback):
    _HOOKS = ("on_train_epoch_begin", "on_train_epoch_end", "on_train_step_begin", "on_train_step_end",
              "on_train_begin", "on_train_end", "on_eval_epoch_begin", "on_eval_epoch_end", "on_eval_step_begin",
              "on_eval_step_end", "on_eval_begin", "on_eval_end")

    def __init__(self, on_train_epoch_begin=None, on_train_epoch_end=None, on_train_step_begin=None,
                 on_train_step_end=None, on_train_begin=None, on_train_end=None, on_eval_epoch_begin=None,
                 on_eval_epoch_end=None, on_eval_step_begin=None, on_eval_step_end=None, on_eval_begin=None,
                 on_eval_end=None):
        given = dict(locals())
        for hook in self._HOOKS:
            fn = given[hook]
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {hook} must be callable")
                setattr(self, hook, fn)


_SMALLER_IS_BETTER = ("loss", "eval_loss", "mae", "mse", "hausdorff_distance", "perplexity",
                      "mean_surface_distance", "root_mean_square_distance")


def _monitored(cb_params, monitor: str):
    results = cb_params.get("eval_results") or cb_params.get("metrics") or {}
    if monitor in results:
        return float(np.mean(results[monitor]))
    if monitor == "loss":
        return loss_value(cb_params.net_outputs)
    return None


def _fixed_lr(cb_params, who: str):
    """The optimizer's learning-rate Parameter, which a callback may rewrite."""
    lr = getattr(cb_params.get("optimizer"), "learning_rate", None)
    if not isinstance(lr, Parameter):
        raise ValueError(f"{who} needs an optimizer whose learning_rate is a fixed float "
                         "(not a list, a schedule or parameter groups)")
    return lr


class _Plateau(Callback):
    def __init__(self, monitor, min_delta, patience, verbose, mode, baseline):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if patience < 0:
            raise ValueError(f"{type(self).__name__}: patience must be >= 0")
        self.monitor, self.patience, self.verbose, self.baseline = monitor, int(patience), verbose, baseline
        if mode == "auto":
            mode = "min" if monitor in _SMALLER_IS_BETTER else "max"
        self.mode = mode
        self.min_delta = abs(min_delta) * (-1 if mode == "min" else 1)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = self.baseline

    def _improved(self, cur: float) -> bool:
        return cur < self.best + self.min_delta if self.mode == "min" else cur > self.best + self.min_delta

    def _current(self, run_context):
        cur = _monitored(run_context.original_args(), self.monitor)
        if cur is None:
            warnings.warn(f"{type(self).__name__}: monitored value {self.monitor!r} is not available (run fit with a "
                          "valid_dataset and metrics, or monitor 'loss')", RuntimeWarning, stacklevel=2)
        return cur


class EarlyStopping(_Plateau):
    def __init__(self, monitor: str = "eval_loss", min_delta: float = 0, patience: int = 0, verbose: bool = False,
                 mode: str = "auto", baseline=None, restore_best_weights: bool = False):
        super().__init__(monitor, min_delta, patience, verbose, mode, baseline)
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch = 0
        self.best_weights = None

    def on_train_begin(self, run_context):
        self._reset()
        self.stopped_epoch = 0
        self.best_weights = None

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        cur = self._current(run_context)
        if cur is None:
            return
        self.wait += 1
        if self._improved(cur):
            self.best, self.wait = cur, 0
            if self.restore_best_weights:
                self.best_weights = {n: p.asnumpy().copy() for n, p in cb.train_network.parameters_and_names()}
        if self.wait >= self.patience:
            self.stopped_epoch = cb.cur_epoch_num
            run_context.request_stop()
            if self.restore_best_weights and self.best_weights is not None:
                for n, p in cb.train_network.parameters_and_names():
                    if n in self.best_weights:
                        p.set_data(self.best_weights[n])

    def on_train_end(self, run_context):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch:05d}: early stopping", flush=True)


class ReduceLROnPlateau(_Plateau):
    """Multiplies the optimizer's (fixed, float) learning rate by `factor` after `patience` epochs
    without improvement."""

    def __init__(self, monitor: str = "eval_loss", factor: float = 0.1, patience: int = 10, verbose: bool = False,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0):
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        super().__init__(monitor, min_delta, patience, verbose, mode, None)
        self.factor, self.cooldown, self.min_lr = float(factor), int(cooldown), float(min_lr)
        self.cooldown_counter = 0

    def on_train_begin(self, run_context):
        self._reset()
        self.cooldown_counter = 0

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        cur = self._current(run_context)
        if cur is None:
            return
        lr = _fixed_lr(cb, "ReduceLROnPlateau")
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(cur):
            self.best, self.wait = cur, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(lr.asnumpy())
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    lr.set_data(np.asarray(new, np.float32))
                    if self.verbose:
                        print(f"Epoch {cb.cur_epoch_num:05d}: ReduceLROnPlateau reducing learning rate to {new}.",
                              flush=True)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Calls `learning_rate_function(lr, cur_step_num)` after each step and stores the new rate."""

    def __init__(self, learning_rate_function: Callable[[float, int], Any]):
        self.learning_rate_function = learning_rate_function

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        lr = _fixed_lr(cb, "LearningRateScheduler")
        new = self.learning_rate_function(float(lr.asnumpy()), cb.cur_step_num)
        lr.set_data(np.asarray(float(new), np.float32))
