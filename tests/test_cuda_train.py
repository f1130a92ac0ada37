"""The digits CNN (examples/train_digits.py: conv, batch norm, relu, max-pool, dense, dropout,
Adam) trains with device_target="GPU" on the CUDA backend (CPU emulator) to the same loss curve
as on CPU (LLVM), a few steps of Model.train; and device-resident tensors: eager ops under
GPU launch the generated kernels, and host arrays are refused by a device executable."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import dataset as ds, nn
from sporeflow.backends import get_backend
from sporeflow.errors import BackendError
from sporeflow.train import LambdaCallback, Model

_path = os.path.join(os.path.dirname(__file__), "..", "examples", "train_digits.py")
_spec = importlib.util.spec_from_file_location("train_digits", _path)
digits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(digits)

STEPS, BATCH = 6, 32


def _loss_curve(**context):
    sf.set_context(mode=sf.GRAPH_MODE, **context)
    sf.set_seed(1)
    (x, y), _ = ds.load_digits_split(test_fraction=0.2, seed=1)
    data = ds.NumpySlicesDataset({"image": x[:STEPS * BATCH], "label": y[:STEPS * BATCH]}, shuffle=False)
    net = digits.DigitsCNN()
    opt = nn.Adam(net.trainable_params(), learning_rate=0.005)
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt)
    losses = []

    def record(run_context):
        out = run_context.original_args().net_outputs
        losses.append(float((out[0] if isinstance(out, (tuple, list)) else out).asnumpy()))
    model.train(1, data.batch(BATCH, drop_remainder=True), callbacks=[LambdaCallback(on_train_step_end=record)])
    return np.array(losses), net


def test_digits_cnn_trains_on_gpu_emulator_like_cpu():
    cpu, cpu_net = _loss_curve(device_target="CPU")
    gpu, gpu_net = _loss_curve(device_target="GPU", backend="cuda-emulated")
    assert len(gpu) == STEPS and gpu[-1] < gpu[0]
    np.testing.assert_allclose(gpu, cpu, rtol=2e-4, atol=2e-4)
    for p, q in zip(cpu_net.trainable_params(), gpu_net.trainable_params(), strict=True):
        assert get_backend("cuda-emulated").device.is_array(q._data)     # updated in place on the device
        np.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-3, atol=2e-4)   # the loss curve's bound: sums in another order


def test_eager_ops_on_gpu_run_kernels_and_stay_on_device():
    sf.set_context(device_target="GPU", backend="cuda-emulated")
    dev = get_backend("cuda-emulated").device
    a = sf.Tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert dev.is_array(a._data)
    before = dev.launches
    b = sf.ops.softmax(a * 0.5 + 1.0, -1)
    assert dev.launches > before                      # kernels ran: no numpy fallback
    assert dev.is_array(b._data) and type(b.asnumpy()) is np.ndarray
    ref = np.exp(np.arange(12, dtype=np.float64).reshape(3, 4) * 0.5)
    np.testing.assert_allclose(b.asnumpy(), ref / ref.sum(-1, keepdims=True), rtol=1e-6)
    g = sf.grad(lambda t: (t * t).sum())(a)
    np.testing.assert_allclose(g.asnumpy(), 2 * a.asnumpy())


def test_device_executable_refuses_host_arrays_and_wrong_shapes():
    f = sf.jit(lambda t: t + 1.0, backend="cuda-emulated")
    exe = f.trace(sf.Tensor(np.ones(3, np.float32))).lower().executable
    with pytest.raises(BackendError, match="host \\(numpy\\) array"):
        exe(np.ones(3, np.float32))
    with pytest.raises(BackendError, match="must be f32\\[3\\]"):
        exe(exe.device.upload(np.ones(4, np.float32)))


def test_real_cuda_backend_without_a_gpu_says_so():
    from sporeflow.backends.cuda.device import CupyDevice
    try:
        CupyDevice()
    except BackendError as e:
        assert "cuda-emulated" in str(e)
    else:
        pytest.skip("a CUDA device is present: the GPU suite runs for real")
