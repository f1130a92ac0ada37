"""MindSpore's "Automatic Mix Precision" tutorial (beginner/mixed_precision) with `import mindspore
as ms` replaced by `import sporeflow as ms`, on the packaged digits instead of the MNIST download:
auto_mixed_precision O2, manual to_float and astype networks, the DynamicLossScaler + all_finite
train step under ms.jit, build_train_network(level="O2", FixedLossScaleManager()) and
Model(amp_level="O2", loss_scale_manager=FixedLossScaleManager()). Interpreter and LLVM."""
import numpy as np
import pytest

import sporeflow as ms
from sporeflow import nn
from sporeflow import value_and_grad
from sporeflow.dataset import NumpySlicesDataset, load_digits_split, transforms, vision

BACKENDS = ["INTERP", "CPU"]
EPOCHS = 8


def datapipe(images, labels, batch_size):
    image_transforms = [
        vision.Rescale(1.0 / 16.0, 0),
        vision.Normalize(mean=(0.3,), std=(0.4,)),
        vision.HWC2CHW()
    ]
    label_transform = transforms.TypeCast(ms.int32)

    dataset = NumpySlicesDataset({"image": images, "label": labels}, shuffle=False)
    dataset = dataset.map(image_transforms, 'image')
    dataset = dataset.map(label_transform, 'label')
    dataset = dataset.batch(batch_size)
    return dataset


def train_dataset_digits(batch_size=64, n=640):
    (xtr, ytr), _ = load_digits_split(0.2, seed=0, normalize=False)
    images = xtr[:n].reshape(-1, 8, 8, 1).astype(np.uint8)
    return datapipe(images, ytr[:n].astype(np.int64), batch_size)


# Define model (the tutorial's, with 8x8 inputs and narrower layers)
class Network(nn.Cell):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(8*8, 64),
            nn.ReLU(),
            nn.Dense(64, 64),
            nn.ReLU(),
            nn.Dense(64, 10)
        )

    def construct(self, x):
        x = self.flatten(x)
        logits = self.dense_relu_sequential(x)
        return logits


class NetworkFP16(nn.Cell):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(8*8, 64).to_float(ms.float16),
            nn.ReLU(),
            nn.Dense(64, 64).to_float(ms.float16),
            nn.ReLU(),
            nn.Dense(64, 10).to_float(ms.float16)
        )

    def construct(self, x):
        x = self.flatten(x)
        logits = self.dense_relu_sequential(x)
        return logits


class NetworkFP16Manual(nn.Cell):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(8*8, 64),
            nn.ReLU(),
            nn.Dense(64, 64),
            nn.ReLU(),
            nn.Dense(64, 10)
        )

    def construct(self, x):
        x = self.flatten(x)
        x = x.astype(ms.float16)
        logits = self.dense_relu_sequential(x)
        logits = logits.astype(ms.float32)
        return logits


def _context(device):
    ms.set_context(mode=ms.GRAPH_MODE, device_target=device)
    ms.set_seed(1)


def _loss_scaled_loop(model, train_dataset):
    """The tutorial's 'Loss Scaling' section, verbatim but for the print."""
    from sporeflow.amp import DynamicLossScaler, all_finite

    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 1e-1)
    loss_scaler = DynamicLossScaler(scale_value=2**16, scale_factor=2, scale_window=50)

    def forward_fn(data, label):
        logits = model(data)
        loss = loss_fn(logits, label)
        # scale up the loss value
        loss = loss_scaler.scale(loss)
        return loss, logits

    grad_fn = value_and_grad(forward_fn, None, model.trainable_params(), has_aux=True)

    @ms.jit
    def train_step(data, label):
        (loss, _), grads = grad_fn(data, label)
        loss = loss_scaler.unscale(loss)

        is_finite = all_finite(grads)
        if is_finite:
            grads = loss_scaler.unscale(grads)
            optimizer(grads)
        loss_scaler.adjust(is_finite)

        return loss

    losses = []
    for _ in range(EPOCHS):
        model.set_train()
        for batch, (data, label) in enumerate(train_dataset.create_tuple_iterator()):
            loss = train_step(data, label)
            losses.append(float(loss.asnumpy()))
    return losses, loss_scaler


@pytest.mark.parametrize("device", BACKENDS)
def test_auto_mixed_precision_o2_with_dynamic_loss_scaler(device):
    from sporeflow.amp import auto_mixed_precision

    _context(device)
    model = Network()
    model = auto_mixed_precision(model, 'O2')
    x = ms.Tensor(np.zeros((2, 1, 8, 8), np.float32))
    assert model(x).dtype == ms.float32                       # outputs cast back (_OutputTo32)
    g = ms.jit(model).trace(x).graph
    assert {n.outputs[0].dtype for n in g.nodes if n.op == "matmul"} == {ms.float16}
    losses, scaler = _loss_scaled_loop(model, train_dataset_digits())
    assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    # the loss is float32 (the output is cast back), its scaled gradients stay finite in float16:
    # 80 finite steps with scale_window=50 grow the scale once
    assert float(scaler.scale_value.asnumpy()) == 2 ** 17


@pytest.mark.parametrize("device", BACKENDS)
@pytest.mark.parametrize("net_cls", [NetworkFP16, NetworkFP16Manual])
def test_manual_type_conversion_networks_train(device, net_cls):
    _context(device)
    model = net_cls()
    x = ms.Tensor(np.zeros((2, 1, 8, 8), np.float32))
    g = ms.jit(model).trace(x).graph
    # astype(float16) before a Dense with float32 weights promotes back to float32 (MindSpore's
    # implicit conversion does the same); to_float really computes the Dense in float16
    want = {ms.float16} if net_cls is NetworkFP16 else {ms.float32}
    assert {n.outputs[0].dtype for n in g.nodes if n.op == "matmul"} == want
    assert all(p.dtype == ms.float32 for p in model.trainable_params())   # float32 masters
    losses, scaler = _loss_scaled_loop(model, train_dataset_digits())
    scale = float(scaler.scale_value.asnumpy())
    if net_cls is NetworkFP16:
        # to_float keeps the last Dense's output float16, so the loss is float16: 2**16 * loss
        # overflows (the first step's gradients too: skipped, the scale halves), and the reported
        # loss is inf until the loss has come down below 65504 / scale; when the scale grows back
        # after scale_window steps it overflows once more and halves again
        assert not np.isfinite(losses[0]) and scale == 2 ** 15, (losses[:4], scale)
        losses = [v for v in losses if np.isfinite(v)]
        assert len(losses) > 40
    else:
        assert scale == 2 ** 17
    assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


@pytest.mark.parametrize("device", BACKENDS)
def test_build_train_network_o2_fixed_manager(device):
    from sporeflow.amp import build_train_network, FixedLossScaleManager

    _context(device)
    loss_fn = nn.CrossEntropyLoss()
    model = Network()
    optimizer = nn.SGD(model.trainable_params(), 1e-1)
    loss_scale_manager = FixedLossScaleManager()

    model = build_train_network(model, optimizer, loss_fn, level="O2", loss_scale_manager=loss_scale_manager)
    losses = []
    for _ in range(EPOCHS):
        for data, label in train_dataset_digits().create_tuple_iterator():
            out = model(data, label)
            loss, overflow, scale = out
            assert not bool(overflow.asnumpy()) and float(scale.asnumpy()) == 128.0
            losses.append(float(loss.asnumpy()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


@pytest.mark.parametrize("device", BACKENDS)
def test_model_amp_level_o2_fixed_manager(device):
    from sporeflow.amp import FixedLossScaleManager
    from sporeflow.train import Model, LossMonitor

    _context(device)
    # Initialize network
    model = Network()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 1e-1)

    loss_scale_manager = FixedLossScaleManager()
    trainer = Model(model, loss_fn=loss_fn, optimizer=optimizer, metrics={'accuracy'}, amp_level="O2",
                    loss_scale_manager=loss_scale_manager)

    loss_callback = LossMonitor(100)
    train_dataset = train_dataset_digits()
    trainer.train(EPOCHS, train_dataset, callbacks=[loss_callback])
    acc = trainer.eval(train_dataset)["accuracy"]
    assert acc > 0.8, acc
