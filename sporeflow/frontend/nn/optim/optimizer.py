"""Optimizer base: a Cell whose `construct(gradients)` applies one update with `ops.assign`, so
inside a compiled step (sf.jit, TrainOneStepCell) the update is part of the same graph and the new
values are written back after the step; eagerly it updates the buffers at once.

State (moments, `global_step`, the learning rate) lives in non-trainable Parameters named as in
MindSpore (`moments.fc1.weight`, `global_step`, `learning_rate`), so a checkpoint of the train
network holds it and resuming is exact.
"""
from __future__ import annotations

import numbers
import numpy as np

from ....ir import dtypes as D
from ... import functional as F
from ...cell import Cell
from ...tensor import Parameter, ParameterTuple, Tensor
from ..learning_rate_schedule import LearningRateSchedule

_GROUP_KEYS = {"params", "lr", "weight_decay", "grad_centralization", "order_params"}


def _default_decay_filter(p: Parameter) -> bool:
    return "beta" not in p.name and "gamma" not in p.name


class _IteratorLR(LearningRateSchedule):
    """A per-step list of learning rates; steps past the end keep the last value."""

    def __init__(self, lrs, name: str):
        super().__init__()
        arr = np.asarray([float(v) for v in lrs], np.float32)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("learning_rate as a list/1-D Tensor must be non-empty and 1-D")
        self.learning_rate = Parameter(arr, name=name, requires_grad=False)
        self.last = arr.size - 1

    def construct(self, global_step):
        idx = F.minimum(F.reshape(global_step, ()), self.last)
        return F.gather(self.learning_rate, F.cast(idx, D.int32), 0)


class Optimizer(Cell):
    """Base class. Subclasses implement `_update(i, param, grad, lr)` for parameter i, and set
    `_coupled_decay = False` when they apply weight decay themselves (AdamWeightDecay)."""
    _coupled_decay = True

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale: float = 1.0):
        super().__init__(auto_prefix=False)
        parameters = list(parameters) if parameters is not None else []
        if not parameters:
            raise ValueError(f"{type(self).__name__}: the parameter list is empty")
        if loss_scale <= 0:
            raise ValueError(f"{type(self).__name__}: loss_scale must be > 0, got {loss_scale}")
        self.loss_scale = float(loss_scale)
        self.is_group = isinstance(parameters[0], dict)
        if self.is_group:
            params, lrs, wds = self._parse_groups(parameters, learning_rate, weight_decay)
        else:
            for p in parameters:
                if not isinstance(p, Parameter):
                    raise TypeError(f"{type(self).__name__}: parameters must be Parameters or group dicts, got "
                                    f"{type(p).__name__}")
            params = parameters
            lrs = [0] * len(params)
            wd = self._check_wd(weight_decay)
            wds = [wd if _default_decay_filter(p) else 0.0 for p in params]
            self._lr_objs = [self._make_lr(learning_rate, "learning_rate")]
        names = [p.name for p in params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"{type(self).__name__}: parameter names must be unique, duplicated: {sorted(dup)}")
        self.parameters = ParameterTuple(params)
        self._lr_index = lrs
        self._weight_decay = wds
        self.weight_decay = wds[0] if not self.is_group else tuple(wds)
        self.global_step = Parameter(np.zeros((1,), np.int32), name="global_step", requires_grad=False)
        self.is_group_lr = len(self._lr_objs) > 1
        if len(self._lr_objs) == 1:
            self.learning_rate = self._lr_objs[0]
        else:
            self.learning_rate = tuple(self._lr_objs)
            for i, lr in enumerate(self._lr_objs):
                setattr(self, f"learning_rate_group_{i}", lr)
        self.dynamic_lr = any(isinstance(lr, LearningRateSchedule) for lr in self._lr_objs)

    # -- construction helpers -------------------------------------------------------------------
    @staticmethod
    def _check_wd(wd) -> float:
        if isinstance(wd, bool) or not isinstance(wd, numbers.Real) or wd < 0:
            raise ValueError(f"weight_decay must be a float >= 0 (schedules are not supported yet), got {wd!r}")
        return float(wd)

    def _make_lr(self, lr, name: str):
        if isinstance(lr, LearningRateSchedule):
            return lr
        if isinstance(lr, Tensor) and lr.ndim == 1 or isinstance(lr, (list, tuple)):
            return _IteratorLR(np.asarray(lr).tolist() if isinstance(lr, Tensor) else lr, name)
        if isinstance(lr, Tensor):
            lr = float(lr.asnumpy())
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or lr < 0:
            raise TypeError(f"{type(self).__name__}: learning_rate must be a float >= 0, a list, a 1-D Tensor or a "
                            f"LearningRateSchedule, got {lr!r}")
        return Parameter(np.asarray(float(lr), np.float32), name=name, requires_grad=False)

    def _parse_groups(self, groups: list, learning_rate, weight_decay):
        default_wd = self._check_wd(weight_decay)
        order = None
        self._lr_objs = [self._make_lr(learning_rate, "learning_rate")]
        setting: dict[int, tuple[int, float]] = {}
        grouped: list[Parameter] = []
        for gi, g in enumerate(groups):
            if not isinstance(g, dict):
                raise TypeError("parameter groups must all be dicts")
            unknown = set(g) - _GROUP_KEYS
            if unknown:
                raise ValueError(f"parameter group {gi}: unknown keys {sorted(unknown)}; "
                                 f"allowed: {sorted(_GROUP_KEYS)}")
            if g.get("grad_centralization"):
                raise ValueError("parameter groups: grad_centralization is not supported yet")
            if "order_params" in g:
                if len(g) != 1:
                    raise ValueError("the 'order_params' group must hold only the 'order_params' key")
                order = list(g["order_params"])
                continue
            if "params" not in g:
                raise ValueError(f"parameter group {gi} has no 'params'")
            lr_i = 0
            if "lr" in g:
                self._lr_objs.append(self._make_lr(g["lr"], f"learning_rate_group_{len(self._lr_objs)}"))
                lr_i = len(self._lr_objs) - 1
            wd = self._check_wd(g.get("weight_decay", default_wd))
            for p in g["params"]:
                if not isinstance(p, Parameter):
                    raise TypeError(f"parameter group {gi}: {type(p).__name__} is not a Parameter")
                if id(p) in setting:
                    raise ValueError(f"parameter {p.name} appears in more than one group")
                setting[id(p)] = (lr_i, wd)
                grouped.append(p)
        params = grouped
        if order is not None:
            missing = [p.name for p in grouped if id(p) not in {id(q) for q in order}]
            if missing:
                raise ValueError(f"order_params must contain every grouped parameter; missing {missing}")
            params = [p for p in order if p.requires_grad or id(p) in setting]
        lrs = [setting.get(id(p), (0, default_wd))[0] for p in params]
        wds = [setting.get(id(p), (0, default_wd))[1] for p in params]
        return params, lrs, wds

    def _state(self, prefix: str, init: str = "zeros", shape=None) -> tuple[Parameter, ...]:
        """One non-trainable Parameter per optimized parameter, named `prefix.<param name>`."""
        out = []
        for i, p in enumerate(self.parameters):
            arr = np.zeros(p.shape if shape is None else shape, np.float32) if init == "zeros" else \
                np.ones(p.shape if shape is None else shape, np.float32)
            s = Parameter(arr, name=f"{prefix}.{p.name}", requires_grad=False)
            self._params[f"{prefix}.{i}"] = s
            out.append(s)
        return ParameterTuple(out)

    def _scalar(self, attr: str, value: float) -> Parameter:
        p = Parameter(np.asarray(value, np.float32), name=attr, requires_grad=False)
        setattr(self, attr, p)
        return p

    # -- learning rate ------------------------------------------------------------------------------
    def _lr_value(self, lr):
        if isinstance(lr, LearningRateSchedule):
            return F.reshape(F.cast(lr(self.global_step), D.float32), ())
        return lr

    def get_lr(self):
        """The current learning rate (a tuple per group when groups set their own)."""
        vals = [self._lr_value(lr) for lr in self._lr_objs]
        return tuple(vals) if self.is_group_lr else vals[0]

    def get_lr_parameter(self, param: Parameter):
        for p, i in zip(self.parameters, self._lr_index):
            if p is param:
                return self._lr_objs[i]
        raise ValueError(f"{param.name} is not optimized by this optimizer")

    # -- the update -----------------------------------------------------------------------------------
    def decay_weight(self, gradients):
        return tuple(F.add(g, F.mul(p, wd)) if wd > 0 else g
                     for p, g, wd in zip(self.parameters, gradients, self._weight_decay))

    def scale_grad(self, gradients):
        if self.loss_scale == 1.0:
            return tuple(gradients)
        return tuple(F.mul(g, 1.0 / self.loss_scale) for g in gradients)

    def construct(self, gradients):
        grads = tuple(gradients)
        if len(grads) != len(self.parameters):
            raise ValueError(f"{type(self).__name__}: got {len(grads)} gradients for {len(self.parameters)} "
                             "parameters (compute them with weights=optimizer.parameters)")
        for p, g in zip(self.parameters, grads):
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"{type(self).__name__}: gradient of shape {tuple(g.shape)} for parameter "
                                 f"{p.name} of shape {tuple(p.shape)}")
        grads = self.scale_grad(grads)
        if self._coupled_decay:
            grads = self.decay_weight(grads)
        lrs = [self._lr_value(lr) for lr in self._lr_objs]
        self._begin_step()
        for i, (p, g) in enumerate(zip(self.parameters, grads)):
            self._update(i, p, F.cast(g, p.dtype) if g.dtype is not p.dtype else g, lrs[self._lr_index[i]])
        F.assign_add(self.global_step, Tensor(np.ones((1,), np.int32)))
        return True

    def _begin_step(self) -> None:
        """Hook for per-step state shared by all parameters (Adam's beta powers)."""

    def _update(self, i: int, param: Parameter, grad, lr) -> None:
        raise NotImplementedError

    def extend_repr(self) -> str:
        return f"n_params={len(self.parameters)}"

