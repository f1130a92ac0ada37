"""MindSpore's sink-mode tutorial (model_train/train_process/optimize/sink_mode.md: Model.train
with sink_size, then the three ms.data_sink calling patterns) with `import mindspore` replaced by
`import sporeflow`. Differences, all for test time: a small MNIST-format file (96 images) instead
of the download, fewer epochs and a smaller sink_size, device_target CPU (LLVM) and the interpreter;
the doc's printed counters ("epoch: E step: sink_size") are checked."""
import os
import re
import struct

import numpy as np
import pytest

import sporeflow as ms
import sporeflow.dataset as ds
import sporeflow.dataset.transforms as transforms
import sporeflow.dataset.vision as vision
import sporeflow.nn as nn
from sporeflow import train
from sporeflow.common.initializer import TruncatedNormal
from sporeflow.dataset.vision import Inter
import sporeflow.ops as ops


def create_dataset(data_path, batch_size=32, repeat_size=1, num_parallel_workers=1):
    """create dataset for train or test"""
    mnist_ds = ds.MnistDataset(data_path)
    resize_height, resize_width = 32, 32
    rescale = 1.0 / 255.0
    shift = 0.0
    rescale_nml = 1 / 0.3081
    shift_nml = -1 * 0.1307 / 0.3081
    resize_op = vision.Resize((resize_height, resize_width), interpolation=Inter.LINEAR)  # Bilinear mode
    rescale_nml_op = vision.Rescale(rescale_nml, shift_nml)
    rescale_op = vision.Rescale(rescale, shift)
    hwc2chw_op = vision.HWC2CHW()
    type_cast_op = transforms.TypeCast(ms.int32)
    mnist_ds = mnist_ds.map(input_columns="label", operations=type_cast_op, num_parallel_workers=num_parallel_workers)
    mnist_ds = mnist_ds.map(input_columns="image", operations=resize_op, num_parallel_workers=num_parallel_workers)
    mnist_ds = mnist_ds.map(input_columns="image", operations=rescale_op, num_parallel_workers=num_parallel_workers)
    mnist_ds = mnist_ds.map(input_columns="image", operations=rescale_nml_op, num_parallel_workers=num_parallel_workers)
    mnist_ds = mnist_ds.map(input_columns="image", operations=hwc2chw_op, num_parallel_workers=num_parallel_workers)
    buffer_size = 10000
    mnist_ds = mnist_ds.shuffle(buffer_size=buffer_size)  # 10000 as in LeNet train script
    mnist_ds = mnist_ds.batch(batch_size, drop_remainder=True)
    mnist_ds = mnist_ds.repeat(repeat_size)
    return mnist_ds


def conv(in_channels, out_channels, kernel_size, stride=1, padding=0):
    weight = weight_variable()
    return nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                     weight_init=weight, has_bias=False, pad_mode="valid")


def fc_with_initialize(input_channels, out_channels):
    weight = weight_variable()
    bias = weight_variable()
    return nn.Dense(input_channels, out_channels, weight, bias)


def weight_variable():
    return TruncatedNormal(0.02)


class LeNet5(nn.Cell):
    def __init__(self, num_class=10):
        super(LeNet5, self).__init__()
        self.num_class = num_class
        self.batch_size = 32
        self.conv1 = conv(1, 6, 5)
        self.conv2 = conv(6, 16, 5)
        self.fc1 = fc_with_initialize(16 * 5 * 5, 120)
        self.fc2 = fc_with_initialize(120, 84)
        self.fc3 = fc_with_initialize(84, self.num_class)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)

    def construct(self, x):
        x = self.conv1(x)
        x = self.relu(x)
        x = self.max_pool2d(x)
        x = self.conv2(x)
        x = self.relu(x)
        x = self.max_pool2d(x)
        x = ops.reshape(x, (self.batch_size, -1))
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        x = self.relu(x)
        x = self.fc3(x)
        return x


def download_dataset(dataset_url, path):
    """The tutorial's download: the files are already there (written by the fixture)."""
    filename = dataset_url.split("/")[-1]
    save_path = os.path.join(path, filename)
    if os.path.exists(save_path):
        return
    raise AssertionError("the test writes the MNIST files first")


@pytest.fixture
def mnist_path(tmp_path):
    rng = np.random.default_rng(0)
    n = 96                                    # 3 batches of 32
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
    for k in range(n):                        # a learnable pattern: a bright bar per class
        images[k, 2 + 2 * labels[k]: 4 + 2 * labels[k], 4:24] = 250
    d = tmp_path / "MNIST_Data" / "train"
    d.mkdir(parents=True)
    (d / "train-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 0x803, n, 28, 28) + images.tobytes())
    (d / "train-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 0x801, n) + labels.tobytes())
    return str(d) + "/"


URL = "https://mindspore-website.obs.myhuaweicloud.com/notebook/datasets/mnist/"


@pytest.mark.parametrize("target", ["CPU", "INTERP"])
def test_model_train_with_sink_size(mnist_path, capsys, target):
    ms.set_context(mode=ms.GRAPH_MODE, device_target=target)
    ds_train_path = mnist_path
    download_dataset(URL + "train-labels-idx1-ubyte", ds_train_path)
    download_dataset(URL + "train-images-idx3-ubyte", ds_train_path)
    ds_train = create_dataset(ds_train_path, 32)
    network = LeNet5(10)
    net_loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    net_opt = nn.Momentum(network.trainable_params(), 0.01, 0.9)
    model = train.Model(network, net_loss, net_opt)
    print("============== Starting Training ==============")
    model.train(epoch=3, train_dataset=ds_train, callbacks=[train.LossMonitor()], dataset_sink_mode=True, sink_size=4)
    out = capsys.readouterr().out
    lines = re.findall(r"epoch: (\d+) step: (\d+), loss is ([\d.e-]+)", out)
    assert [(e, s) for e, s, _ in lines] == [("1", "4"), ("2", "4"), ("3", "4")]   # 12 steps over 4 passes
    assert int(net_opt.global_step.asnumpy()[0]) == 12


def test_data_sink_three_calling_patterns(mnist_path, capsys):
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ds_train_path = mnist_path
    ms.set_seed(0)
    network = LeNet5(10)
    network.set_train()
    weights = network.trainable_params()
    net_loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    net_opt = nn.Momentum(network.trainable_params(), 0.01, 0.9)

    def forward_fn(data, label):
        loss = net_loss(network(data), label)
        return loss

    grad_fn = ms.value_and_grad(forward_fn, None, weights)

    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        net_opt(grads)
        return loss

    jit = ms.JitConfig()
    print("1. Default, execute one step data each per sink")
    ds_train = create_dataset(ds_train_path, 32)
    data_size = ds_train.get_dataset_size()
    epochs = 2
    sink_process = ms.data_sink(train_step, ds_train, jit_config=jit)
    for _ in range(data_size * epochs):
        loss = sink_process()
        print(f"step {_ + 1}, loss is {loss}")

    print("2. Execute one epoch data per sink")
    ds_train = create_dataset(ds_train_path, 32)
    data_size = ds_train.get_dataset_size()
    sink_process = ms.data_sink(train_step, ds_train, sink_size=data_size, jit_config=jit)
    for _ in range(epochs):
        loss = sink_process()
        print(f"epoch {_ + 1}, loss is {loss}")

    print("3. Execute multiple epoch data per sink")
    ds_train = create_dataset(ds_train_path, 32)
    data_size = ds_train.get_dataset_size()
    sink_process = ms.data_sink(train_step, ds_train, sink_size=epochs * data_size, jit_config=jit)
    loss = sink_process()
    print(f"loss is {loss}")
    out = capsys.readouterr().out
    assert len(re.findall(r"^step \d+, loss is", out, re.M)) == 6
    assert re.findall(r"^epoch (\d+), loss is", out, re.M) == ["1", "2"]
    assert int(net_opt.global_step.asnumpy()[0]) == 18                  # 6 + 2*3 + 6 steps
    first = float(re.search(r"^step 1, loss is ([\d.e-]+)", out, re.M).group(1))
    last = float(re.search(r"^loss is ([\d.e-]+)", out, re.M).group(1))
    assert last < first
