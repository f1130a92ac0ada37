"""MindSpore's own tutorial flows with `import mindspore as ms` replaced by `import sporeflow as ms`
(quick start with a functional loop, then the Model + callbacks page), on the packaged digits."""
import numpy as np
import pytest

import sporeflow as ms
from sporeflow import nn
from sporeflow.dataset import NumpySlicesDataset, load_digits_split, transforms, vision


def datapipe(images, labels, batch_size):
    dataset = NumpySlicesDataset({"image": images, "label": labels}, shuffle=False)
    image_transforms = [vision.Rescale(1.0 / 16.0, 0), vision.Normalize(mean=(0.3,), std=(0.4,)), vision.HWC2CHW()]
    label_transform = transforms.TypeCast(ms.int32)
    dataset = dataset.map(image_transforms, "image")
    dataset = dataset.map(label_transform, "label")
    return dataset.batch(batch_size)


def digits_hwc():
    (xtr, ytr), (xte, yte) = load_digits_split(0.2, seed=0, normalize=False)
    hwc = lambda x: x.reshape(-1, 8, 8, 1).astype(np.uint8)  # noqa: E731 (raw 0..16 pixels, HWC as decoded images)
    return datapipe(hwc(xtr), ytr.astype(np.int64), 64), datapipe(hwc(xte), yte.astype(np.int64), 90)


class Network(nn.Cell):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense_relu_sequential = nn.SequentialCell(
            nn.Dense(8 * 8, 64), nn.ReLU(), nn.Dense(64, 64), nn.ReLU(), nn.Dense(64, 10))

    def construct(self, x):
        x = self.flatten(x)
        logits = self.dense_relu_sequential(x)
        return logits


def evaluate(model, dataset, loss_fn):
    num_batches = dataset.get_dataset_size()
    model.set_train(False)
    total, test_loss, correct = 0, 0, 0
    for data, label in dataset.create_tuple_iterator():
        pred = model(data)
        total += len(data)
        test_loss += loss_fn(pred, label).asnumpy()
        correct += (pred.argmax(1) == label).asnumpy().sum()
    return correct / total, test_loss / num_batches


def test_quickstart_functional_loop(tmp_path):
    ms.set_seed(1)
    train_dataset, test_dataset = digits_hwc()
    model = Network()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 0.1)

    def forward_fn(data, label):
        logits = model(data)
        loss = loss_fn(logits, label)
        return loss, logits

    grad_fn = ms.value_and_grad(forward_fn, None, optimizer.parameters, has_aux=True)

    @ms.jit
    def train_step(data, label):
        (loss, _), grads = grad_fn(data, label)
        optimizer(grads)
        return loss

    losses = []
    for _ in range(10):
        model.set_train()
        for data, label in train_dataset.create_tuple_iterator():
            losses.append(float(train_step(data, label).asnumpy()))
    acc, test_loss = evaluate(model, test_dataset, loss_fn)
    assert acc >= 0.9 and losses[-1] < losses[0] / 3, (acc, losses[0], losses[-1])

    ms.save_checkpoint(model, str(tmp_path / "model.ckpt"))
    model2 = Network()
    param_dict = ms.load_checkpoint(str(tmp_path / "model.ckpt"))
    param_not_load, _ = ms.load_param_into_net(model2, param_dict)
    assert param_not_load == []
    assert evaluate(model2, test_dataset, loss_fn)[0] == acc


def test_quickstart_eager_step_equals_jitted_step():
    """PyNative: the same train_step without @jit gives the same parameters (eager == compiled)."""
    train_dataset, _ = digits_hwc()
    batches = list(train_dataset.create_tuple_iterator())[:3]
    finals = []
    for jitted in (False, True):
        ms.set_seed(2)
        model = Network()
        optimizer = nn.Momentum(model.trainable_params(), 0.05, 0.9)
        loss_fn = nn.CrossEntropyLoss()
        grad_fn = ms.value_and_grad(lambda d, lab: loss_fn(model(d), lab), None, optimizer.parameters)

        def train_step(data, label):
            loss, grads = grad_fn(data, label)
            optimizer(grads)
            return loss
        step = ms.jit(train_step) if jitted else train_step
        model.set_train()
        for data, label in batches:
            step(data, label)
        finals.append([p.asnumpy() for p in model.trainable_params()])
    for a, b in zip(*finals, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_model_tutorial_with_callbacks(tmp_path, capsys):
    ms.set_seed(3)
    train_dataset, test_dataset = digits_hwc()
    network = Network()
    net_loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    net_opt = nn.Momentum(network.trainable_params(), learning_rate=0.05, momentum=0.9)
    model = ms.Model(network, loss_fn=net_loss, optimizer=net_opt, metrics={"accuracy"})
    config_ck = ms.CheckpointConfig(save_checkpoint_steps=train_dataset.get_dataset_size(), keep_checkpoint_max=3)
    ckpoint = ms.ModelCheckpoint(prefix="digits", directory=str(tmp_path), config=config_ck)
    with pytest.warns(RuntimeWarning, match="compiled again"):     # the last batch holds 30 images, not 64
        model.fit(6, train_dataset, test_dataset, callbacks=[ckpoint, ms.LossMonitor(10), ms.TimeMonitor()])
    out = capsys.readouterr().out
    assert "Eval result: epoch 6, metrics: {'accuracy': " in out and "Train epoch time:" in out
    acc = model.eval(test_dataset)["accuracy"]
    assert acc >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-4_23.ckpt", "digits-5_23.ckpt", "digits-6_23.ckpt"]
