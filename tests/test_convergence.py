"""MLP and CNN on the packaged UCI digits converge through Model.fit (held-out stratified split):
MLP >= 96%, CNN >= 97%. Small enough for CI on the interpreter (a few seconds each)."""
import sporeflow as sf
from sporeflow import dataset as ds, nn
from sporeflow.train import Accuracy, Model


def _data(batch_size=32):
    (xtr, ytr), (xte, yte) = ds.load_digits_split(test_fraction=0.2, seed=0)
    train = ds.NumpySlicesDataset({"image": xtr, "label": ytr}, shuffle=True).batch(batch_size, drop_remainder=True)
    test = ds.NumpySlicesDataset({"image": xte, "label": yte}, shuffle=False).batch(180)
    return train, test, len(yte)


def _fit(net, epochs, lr):
    train, test, n_test = _data()
    opt = nn.Adam(net.trainable_params(), learning_rate=lr)
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt,
                  metrics={"accuracy": Accuracy()})
    model.fit(epochs, train, test)
    assert n_test == 359
    return model.eval(test)["accuracy"]


def test_mlp_converges_on_digits():
    sf.set_seed(0)
    net = nn.SequentialCell(nn.Flatten(), nn.Dense(64, 64, activation="relu"), nn.Dense(64, 10))
    acc = _fit(net, 10, 0.01)
    print("mlp", acc)
    assert acc >= 0.96, acc


def test_cnn_converges_on_digits():
    sf.set_seed(0)
    net = nn.SequentialCell(
        nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Dense(128, 64, activation="relu"), nn.Dropout(p=0.2), nn.Dense(64, 10))
    acc = _fit(net, 5, 0.005)
    print("cnn", acc)
    assert acc >= 0.97, acc


def test_example_script_runs(tmp_path, capsys):
    """examples/train_digits.py (README's first command), shortened: it trains, checkpoints, reports."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "train_digits.py")
    spec = importlib.util.spec_from_file_location("train_digits", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    acc = mod.main(["--epochs", "2", "--interp", "--ckpt-dir", str(tmp_path)])
    assert acc >= 0.9
    assert sorted(os.listdir(tmp_path)) == ["digits-1_44.ckpt", "digits-2_44.ckpt"]
    assert "test accuracy:" in capsys.readouterr().out
