"""File readers on tiny files written here in the real layouts (MNIST idx, CIFAR-10 binary),
and the packaged UCI digits."""
import gzip
import struct

import numpy as np
import pytest

import sporeflow as sf
import sporeflow.dataset as ds
from sporeflow.dataset import vision
from sporeflow.errors import DatasetError


def write_mnist(d, prefix, images, labels, gz=False):
    n, h, w = images.shape
    img = struct.pack(">iiii", 0x803, n, h, w) + images.astype(np.uint8).tobytes()
    lab = struct.pack(">ii", 0x801, labels.shape[0]) + labels.astype(np.uint8).tobytes()
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(d / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(img)
    with opener(d / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(lab)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    tr = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    te = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    write_mnist(tmp_path, "train", tr, np.array([0, 1, 2, 3, 9]))
    write_mnist(tmp_path, "t10k", te, np.array([5, 6, 7]))
    return tmp_path, tr, te


def test_mnist_reads_standard_files(mnist_dir):
    d, tr, te = mnist_dir
    train = ds.MnistDataset(str(d), usage="train", shuffle=False)
    assert train.get_col_names() == ["image", "label"] and train.get_dataset_size() == 5
    got = list(train.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert got[4][0].shape == (28, 28, 1) and got[4][0].dtype == np.uint8 and got[4][1].dtype == np.uint32
    np.testing.assert_array_equal(got[3][0][..., 0], tr[3])
    assert [int(r[1]) for r in got] == [0, 1, 2, 3, 9]
    assert ds.MnistDataset(str(d), usage="test").get_dataset_size() == 3
    assert ds.MnistDataset(str(d)).get_dataset_size() == 8  # usage None = all
    # a typical tutorial pipeline
    pipe = ds.MnistDataset(str(d), "train").map([vision.Rescale(1 / 255, 0), vision.HWC2CHW()], "image")
    x, y = next(iter(pipe.map(lambda v: v.astype(np.int32), "label").batch(4)))
    assert x.shape == (4, 1, 28, 28) and x.dtype is sf.float32 and y.dtype is sf.int32


def test_mnist_gz_and_missing(tmp_path):
    write_mnist(tmp_path, "train", np.zeros((2, 4, 4)), np.array([1, 2]), gz=True)
    assert ds.MnistDataset(str(tmp_path), "train").output_shapes() == [[4, 4, 1], []]
    with pytest.raises(ValueError, match="no test files"):
        ds.MnistDataset(str(tmp_path), "test")
    with pytest.raises(ValueError, match="not a directory"):
        ds.MnistDataset(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="usage"):
        ds.MnistDataset(str(tmp_path), "val")


def test_mnist_corrupt_files_are_named(mnist_dir):
    d, tr, _ = mnist_dir
    img = d / "train-images-idx3-ubyte"
    blob = img.read_bytes()
    img.write_bytes(blob[:16 + 28 * 28 * 3 + 100])  # truncated inside image 3
    with pytest.raises(DatasetError, match=r"truncated.*row 3, column 'image'"):
        ds.MnistDataset(str(d), "train")
    img.write_bytes(b"\x00\x00\x08\x01" + blob[4:])  # labels magic in an images file
    with pytest.raises(DatasetError, match="magic number 0x00000801, expected 0x00000803"):
        ds.MnistDataset(str(d), "train")
    img.write_bytes(blob + b"\x00")
    with pytest.raises(DatasetError, match="1 bytes follow"):
        ds.MnistDataset(str(d), "train")
    img.write_bytes(blob[:10])
    with pytest.raises(DatasetError, match="shorter than its 16-byte header"):
        ds.MnistDataset(str(d), "train")
    write_mnist(d, "train", tr, np.array([0, 1, 2, 3]))
    with pytest.raises(DatasetError, match="5 images but .* 4 labels"):
        ds.MnistDataset(str(d), "train")
    write_mnist(d, "train", tr, np.array([0, 1, 12, 3, 4]))
    with pytest.raises(DatasetError, match="row 2, column 'label': label 12"):
        ds.MnistDataset(str(d), "train")


def write_cifar(path, images_hwc, labels):
    recs = [bytes([int(lab)]) + img.transpose(2, 0, 1).tobytes() for img, lab in zip(images_hwc, labels)]
    path.write_bytes(b"".join(recs))


def test_cifar10_binary_layout(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    b = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    t = rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    write_cifar(tmp_path / "data_batch_1.bin", a, [0, 1, 2])
    write_cifar(tmp_path / "data_batch_2.bin", b, [3, 9])
    write_cifar(tmp_path / "test_batch.bin", t, [4, 5])
    train = ds.Cifar10Dataset(str(tmp_path), usage="train", shuffle=False)
    got = list(train.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(got) == 5 and got[0][0].shape == (32, 32, 3) and got[0][1].dtype == np.uint32
    np.testing.assert_array_equal(got[1][0], a[1])
    np.testing.assert_array_equal(got[4][0], b[1])
    # red plane first in the file: byte 1 of record 0 is pixel (0, 0) red
    raw = (tmp_path / "data_batch_1.bin").read_bytes()
    assert raw[1] == a[0, 0, 0, 0] and raw[1 + 1024] == a[0, 0, 0, 1]
    assert [int(r[1]) for r in got] == [0, 1, 2, 3, 9]
    assert ds.Cifar10Dataset(str(tmp_path), usage="test").get_dataset_size() == 2
    assert ds.Cifar10Dataset(str(tmp_path)).get_dataset_size() == 7


def test_cifar10_corrupt(tmp_path):
    img = np.zeros((2, 32, 32, 3), np.uint8)
    write_cifar(tmp_path / "data_batch_1.bin", img, [1, 2])
    p = tmp_path / "data_batch_1.bin"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DatasetError, match=r"data_batch_1.bin.*row 1, column 'image' is incomplete"):
        ds.Cifar10Dataset(str(tmp_path), "train")
    write_cifar(p, img, [1, 10])
    with pytest.raises(DatasetError, match="row 1, column 'label': label 10"):
        ds.Cifar10Dataset(str(tmp_path), "train")
    with pytest.raises(ValueError, match="no CIFAR-10 binary files"):
        ds.Cifar10Dataset(str(tmp_path), "test")


def test_packaged_digits():
    x, y = ds.load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    raw, _ = ds.load_digits(normalize=False)
    assert raw[0, 0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]  # first CSV row
    (xtr, ytr), (xte, yte) = ds.load_digits_split(test_fraction=0.2, seed=0)
    assert len(ytr) + len(yte) == 1797 and abs(len(yte) - 359) <= 5
    (xtr2, _), (xte2, yte2) = ds.load_digits_split(test_fraction=0.2, seed=0)
    assert np.array_equal(xte, xte2) and np.array_equal(yte, yte2)  # deterministic
    tr_idx, te_idx = ds.split_indices(y, 0.2, 0)
    assert not set(tr_idx) & set(te_idx)
    counts = np.bincount(y[te_idx])
    assert counts.min() >= 34 and counts.max() <= 37  # stratified
    other = ds.split_indices(y, 0.2, 1)[1]
    assert not np.array_equal(other, te_idx)
    d = ds.DigitsDataset("test").batch(64)
    assert d.get_dataset_size() == int(np.ceil(len(yte) / 64))
    img, lab = next(iter(d))
    assert img.shape == (64, 1, 8, 8) and lab.dtype is sf.int32
