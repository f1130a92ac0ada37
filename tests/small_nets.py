"""Small networks shared by the training and per-sample-gradient tests: an MLP (6 -> hidden -> 4)
and a CNN (conv, max-pool, conv, tanh, dense) on (N, 2, 6, 6) inputs with 3 classes."""
from __future__ import annotations

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
