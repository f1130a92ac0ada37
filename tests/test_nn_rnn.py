"""RNN / LSTM / GRU and their Cells against numpy references written from MindSpore's documented
gate formulas (rows [i, f, g, o] for LSTM, [r, z, n] for GRU), forward and gradients on eager,
interpreter and LLVM; parameter names and layouts as MindSpore's; seq_length masking; vmap."""
import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn

from layer_check import check_layer


def sig(x):
    return 1 / (1 + np.exp(-x))


def np_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    H = h.shape[-1]
    if mode == "LSTM":
        g = gi + gh
        i, f, gg, o = sig(g[:, :H]), sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), sig(g[:, 3 * H:])
        c2 = f * c + i * gg
        return o * np.tanh(c2), c2
    if mode == "GRU":
        r = sig(gi[:, :H] + gh[:, :H])
        z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def np_rnn(mode, p, x, h0=None, c0=None, num_layers=1, bidirectional=False, batch_first=False, lengths=None,
           has_bias=True):
    """MindSpore's stacked recurrence; with `lengths`, the reverse direction runs reverse_sequence."""
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B = x.shape[:2]
    H = p["weight_hh_l0"].shape[1]
    nd = 2 if bidirectional else 1
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((num_layers * nd, B, H)) if h0 is None else h0
    c0 = np.zeros_like(h0) if c0 is None else c0
    hs, cs, inp = [], [], x
    for layer in range(num_layers):
        outs = []
        for d in range(nd):
            sfx = f"l{layer}{'_reverse' if d else ''}"
            w = [p[f"weight_ih_{sfx}"], p[f"weight_hh_{sfx}"],
                 p.get(f"bias_ih_{sfx}") if has_bias else None, p.get(f"bias_hh_{sfx}") if has_bias else None]
            k = layer * nd + d
            out = np.zeros((T, B, H))
            hn, cn = np.zeros((B, H)), np.zeros((B, H))
            for b in range(B):
                L = lengths[b]
                seq = inp[:L, b:b + 1]
                if d:
                    seq = seq[::-1]
                h, c = h0[k, b:b + 1], c0[k, b:b + 1]
                ys = []
                for t in range(L):
                    h, c2 = np_step(mode, seq[t], h, c, *w)
                    c = c2 if c2 is not None else c
                    ys.append(h[0])
                ys = np.array(ys).reshape(L, H)
                out[:L, b] = ys[::-1] if d else ys
                hn[b], cn[b] = h[0], c[0]
            outs.append(out)
            hs.append(hn)
            cs.append(cn)
        inp = np.concatenate(outs, axis=2)
    out = inp.transpose(1, 0, 2) if batch_first else inp
    return (out, (np.stack(hs), np.stack(cs))) if mode == "LSTM" else (out, np.stack(hs))


def _mode(net):
    return net.mode


@pytest.mark.parametrize("make,kw", [
    (lambda: nn.LSTM(2, 3, dtype=sf.float64), {}),
    (lambda: nn.GRU(2, 3, dtype=sf.float64), {}),
    (lambda: nn.RNN(2, 3, nonlinearity="tanh", dtype=sf.float64), {}),
    (lambda: nn.LSTM(2, 2, num_layers=2, bidirectional=True, batch_first=True, dtype=sf.float64),
     dict(num_layers=2, bidirectional=True, batch_first=True)),
    (lambda: nn.GRU(2, 2, bidirectional=True, has_bias=False, dtype=sf.float64),
     dict(bidirectional=True, has_bias=False)),
])
def test_recurrent_layers_match_mindspore_formula(make, kw, rng):
    sf.set_seed(1)
    net = make()
    x = rng.standard_normal((2, 3, 2) if kw.get("batch_first") else (3, 2, 2))
    check_layer(net, lambda p, x_: np_rnn(net.mode, p, x_, **kw), x)


def test_lstm_initial_state_and_seq_length(rng):
    sf.set_seed(2)
    net = nn.LSTM(2, 2, bidirectional=True, dtype=sf.float64)
    x = rng.standard_normal((4, 3, 2))
    h0, c0 = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    lengths = np.array([4, 2, 1], np.int32)
    sl = sf.Tensor(lengths)

    class WithState(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = net

        def construct(self, x_, h, c):
            return self.lstm(x_, (h, c), sl)

    cell = WithState()
    check_layer(cell, lambda p, x_, h, c: np_rnn("LSTM", {k.split(".", 1)[1]: v for k, v in p.items()}, x_, h, c,
                                                 bidirectional=True, lengths=lengths),
                x, h0, c0, grad_inputs=(0, 1, 2))
    out, _ = net(sf.Tensor(x), None, sl)
    assert np.all(out.asnumpy()[2:, 1] == 0) and np.all(out.asnumpy()[1:, 2] == 0)   # padded steps are zero


@pytest.mark.parametrize("cls,mode", [(nn.LSTMCell, "LSTM"), (nn.GRUCell, "GRU"), (nn.RNNCell, "RNN_RELU")])
def test_cells_match_formula(cls, mode, rng):
    sf.set_seed(3)
    kw = {"nonlinearity": "relu"} if cls is nn.RNNCell else {}
    cell = cls(3, 2, dtype=sf.float64, **kw)
    assert [n for n, _ in cell.parameters_and_names()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))

    def ref(p, x_, h_, c_=None):
        out = np_step(mode, x_, h_, c_, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        return out if mode == "LSTM" else out[0]
    if mode == "LSTM":
        c = rng.standard_normal((2, 2))

        class Wrap(nn.Cell):
            def __init__(self):
                super().__init__(auto_prefix=False)
                self.cell = cell

            def construct(self, x_, h_, c_):
                return self.cell(x_, (h_, c_))
        check_layer(Wrap(), ref, x, h, c, grad_inputs=(0, 1, 2))
    else:
        check_layer(cell, ref, x, h, grad_inputs=(0, 1))


def test_names_shapes_defaults_and_errors():
    net = nn.LSTM(5, 4, num_layers=2, bidirectional=True)
    names = [n for n, _ in net.parameters_and_names()]
    assert names[:4] == ["weight_ih_l0", "weight_ih_l0_reverse", "weight_ih_l1", "weight_ih_l1_reverse"]
    assert set(names) == {f"{s}_l{k}{r}" for s in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                          for k in (0, 1) for r in ("", "_reverse")}
    p = dict(net.parameters_and_names())
    assert p["weight_ih_l0"].shape == (16, 5) and p["weight_ih_l1"].shape == (16, 8) and p["bias_hh_l1"].shape == (16,)
    assert np.abs(p["weight_hh_l0"].asnumpy()).max() <= 0.5                      # U(-1/sqrt(4), 1/sqrt(4))
    assert nn.GRU(3, 2).w_ih_list[0].shape == (6, 3) and nn.RNN(3, 2).w_hh_list[0].shape == (2, 2)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 2, has_bias=False)
    assert [n for n, _ in Net().parameters_and_names()] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    out, (h, c) = net(sf.Tensor(np.ones((6, 2, 5), np.float32)))
    assert out.shape == (6, 2, 8) and h.shape == c.shape == (4, 2, 4) and out.dtype == sf.float32
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(2, 2, dropout=1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 2, nonlinearity="gelu")
    from sporeflow.errors import ShapeError
    with pytest.raises(ShapeError, match=r"LSTM: h_0 has shape \(1, 2, 4\)"):
        net(sf.Tensor(np.ones((6, 2, 5), np.float32)), (sf.Tensor(np.zeros((1, 2, 4), np.float32)),) * 2)
    with pytest.raises(ShapeError, match="GRU: input shape"):
        nn.GRU(3, 2)(sf.Tensor(np.ones((2, 2, 4), np.float32)))


def test_dropout_between_layers_only_in_training():
    sf.set_seed(4)
    net = nn.GRU(2, 3, num_layers=2, dropout=0.5)
    x = sf.Tensor(np.ones((3, 2, 2), np.float32))
    a = net(x)[0].asnumpy()
    np.testing.assert_array_equal(a, net(x)[0].asnumpy())
    net.set_train(True)
    assert not np.allclose(net(x)[0].asnumpy(), a)


def test_vmap_of_lstm_cell_equals_loop(rng):
    cell = nn.LSTMCell(3, 2)
    xs = rng.standard_normal((4, 2, 3)).astype(np.float32)
    hs = rng.standard_normal((4, 2, 2)).astype(np.float32)

    def f(x, h):
        return cell(x, (h, h))[0]
    got = sf.vmap(f)(sf.Tensor(xs), sf.Tensor(hs)).asnumpy()
    want = np.stack([f(sf.Tensor(a), sf.Tensor(b)).asnumpy() for a, b in zip(xs, hs)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_o1_white_list_runs_the_recurrent_cells_in_float16(rng):
    """MindSpore's O1 white list holds LSTMCell/RNNCell/GRUCell, Conv1d and Conv2dTranspose."""
    from sporeflow import amp
    from sporeflow.ir import dtypes as D
    assert {nn.LSTMCell, nn.GRUCell, nn.RNNCell, nn.Conv1d, nn.Conv2dTranspose} <= set(amp.get_white_list())

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(3, 4)
            self.act = nn.Tanh()

        def construct(self, x, h):
            return self.act(self.cell(x, h))
    net = Net()
    x, h = sf.Tensor(rng.standard_normal((2, 3)).astype(np.float32)), sf.Tensor(np.zeros((2, 4), np.float32))
    want = net(x, h).asnumpy()
    amp.auto_mixed_precision(net, "O1")
    g = sf.jit(net).trace(x, h).graph
    low = {n.outputs[0].dtype for n in g.nodes if n.op == "matmul"}
    assert low == {D.float16}
    assert {n.outputs[0].dtype for n in g.nodes if n.op == "tanh" and "act" in n.scope} == {D.float32}
    np.testing.assert_allclose(sf.jit(net)(x, h).asnumpy(), want, rtol=2e-2, atol=2e-3)


def test_checkpoint_maps_by_mindspore_names(tmp_path):
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 2, bidirectional=True)

    a, b = Net(), Net()
    path = str(tmp_path / "lstm.ckpt")
    sf.save_checkpoint(a, path)
    params = sf.load_checkpoint(path)
    assert {"lstm.weight_ih_l0", "lstm.bias_hh_l0_reverse"} <= set(params)
    assert sf.load_param_into_net(b, params) == ([], [])
    x = sf.Tensor(np.ones((4, 1, 3), np.float32))
    np.testing.assert_array_equal(a.lstm(x)[0].asnumpy(), b.lstm(x)[0].asnumpy())


def test_lstm_and_attention_on_the_cuda_backend(rng):
    """The generated CUDA program (run by the emulator) agrees with the interpreter: the scan's host
    loop with its gates and the masked softmax of attention."""
    from surface_util import CUDA

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, bidirectional=True)
            self.attn = nn.MultiheadAttention(8, 2)

        def construct(self, x, lengths, kpm):
            h, _ = self.lstm(x, None, lengths)
            return self.attn(h, h, h, key_padding_mask=kpm)[0]
    sf.set_seed(6)
    net = Net()
    args = (sf.Tensor(rng.standard_normal((4, 2, 3)).astype(np.float32)), sf.Tensor(np.array([4, 2], np.int32)),
            sf.Tensor(np.array([[False] * 4, [False, False, True, True]])))
    want = sf.jit(net, backend="interp")(*args).asnumpy()
    np.testing.assert_allclose(sf.jit(net, backend=CUDA)(*args).asnumpy(), want, rtol=1e-5, atol=1e-6)
