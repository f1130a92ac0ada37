"""Built-in callbacks: printed formats, NaN stop, checkpoint naming/pruning/contents, History,
EarlyStopping, ReduceLROnPlateau, LambdaCallback, ProgressBar."""
import io
import os
import re

import numpy as np
import pytest

from sporeflow.train import (CheckpointConfig, EarlyStopping, History, LambdaCallback, LossMonitor,
                             ModelCheckpoint, ProgressBar, ReduceLROnPlateau, RunContext, TimeMonitor,
                             load_checkpoint)
from sporeflow.train import InternalCallbackParam

from test_model import make_data, make_model


def test_run_context_and_params():
    cb = InternalCallbackParam(cur_step_num=3)
    cb.extra = 1
    rc = RunContext(cb)
    assert rc.original_args().cur_step_num == 3 and rc.original_args()["extra"] == 1
    assert not rc.get_stop_requested()
    rc.request_stop()
    assert rc.get_stop_requested()


def test_loss_monitor_format_and_global_print_counter(capsys):
    model, _, _ = make_model()
    model.train(2, make_data(3), callbacks=[LossMonitor(2)])
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["epoch: 1 step: 2", "epoch: 2 step: 1", "epoch: 2 step: 3"]
    assert all(re.fullmatch(r"epoch: \d step: \d, loss is \d+\.\d+(e-?\d+)?", ln) for ln in lines)


def test_loss_monitor_stops_on_nan():
    model, _, _ = make_model(lr=1e30)
    bad = make_data(2)
    bad.batches[1] = (np.full((4, 6), np.nan, np.float32), bad.batches[1][1])
    with pytest.raises(ValueError, match=r"In epoch: 1 step: 2, loss is NAN or INF, training process cannot continue"):
        model.train(1, bad, callbacks=[LossMonitor()])


def test_time_monitor_format(capsys):
    model, _, _ = make_model()
    model.fit(1, make_data(2), make_data(1, seed=1), callbacks=[TimeMonitor()])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"Eval epoch time: \d+\.\d{3} ms, per step time: \d+\.\d{3} ms", lines[0])
    assert re.fullmatch(r"Train epoch time: \d+\.\d{3} ms, per step time: \d+\.\d{3} ms", lines[1])


def test_history_and_lambda():
    model, _, _ = make_model()
    h = History()
    seen = []
    lam = LambdaCallback(on_train_epoch_end=lambda rc: seen.append(rc.original_args().cur_epoch_num))
    model.fit(2, make_data(2), make_data(1, seed=1), callbacks=[h, lam])
    assert h.epoch == {"epoch": [1, 2]} and seen == [1, 2]
    assert len(h.history["net_output"]) == 2 and len(h.history["accuracy"]) == 2 and "eval_loss" in h.history


def test_model_checkpoint_names_pruning_prefix_clash_and_contents(tmp_path):
    model, net, _ = make_model()
    cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=2, append_info=["epoch_num", {"lr": 0.5}])
    model.train(2, make_data(3), callbacks=[ModelCheckpoint("mlp", str(tmp_path), cfg)])
    # saves at cumulative steps 2, 4, 6 -> (1,2) (2,1) (2,3); keep 2; name uses the step within the epoch
    assert sorted(os.listdir(tmp_path)) == ["mlp-2_1.ckpt", "mlp-2_3.ckpt"]
    ck = load_checkpoint(str(tmp_path / "mlp-2_3.ckpt"))
    names = set(ck)
    assert {"0.weight", "1.moving_mean", "global_step", "learning_rate", "momentum", "moments.0.weight",
            "epoch_num", "lr"} <= names
    np.testing.assert_array_equal(ck["0.weight"].asnumpy(), net[0].weight.asnumpy())
    assert int(np.asarray(ck["global_step"].asnumpy()).ravel()[0]) == 6
    model2, _, _ = make_model()
    model2.train(1, make_data(3), callbacks=[ModelCheckpoint("mlp", str(tmp_path), CheckpointConfig(10))])
    assert "mlp_1-1_3.ckpt" in os.listdir(tmp_path)          # prefix clash -> prefix_1; saved at train end
    with pytest.raises(ValueError, match="must not contain '/'"):
        ModelCheckpoint("a/b")
    with pytest.raises(ValueError, match="cannot all be 0"):
        CheckpointConfig(0, 0, 0, 0)


def test_early_stopping_and_reduce_lr():
    model, _, _ = make_model()
    es = EarlyStopping(monitor="eval_loss", patience=2, min_delta=10.0)     # only the first epoch "improves"
    seen = []
    lam = LambdaCallback(on_train_epoch_begin=lambda rc: seen.append(rc.original_args().cur_epoch_num))
    model.fit(10, make_data(2), make_data(1, seed=1), callbacks=[es, lam])
    assert seen == [1, 2, 3] and es.stopped_epoch == 3

    model2, _, opt2 = make_model(lr=0.2)
    rl = ReduceLROnPlateau(monitor="eval_loss", factor=0.5, patience=1, min_delta=10.0)
    model2.fit(3, make_data(2, seed=2), make_data(1, seed=1), callbacks=[rl])
    assert float(opt2.learning_rate.asnumpy()) == pytest.approx(0.05)     # reduced after epochs 2 and 3
    model3, _, _ = make_model(lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="fixed float"):
        model3.fit(1, make_data(2, seed=3), make_data(1, seed=1), callbacks=[ReduceLROnPlateau(patience=0)])


def test_progress_bar_plain_lines_when_not_a_terminal():
    model, _, _ = make_model()
    buf = io.StringIO()
    model.fit(2, make_data(8), make_data(1, seed=1), callbacks=[ProgressBar(stream=buf)])
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    assert len(lines) == 2 * 4                                          # 3 progress lines + 1 final per epoch
    assert re.match(r"epoch 1/2 \[=+>?\.*\] 2/8 loss: \d+\.\d{4} \d+\.\d steps/s ETA \d+:\d\d$", lines[0])
    assert re.match(r"epoch 2/2 \[=+\] 8/8 loss: .* total - accuracy: \d\.\d{4}$", lines[-1])
    live = io.StringIO()
    model.train(1, make_data(2, seed=2), callbacks=[ProgressBar(stream=live, live=True)])
    assert live.getvalue().count("\r") == 3 and live.getvalue().endswith("\n")


def test_model_checkpoint_by_seconds(tmp_path, monkeypatch):
    import sporeflow.runtime.callback_checkpoint as cc
    clock = iter(range(0, 1000, 4))                    # every call advances 4 "seconds"
    monkeypatch.setattr(cc.time, "time", lambda: next(clock))
    cfg = CheckpointConfig(save_checkpoint_steps=None, save_checkpoint_seconds=10, keep_checkpoint_max=0)
    model, _, _ = make_model()
    model.train(1, make_data(6), callbacks=[ModelCheckpoint("s", str(tmp_path), cfg)])
    saved = sorted(os.listdir(tmp_path))
    assert 1 < len(saved) < 6 and "s-1_6.ckpt" in saved            # some steps by time, and the final step


def test_append_info_counters_are_cumulative(tmp_path):
    model, _, _ = make_model()
    cfg = CheckpointConfig(save_checkpoint_steps=10, append_info=["step_num", {"epoch_num": 5, "tag": 1.5}])
    model.train(2, make_data(3), callbacks=[ModelCheckpoint("a", str(tmp_path), cfg)])
    ck = load_checkpoint(str(tmp_path / "a-2_3.ckpt"))
    val = lambda k: float(np.asarray(ck[k].asnumpy()).reshape(-1)[0])  # noqa: E731
    assert (val("epoch_num"), val("step_num"), val("tag")) == (7.0, 6.0, 1.5)
