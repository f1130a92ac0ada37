"""WithLossCell, WithEvalCell, TrainOneStepCell.

The wrappers do not prefix parameter names (auto_prefix=False), so after wrapping the network's
parameters keep their names (`conv1.weight`) and checkpoints of `model.train_network` load into the
bare network. TrainOneStepCell's construct is forward + loss + value_and_grad + optimizer update:
compiled with sf.jit it is ONE graph whose parameter updates are written back after the step.
"""
from __future__ import annotations

from ...ir import dtypes as D
from ..cell import Cell
from .. import functional as F


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
        from ..random import global_state
        self._params["global_rng_state"] = global_state()

    def construct(self, *inputs):
        from ..transforms import value_and_grad
        grad_fn = value_and_grad(self.network, None, self.weights)
        loss, grads = grad_fn(*inputs)
        if self.sens is not None:
            grads = tuple(F.mul(g, self.sens) for g in grads)
        self.optimizer(grads)
        if self.return_grad:
            return loss, {p.name: g for p, g in zip(self.weights, grads)}
        return loss
