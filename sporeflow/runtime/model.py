"""`sporeflow.train.Model`: train / fit / eval / predict with MindSpore 2.x's networks, callback
order and counters (mindspore-api.md sections 1 and 2).

The train step is `sf.jit(TrainOneStepCell(WithLossCell(net, loss_fn), optimizer))`: forward,
loss, gradients and the optimizer update are ONE compiled graph, and the parameter updates it
returns are written back into the parameter buffers after each step. With
dataset_sink_mode=True each epoch is one sink of `sink_size` steps compiled as one scan
(runtime/model_sink.py), on every backend, where MindSpore silently falls back on CPU.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Iterable

import numpy as np

from ..context import get_auto_parallel_context
from ..frontend.amp import build_train_network
from ..ir import comm
from ..frontend.cell import Cell
from ..frontend.jit import JitFunction
from ..frontend.tensor import Tensor
from ..frontend.sink import SunkStep
from .model_sink import TrainSink, eval_sink, group_rows, precompile_sink
from .callbacks import (CallbackManager, InternalCallbackParam, RunContext, check_legacy, is_internal,
                        normalize_callbacks)
from ..frontend.nn.optim.optimizer import Optimizer
from ..frontend.nn.wrap import GradAccumulationCell, TrainOneStepCell, WithLossCell, WithEvalCell
from .metrics import get_metrics, Loss

# grad_accumulation=N is sporeflow's own: each step takes N consecutive dataset batches as its
# micro-batches, accumulates their gradients in one compiled scan, and updates once.
_ALLOWED_KWARGS = ("loss_scale_manager", "keep_batchnorm_fp32", "boost_config_dict", "acc_level",
                   "grad_accumulation")


class Model:
    def __init__(self, network: Cell, loss_fn: Cell | None = None, optimizer: Cell | None = None, metrics=None,
                 eval_network: Cell | None = None, eval_indexes: list | None = None, amp_level: str = "O0",
                 boost_level: str = "O0", **kwargs):
        unknown = set(kwargs) - set(_ALLOWED_KWARGS)
        if unknown:
            raise ValueError(f"Model: unsupported keyword arguments {sorted(unknown)}; "
                             f"allowed: {list(_ALLOWED_KWARGS)}")
        if amp_level not in ("O0", "O1", "O2", "O3", "auto"):
            raise ValueError(f"Model: amp_level must be 'O0', 'O1', 'O2', 'O3' or 'auto', got {amp_level!r}")
        if optimizer is None and (amp_level != "O0" or kwargs.get("loss_scale_manager") is not None):
            raise ValueError("Model: amp_level other than 'O0' and loss_scale_manager need an optimizer")
        if not isinstance(network, Cell):
            raise TypeError(f"Model: network must be a Cell, got {type(network).__name__}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"Model: optimizer must be an nn.Optimizer, got {type(optimizer).__name__}")
        if eval_indexes is not None and (not isinstance(eval_indexes, (list, tuple)) or len(eval_indexes) != 3):
            raise ValueError("Model: eval_indexes must be None or a list of 3 indexes (loss, outputs, label)")
        self._network = network
        self._loss_fn = loss_fn
        self._optimizer = optimizer
        self._amp_level, self._boost_level = amp_level, boost_level
        acc = kwargs.get("grad_accumulation", 1)
        if isinstance(acc, bool) or not isinstance(acc, int) or acc < 1:
            raise ValueError(f"Model: grad_accumulation must be a positive int, got {acc!r}")
        if acc > 1 and (optimizer is None or loss_fn is None):
            raise ValueError("Model: grad_accumulation needs loss_fn and optimizer")
        self._grad_accumulation = acc
        self._amp_kwargs = {k: kwargs[k] for k in ("loss_scale_manager", "keep_batchnorm_fp32") if k in kwargs}
        self._metric_fns = get_metrics(metrics) or {}
        if self._metric_fns and loss_fn is None and eval_network is None:
            raise ValueError("Model: metrics need loss_fn or eval_network to evaluate")
        self._train_network = self._build_train_network()
        self._eval_network, self._eval_indexes = self._build_eval_network(eval_network, eval_indexes)
        self._jits: dict[int, JitFunction] = {}
        self._sunks: dict[int, SunkStep] = {}
        self._eval_losses: list[float] = []
        self._warned_recompile = False

    # -- networks ---------------------------------------------------------------------------------
    def _build_train_network(self) -> Cell:
        if self._grad_accumulation > 1:
            if self._amp_level != "O0" or self._amp_kwargs:
                raise ValueError("Model: grad_accumulation does not combine with amp_level/loss_scale_manager yet")
            acc = GradAccumulationCell(WithLossCell(self._network, self._loss_fn), self._grad_accumulation)
            return TrainOneStepCell(acc, self._optimizer)
        if self._optimizer is not None and (self._amp_level != "O0" or self._amp_kwargs):
            return build_train_network(self._network, self._optimizer, self._loss_fn, level=self._amp_level,
                                       boost_level=self._boost_level, **self._amp_kwargs)
        if self._optimizer is not None:
            net = WithLossCell(self._network, self._loss_fn) if self._loss_fn is not None else self._network
            return TrainOneStepCell(net, self._optimizer)
        if self._loss_fn is not None:
            return WithLossCell(self._network, self._loss_fn)
        return self._network

    def _build_eval_network(self, eval_network, eval_indexes):
        if eval_network is not None:
            return eval_network, (list(eval_indexes) if eval_indexes is not None else None)
        if self._loss_fn is not None:
            return WithEvalCell(self._network, self._loss_fn,
                                add_cast_fp32=self._amp_level in ("O2", "O3", "auto")), [0, 1, 2]
        return None, None

    def _host_loss_scale(self, outputs) -> None:
        """MindSpore's host-side manager.update_loss_scale(overflow) after each step (the compiled
        step has already skipped the update and adjusted its own scale)."""
        lsm = self._amp_kwargs.get("loss_scale_manager")
        if lsm is not None and getattr(lsm, "get_drop_overflow_update", lambda: False)() and \
                isinstance(outputs, tuple) and len(outputs) == 3:
            lsm.update_loss_scale(bool(np.all(outputs[1].asnumpy())))

    @property
    def train_network(self) -> Cell:
        return self._train_network

    @property
    def eval_network(self) -> Cell | None:
        return self._eval_network

    @property
    def predict_network(self) -> Cell:
        return self._network

    def _compiled(self, cell: Cell) -> JitFunction:
        fn = self._jits.get(id(cell))
        if fn is None:
            fn = self._jits[id(cell)] = JitFunction(cell, name=type(cell).__name__)
        return fn

    def _sunk(self, cell: Cell) -> SunkStep:
        """The loop-sunk form of `cell`'s compiled step (one compiled scan per sink length)."""
        fn = self._sunks.get(id(cell))
        if fn is None:
            fn = self._sunks[id(cell)] = SunkStep(self._compiled(cell))
        return fn

    # -- datasets ------------------------------------------------------------------------------------
    def _bind_dataset(self, dataset) -> None:
        owner = getattr(dataset, "__model_hash__", None)
        if owner is not None and owner != id(self):
            raise RuntimeError("The dataset object had been used in other model by model.train(...), please create "
                               "a new dataset.")
        try:
            dataset.__model_hash__ = id(self)
        except AttributeError:
            pass

    @staticmethod
    def _dataset_size(dataset) -> int:
        if hasattr(dataset, "get_dataset_size"):
            return int(dataset.get_dataset_size())
        try:
            return len(dataset)
        except TypeError:
            raise TypeError(f"Model: the dataset ({type(dataset).__name__}) has neither get_dataset_size() nor "
                            "len()") from None

    def _rows(self, dataset, need_two: bool) -> Iterable[tuple]:
        if hasattr(dataset, "create_tuple_iterator"):
            it = dataset.create_tuple_iterator(num_epochs=1)
        else:
            it = iter(dataset)
        for row in it:
            yield self._check_row(row, need_two)

    @staticmethod
    def _check_row(row, need_two: bool) -> tuple:
        if isinstance(row, dict):
            row = tuple(row.values())
        elif not isinstance(row, (tuple, list)):
            row = (row,)
        if need_two and len(row) != 2:
            raise ValueError(f"Model: with loss_fn set, each dataset row must have exactly 2 columns "
                             f"(data, label); got {len(row)}. Without loss_fn, all columns go to the network.")
        return tuple(x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in row)

    # -- argument checks -----------------------------------------------------------------------------
    @staticmethod
    def _check_epochs(epoch, initial_epoch) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch <= 0:
            raise ValueError(f"Model: epoch must be a positive int, got {epoch!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral) or initial_epoch < 0:
            raise ValueError(f"Model: initial_epoch must be an int >= 0, got {initial_epoch!r}")
        if initial_epoch >= epoch:
            raise ValueError(f"Model: epoch ({epoch}) must be greater than initial_epoch ({initial_epoch})")

    @staticmethod
    def _check_frequency(valid_frequency) -> None:
        if isinstance(valid_frequency, (list, tuple)):
            if not all(isinstance(v, int) and v > 0 for v in valid_frequency):
                raise ValueError(f"Model.fit: valid_frequency list must hold positive ints, got {valid_frequency}")
        elif isinstance(valid_frequency, bool) or not isinstance(valid_frequency, int) or valid_frequency <= 0:
            raise ValueError(f"Model.fit: valid_frequency must be a positive int or a list of epochs, got "
                             f"{valid_frequency!r}")

    @staticmethod
    def _should_eval(epoch: int, valid_frequency) -> bool:
        if isinstance(valid_frequency, (list, tuple)):
            return epoch in valid_frequency
        return epoch % valid_frequency == 0

    # -- public API ------------------------------------------------------------------------------------
    def train(self, epoch: int, train_dataset, callbacks=None, dataset_sink_mode: bool = False, sink_size: int = -1,
              initial_epoch: int = 0):
        self._check_epochs(epoch, initial_epoch)
        cbs = normalize_callbacks(callbacks)
        check_legacy(cbs, in_fit=False)
        self._train(epoch, train_dataset, cbs, initial_epoch, None, 1, (dataset_sink_mode, sink_size, False))

    def fit(self, epoch: int, train_dataset, valid_dataset=None, valid_frequency=1, callbacks=None,
            dataset_sink_mode: bool = False, valid_dataset_sink_mode: bool = False, sink_size: int = -1,
            initial_epoch: int = 0):
        self._check_epochs(epoch, initial_epoch)
        self._check_frequency(valid_frequency)
        if valid_dataset is not None and not self._metric_fns:
            raise ValueError("Model.fit: valid_dataset needs metrics; pass metrics={...} to Model")
        cbs = normalize_callbacks(callbacks)
        check_legacy(cbs, in_fit=True)
        self._train(epoch, train_dataset, cbs, initial_epoch, valid_dataset, valid_frequency,
                    (dataset_sink_mode, sink_size, valid_dataset_sink_mode))

    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode: bool = False) -> dict:
        if not self._metric_fns:
            raise ValueError("Model.eval: metrics can not be None or empty; pass metrics={...} to Model")
        cbs = normalize_callbacks(callbacks)
        check_legacy(cbs, in_fit=False)
        cb = InternalCallbackParam()
        cb.network = self._network
        return self._eval_process(valid_dataset, CallbackManager(cbs), cb, add_eval_loss=False,
                                  sink=bool(dataset_sink_mode))

    def predict(self, *predict_data, backend=None, config=None):
        if not predict_data:
            raise ValueError("Model.predict needs at least one input")
        self._network.set_train(False)
        data = tuple(x if isinstance(x, Tensor) or not isinstance(x, np.ndarray) else Tensor(x) for x in predict_data)
        return self._compiled(self._network)(*data)

    def build(self, train_dataset=None, valid_dataset=None, sink_size: int = -1, epoch: int = 1,
              sink_mode: bool = True):
        """Compile the train (and eval) graphs ahead of the first step, from one batch of each dataset.
        Nothing runs and no parameter changes."""
        if train_dataset is not None:
            self._train_network.set_train(True)
            rows = group_rows(self._rows(train_dataset, self._loss_fn is not None), self._grad_accumulation)
            row = next(iter(rows))
            if sink_mode:
                n = sink_size if sink_size > 0 else self._dataset_size(train_dataset) // self._grad_accumulation
                precompile_sink(self, self._train_network, row, n)
            else:
                self._precompile(self._train_network, row)
        if valid_dataset is not None and self._eval_network is not None:
            self._eval_network.set_train(False)
            row = next(iter(self._rows(valid_dataset, True)))
            if sink_mode:
                precompile_sink(self, self._eval_network, row, self._dataset_size(valid_dataset))
            else:
                self._precompile(self._eval_network, row)

    def _precompile(self, cell: Cell, args: tuple) -> None:
        self._compiled(cell).lower(*args)

    # -- the loops --------------------------------------------------------------------------------------
    def _train(self, epoch, train_dataset, cbs, initial_epoch, valid_dataset, valid_frequency, sinking) -> None:
        self._bind_dataset(train_dataset)
        need_two = self._loss_fn is not None
        sink_mode, sink_size, valid_sink = sinking
        cb = InternalCallbackParam()
        cb.train_network = self._train_network
        cb.network = self._network
        cb.loss_fn = self._loss_fn
        cb.optimizer = self._optimizer
        cb.epoch_num = epoch - initial_epoch
        cb.initial_epoch = initial_epoch
        cb.batch_num = self._dataset_size(train_dataset) // self._grad_accumulation
        cb.train_dataset = train_dataset
        cb.list_callback = cbs
        cb.mode = "train"
        cb.dataset_sink_mode = bool(sink_mode)
        cb.parallel_mode = get_auto_parallel_context("parallel_mode")
        cb.device_number = comm.size() if comm.initialized() else 1
        cb.cur_epoch_num = None
        cb.cur_step_num = 0
        cb.last_save_ckpt_step = None
        cb.latest_ckpt_file = None
        if valid_dataset is not None:
            cb.eval_network = self._eval_network
            cb.valid_dataset = valid_dataset
        run_context = RunContext(cb)
        manager = CallbackManager(cbs)
        eval_manager = CallbackManager([c for c in cbs if not is_internal(c)])
        step = self._compiled(self._train_network)
        graphs_before = step.cache_size()
        sink = None
        if sink_mode:
            sink = TrainSink(self, train_dataset, sink_size, epoch, initial_epoch,
                             lambda r: self._check_row(r, need_two))
            cb.batch_num = sink.batch_num
            cb.sink_size = sink.batch_num
            cb.dataset_helper = sink
        with _entered(cbs), _closing(sink):
            manager.on_train_begin(run_context)
            for e in range(initial_epoch, epoch):
                cb.cur_epoch_num = e + 1
                self._train_network.set_train(True)
                manager.on_train_epoch_begin(run_context)
                if sink is not None:    # one sink: step_begin/step_end once, cur_step_num += its steps
                    manager.on_train_step_begin(run_context)
                    sink.run(cb)
                    manager.on_train_step_end(run_context)
                elif hasattr(train_dataset, "set_epoch"):
                    # epoch e sees epoch e's shuffle order, so resuming at initial_epoch=k is bit-exact
                    train_dataset.set_epoch(e)
                for row in () if sink is not None else group_rows(self._rows(train_dataset, need_two),
                                                                  self._grad_accumulation):
                    cb.cur_step_num += 1
                    cb.train_dataset_element = row
                    manager.on_train_step_begin(run_context)
                    cb.net_outputs = step(*row)
                    self._host_loss_scale(cb.net_outputs)
                    manager.on_train_step_end(run_context)
                    if run_context.get_stop_requested():
                        break
                if step.cache_size() > max(graphs_before, 1) and not self._warned_recompile:
                    self._warned_recompile = True
                    warnings.warn(f"Model: the train step was compiled again ({step.last_retrace_reason}); each new "
                                  "batch shape compiles a new graph. A last partial batch is the usual cause: "
                                  "batch(..., drop_remainder=True) avoids it.", RuntimeWarning, stacklevel=3)
                if valid_dataset is not None and self._should_eval(cb.cur_epoch_num, valid_frequency):
                    self._eval_during_train(valid_dataset, eval_manager, cb, valid_sink)
                manager.on_train_epoch_end(run_context)
                cb.pop("metrics", None)
                cb.pop("eval_results", None)
                if run_context.get_stop_requested():
                    break
            manager.on_train_end(run_context)

    def _eval_during_train(self, valid_dataset, manager, cb, sink: bool) -> None:
        saved = cb.mode, cb.cur_step_num, cb.batch_num
        metrics = self._eval_process(valid_dataset, manager, cb, add_eval_loss=True, enter=False, sink=sink)
        cb.mode, cb.cur_step_num, cb.batch_num = saved
        cb.metrics = metrics

    def _eval_process(self, valid_dataset, manager, cb, add_eval_loss: bool, enter: bool = True,
                      sink: bool = False) -> dict:
        if self._eval_network is None:
            raise ValueError("Model: evaluation needs loss_fn or eval_network")
        cb.eval_network = self._eval_network
        cb.valid_dataset = valid_dataset
        cb.batch_num = self._dataset_size(valid_dataset)
        cb.mode = "eval"
        cb.cur_step_num = 0
        for m in self._metric_fns.values():
            m.clear()
        self._eval_losses = []
        run_context = RunContext(cb)
        net = self._eval_network
        net.set_train(False)
        step = self._compiled(net)
        with _entered(manager.callbacks if enter else []):   # in fit they were entered for the whole run
            manager.on_eval_begin(run_context)
            manager.on_eval_epoch_begin(run_context)
            if sink:     # the whole dataset as one sink; the metrics see every step's outputs
                manager.on_eval_step_begin(run_context)
                outs, n = eval_sink(self, valid_dataset, lambda r: self._check_row(r, self._eval_indexes is not None))
                for outputs in outs:
                    self._update_metrics(outputs)
                cb.cur_step_num += n
                cb.net_outputs = outs[-1] if outs else None
                manager.on_eval_step_end(run_context)
            for row in () if sink else self._rows(valid_dataset, self._eval_indexes is not None):
                cb.cur_step_num += 1
                manager.on_eval_step_begin(run_context)
                outputs = step(*row)
                cb.net_outputs = outputs
                self._update_metrics(outputs)
                manager.on_eval_step_end(run_context)
            metrics = {name: _plain(m.eval()) for name, m in self._metric_fns.items()}
            cb.metrics = metrics
            if add_eval_loss:
                cb.eval_results = dict(metrics)
                cb.eval_results["eval_loss"] = float(np.mean(self._eval_losses)) if self._eval_losses else float("nan")
            manager.on_eval_epoch_end(run_context)
            manager.on_eval_end(run_context)
        return metrics

    def _update_metrics(self, outputs: Any) -> None:
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        if not isinstance(outputs, (tuple, list)):
            raise TypeError(f"Model: the eval network must return Tensors, got {type(outputs).__name__}")
        idx = self._eval_indexes
        loss = outputs[idx[0]] if idx is not None else outputs[0]
        self._eval_losses.append(float(np.mean(np.asarray(loss.asnumpy() if isinstance(loss, Tensor) else loss))))
        for m in self._metric_fns.values():
            if idx is None:
                m.update(*outputs)
            elif isinstance(m, Loss):
                m.update(outputs[idx[0]])
            else:
                m.update(outputs[idx[1]], outputs[idx[2]])


def _plain(v):
    """numpy scalars -> Python numbers, so printed metrics read {'accuracy': 0.98} under numpy 2 too."""
    return v.item() if isinstance(v, np.generic) else v


class _closing:
    """Close the sink's staging thread however the run ends."""

    def __init__(self, sink):
        self.sink = sink

    def __enter__(self):
        return self.sink

    def __exit__(self, *exc):
        if self.sink is not None:
            self.sink.close()
        return False


class _entered:
    """Enter every callback as a context manager for the run (MindSpore uses an ExitStack)."""

    def __init__(self, cbs):
        self.cbs = list(cbs)

    def __enter__(self):
        for c in self.cbs:
            c.__enter__()
        return self

    def __exit__(self, *exc):
        for c in reversed(self.cbs):
            c.__exit__(*exc)
        return False
