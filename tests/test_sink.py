"""Loop sinking: Model(dataset_sink_mode=True) and sf.data_sink run sink_size steps as one compiled
scan, bit-identical to the same steps without sinking, with MindSpore's counters and dataset
position (mindspore-api.md sections 1 and 9); the staging thread's errors reach the caller;
Ctrl-C leaves the parameters at the end of the last completed sink."""
import os
import signal
import threading
import traceback

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import dataset as ds, nn
from sporeflow.ir.graph import GraphBuilder
from sporeflow.ir.interpret import run_graph
from sporeflow.ir.types import TensorType
from sporeflow.passes.memory import check_plan, plan_memory
from sporeflow.passes.sink import sink_graph
from sporeflow.train import LambdaCallback, LossMonitor, Model, load_checkpoint, save_checkpoint

R = np.random.default_rng(0)
X = R.standard_normal((40, 8)).astype(np.float32)
Y = R.integers(0, 3, 40).astype(np.int32)


def data(n=40, batch=8):
    return ds.NumpySlicesDataset({"x": X[:n], "y": Y[:n]}, shuffle=False).batch(batch)


def make(seed=0, **kw):
    sf.set_seed(seed)
    net = nn.SequentialCell(nn.Dense(8, 16), nn.ReLU(), nn.Dense(16, 3))
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    return Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt,
                 metrics={"accuracy", "loss"}, **kw), net


def trained(sink, epochs, sink_size=-1, dataset=None, **kw):
    model, net = make(**kw)
    log = []

    def note(rc):
        cb = rc.original_args()
        log.append((cb.cur_epoch_num, cb.cur_step_num, cb.batch_num, float(cb.net_outputs.asnumpy())))
    model.train(epochs, dataset or data(), callbacks=[LambdaCallback(on_train_step_end=note)],
                dataset_sink_mode=sink, sink_size=sink_size)
    return model, net, log


def params(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def test_sink_graph_is_the_steps_unrolled():
    """The pass on a small step graph (x: data, w: state updated, c: state read only)."""
    b = GraphBuilder("step")
    f32 = sf.float32
    x, w, c = (b.add_input(TensorType((3,), f32), "x"), b.add_input(TensorType((3,), f32), "w"),
               b.add_input(TensorType((), f32), "c"))
    prod = b.emit("mul", [x, w])[0]
    loss = b.emit("reduce_sum", [prod], {"axes": (0,), "keepdims": False})[0]
    new_w = b.emit("sub", [w, b.emit("mul", [x, b.emit("broadcast_to", [c], {"shape": (3,)})[0]])[0]])[0]
    step = b.finish([loss, new_w])
    sg = sink_graph(step, 1, [(1, 1)], 4)
    xs = R.standard_normal((4, 3)).astype(np.float32)
    w0, c0 = R.standard_normal(3).astype(np.float32), np.float32(0.5)
    losses, w_end = run_graph(sg, [xs, w0, c0])
    w, want = w0, []
    for t in range(4):
        lt, w = run_graph(step, [xs[t], w, c0])
        want.append(lt)
    assert np.array_equal(losses, np.stack(want)) and np.array_equal(w_end, w)
    plan = plan_memory(sg, [(1, 1)])
    assert plan.donated == {1: 1}          # the scan's carry lives in the state's own buffer
    check_plan(sg, plan)
    with pytest.raises(sf.errors.SporeflowError, match="must be the last"):
        sink_graph(step, 1, [(0, 1)], 4)


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_model_sink_bit_identical_with_mindspore_counters(backend):
    sf.set_context(backend=backend)
    model, net, log = trained(True, 3, sink_size=3)            # 9 steps: the stream continues across epochs
    assert [r[:3] for r in log] == [(1, 3, 3), (2, 6, 3), (3, 9, 3)]
    _, ref, ref_log = trained(False, 2)                       # 10 steps, 5 per epoch
    steps = [r[3] for r in ref_log]
    assert [r[3] for r in log] == [steps[2], steps[5], steps[8]]     # the last loss of each sink
    _, whole, whole_log = trained(True, 2, sink_size=-1)
    assert [r[:3] for r in whole_log] == [(1, 5, 5), (2, 10, 5)]
    assert all(np.array_equal(a, b) for a, b in zip(params(ref).values(), params(whole).values()))
    assert model.eval(data(), dataset_sink_mode=True) == model.eval(data())


def test_sink_updates_parameters_in_place_on_llvm():
    sf.set_context(backend="llvm")
    model, net = make()
    model.train(1, data(), dataset_sink_mode=True, sink_size=2)
    buffers = [p._data for p in net.trainable_params()]
    before = params(net)
    model.train(1, data(), dataset_sink_mode=True, sink_size=2)
    assert all(p._data is b for p, b in zip(net.trainable_params(), buffers))
    assert any(not np.array_equal(before[p.name], p.asnumpy()) for p in net.trainable_params())
    sunk = model._sunk(model.train_network)
    (compiled,) = sunk._cache.values()
    assert len(compiled.executable.donated) == len(compiled.traced.updated)


@pytest.mark.filterwarnings("ignore:Model. the train step was compiled again")
def test_sunk_step_runs_the_jits_passes():
    """A jit's disabled=/pipeline= hold in sink mode too (the sunk graph went through the default
    pipeline whatever the jit said)."""
    from sporeflow import ops
    from sporeflow.frontend.sink import lower_sunk
    p = sf.Parameter(sf.Tensor(np.ones(4, np.float32)), name="p")

    def step(x):
        ops.assign(p, p + ops.exp(x) * 2)
        return ops.sum(p)
    x = sf.Tensor(np.ones((4,), np.float32))
    fused = {}
    for disabled in ((), ("fuse",)):
        sunk = lower_sunk(sf.jit(step, backend="llvm", disabled=list(disabled)).trace(x), 2)
        fused[disabled] = sum(n.op == "fused" for n in sunk.executable.graph.walk())
    assert fused == {(): 1, ("fuse",): 0}


def test_partial_last_batch_runs_as_a_second_scan():
    _, ref, _ = trained(False, 1, dataset=data(36))
    _, net, log = trained(True, 1, dataset=data(36))
    assert [r[:3] for r in log] == [(1, 5, 5)]
    assert all(np.array_equal(a, b) for a, b in zip(params(ref).values(), params(net).values()))


def test_lossmonitor_prints_once_per_sink(capsys):
    model, _ = make()
    model.train(2, data(), callbacks=[LossMonitor()], dataset_sink_mode=True, sink_size=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["epoch: 1 step: 4", "epoch: 2 step: 4"]


def test_data_sink_runs_sink_size_steps_per_call_and_returns_the_last():
    def make_step():
        sf.set_seed(0)
        net = nn.Dense(8, 3)
        loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        opt = nn.SGD(net.trainable_params(), 0.1)
        grad_fn = sf.value_and_grad(lambda x, y: loss_fn(net(x), y), None, opt.parameters)

        def train_step(x, y):
            loss, grads = grad_fn(x, y)
            opt(grads)
            return loss
        return net, train_step
    net_a, step_a = make_step()
    sunk = sf.data_sink(step_a, data(), sink_size=5)
    sunk_losses = [float(sunk().asnumpy()) for _ in range(2)]
    net_b, step_b = make_step()
    jitted = sf.jit(step_b)
    rows = list(data().create_tuple_iterator())
    losses = [float(jitted(*rows[t % 5]).asnumpy()) for t in range(10)]
    assert sunk_losses == [losses[4], losses[9]]
    assert np.array_equal(net_a.weight.asnumpy(), net_b.weight.asnumpy())
    assert sunk.sunk.cache_size() == 1


class Boom(Exception):
    pass


def test_staging_thread_error_reaches_the_caller_with_its_traceback():
    def explode(x):
        if float(np.asarray(x).sum()) > -1e9 and explode.calls == 3:
            raise Boom("bad sample")
        explode.calls += 1
        return x
    explode.calls = 0
    bad = ds.NumpySlicesDataset({"x": X, "y": Y}, shuffle=False).map(explode, input_columns=["x"]).batch(8)
    model, _ = make()
    with pytest.raises(Boom, match="bad sample") as info:
        model.train(2, bad, dataset_sink_mode=True, sink_size=2)
    tb = "".join(traceback.format_exception(info.value))
    assert "explode" in tb and "staging thread" in tb


def test_keyboard_interrupt_leaves_params_at_a_completed_sink(tmp_path):
    """SIGINT arrives (from the staging thread's map function) while sinks run; afterwards the
    parameters equal those after m whole sinks of an uninterrupted run, and a checkpoint of them
    loads back. A half-written update would match no m."""
    model, net = make()
    refs = [params(net)]
    for _ in range(5):
        model.train(1, data(), dataset_sink_mode=True, sink_size=2)
        refs.append(params(net))

    def ctrl_c(x):
        ctrl_c.rows += 1
        if ctrl_c.rows == 20:         # while the main thread runs the first sinks
            os.kill(os.getpid(), signal.SIGINT)
        return x
    ctrl_c.rows = 0
    stream = ds.NumpySlicesDataset({"x": X, "y": Y}, shuffle=False).map(ctrl_c, input_columns=["x"]).batch(8)
    model, net = make()
    with pytest.raises(KeyboardInterrupt):
        model.train(5, stream, dataset_sink_mode=True, sink_size=2)
        for _ in range(100):          # the signal may land after the last sink: wait for it here
            threading.Event().wait(0.01)
    got = params(net)
    assert any(all(np.array_equal(r[n], got[n]) for n in r) for r in refs)
    path = str(tmp_path / "interrupted.ckpt")
    save_checkpoint(net, path)
    loaded = load_checkpoint(path)
    assert all(np.array_equal(loaded[k].asnumpy(), v) for k, v in got.items())


def _acc_run(batch, sink=False, n=256, **kw):
    sf.set_seed(0)
    net = nn.SequentialCell(nn.Dense(8, 16), nn.ReLU(), nn.Dense(16, 3))
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), opt, **kw)
    r = np.random.default_rng(1)
    big = ds.NumpySlicesDataset({"x": r.standard_normal((256, 8)).astype(np.float32),
                                 "y": r.integers(0, 3, 256).astype(np.int32)}, shuffle=False).take(n)
    steps = []
    model.train(1, big.batch(batch), dataset_sink_mode=sink,
                callbacks=[LambdaCallback(on_train_step_end=lambda rc: steps.append(rc.original_args().cur_step_num))])
    return net, opt, steps


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_grad_accumulation_4x32_equals_one_step_on_128(backend):
    sf.set_context(backend=backend)
    ref, ref_opt, _ = _acc_run(128)
    acc, acc_opt, steps = _acc_run(32, grad_accumulation=4)
    sunk, _, sunk_steps = _acc_run(32, sink=True, grad_accumulation=4)
    assert int(acc_opt.global_step.asnumpy()[0]) == int(ref_opt.global_step.asnumpy()[0]) == 2
    assert steps == [1, 2] and sunk_steps == [2]
    for p, q, s in zip(ref.trainable_params(), acc.trainable_params(), sunk.trainable_params()):
        np.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-5, atol=1e-6)
        assert np.array_equal(q.asnumpy(), s.asnumpy())


def test_grad_accumulation_updates_only_every_4th_micro_batch():
    net0, opt, steps = _acc_run(32, n=32 * 7, grad_accumulation=4)     # 7 micro-batches: 1 update, 3 dropped
    assert int(opt.global_step.asnumpy()[0]) == 1 and steps == [1]
    four, _, _ = _acc_run(32, n=32 * 4, grad_accumulation=4)
    assert all(np.array_equal(p.asnumpy(), q.asnumpy()) for p, q in zip(net0.trainable_params(),
                                                                         four.trainable_params()))
    cell = nn.GradAccumulationCell(nn.WithLossCell(nn.Dense(8, 3), nn.MSELoss()), 4)
    x, y = sf.Tensor(X[:8]), sf.Tensor(np.zeros((8, 3), np.float32))
    np.testing.assert_allclose(cell(x, y).asnumpy(), cell.network(x, y).asnumpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="micro_size=4"):
        cell(sf.Tensor(X[:6]), sf.Tensor(np.zeros((6, 3), np.float32)))


def test_sink_mode_on_the_gpu_emulator_matches_the_cpu():
    """device_target='GPU' (CUDA backend on the CPU emulator): the staged buffers are device
    arrays, the sunk step runs there, and the parameters stay device-resident."""
    from sporeflow.backends import get_backend
    sf.set_context(device_target="CPU")
    _, cpu, cpu_log = trained(False, 1, dataset=data(24))
    sf.set_context(device_target="GPU", backend="cuda-emulated")
    _, gpu, gpu_log = trained(True, 1, sink_size=3, dataset=data(24))
    assert [r[:3] for r in gpu_log] == [(1, 3, 3)]
    np.testing.assert_allclose(gpu_log[0][3], cpu_log[-1][3], rtol=1e-4)
    dev = get_backend("cuda-emulated").device
    for p, q in zip(cpu.trainable_params(), gpu.trainable_params()):
        assert dev.is_array(q._data)
        np.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-4, atol=1e-5)


def test_data_sink_staging_thread_ends_with_the_function():
    import gc
    before = set(threading.enumerate())
    step = sf.data_sink(lambda x, y: x.sum(), data(16), sink_size=2)
    step()
    mine = [t for t in threading.enumerate() if t not in before and t.name == "sporeflow-sink-staging"]
    assert len(mine) == 1 and mine[0].is_alive()
    del step
    gc.collect()
    mine[0].join(timeout=5)
    assert not mine[0].is_alive()
