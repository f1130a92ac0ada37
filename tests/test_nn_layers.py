"""nn layers: forward against numpy references, MindSpore defaults and parameter names, gradients
against float64 central finite differences of the numpy reference."""
import math

import numpy as np
import pytest

import sporeflow as sf
from sporeflow import nn
from sporeflow.frontend.nn import initializer as init


def T(a, dt=np.float32):
    return sf.Tensor(np.asarray(a, dt))


# ---- numpy references ------------------------------------------------------------------------------
def np_conv2d(x, w, stride=1, pad=(0, 0, 0, 0)):
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


def np_pool(x, k, s, fn):
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = fn(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


def np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- defaults and names ----------------------------------------------------------------------------------
def test_mindspore_defaults_and_names():
    c = nn.Conv2d(3, 4, 3)
    assert c.pad_mode == "same" and c.bias is None and c.weight.shape == (4, 3, 3, 3)
    d = nn.Dense(5, 2)
    assert d.bias is not None and d.weight.shape == (2, 5)
    bn = nn.BatchNorm2d(4)
    assert bn.momentum == 0.9
    assert [n for n, _ in bn.parameters_and_names()] == ["mean", "variance", "gamma", "beta"]
    assert [p.name for p in bn.trainable_params()] == ["gamma", "beta"]

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(2)
            self.fc = nn.Dense(2, 2)

    assert [n for n, _ in Net().parameters_and_names()] == [
        "bn.moving_mean", "bn.moving_variance", "bn.gamma", "bn.beta", "fc.weight", "fc.bias"]
    seq = nn.SequentialCell(nn.Dense(2, 3), nn.ReLU(), nn.Dense(3, 1))
    assert [n for n, _ in seq.parameters_and_names()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in seq.cells_and_names()] == ["", "0", "1", "2"]
    cl = nn.CellList([nn.Dense(2, 2), nn.Dense(2, 2)])
    assert [n for n, _ in cl.parameters_and_names()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [n for n, _ in seq[1:].parameters_and_names()] == ["2.weight", "2.bias"]      # slicing renames nothing
    assert [n for n, _ in cl[1:].parameters_and_names()] == ["1.weight", "1.bias"]
    assert [n for n, _ in seq.parameters_and_names()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert nn.SoftmaxCrossEntropyWithLogits().reduction == "none"
    assert nn.Dropout(keep_prob=0.8).p == pytest.approx(0.2) and nn.Dropout(p=0.3).p == 0.3
    wrapped = nn.WithLossCell(Net(), nn.MSELoss())
    assert [n for n, _ in wrapped.parameters_and_names()][0] == "bn.moving_mean"   # wrappers add no prefix


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="pad_mode='pad'"):
        nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(ValueError, match="in_channels=3"):
        nn.Dense(3, 2)(T(np.ones((2, 4))))
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(p=1.0)
    with pytest.raises(ValueError, match="sparse=True"):
        nn.SoftmaxCrossEntropyWithLogits()(T(np.ones((2, 3))), sf.Tensor(np.array([0, 1], np.int32)))


@pytest.mark.parametrize("jit", [False, True])
def test_cross_entropy_label_mistakes_name_the_loss_and_the_shapes(jit):
    """Labels of the wrong length, float class indices, or probabilities of the wrong shape: the error
    names the loss and both shapes at the user's line, not an internal `mul` broadcast failure."""
    from sporeflow.errors import ShapeError
    logits = T(np.ones((2, 3)))
    call = (lambda f, *a: sf.jit(f)(*a)) if jit else (lambda f, *a: f(*a))
    cases = [(nn.CrossEntropyLoss(), sf.Tensor(np.array([0, 1, 2], np.int32)), r"\(3,\).*\(2, 3\)"),
             (nn.CrossEntropyLoss(), T([0.0, 1.0]), r"float32.*\(2,\).*integer"),
             (nn.CrossEntropyLoss(), T(np.ones((2, 4))), r"\(2, 4\).*\(2, 3\)"),
             (nn.NLLLoss(), sf.Tensor(np.array([0, 1, 2], np.int32)), r"\(3,\).*\(2, 3\)"),
             (nn.NLLLoss(), T([0.0, 1.0]), r"integer")]
    for loss, labels, pattern in cases:
        with pytest.raises(ShapeError, match=pattern) as ei:
            call(loss, logits, labels)
        assert type(loss).__name__ in str(ei.value) and "test_nn_layers.py" in str(ei.value)
    # the right calls still work: (N, C) with (N,) indices or (N, C) probabilities, (N, C, d) with (N, d)
    assert call(nn.CrossEntropyLoss(), logits, sf.Tensor(np.array([0, 2], np.int32))).shape == ()
    assert call(nn.CrossEntropyLoss(), logits, T(np.full((2, 3), 1 / 3))).shape == ()
    assert call(nn.CrossEntropyLoss(reduction="none"), T(np.ones((2, 3, 4))),
                sf.Tensor(np.zeros((2, 4), np.int32))).shape == (2, 4)


# ---- forward -----------------------------------------------------------------------------------------------
def test_dense_conv_pool_forward(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    d = nn.Dense(3, 4, activation="relu")
    ref = np.maximum(x @ d.weight.asnumpy().T + d.bias.asnumpy(), 0)
    np.testing.assert_allclose(d(T(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)

    img = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    c = nn.Conv2d(3, 4, 3, has_bias=True)                      # 'same': pad 1 on each side
    ref = np_conv2d(img, c.weight.asnumpy(), 1, (1, 1, 1, 1)) + c.bias.asnumpy()[None, :, None, None]
    np.testing.assert_allclose(c(T(img)).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    cv = nn.Conv2d(3, 2, 3, stride=2, pad_mode="valid")
    np.testing.assert_allclose(cv(T(img)).asnumpy(), np_conv2d(img, cv.weight.asnumpy(), 2), rtol=1e-4, atol=1e-5)
    cp = nn.Conv2d(3, 2, 3, pad_mode="pad", padding=2)
    np.testing.assert_allclose(cp(T(img)).asnumpy(), np_conv2d(img, cp.weight.asnumpy(), 1, (2, 2, 2, 2)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nn.MaxPool2d(2, 2)(T(img)).asnumpy(), np_pool(img, 2, 2, np.max), rtol=1e-6)
    np.testing.assert_allclose(nn.AvgPool2d(3, 1)(T(img)).asnumpy(), np_pool(img, 3, 1, np.mean), rtol=1e-5, atol=1e-6)
    assert nn.Flatten()(T(img)).shape == (2, 108)


def test_activations_forward(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    refs = {
        nn.ReLU(): np.maximum(x, 0), nn.Sigmoid(): 1 / (1 + np.exp(-x)), nn.Tanh(): np.tanh(x),
        nn.Softmax(): np.exp(np_log_softmax(x)), nn.LogSoftmax(): np_log_softmax(x),
        nn.GELU(): 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
        nn.GELU(approximate=False): 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    }
    for cell, ref in refs.items():
        np.testing.assert_allclose(cell(T(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6, err_msg=type(cell).__name__)


def test_batchnorm_train_updates_running_stats_and_eval_uses_them(rng):
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1
    bn = nn.BatchNorm2d(3)
    bn.set_train(True)
    y = bn(T(x)).asnumpy()
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    ref = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    n = x.size // 3
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * mu, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.asnumpy(), 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)
    bn.set_train(False)
    mm, mv = bn.moving_mean.asnumpy(), bn.moving_variance.asnumpy()
    ref = (x - mm[None, :, None, None]) / np.sqrt(mv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(bn(T(x)).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), mm)             # eval leaves the stats alone

    # inside a compiled step the update is a graph output written back after the call
    bn2 = nn.BatchNorm1d(3)
    bn2.set_train(True)
    x1 = rng.standard_normal((5, 3)).astype(np.float32)
    sf.jit(bn2)(T(x1))
    np.testing.assert_allclose(bn2.moving_mean.asnumpy(), 0.1 * x1.mean(0), rtol=1e-5)


def test_layernorm_embedding_forward(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    ln = nn.LayerNorm((4,))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-7)
    np.testing.assert_allclose(ln(T(x)).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    ln2 = nn.LayerNorm((3, 4), begin_norm_axis=1, begin_params_axis=1)
    ref2 = (x - x.mean((1, 2), keepdims=True)) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-7)
    np.testing.assert_allclose(ln2(T(x)).asnumpy(), ref2, rtol=1e-4, atol=1e-5)

    emb = nn.Embedding(7, 3, padding_idx=0)
    ids = np.array([[0, 3], [6, 3]], np.int32)
    table = emb.embedding_table.asnumpy()
    assert np.all(table[0] == 0)
    np.testing.assert_allclose(emb(sf.Tensor(ids)).asnumpy(), table[ids])
    emb1 = nn.Embedding(7, 3, use_one_hot=True)
    np.testing.assert_allclose(emb1(sf.Tensor(ids)).asnumpy(), emb1.embedding_table.asnumpy()[ids], rtol=1e-6)


def test_dropout_train_eval_and_rng_threading():
    x = T(np.ones((200, 50)))
    d = nn.Dropout(p=0.25)
    assert np.array_equal(d(x).asnumpy(), x.asnumpy())                     # off in eval (default)
    d.set_train(True)
    sf.set_seed(3)
    y = d(x).asnumpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    step = sf.jit(d)
    sf.set_seed(3)
    a, b = step(x).asnumpy(), step(x).asnumpy()
    assert np.array_equal(a, y)                   # compiled draws == eager draws from the same seed
    assert not np.array_equal(a, b)               # the RNG state is threaded through compiled steps


def test_losses_forward(rng):
    logits = rng.standard_normal((4, 5)).astype(np.float32)
    labels = np.array([0, 4, 2, 2], np.int32)
    onehot = np.eye(5, dtype=np.float32)[labels]
    lsm = np_log_softmax(logits)
    per = -lsm[np.arange(4), labels]
    L, Y = T(logits), sf.Tensor(labels)
    np.testing.assert_allclose(nn.SoftmaxCrossEntropyWithLogits(sparse=True)(L, Y).asnumpy(), per, rtol=1e-5)
    np.testing.assert_allclose(nn.SoftmaxCrossEntropyWithLogits(reduction="mean")(L, T(onehot)).asnumpy(),
                               per.mean(), rtol=1e-5)
    np.testing.assert_allclose(nn.CrossEntropyLoss()(L, Y).asnumpy(), per.mean(), rtol=1e-5)
    w = np.array([1, 2, 3, 4, 5], np.float32)
    np.testing.assert_allclose(nn.CrossEntropyLoss(weight=T(w))(L, Y).asnumpy(),
                               (per * w[labels]).sum() / w[labels].sum(), rtol=1e-5)
    np.testing.assert_allclose(nn.NLLLoss(reduction="sum")(T(lsm), Y).asnumpy(), per.sum(), rtol=1e-5)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(nn.MSELoss()(T(a), T(b)).asnumpy(), ((a - b) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(nn.L1Loss(reduction="sum")(T(a), T(b)).asnumpy(), np.abs(a - b).sum(), rtol=1e-5)
    d = np.abs(a - b)
    np.testing.assert_allclose(nn.SmoothL1Loss()(T(a), T(b)).asnumpy(), np.where(d < 1, 0.5 * d * d, d - 0.5),
                               rtol=1e-5)
    y01 = (rng.random((3, 4)) > 0.5).astype(np.float32)
    bce = np.maximum(a, 0) - a * y01 + np.log1p(np.exp(-np.abs(a)))
    np.testing.assert_allclose(nn.BCEWithLogitsLoss()(T(a), T(y01)).asnumpy(), bce.mean(), rtol=1e-5)


def test_initializers():
    sf.set_seed(5)
    a = init.initializer("he_uniform", (64, 32)).asnumpy()
    sf.set_seed(5)
    assert np.array_equal(a, init.initializer(init.HeUniform(), (64, 32)).asnumpy())    # seeded
    bound = math.sqrt(2) * math.sqrt(3 / 32)
    assert a.dtype == np.float32 and np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound
    x = init.initializer(init.XavierUniform(), (30, 20, 3, 3)).asnumpy()
    assert np.abs(x).max() <= math.sqrt(6 / (20 * 9 + 30 * 9))
    t = init.initializer(init.TruncatedNormal(0.02), (1000,)).asnumpy()
    assert abs(t.std() - 0.02) < 0.0015        # bounds a=-2, b=2 are absolute: no truncation at 2 sigma (std 0.0176)
    u = init.initializer(init.TruncatedNormal(1.0, a=-0.5, b=1.0), (5000,)).asnumpy()
    assert -0.5 <= u.min() < -0.49 and 0.99 < u.max() <= 1.0
    assert abs(u.mean() - 0.2066) < 0.02         # mean of N(0, 1) truncated to [-0.5, 1]
    assert np.all(init.initializer("zeros", (2, 2)).asnumpy() == 0)
    assert np.all(init.initializer(init.Constant(3), (2,)).asnumpy() == 3)
    assert init.initializer("ones", (2,), sf.int32).dtype == sf.int32
    assert abs(init.initializer(init.Normal(0.5), (4000,)).asnumpy().std() - 0.5) < 0.03
    with pytest.raises(ValueError, match="unknown name"):
        init.initializer("nope", (2,))


# ---- gradients vs finite differences --------------------------------------------------------------------
def _fd_check(cell, x, rng, eps=1e-3, tol=2e-3):
    """d(sum(out * r))/d(input, params) from sf.grad == central differences in float64 numpy-evaluated cell."""
    params = cell.trainable_params()
    r = rng.standard_normal(cell(T(x)).shape).astype(np.float32)

    def f(inp):
        return (cell(inp) * T(r)).sum()

    gx, gw = sf.grad(f, 0, params)(T(x)) if params else (sf.grad(f, 0)(T(x)), ())

    def fval():
        return float((cell(T(x)).asnumpy().astype(np.float64) * r).sum())

    checks = [(x, gx.asnumpy(), None)] + [(p.asnumpy(), g.asnumpy(), p) for p, g in zip(params, gw)]
    for arr0, g, p in checks:
        flat_idx = rng.choice(arr0.size, size=min(6, arr0.size), replace=False)
        for k in flat_idx:
            idx = np.unravel_index(k, arr0.shape)
            vals = []
            for sgn in (1, -1):
                a = arr0.copy()
                a[idx] += sgn * eps
                if p is None:
                    vals.append(float((cell(T(a)).asnumpy().astype(np.float64) * r).sum()))
                else:
                    p.set_data(a)
                    vals.append(fval())
            if p is not None:
                p.set_data(arr0)
            num = (vals[0] - vals[1]) / (2 * eps)
            assert abs(num - g[idx]) <= tol * max(1.0, abs(num)), (type(cell).__name__, p and p.name, idx, num, g[idx])


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Dense(4, 3, activation="tanh"), (2, 4)),
    (lambda: nn.Conv2d(2, 3, 3, has_bias=True), (2, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 2, 3, stride=2, pad_mode="valid"), (1, 2, 5, 5)),
    (lambda: nn.MaxPool2d(2, 2), (1, 2, 4, 4)),
    (lambda: nn.AvgPool2d(2, 1), (1, 2, 3, 3)),
    (lambda: nn.LayerNorm((4,)), (3, 4)),
    (lambda: nn.GELU(), (3, 4)),
    (lambda: nn.LogSoftmax(), (3, 4)),
    (lambda: nn.Sigmoid(), (3, 4)),
])
def test_layer_gradients_match_finite_differences(make, shape, rng):
    sf.set_seed(0)
    _fd_check(make(), rng.standard_normal(shape).astype(np.float32), rng)


def test_batchnorm_gradient_in_training(rng):
    bn = nn.BatchNorm2d(2)
    bn.set_train(True)
    bn.gamma.set_data(np.array([1.5, 0.5], np.float32))
    saved = (bn.moving_mean.asnumpy(), bn.moving_variance.asnumpy())
    _fd_check(bn, rng.standard_normal((3, 2, 2, 2)).astype(np.float32), rng, tol=5e-3)
    assert saved[0].shape == (2,)


def test_loss_gradients(rng):
    logits = rng.standard_normal((3, 4)).astype(np.float32)
    labels = np.array([1, 0, 3], np.int32)
    g = sf.grad(lambda z: nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")(z, sf.Tensor(labels)))(
        T(logits)).asnumpy()
    p = np.exp(np_log_softmax(logits))
    np.testing.assert_allclose(g, (p - np.eye(4)[labels]) / 3, rtol=1e-4, atol=1e-6)
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(sf.grad(lambda u: nn.MSELoss()(u, T(b)))(T(a)).asnumpy(), 2 * (a - b) / 6, rtol=1e-5)


def test_embedding_and_activation_gradients(rng):
    emb = nn.Embedding(5, 3)
    ids = sf.Tensor(np.array([[1, 4], [1, 0]], np.int32))
    r = rng.standard_normal((2, 2, 3)).astype(np.float32)
    (g,) = sf.grad(lambda: (emb(ids) * T(r)).sum(), None, [emb.embedding_table])()
    want = np.zeros((5, 3), np.float32)
    np.add.at(want, ids.asnumpy().reshape(-1), r.reshape(-1, 3))
    np.testing.assert_allclose(g.asnumpy(), want, rtol=1e-6)
    for cell in (nn.ReLU(), nn.Tanh(), nn.Softmax(), nn.Dropout(p=0.5)):
        _fd_check(cell, rng.standard_normal((3, 4)).astype(np.float32) + 0.05, rng)
