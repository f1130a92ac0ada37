"""Small networks shared by the training and per-sample-gradient tests: an MLP (6 -> hidden -> 4)
and a CNN (conv, max-pool, conv, tanh, dense) on (N, 2, 6, 6) inputs with 3 classes, and
`train_momentum`, the jitted Momentum train step both backends run."""
from __future__ import annotations

import sporeflow as sf
from sporeflow import nn


class MLP(nn.Cell):
    def __init__(self, hidden: int = 16):
        super().__init__()
        self.fc1 = nn.Dense(6, hidden)
        self.fc2 = nn.Dense(hidden, 4)
        self.act = nn.ReLU()

    def construct(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CNN(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, pad_mode="pad", padding=1, has_bias=True)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(3, 4, 2, stride=1, pad_mode="valid")
        self.flat = nn.Flatten()
        self.fc = nn.Dense(4 * 2 * 2, 3)
        self.act = nn.Tanh()

    def construct(self, x):
        return self.fc(self.flat(self.act(self.conv2(self.pool(self.act(self.conv(x)))))))


def train_momentum(make_net, x, y, backend: str, steps: int = 3):
    """(losses, trained parameters, the jitted step) after `steps` Momentum steps of a fresh
    `make_net()` (seed 3): forward, loss, value_and_grad and the update in one sf.jit."""
    sf.set_seed(3)
    net = make_net()
    opt = nn.Momentum(net.trainable_params(), 0.05, 0.9)
    ce = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    grad_fn = sf.value_and_grad(lambda a, b: ce(net(a), b), None, opt.parameters)

    @sf.jit(backend=backend)
    def step(a, b):
        loss, grads = grad_fn(a, b)
        opt(grads)
        return loss

    losses = [float(step(sf.Tensor(x), sf.Tensor(y)).asnumpy()) for _ in range(steps)]
    return losses, [p.asnumpy().copy() for p in net.trainable_params()], step
