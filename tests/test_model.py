"""Model: callback order and counters (mindspore-api.md section 1), argument validation, metric
routing, one compiled train step, checkpoint resume bit-exactness."""
import os

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn
from sporeflow.train import (Accuracy, Callback, CheckpointConfig, Loss, Model, ModelCheckpoint, LossMonitor,
                             load_checkpoint, load_param_into_net)


class ListDataset:
    """A minimal dataset: fixed batches, get_dataset_size, create_tuple_iterator."""

    def __init__(self, batches):
        self.batches = batches

    def get_dataset_size(self):
        return len(self.batches)

    def create_tuple_iterator(self, num_epochs=-1):
        return iter([tuple(sf.Tensor(a) for a in b) for b in self.batches])


def make_data(n_batches, bs=4, seed=0, n_in=6, n_cls=3):
    r = np.random.default_rng(seed)
    return ListDataset([(r.standard_normal((bs, n_in)).astype(np.float32), r.integers(0, n_cls, bs).astype(np.int32))
                        for _ in range(n_batches)])


def make_model(seed=0, lr=0.1, metrics=("accuracy",), **kw):
    sf.set_seed(seed)
    net = nn.SequentialCell(nn.Dense(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 3))
    opt = nn.Momentum(net.trainable_params(), lr, 0.9)
    return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt,
                 metrics=set(metrics) if metrics else None, **kw), net, opt


HOOKS = ["on_train_begin", "on_train_epoch_begin", "on_train_step_begin", "on_train_step_end", "on_train_epoch_end",
         "on_train_end", "on_eval_begin", "on_eval_epoch_begin", "on_eval_step_begin", "on_eval_step_end",
         "on_eval_epoch_end", "on_eval_end"]


class Recorder(Callback):
    def __init__(self, hooks=("on_train_begin", "on_train_epoch_begin", "on_train_step_end", "on_eval_begin",
                              "on_eval_end", "on_train_epoch_end", "on_train_end")):
        self.log = []
        for h in hooks:
            setattr(self, h, self._rec(h))

    def _rec(self, h):
        def f(rc):
            c = rc.original_args()
            self.log.append((h[3:], c.get("cur_epoch_num"), c.cur_step_num, c.batch_num, c.get("epoch_num"), c.mode))
        return f


def test_fit_callback_order_and_counters_equal_mindspore_trace():
    model, _, _ = make_model()
    rec = Recorder()
    model.fit(2, make_data(7), make_data(3, seed=1), callbacks=[rec])
    want = [("train_begin", None, 0, 7, 2, "train"), ("train_epoch_begin", 1, 0, 7, 2, "train")]
    want += [("train_step_end", 1, s, 7, 2, "train") for s in range(1, 8)]
    want += [("eval_begin", 1, 0, 3, 2, "eval"), ("eval_end", 1, 3, 3, 2, "eval"),
             ("train_epoch_end", 1, 7, 7, 2, "train"),
             ("train_epoch_begin", 2, 7, 7, 2, "train")]
    want += [("train_step_end", 2, s, 7, 2, "train") for s in range(8, 15)]
    want += [("eval_begin", 2, 0, 3, 2, "eval"), ("eval_end", 2, 3, 3, 2, "eval"),
             ("train_epoch_end", 2, 14, 7, 2, "train"), ("train_end", 2, 14, 7, 2, "train")]
    assert rec.log == want


def test_every_hook_in_order_and_eval_filters_internal_callbacks(capsys):
    model, _, _ = make_model()
    rec = Recorder(HOOKS)
    model.fit(1, make_data(2), make_data(1, seed=1), callbacks=[rec, LossMonitor()])
    names = [r[0] for r in rec.log]
    assert names == ["train_begin", "train_epoch_begin", "train_step_begin", "train_step_end", "train_step_begin",
                     "train_step_end", "eval_begin", "eval_epoch_begin", "eval_step_begin", "eval_step_end",
                     "eval_epoch_end", "eval_end", "train_epoch_end", "train_end"]
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if ln.startswith("epoch")] == [ln for ln in out if "loss is" in ln]
    assert len([ln for ln in out if "loss is" in ln]) == 2                       # LossMonitor not run in eval
    assert out[-1].startswith("Eval result: epoch 1, metrics: {'accuracy': ")


def test_initial_epoch_valid_frequency_and_stop():
    model, _, _ = make_model()
    rec = Recorder()
    model.fit(5, make_data(2), make_data(1, seed=1), valid_frequency=[3, 5], callbacks=[rec], initial_epoch=2)
    assert rec.log[0] == ("train_begin", None, 0, 2, 3, "train")
    assert [r[1] for r in rec.log if r[0] == "eval_begin"] == [3, 5]
    assert [r[1] for r in rec.log if r[0] == "train_epoch_begin"] == [3, 4, 5]
    rec2 = Recorder()
    model.fit(4, make_data(2, seed=2), make_data(1, seed=1), valid_frequency=2, callbacks=[rec2])
    assert [r[1] for r in rec2.log if r[0] == "eval_begin"] == [2, 4]

    class Stop(Callback):
        def on_train_step_end(self, rc):
            if rc.original_args().cur_step_num == 3:
                rc.request_stop()
    rec3 = Recorder()
    model.train(5, make_data(2, seed=3), callbacks=[Stop(), rec3])
    assert rec3.log[-1] == ("train_end", 2, 3, 2, 5, "train")


def test_one_compiled_train_step_updates_parameters_in_place():
    model, net, opt = make_model()
    params = list(net.get_parameters())
    before = [p.asnumpy().copy() for p in params]
    model.train(3, make_data(4))
    step = model._compiled(model.train_network)
    assert step.trace_count == 1 and step.cache_size() == 1
    assert type(model.train_network).__name__ == "TrainOneStepCell"
    assert list(net.get_parameters()) == params                           # the same Parameter objects
    assert all(not np.array_equal(b, p.asnumpy()) for b, p in zip(before, params, strict=True))
    assert opt.global_step.asnumpy().tolist() == [12]


def test_eval_predict_and_metric_routing():
    model, net, _ = make_model(metrics=("accuracy", "loss"))
    ds = make_data(3, seed=4)
    res = model.eval(ds)
    net.set_train(False)
    logits = [net(sf.Tensor(b[0])).asnumpy() for b in ds.batches]
    acc = np.mean(np.concatenate([lg.argmax(1) == b[1] for lg, b in zip(logits, ds.batches)]))
    assert res["accuracy"] == pytest.approx(acc)
    np.testing.assert_allclose(model.predict(sf.Tensor(ds.batches[0][0])).asnumpy(), logits[0], rtol=1e-5)

    class EvalNet(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, x, y):
            out = self.net(x)
            return out, y, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")(out, y)

    m2 = Model(net, metrics={"acc": Accuracy(), "loss": Loss()}, eval_network=EvalNet(net), eval_indexes=[2, 0, 1])
    res2 = m2.eval(ds)
    assert res2["acc"] == pytest.approx(acc) and res2["loss"] == pytest.approx(res["loss"], rel=1e-5)
    # eval_indexes None: every metric gets all outputs; set_indexes picks them per metric
    m3 = Model(net, metrics={"acc": Accuracy().set_indexes([0, 1]), "loss": Loss().set_indexes([2])},
               eval_network=EvalNet(net))
    res3 = m3.eval(ds)
    assert res3["acc"] == pytest.approx(acc) and res3["loss"] == pytest.approx(res["loss"], rel=1e-5)


def test_argument_validation():
    net = nn.Dense(6, 3)
    loss = nn.MSELoss()
    with pytest.raises(ValueError, match="unsupported keyword"):
        Model(net, loss, bad=1)
    with pytest.raises(ValueError, match="need an optimizer"):
        Model(net, loss, amp_level="O2")
    with pytest.raises(ValueError, match="metrics need loss_fn"):
        Model(net, metrics={"accuracy"})
    model, _, _ = make_model()
    with pytest.raises(ValueError, match="sink_size must be -1"):
        model.train(1, make_data(1), dataset_sink_mode=True, sink_size=0)
    with pytest.raises(ValueError, match="grad_accumulation must be a positive int"):
        Model(net, loss, nn.SGD(net.trainable_params()), grad_accumulation=0)
    with pytest.raises(ValueError, match="greater than initial_epoch"):
        model.train(2, make_data(1), initial_epoch=2)
    three = ListDataset([tuple(np.zeros((2, 6), np.float32) for _ in range(3))])
    with pytest.raises(ValueError, match="exactly 2 columns"):
        model.train(1, three)
    ds = make_data(1)
    model.train(1, ds)
    other, _, _ = make_model()
    with pytest.raises(RuntimeError, match="used in other model"):
        other.train(1, ds)


def test_legacy_hooks_warn_in_train_and_raise_in_fit():
    class Old(Callback):
        def step_end(self, run_context):
            self.called = True
    model, _, _ = make_model()
    with pytest.warns(DeprecationWarning, match="legacy hooks"):
        model.train(1, make_data(1), callbacks=[Old()])
    with pytest.raises(ValueError, match="legacy hooks"):
        model.fit(1, make_data(1), callbacks=[Old()])


def _state(net):
    return {n: p.asnumpy().copy() for n, p in net.parameters_and_names()}


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    data = make_data(3, seed=5)
    lr = nn.piecewise_constant_lr([4, 8, 100], [0.1, 0.05, 0.01])   # global_step must resume too, and the
    # RNG state: Dropout draws new masks every step

    def build():
        sf.set_seed(11)
        net = nn.SequentialCell(nn.Dense(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(p=0.3), nn.Dense(8, 3))
        opt = nn.Adam(net.trainable_params(), lr)
        return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt), net

    full, net_full = build()
    full.train(4, data)
    part, _ = build()
    cfg = CheckpointConfig(save_checkpoint_steps=3, keep_checkpoint_max=10)
    part.train(2, make_data(3, seed=5), callbacks=[ModelCheckpoint("r", str(tmp_path), cfg)])
    assert sorted(os.listdir(tmp_path)) == ["r-1_3.ckpt", "r-2_3.ckpt"]
    resumed, net_resumed = build()
    not_loaded, _ = load_param_into_net(resumed.train_network, load_checkpoint(str(tmp_path / "r-2_3.ckpt")))
    assert not_loaded == []
    resumed.train(4, make_data(3, seed=5), initial_epoch=2)
    a, b = _state(net_full), _state(net_resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert np.array_equal(full.train_network.optimizer.global_step.asnumpy(),
                          resumed.train_network.optimizer.global_step.asnumpy())


def test_partial_batch_recompile_is_reported_once():
    model, _, _ = make_model()
    r = np.random.default_rng(0)
    ds = ListDataset([(r.standard_normal((4, 6)).astype(np.float32), r.integers(0, 3, 4).astype(np.int32)),
                      (r.standard_normal((3, 6)).astype(np.float32), r.integers(0, 3, 3).astype(np.int32))])
    with pytest.warns(RuntimeWarning, match=r"compiled again \(tensor types changed.*drop_remainder=True") as rec:
        model.train(3, ds)
    assert len([w for w in rec if "compiled again" in str(w.message)]) == 1


def test_build_precompiles_without_changing_parameters():
    model, net, opt = make_model()
    before = _state(net)
    model.build(make_data(2), make_data(1, seed=1), sink_mode=True)    # the sunk graphs (2 steps, 1 step)
    assert model._sunk(model.train_network).cache_size() == 1
    model.build(make_data(2), make_data(1, seed=1), sink_mode=False)
    assert all(np.array_equal(before[k], v) for k, v in _state(net).items())
    step = model._compiled(model.train_network)
    assert step.cache_size() == 1
    traced = step.trace_count
    model.fit(1, make_data(2), make_data(1, seed=1))
    assert step.trace_count == traced                                 # the built graph was reused
    model.fit(1, make_data(2), make_data(1, seed=1), dataset_sink_mode=True, valid_dataset_sink_mode=True)
    assert step.trace_count == traced and model._sunk(model.train_network).cache_size() == 1


def test_llvm_backend_trains_like_the_interpreter():
    """The same Model.train on device_target='CPU' (LLVM) and on the interpreter."""
    pytest.importorskip("sporeflow.backends.llvm", reason="the LLVM backend is not importable")
    results = []
    for device in ("INTERP", "CPU"):
        sf.set_context(device_target=device)
        model, net, _ = make_model()
        model.train(2, make_data(3))
        results.append(_state(net))
    for k in results[0]:
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=2e-4, atol=2e-5, err_msg=k)


def test_callbacks_are_entered_once_per_run():
    class Ctx(Callback):
        def __init__(self):
            self.events = []

        def __enter__(self):
            self.events.append("enter")
            return self

        def __exit__(self, *exc):
            self.events.append("exit")

        def on_eval_end(self, run_context):
            self.events.append("eval")
    model, _, _ = make_model()
    cb = Ctx()
    model.fit(2, make_data(1), make_data(1, seed=1), callbacks=[cb])
    assert cb.events == ["enter", "eval", "eval", "exit"]
    cb.events.clear()
    model.eval(make_data(1, seed=1), callbacks=[cb])
    assert cb.events == ["enter", "eval", "exit"]


def test_resume_with_shuffled_dataset_is_bit_identical(tmp_path):
    """Model sets each epoch's shuffle order (Dataset.set_epoch), so a resumed run sees the same
    batches in epochs >= initial_epoch as an uninterrupted one."""
    import sporeflow.dataset as ds
    r = np.random.default_rng(3)
    x, y = r.standard_normal((24, 6)).astype(np.float32), r.integers(0, 3, 24).astype(np.int32)

    def data():
        return ds.NumpySlicesDataset((x, y), column_names=["x", "y"], shuffle=True).batch(8)

    def build():
        sf.set_seed(7)
        net = nn.SequentialCell(nn.Dense(6, 8), nn.ReLU(), nn.Dense(8, 3))
        return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                     nn.Momentum(net.trainable_params(), 0.1, 0.9)), net

    full, net_full = build()
    full.train(3, data())
    part, _ = build()
    part.train(1, data(), callbacks=[ModelCheckpoint("s", str(tmp_path), CheckpointConfig(save_checkpoint_steps=3))])
    resumed, net_resumed = build()
    load_param_into_net(resumed.train_network, load_checkpoint(str(tmp_path / "s-1_3.ckpt")))
    resumed.train(3, data(), initial_epoch=1)
    a, b = _state(net_full), _state(net_resumed)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
