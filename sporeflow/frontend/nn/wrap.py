"""WithLossCell, WithEvalCell, TrainOneStepCell, GradAccumulationCell.

The wrappers do not prefix parameter names (auto_prefix=False), so after wrapping the network's
parameters keep their names (`conv1.weight`) and checkpoints of `model.train_network` load into the
bare network. TrainOneStepCell's construct is forward + loss + value_and_grad + optimizer update:
compiled with sf.jit it is ONE graph whose parameter updates are written back after the step.
"""
from __future__ import annotations

from ...context import data_parallel
from ...ir import dtypes as D
from ..cell import Cell
from .. import functional as F
from ..random import global_state
from ..transforms import value_and_grad
from .grad_reducer import DistributedGradReducer


class WithLossCell(Cell):
    def __init__(self, backbone: Cell, loss_fn: Cell):
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    @property
    def backbone_network(self) -> Cell:
        return self._backbone

    def construct(self, data, label):
        return self._loss_fn(self._backbone(data), label)


class WithEvalCell(Cell):
    """Returns (loss, outputs, label) for the metrics."""

    def __init__(self, network: Cell, loss_fn: Cell, add_cast_fp32: bool = False):
        super().__init__(auto_prefix=False)
        self._network = network
        self._loss_fn = loss_fn
        self.add_cast_fp32 = add_cast_fp32

    def construct(self, data, label):
        outputs = self._network(data)
        if self.add_cast_fp32:
            outputs = F.cast(outputs, D.float32)
        return self._loss_fn(outputs, label), outputs, label


class TrainOneStepCell(Cell):
    """loss = network(*inputs); grads of loss (times `sens`) w.r.t. optimizer.parameters;
    optimizer(grads); returns loss (or (loss, {name: grad}) with return_grad=True). Its parameters
    are the network's, the optimizer's state and the global RNG state (`global_rng_state`)."""

    def __init__(self, network: Cell, optimizer: Cell, sens=None, return_grad: bool = False):
        super().__init__(auto_prefix=False)
        self.network = network
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.sens = sens
        self.return_grad = return_grad
        self.network.set_grad()
        # The global RNG state (Dropout's randomness) is part of the training state: holding it
        # here puts it in Model checkpoints, so resuming with initial_epoch replays the same masks.
        self._params["global_rng_state"] = global_state()
        # DATA_PARALLEL: the bucketed gradient all-reduce becomes part of the one step graph
        self.grad_reducer = DistributedGradReducer(self.weights) if data_parallel() else None

    def construct(self, *inputs):
        if isinstance(self.network, GradAccumulationCell):
            loss, grads = self.network.loss_and_grads(self.weights, *inputs)
        else:
            loss, grads = value_and_grad(self.network, None, self.weights)(*inputs)
        if self.sens is not None:
            grads = tuple(F.mul(g, self.sens) for g in grads)
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        self.optimizer(grads)
        if self.return_grad:
            return loss, {p.name: g for p, g in zip(self.weights, grads)}
        return loss


class GradAccumulationCell(Cell):
    """nn.GradAccumulationCell(network, micro_size): the batch axis of every input is split into
    `micro_size` equal micro-batches; the result is the mean of `network` over them, computed
    in one scan (one micro-batch's activations live at a time).

    Inside TrainOneStepCell the step does not differentiate through that scan: it scans
    value_and_grad over the micro-batches, accumulating the gradients in the loop carry, then
    the optimizer updates once with their mean (`loss_and_grads`). With a mean-reduced loss,
    micro_size x B equals one step on micro_size*B up to float rounding. A network that
    assigns Parameters in its forward pass (BatchNorm statistics, Dropout's RNG state) cannot
    run inside the scan and is refused there."""

    def __init__(self, network: Cell, micro_size: int):
        super().__init__(auto_prefix=False)
        if isinstance(micro_size, bool) or not isinstance(micro_size, int) or micro_size < 1:
            raise ValueError(f"GradAccumulationCell: micro_size must be a positive int, got {micro_size!r}")
        self.network = network
        self.micro_size = micro_size

    def _micro(self, inputs) -> tuple:
        m = self.micro_size
        out = []
        for x in inputs:
            if x.ndim == 0 or x.shape[0] % m:
                raise ValueError(f"GradAccumulationCell: the batch axis of every input must divide into micro_size="
                                 f"{m} micro-batches; got an input of shape {tuple(x.shape)}")
            out.append(F.reshape(x, (m, x.shape[0] // m) + tuple(x.shape[1:])))
        return tuple(out)

    def construct(self, *inputs):
        def body(total, micro):
            return F.add(total, self.network(*micro)), None
        total, _ = F.scan(body, F.zeros((), D.float32), self._micro(inputs))
        return F.div(total, float(self.micro_size))

    def loss_and_grads(self, weights, *inputs):
        """(mean loss, mean gradients w.r.t. `weights`) over the micro-batches, in one scan."""
        grad_fn = value_and_grad(self.network, None, weights)

        def body(carry, micro):
            loss, grads = grad_fn(*micro)
            return (F.add(carry[0], F.cast(loss, D.float32)),
                    tuple(F.add(a, g) for a, g in zip(carry[1], grads))), None
        init = (F.zeros((), D.float32), tuple(F.zeros(tuple(w.shape), w.dtype) for w in weights))
        (total, sums), _ = F.scan(body, init, self._micro(inputs))
        scale = 1.0 / self.micro_size
        return F.mul(total, scale), tuple(F.mul(g, scale) for g in sums)
