"""SummaryCollector / SummaryRecord: the CSV holds the loss every collect_freq steps, the
learning rate beside it and eval metrics per epoch; plot_summary draws a PNG."""
import csv
import glob

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn
from sporeflow.runtime.summary import main, plot_summary, read_summary
from sporeflow.train import Callback, Model, SummaryCollector, SummaryRecord


class _Data:
    def __init__(self, n, seed=0):
        r = np.random.default_rng(seed)
        self.batches = [(r.standard_normal((4, 6)).astype(np.float32), r.integers(0, 3, 4).astype(np.int32))
                        for _ in range(n)]

    def get_dataset_size(self):
        return len(self.batches)

    def create_tuple_iterator(self, num_epochs=-1):
        return iter([tuple(sf.Tensor(a) for a in b) for b in self.batches])


class _Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_train_step_end(self, rc):
        self.losses.append(float(np.mean(rc.original_args().net_outputs.asnumpy())))


def _model():
    sf.set_seed(0)
    net = nn.SequentialCell(nn.Dense(6, 8), nn.ReLU(), nn.Dense(8, 3))
    sched = nn.exponential_decay_lr(0.1, 0.5, total_step=6, step_per_epoch=3, decay_epoch=1)
    opt = nn.Momentum(net.trainable_params(), sched, 0.9)
    return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt, metrics={"accuracy"})


def test_collector_logs_loss_lr_and_metrics(tmp_path):
    model, seen = _model(), _Losses()
    collector = SummaryCollector(str(tmp_path), collect_freq=2)
    model.fit(2, _Data(3), _Data(2, seed=1), callbacks=[collector, seen])
    data = read_summary(str(tmp_path))
    steps, losses = data["loss"]
    assert steps.tolist() == [1, 3, 5]
    np.testing.assert_allclose(losses, [seen.losses[0], seen.losses[2], seen.losses[4]], rtol=1e-6)
    # the lr logged after step s is the one the next update uses (the optimizer has advanced global_step)
    np.testing.assert_allclose(data["learning_rate"][1], [0.1, 0.05, 0.05], rtol=1e-6)
    assert data["eval/accuracy"][0].tolist() == [3, 6] and "eval/eval_loss" in data
    with open(collector.path, newline="") as f:
        assert next(csv.reader(f)) == ["step", "epoch", "tag", "value", "wall_time"]
    png = plot_summary(str(tmp_path), str(tmp_path / "loss.png")) if _has_matplotlib() else None
    if png:
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def test_record_and_cli(tmp_path, capsys):
    with SummaryRecord(str(tmp_path)) as rec:
        for step in range(3):
            rec.add_value("scalar", "acc", sf.Tensor(np.float32(step / 2)))
            rec.record(step)
        with pytest.raises(NotImplementedError, match="only 'scalar'"):
            rec.add_value("image", "x", np.zeros((2, 2)))
    assert main(["show", str(tmp_path)]) == 0
    assert "acc: 3 points, last 1 at step 2" in capsys.readouterr().out
    if _has_matplotlib():
        main(["plot", str(tmp_path), "-o", str(tmp_path / "a.png"), "--tags", "acc"])
        assert len(glob.glob(str(tmp_path / "a.png"))) == 1


def test_unsupported_collection_is_refused(tmp_path):
    with pytest.raises(NotImplementedError, match="scalars only"):
        SummaryCollector(str(tmp_path), collect_specified_data={"collect_graph": True})
    with pytest.raises(ValueError, match="unknown collect_specified_data"):
        SummaryCollector(str(tmp_path), collect_specified_data={"collect_everything": True})
    with pytest.raises(FileNotFoundError):
        read_summary(str(tmp_path / "nothing"))
