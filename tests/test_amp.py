"""Mixed precision: the amp pass at each level (which ops run low, where the casts are), to_float,
O2 gradients against float32, loss scaling compiled into the step (overflow skips the update,
the dynamic scale halves and grows), and the errors of the entry points."""
from collections import Counter

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import amp, nn
from sporeflow.ir import dtypes as D
from sporeflow.passes.amp import AmpPlan, amp_graph
from sporeflow.ir.verify import verify

from small_nets import MLP


class BNNet(nn.Cell):
    """conv -> BatchNorm -> relu -> dense: the CNN with BatchNorm of the level tests."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Dense(3 * 4 * 4, 3)

    def construct(self, x):
        return self.fc(self.flat(self.act(self.bn(self.conv(x)))))


def _graph(net, x):
    g = sf.jit(net).trace(x).graph
    verify(g)
    return g


def _ops_by_dtype(g, op):
    return [n.outputs[0].dtype for n in g.nodes if n.op == op]


def _low_scopes(g):
    """scope -> set of dtypes computed there (casts excluded)."""
    out = {}
    for n in g.nodes:
        if n.op not in ("cast", "constant") and n.outputs[0].dtype.is_float:
            out.setdefault(n.scope.split(".")[-1] if "." in n.scope else n.scope, set()).add(n.outputs[0].dtype)
    return out


def _mlp_x():
    return sf.Tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))


def _cnn_x():
    return sf.Tensor(np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32))


@pytest.mark.parametrize("dtype", [sf.float16, sf.bfloat16])
def test_levels_on_mlp(dtype):
    x = _mlp_x()
    g0 = _graph(amp.auto_mixed_precision(MLP(), "O0"), x)
    assert all(v.dtype is D.float32 for n in g0.nodes for v in n.outputs if v.dtype.is_float)
    for level in ("O1", "O2", "O3", "auto"):
        g = _graph(amp.auto_mixed_precision(MLP(), level, dtype), x)
        assert _ops_by_dtype(g, "matmul") == [dtype, dtype], level
        assert g.outputs[0].dtype is D.float32, level              # the output is cast back (_OutputTo32)
        # parameters stay float32 graph inputs, cast once each inside the graph
        assert all(v.dtype is D.float32 for v in g.inputs)
        casts = Counter((n.inputs[0].name, n.outputs[0].dtype) for n in g.nodes if n.op == "cast" and n.inputs[0].name)
        assert casts[("fc1.weight", dtype)] == 1 and casts[("fc2.weight", dtype)] == 1, level
    g1 = _graph(amp.auto_mixed_precision(MLP(), "O1", dtype), x)
    s1 = _low_scopes(g1)
    assert s1["fc1"] == {dtype} and s1["act"] == {D.float32}        # O1: Dense low, ReLU float32
    g2 = _graph(amp.auto_mixed_precision(MLP(), "O2", dtype), x)
    assert _low_scopes(g2)["act"] == {dtype}                       # O2: everything low


def test_levels_on_cnn_with_batchnorm():
    x = _cnn_x()
    net = amp.auto_mixed_precision(BNNet(), "O2")
    net.set_train()
    g = _graph(net, x)
    s = _low_scopes(g)
    assert s["conv"] == {D.float16} and s["fc"] == {D.float16} and s["act"] == {D.float16}
    assert s["bn"] == {D.float32}                                  # black list: BatchNorm in float32
    assert _ops_by_dtype(g, "conv2d") == [D.float16]
    # the moving statistics are written back in float32 (master copies)
    assert all(v.dtype is D.float32 for v in g.outputs)
    g_nokeep = _graph(amp.auto_mixed_precision(BNNet(), "O2", keep_batchnorm_fp32=False).set_train(), x)
    assert _low_scopes(g_nokeep)["bn"] == {D.float16}
    g3 = _graph(amp.auto_mixed_precision(BNNet(), "O3").set_train(), x)
    assert _low_scopes(g3)["bn"] == {D.float16}
    g1 = _graph(amp.auto_mixed_precision(BNNet(), "O1").set_train(), x)
    s1 = _low_scopes(g1)
    assert s1["conv"] == {D.float16} and s1["bn"] == {D.float32} and s1["act"] == {D.float32}
    ga = _graph(amp.auto_mixed_precision(BNNet(), "auto").set_train(), x)
    assert _ops_by_dtype(ga, "conv2d") == [D.float16]
    assert all(n.outputs[0].dtype is D.float32 for n in ga.nodes if n.op in ("reduce_sum", "rsqrt"))


def test_cast_pairs_the_pass_creates_are_folded():
    """low region -> fp32 region -> low region: f16 -> f32 -> f16 of the same value disappears."""
    from sporeflow.ir.parser import parse
    g = parse("""graph @f(%x: f32[4], %y: f32[4]) -> (f32[4]) {
  %0: f32[4] = neg(%x)                         # a
  %1: f32[4] = add(%0, %y)                     # b
  %2: f32[4] = mul(%0, %1)                     # a
  return %2
}""")
    out = amp_graph(g, AmpPlan(D.float16, (("a", "low"), ("b", "fp32"))))
    verify(out)
    casts = [(n.inputs[0].dtype, n.outputs[0].dtype) for n in out.nodes if n.op == "cast"]
    # x -> f16, neg in f16 widened once for b, b's result narrowed for the mul, output widened;
    # mul reads neg's f16 result directly (no f16 -> f32 -> f16 of it)
    assert casts == [(D.float32, D.float16), (D.float16, D.float32), (D.float32, D.float16),
                     (D.float16, D.float32)], casts
    mul = next(n for n in out.nodes if n.op == "mul")
    assert mul.inputs[0].producer.op == "neg"
    x, y = np.arange(4, dtype=np.float32), np.ones(4, np.float32)
    from sporeflow.ir.interpret import run_graph
    np.testing.assert_allclose(run_graph(out, [x, y])[0], -x * (1 - x), rtol=1e-3)


def test_to_float_changes_compute_dtype_and_keeps_float32_masters():
    net = MLP()
    x = _mlp_x()
    ref = net(x).asnumpy()
    assert net.to_float(sf.float16) is net
    y = net(x)
    assert y.dtype == sf.float16                                  # MindSpore: to_float output stays low
    assert all(p.dtype == sf.float32 for p in net.get_parameters())
    np.testing.assert_allclose(y.asnumpy().astype(np.float32), ref, rtol=2e-2, atol=2e-2)
    assert not np.array_equal(y.asnumpy().astype(np.float32), ref)
    # compiled: same numbers, and a later to_float recompiles
    f = sf.jit(net)
    np.testing.assert_array_equal(f(x).asnumpy(), y.asnumpy())
    net.to_float(sf.float32)
    assert f(x).dtype == sf.float32
    with pytest.raises(ValueError, match="to_float: dst_type must be"):
        net.to_float(sf.int32)


def test_to_float_on_a_sub_cell_in_an_o2_network():
    net = MLP()
    amp.auto_mixed_precision(net, "O2")
    net.fc2.to_float(sf.float32)
    s = _low_scopes(_graph(net, _mlp_x()))
    assert s["fc1"] == {D.float16} and s["fc2"] == {D.float32}


@pytest.mark.parametrize("dtype,tol", [(sf.float16, 1e-2), (sf.bfloat16, 6e-2)])
def test_o2_grads_match_float32(dtype, tol):
    rng = np.random.default_rng(1)
    x = sf.Tensor(rng.standard_normal((8, 2, 4, 4)).astype(np.float32))
    y = sf.Tensor(rng.integers(0, 3, 8).astype(np.int32))
    sf.set_seed(0)
    net32 = BNNet().set_train()
    sf.set_seed(0)
    net16 = amp.auto_mixed_precision(BNNet(), "O2", dtype).set_train()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

    def grads(net):
        fn = sf.value_and_grad(lambda a, b: loss(net(a), b), None, net.trainable_params())
        return [g.asnumpy() for g in fn(x, y)[1]]

    g32, g16 = grads(net32), grads(net16)
    for a, b in zip(g32, g16):
        assert b.dtype == np.float32                                # grads of float32 masters
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * max(1.0, np.abs(a).max()))


def _scaled_step(backend, manager):
    sf.set_context(backend=backend)
    sf.set_seed(0)
    net = MLP()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    step = amp.build_train_network(net, opt, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"),
                                   level="O2", loss_scale_manager=manager)
    assert type(step).__name__ == "TrainOneStepWithLossScaleCell"
    step.set_train()
    return net, opt, sf.jit(step)


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_injected_overflow_skips_exactly_that_update_and_halves_the_scale(backend):
    net, opt, step = _scaled_step(backend, amp.DynamicLossScaleManager(2 ** 10, 2, 3))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = sf.Tensor(rng.integers(0, 4, 4).astype(np.int32))
    loss, overflow, scale = step(sf.Tensor(x), y)
    assert not bool(overflow.asnumpy()) and float(scale.asnumpy()) == 1024.0
    before = {p.name: p.asnumpy().copy() for p in list(net.get_parameters()) + list(opt.get_parameters())}
    bad = x.copy()
    bad[0, 0] = np.inf                                               # inf input -> inf/nan gradients
    loss, overflow, scale = step(sf.Tensor(bad), y)
    assert bool(overflow.asnumpy()) and float(scale.asnumpy()) == 1024.0   # the scale this step used
    after = {p.name: p.asnumpy() for p in list(net.get_parameters()) + list(opt.get_parameters())}
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)   # bit-identical: skipped
    assert float(step.fn.scale_sense.asnumpy()) == 512.0                 # halved for the next step
    loss, overflow, scale = step(sf.Tensor(x), y)
    assert not bool(overflow.asnumpy()) and float(scale.asnumpy()) == 512.0
    assert not np.array_equal(net.fc1.weight.asnumpy(), before["fc1.weight"])


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_scale_grows_after_scale_window_finite_steps(backend):
    _, _, step = _scaled_step(backend, amp.DynamicLossScaleManager(2 ** 10, 2, 3))
    rng = np.random.default_rng(0)
    x = sf.Tensor(rng.standard_normal((4, 6)).astype(np.float32))
    y = sf.Tensor(rng.integers(0, 4, 4).astype(np.int32))
    scales = [float(step(x, y)[2].asnumpy()) for _ in range(7)]
    assert scales == [1024, 1024, 1024, 2048, 2048, 2048, 4096], scales


def test_fixed_manager_and_plain_step():
    net = MLP()
    opt = nn.SGD(net.trainable_params(), 0.1, loss_scale=64.0)
    step = amp.build_train_network(net, opt, nn.MSELoss(), level="O2",
                                   loss_scale_manager=amp.FixedLossScaleManager(64.0, drop_overflow_update=False))
    assert type(step).__name__ == "TrainOneStepCell" and step.sens == 64.0
    fixed = amp.FixedLossScaleManager()
    assert fixed.get_loss_scale() == 128.0 and fixed.get_drop_overflow_update()
    assert type(fixed.get_update_cell()).__name__ == "FixedLossScaleUpdateCell"


def test_dynamic_loss_scaler_observed_sequence():
    """mindspore-api.md section 8 (observed): DynamicLossScaler(2**10, 2, 2)."""
    s = amp.DynamicLossScaler(2 ** 10, 2, 2)
    seq = []
    for finite in (True, True, False, True):
        s.adjust(sf.Tensor(np.asarray(finite)))
        seq.append(float(s.scale_value.asnumpy()))
    assert seq == [1024, 2048, 1024, 1024]
    assert float(s.scale(sf.Tensor(np.float32(2.0))).asnumpy()) == 2048.0
    g = s.unscale((sf.Tensor(np.float32(2048.0)), sf.Tensor(np.float32(1024.0))))
    assert [float(v.asnumpy()) for v in g] == [2.0, 1.0]
    st = amp.StaticLossScaler(8.0)
    assert st.adjust(sf.Tensor(np.asarray(False))) is False and float(st.scale_value.asnumpy()) == 8.0


def test_all_finite_and_init_status():
    assert amp.init_status().shape == (8,)
    ok = amp.all_finite((sf.Tensor(np.ones(3, np.float32)), sf.Tensor(np.zeros((2, 2), np.float16))))
    assert ok.dtype == sf.bool_ and bool(ok.asnumpy())
    assert not bool(amp.all_finite([sf.Tensor(np.array([1.0, np.nan], np.float32))]).asnumpy())
    assert not bool(amp.all_finite(sf.Tensor(np.array([np.inf], np.float32)), amp.init_status()).asnumpy())
    f = sf.jit(lambda a: amp.all_finite((a, a * 2)))
    assert bool(f(sf.Tensor(np.ones(2, np.float32))).asnumpy())
    assert not bool(f(sf.Tensor(np.array([1, np.inf], np.float32))).asnumpy())


def test_entry_point_errors():
    with pytest.raises(ValueError, match="amp_level must be one of"):
        amp.auto_mixed_precision(MLP(), "O4")
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        amp.auto_mixed_precision(MLP(), "O2", sf.float32)
    with pytest.raises(TypeError, match="must be a Cell"):
        amp.auto_mixed_precision(lambda x: x, "O2")
    with pytest.raises(ValueError, match="exactly one"):
        amp.custom_mixed_precision(MLP(), white_list=[nn.Dense], black_list=[nn.ReLU])
    with pytest.raises(TypeError, match="Cell classes or primitive classes"):
        amp.custom_mixed_precision(MLP(), white_list=["Dense"])
    with pytest.raises(ValueError, match="boost_level"):
        amp.build_train_network(MLP(), nn.SGD(MLP().trainable_params()), level="O2", boost_level="O1")
    with pytest.raises(ValueError, match="unsupported keyword"):
        amp.build_train_network(MLP(), nn.SGD(MLP().trainable_params()), level="O2", cast_type=sf.float16)
    with pytest.raises(ValueError, match="need an optimizer"):
        sf.train.Model(MLP(), nn.MSELoss(), amp_level="O2")
    with pytest.raises(ValueError, match="scale_window"):
        amp.DynamicLossScaleManager(scale_window=0)
    with pytest.raises(TypeError, match="scale_sense"):
        nn.TrainOneStepWithLossScaleCell(MLP(), nn.SGD(MLP().trainable_params()), scale_sense="big")
    assert nn.Dense in amp.get_white_list() and nn.BatchNorm2d in amp.get_black_list()


def test_custom_mixed_precision_lists():
    x = _mlp_x()
    g = _graph(amp.custom_mixed_precision(MLP(), white_list=[nn.Dense]), x)
    s = _low_scopes(g)
    assert s["fc1"] == {D.float16} and s["act"] == {D.float32}
    g = _graph(amp.custom_mixed_precision(MLP(), black_list=[nn.ReLU], dtype=sf.bfloat16), x)
    s = _low_scopes(g)
    assert s["fc1"] == {D.bfloat16} and s["act"] == {D.float32}
    g = _graph(amp.custom_mixed_precision(MLP(), white_list=[sf.ops.MatMul]), x)
    assert _ops_by_dtype(g, "matmul") == [D.float16, D.float16] and _ops_by_dtype(g, "add")[0] is D.float32


def test_amp_pass_is_in_the_per_pass_dump(tmp_path):
    sf.set_context(save_graphs=True, save_graphs_path=str(tmp_path))
    net = amp.auto_mixed_precision(MLP(), "O2")
    sf.jit(net)(_mlp_x())
    d = tmp_path / "amp_MLP"
    assert sorted(p.name for p in d.iterdir()) == ["00_trace.ir", "01_amp.ir"]
    assert "cast(" not in (d / "00_trace.ir").read_text() and "f16" in (d / "01_amp.ir").read_text()
    assert "f16" in (tmp_path / "00_trace.ir").read_text()      # the step's own trace has the casts
