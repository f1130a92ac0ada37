"""Model.train at amp_level="O2" on device_target="GPU" (CUDA backend, CPU emulator): the
float16 digits MLP with the dynamic loss-scale step (overflow check and skipped update compiled
into the one graph) gives the same loss curve as the same O2 model on CPU (LLVM)."""
from __future__ import annotations

import numpy as np

import sporeflow as sf
from sporeflow import amp, dataset as ds, nn
from sporeflow.backends import get_backend
from sporeflow.train import LambdaCallback, Model

STEPS, BATCH = 6, 32


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Dense(64, 32), nn.ReLU(), nn.Dense(32, 10)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x.reshape(x.shape[0], -1))))


def _o2_curve(**context):
    sf.set_context(mode=sf.GRAPH_MODE, **context)
    sf.set_seed(1)
    (x, y), _ = ds.load_digits_split(test_fraction=0.2, seed=1)
    data = ds.NumpySlicesDataset({"image": x[:STEPS * BATCH], "label": y[:STEPS * BATCH]}, shuffle=False)
    net = Net()
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                  nn.Momentum(net.trainable_params(), 0.2, 0.9), amp_level="O2",
                  loss_scale_manager=amp.DynamicLossScaleManager(2 ** 10, 2, 2))
    out = []

    def record(run_context):
        loss, overflow, scale = run_context.original_args().net_outputs
        out.append((float(loss.asnumpy()), bool(overflow.asnumpy()), float(scale.asnumpy())))
    model.train(1, data.batch(BATCH, drop_remainder=True), callbacks=[LambdaCallback(on_train_step_end=record)])
    return out, net


def test_model_o2_trains_on_gpu_emulator_like_cpu():
    cpu, _ = _o2_curve(device_target="CPU")
    gpu, gpu_net = _o2_curve(device_target="GPU", backend="cuda-emulated")
    assert len(gpu) == STEPS
    assert [o for _, o, _ in gpu] == [o for _, o, _ in cpu]
    assert [s for _, _, s in gpu] == [s for _, _, s in cpu] and gpu[-1][2] > 2 ** 10   # the scale grew
    np.testing.assert_allclose([v for v, _, _ in gpu], [v for v, _, _ in cpu], rtol=2e-3, atol=2e-3)
    assert gpu[-1][0] < gpu[0][0]
    for p in gpu_net.trainable_params():
        assert p.dtype == sf.float32 and get_backend("cuda-emulated").device.is_array(p._data)
