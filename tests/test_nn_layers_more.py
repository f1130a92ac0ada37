"""Conv1d, Conv2dTranspose, AdaptiveAvgPool2d, GroupNorm, PReLU, Pad, MultiheadAttention (with masks)
and the Transformer layers against numpy references from MindSpore's documented formulas: forward
and float64 gradients on eager, interpreter and LLVM (tests/layer_check.py)."""
import math

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn

from layer_check import check_layer

F64 = sf.float64


# ---- numpy references ------------------------------------------------------------------------------------
def np_conv1d(x, w, b, stride, pad, dilation):
    x = np.pad(x, ((0, 0), (0, 0), pad))
    n, c, L = x.shape
    o, _, k = w.shape
    lo = (L - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, o, lo))
    for t in range(lo):
        seg = x[:, :, t * stride:t * stride + dilation * (k - 1) + 1:dilation]
        out[:, :, t] = np.einsum("nck,ock->no", seg, w)
    return out + (0 if b is None else b[None, :, None])


def np_conv_transpose(x, w, b, stride, dilation, crop, group=1):
    """out[n, o, i*s + ki*d, j*s + kj*d] += x[n, c, i, j] * w[c, o, ki, kj], then crop (t, b, l, r)."""
    n, cin, h, wd = x.shape
    _, opg, kh, kw = w.shape
    s, d = stride, dilation
    full = np.zeros((n, opg * group, (h - 1) * s + d * (kh - 1) + 1, (wd - 1) * s + d * (kw - 1) + 1))
    ipg = cin // group
    for c in range(cin):
        g = c // ipg
        for ki in range(kh):
            for kj in range(kw):
                rows = slice(ki * d, ki * d + (h - 1) * s + 1, s)
                cols = slice(kj * d, kj * d + (wd - 1) * s + 1, s)
                full[:, g * opg:(g + 1) * opg, rows, cols] += x[:, c][:, None] * w[c, :, ki, kj][None, :, None, None]
    t, bt, l, r = crop
    out = full[:, :, t:full.shape[2] - bt, l:full.shape[3] - r]
    return out + (0 if b is None else b[None, :, None, None])


def np_adaptive(x, oh, ow):
    h, w = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            a, b = i * h // oh, -(-(i + 1) * h // oh)
            c, d = j * w // ow, -(-(j + 1) * w // ow)
            out[..., i, j] = x[..., a:b, c:d].mean(axis=(-2, -1))
    return out


def np_group_norm(x, g, gamma, beta, eps):
    n = x.shape[0]
    xg = x.reshape(n, g, -1)
    y = ((xg - xg.mean(2, keepdims=True)) / np.sqrt(xg.var(2, keepdims=True) + eps)).reshape(x.shape)
    bs = (1, -1) + (1,) * (x.ndim - 2)
    return y * gamma.reshape(bs) + beta.reshape(bs)


def np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mha(p, q, k, v, heads, attn_mask=None, key_padding_mask=None, pre="", batch_first=False):
    """softmax(q k^T / sqrt(d) + masks) v per head; bool masks: True = not attended."""
    if batch_first:
        q, k, v = (t.transpose(1, 0, 2) for t in (q, k, v))
    E = q.shape[-1]
    W, B = p[pre + "in_proj_weight"], p[pre + "in_proj_bias"]
    qp, kp, vp = q @ W[:E].T + B[:E], k @ W[E:2 * E].T + B[E:2 * E], v @ W[2 * E:].T + B[2 * E:]
    L, N, _ = q.shape
    S = k.shape[0]
    d = E // heads

    def split(t, n):
        return t.reshape(n, N, heads, d).transpose(1, 2, 0, 3)
    qh, kh, vh = split(qp, L), split(kp, S), split(vp, S)
    s = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(d)
    for m, shape in ((attn_mask, None), (key_padding_mask, (N, 1, 1, S))):
        if m is None:
            continue
        m = m.reshape(shape) if shape else (m.reshape(N, heads, L, S) if m.ndim == 3 else m)
        s = np.where(m, -np.inf, s) if m.dtype == bool else s + m
    a = np_softmax(s)
    o = (a @ vh).transpose(2, 0, 1, 3).reshape(L, N, E)
    o = o @ p[pre + "out_proj.weight"].T + p[pre + "out_proj.bias"]
    if batch_first:
        o = o.transpose(1, 0, 2)
    return o, a.mean(1)


def np_ln(x, g, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * g + b


def np_encoder_layer(p, x, heads, mask=None, kpm=None, pre="", norm_first=False):
    def sa(t):
        return np_mha(p, t, t, t, heads, mask, kpm, pre + "self_attn.")[0]

    def ff(t):
        h = np.maximum(t @ p[pre + "linear1.weight"].T + p[pre + "linear1.bias"], 0)
        return h @ p[pre + "linear2.weight"].T + p[pre + "linear2.bias"]

    def n(i, t):
        return np_ln(t, p[f"{pre}norm{i}.gamma"], p[f"{pre}norm{i}.beta"])
    if norm_first:
        x = x + sa(n(1, x))
        return x + ff(n(2, x))
    x = n(1, x + sa(x))
    return n(2, x + ff(x))


# ---- convolution and pooling --------------------------------------------------------------------------------
def test_conv1d(rng):
    sf.set_seed(0)
    c = nn.Conv1d(2, 3, 3, stride=2, pad_mode="pad", padding=1, dilation=1, has_bias=True, dtype=F64)
    assert c.weight.shape == (3, 2, 3)
    check_layer(c, lambda p, x: np_conv1d(x, p["weight"], p["bias"], 2, (1, 1), 1), rng.standard_normal((2, 2, 7)))
    same = nn.Conv1d(2, 2, 3, dilation=2, dtype=F64)                    # 'same': total pad d*(k-1) = 4
    check_layer(same, lambda p, x: np_conv1d(x, p["weight"], None, 1, (2, 2), 2), rng.standard_normal((1, 2, 6)),
                backends=("eager", "llvm"))


@pytest.mark.parametrize("kw,crop", [
    (dict(pad_mode="valid"), lambda x: (0, 0, 0, 0)),
    (dict(pad_mode="same"), None),
    (dict(pad_mode="pad", padding=1, output_padding=1), lambda x: (1, 0, 1, 0)),
    (dict(pad_mode="valid", group=2, dilation=2, stride=1), lambda x: (0, 0, 0, 0)),
])
def test_conv2d_transpose(kw, crop, rng):
    sf.set_seed(1)
    stride = kw.pop("stride", 2)
    c = nn.Conv2dTranspose(2, 4, 3, stride=stride, has_bias=True, dtype=F64, **kw)
    assert c.weight.shape == (2, 4 // c.group, 3, 3)
    x = rng.standard_normal((1, 2, 3, 2))
    d = c.dilation[0]
    if crop is None:                                   # 'same': output H*s, the extra split evenly
        full_h, full_w = (3 - 1) * stride + d * 2 + 1, (2 - 1) * stride + d * 2 + 1
        th, tw = full_h - 3 * stride, full_w - 2 * stride
        cr = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        cr = crop(x)
    ref = lambda p, x_: np_conv_transpose(x_, p["weight"], p["bias"], stride, d, cr, c.group)  # noqa: E731
    check_layer(c, ref, x)
    if kw.get("pad_mode") == "same":
        assert c(sf.Tensor(x)).shape == (1, 4, 6, 4)


def test_conv2d_transpose_is_the_input_gradient_of_conv2d(rng):
    """The defining property: Conv2dTranspose(w) == the vjp of Conv2d(w) w.r.t. its input."""
    conv = nn.Conv2d(3, 2, 3, stride=2, pad_mode="pad", padding=1, dtype=F64)
    tconv = nn.Conv2dTranspose(2, 3, 3, stride=2, pad_mode="pad", padding=1, output_padding=1, dtype=F64)
    tconv.weight.set_data(conv.weight.asnumpy())
    x = sf.Tensor(rng.standard_normal((1, 3, 6, 6)))
    y = rng.standard_normal(conv(x).shape)
    g = sf.grad(lambda t: (conv(t) * sf.Tensor(y)).sum())(x).asnumpy()
    np.testing.assert_allclose(tconv(sf.Tensor(y)).asnumpy(), g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size,shape", [((2, 3), (1, 2, 5, 7)), (2, (2, 4, 4)), ((None, 2), (1, 1, 3, 4))])
def test_adaptive_avg_pool2d(size, shape, rng):
    pool = nn.AdaptiveAvgPool2d(size)
    x = rng.standard_normal(shape)
    h, w = shape[-2:]
    oh, ow = (size, size) if isinstance(size, int) else (size[0] or h, size[1] or w)
    check_layer(pool, lambda p, x_: np_adaptive(x_, oh, ow), x)


# ---- normalization, activation, padding ----------------------------------------------------------------------
def test_group_norm(rng):
    gn = nn.GroupNorm(2, 4, eps=1e-5, dtype=F64)
    gn.gamma.set_data(rng.standard_normal(4))
    gn.beta.set_data(rng.standard_normal(4))
    assert [n for n, _ in gn.parameters_and_names()] == ["gamma", "beta"]
    check_layer(gn, lambda p, x: np_group_norm(x, 2, p["gamma"], p["beta"], 1e-5), rng.standard_normal((2, 4, 2, 3)))
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)


def test_prelu(rng):
    pr = nn.PReLU(3, w=0.1, dtype=F64)
    assert pr.w.shape == (3,) and np.allclose(pr.w.asnumpy(), 0.1)
    pr.w.set_data(np.array([0.1, 0.5, -0.3]))
    x = rng.standard_normal((2, 3, 2)) + 0.01
    check_layer(pr, lambda p, x_: np.where(x_ > 0, x_, x_ * p["w"][None, :, None]), x)
    shared = nn.PReLU(dtype=F64)
    check_layer(shared, lambda p, x_: np.where(x_ > 0, x_, x_ * p["w"][0]), x, backends=("eager", "llvm"))


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC"])
def test_pad(mode, rng):
    pads = ((0, 0), (1, 2), (2, 1))
    x = rng.standard_normal((2, 3, 4))
    check_layer(nn.Pad(pads, mode), lambda p, x_: np.pad(x_, pads, mode=mode.lower()), x)
    with pytest.raises(ValueError, match="mode"):
        nn.Pad(pads, "EDGE")


# ---- attention and transformers --------------------------------------------------------------------------------
def _rand_params(cell, rng, scale=0.5):
    for p in cell.trainable_params():
        p.set_data(rng.standard_normal(p.shape) * scale)


def test_multihead_attention_with_masks(rng):
    sf.set_seed(2)
    mha = nn.MultiheadAttention(4, 2, dtype=F64)
    assert [n for n, _ in mha.parameters_and_names()] == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                          "out_proj.bias"]
    _rand_params(mha, rng)
    L, S, N = 3, 4, 2
    q, k, v = rng.standard_normal((L, N, 4)), rng.standard_normal((S, N, 4)), rng.standard_normal((S, N, 4))
    kpm = np.array([[False, False, True, True], [False, False, False, True]])
    am = rng.standard_normal((L, S))                                    # float mask: added to the scores

    class Call(nn.Cell):
        def __init__(self, **kw):
            super().__init__(auto_prefix=False)
            self.mha, self.kw = mha, kw

        def construct(self, q_, k_=None, v_=None):
            return self.mha(q_, q_ if k_ is None else k_, q_ if v_ is None else v_, **self.kw)
    kw = dict(key_padding_mask=sf.Tensor(kpm), attn_mask=sf.Tensor(am))
    check_layer(Call(**kw), lambda p, *a: np_mha(p, *a, 2, am, kpm), q, k, v, grad_inputs=(0, 1, 2))
    causal = np.triu(np.ones((L, L), bool), 1)                      # bool mask: True = not attended
    check_layer(Call(attn_mask=sf.Tensor(causal)), lambda p, a: np_mha(p, a, a, a, 2, causal), q,
                backends=("eager", "llvm"))
    per_head = rng.random((N * 2, L, S)) > 0.7
    per_head[..., 0] = False
    out, w = mha(sf.Tensor(q), sf.Tensor(k), sf.Tensor(v), attn_mask=sf.Tensor(per_head),
                 average_attn_weights=False)
    assert w.shape == (N, 2, L, S) and np.all(w.asnumpy()[per_head.reshape(N, 2, L, S)] == 0)
    o1, w1 = mha(sf.Tensor(q[:, 0]), sf.Tensor(k[:, 0]), sf.Tensor(v[:, 0]))       # unbatched (L, E)
    np.testing.assert_allclose(o1.asnumpy(), np_mha({p.name: p.asnumpy() for p in mha.trainable_params()},
                                                    q, k, v, 2)[0][:, 0], rtol=1e-10)
    assert w1.shape == (L, S)
    from sporeflow.errors import ShapeError
    with pytest.raises(ShapeError, match="key_padding_mask shape"):
        mha(sf.Tensor(q), sf.Tensor(k), sf.Tensor(v), key_padding_mask=sf.Tensor(kpm[:, :3]))


def test_multihead_attention_batch_first_and_options():
    m = nn.MultiheadAttention(4, 2, batch_first=True, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True)
    names = [n for n, _ in m.parameters_and_names()]
    assert names == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                     "out_proj.weight", "out_proj.bias"]
    q, k, v = (sf.Tensor(np.ones(s, np.float32)) for s in ((2, 3, 4), (2, 6, 3), (2, 6, 5)))
    kpm = sf.Tensor(np.zeros((2, 6), bool))
    out, w = sf.jit(m)(q, k, v, kpm)
    assert out.shape == (2, 3, 4) and w.shape == (2, 3, 8)      # S + bias_kv + zero_attn


def test_transformer_encoder_layer(rng):
    sf.set_seed(3)
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, norm_first=norm_first, dtype=F64)
        _rand_params(layer, rng)
        x = rng.standard_normal((3, 2, 4))
        kpm = np.array([[False, False, True], [False, False, False]])

        class Call(nn.Cell):
            def __init__(self):
                super().__init__(auto_prefix=False)
                self.layer = layer

            def construct(self, x_):
                return self.layer(x_, src_key_padding_mask=sf.Tensor(kpm))
        check_layer(Call(), lambda p, x_: np_encoder_layer(p, x_, 2, kpm=kpm, norm_first=norm_first), x,
                    rtol=1e-9, atol=1e-10, grad_rtol=1e-5, grad_atol=1e-7,
                    backends=("eager", "interp", "llvm") if norm_first else ("eager", "llvm"))


def test_transformer_encoder_decoder_and_names(rng):
    sf.set_seed(4)
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True, dtype=F64)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm((4,), epsilon=1e-5, dtype=F64))
    names = [n for n, _ in enc.parameters_and_names()]
    assert names[0] == "layers.0.self_attn.in_proj_weight" and "layers.1.norm2.gamma" in names and \
        names[-1] == "norm.beta"
    _rand_params(enc, rng)
    x = rng.standard_normal((2, 3, 4))
    causal = np.triu(np.ones((3, 3), bool), 1)

    def ref(p, x_):
        h = x_.transpose(1, 0, 2)
        for i in range(2):
            h = np_encoder_layer(p, h, 2, mask=causal, pre=f"layers.{i}.")
        return np_ln(h, p["norm.gamma"], p["norm.beta"]).transpose(1, 0, 2)

    class Call(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.enc = enc

        def construct(self, x_):
            return self.enc(x_, mask=sf.Tensor(causal))
    check_layer(Call(), ref, x, rtol=1e-9, atol=1e-10, grad_rtol=1e-5, grad_atol=1e-7, backends=("eager", "interp"))

    t = nn.Transformer(4, 2, 1, 1, 6, dropout=0.0, dtype=F64)
    _rand_params(t, rng)
    src, tgt = rng.standard_normal((5, 2, 4)), rng.standard_normal((3, 2, 4))
    tmask = np.triu(np.ones((3, 3), bool), 1)
    p = {q.name: q.asnumpy() for q in t.trainable_params()}
    mem = np_ln(np_encoder_layer(p, src, 2, pre="encoder.layers.0."), p["encoder.norm.gamma"], p["encoder.norm.beta"])
    pre = "decoder.layers.0."
    y = np_ln(tgt + np_mha(p, tgt, tgt, tgt, 2, tmask, pre=pre + "self_attn.")[0], p[pre + "norm1.gamma"],
              p[pre + "norm1.beta"])
    y = np_ln(y + np_mha(p, y, mem, mem, 2, pre=pre + "multihead_attn.")[0], p[pre + "norm2.gamma"],
              p[pre + "norm2.beta"])
    ffn = np.maximum(y @ p[pre + "linear1.weight"].T + p[pre + "linear1.bias"], 0) @ p[pre + "linear2.weight"].T + \
        p[pre + "linear2.bias"]
    y = np_ln(np_ln(y + ffn, p[pre + "norm3.gamma"], p[pre + "norm3.beta"]), p["decoder.norm.gamma"],
              p["decoder.norm.beta"])
    got = sf.jit(t, backend="llvm")(sf.Tensor(src), sf.Tensor(tgt), None, sf.Tensor(tmask))
    np.testing.assert_allclose(got.asnumpy(), y, rtol=1e-9, atol=1e-10)


def test_dropout_in_attention_only_in_training():
    sf.set_seed(5)
    m = nn.MultiheadAttention(4, 2, dropout=0.5)
    x = sf.Tensor(np.random.default_rng(0).standard_normal((3, 1, 4)).astype(np.float32))
    a = m(x, x, x)[0].asnumpy()
    np.testing.assert_array_equal(a, m(x, x, x)[0].asnumpy())
    m.set_train(True)
    assert not np.allclose(m(x, x, x)[0].asnumpy(), a)


def test_vmap_of_group_norm_and_attention_equals_loop(rng):
    gn = nn.GroupNorm(2, 4)
    xs = rng.standard_normal((3, 2, 4, 2)).astype(np.float32)
    got = sf.vmap(gn)(sf.Tensor(xs)).asnumpy()
    np.testing.assert_allclose(got, np.stack([gn(sf.Tensor(x)).asnumpy() for x in xs]), rtol=1e-5, atol=1e-6)
    mha = nn.MultiheadAttention(4, 2)
    qs = rng.standard_normal((3, 2, 1, 4)).astype(np.float32)
    f = lambda q: mha(q, q, q)[0]  # noqa: E731
    np.testing.assert_allclose(sf.vmap(f)(sf.Tensor(qs)).asnumpy(),
                               np.stack([f(sf.Tensor(q)).asnumpy() for q in qs]), rtol=1e-5, atol=1e-6)
