"""The benchmark workloads, one builder per (workload, framework). Every builder returns a
zero-argument callable that runs one step (plus a `sync` for asynchronous frameworks) or raises
Unavailable with the reason. All frameworks start from the same numpy data and weights.

Models as in reference/peer-baselines.md: MLP 784-512-512-10 (ReLU, softmax cross entropy,
SGD momentum 0.9, lr 0.01: v = 0.9 v + g; p -= 0.01 v), LeNet-5 (1x32x32, conv5-relu-pool2 x2,
400-120-84-10), the elementwise chain y = gelu_tanh(x*a+b) * sigmoid(x).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Unavailable(Exception):
    """This framework cannot run this workload here (reason in the message)."""


C_GELU = math.sqrt(2.0 / math.pi)


# ---- shared data -------------------------------------------------------------------------------
def mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(784, 512), (512, 512), (512, 10)]
    ps = []
    for i, o in sizes:
        ps += [(rng.standard_normal((i, o)) * math.sqrt(2.0 / i)).astype(np.float32), np.zeros(o, np.float32)]
    return ps


def lenet_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (400, 120), (120,), (120, 84), (84,), (84, 10), (10,)]
    ps = []
    for s in shapes:
        fan_in = int(np.prod(s[1:])) if len(s) == 4 else s[0]
        ps.append((rng.standard_normal(s) * math.sqrt(2.0 / fan_in)).astype(np.float32) if len(s) > 1
                  else np.zeros(s, np.float32))
    return ps


def batch(n, shape, classes=10, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    y = rng.integers(0, classes, n)
    return x, np.eye(classes, dtype=np.float32)[y]


# ---- numpy ---------------------------------------------------------------------------------------
def np_chain(x, a, b):
    z = x * a + b
    g = 0.5 * z * (1.0 + np.tanh(C_GELU * (z + 0.044715 * z * z * z)))
    return g * (1.0 / (1.0 + np.exp(-x)))


def np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_mlp_step(ps, vs, x, y, lr=0.01, mu=0.9):
    w1, b1, w2, b2, w3, b3 = ps
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.maximum(h1 @ w2 + b2, 0)
    z = h2 @ w3 + b3
    p = np_softmax(z)
    loss = -np.mean(np.sum(y * np.log(p + 1e-30), axis=1))
    d3 = (p - y) / x.shape[0]
    d2 = (d3 @ w3.T) * (h2 > 0)
    d1 = (d2 @ w2.T) * (h1 > 0)
    gs = [x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]
    for p_, v, g in zip(ps, vs, gs):
        v *= mu
        v += g
        p_ -= lr * v
    return loss


def _im2col(x, k):
    win = sliding_window_view(x, (k, k), axis=(2, 3))            # N,C,Ho,Wo,k,k
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k), (n, c, ho, wo)


def _conv_fwd(x, w, b):
    o, _, k, _ = w.shape
    cols, (n, c, ho, wo) = _im2col(x, k)
    out = (cols @ w.reshape(o, -1).T + b).reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), cols


def _conv_bwd(dout, x_shape, cols, w, need_dx):
    o, c, k, _ = w.shape
    n, _, ho, wo = dout.shape
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (d2.T @ cols).reshape(w.shape)
    db = d2.sum(0)
    if not need_dx:
        return None, dw, db
    dcols = (d2 @ w.reshape(o, -1)).reshape(n, ho, wo, c, k, k)
    dx = np.zeros(x_shape, np.float32)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + ho, j:j + wo] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx, dw, db


def _pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    return r.max(axis=(3, 5))


def _pool_bwd(x, out, dout):
    up = out.repeat(2, 2).repeat(2, 3)
    return (x == up) * dout.repeat(2, 2).repeat(2, 3)


def np_lenet_step(ps, vs, x, y, lr=0.01, mu=0.9):
    c1, cb1, c2, cb2, f1, fb1, f2, fb2, f3, fb3 = ps
    a1, cols1 = _conv_fwd(x, c1, cb1)
    r1 = np.maximum(a1, 0)
    p1 = _pool_fwd(r1)
    a2, cols2 = _conv_fwd(p1, c2, cb2)
    r2 = np.maximum(a2, 0)
    p2 = _pool_fwd(r2)
    flat = p2.reshape(x.shape[0], -1)
    h1 = np.maximum(flat @ f1 + fb1, 0)
    h2 = np.maximum(h1 @ f2 + fb2, 0)
    z = h2 @ f3 + fb3
    p = np_softmax(z)
    loss = -np.mean(np.sum(y * np.log(p + 1e-30), axis=1))
    d3 = (p - y) / x.shape[0]
    dh2 = (d3 @ f3.T) * (h2 > 0)
    dh1 = (dh2 @ f2.T) * (h1 > 0)
    dflat = dh1 @ f1.T
    dr2 = _pool_bwd(r2, p2, dflat.reshape(p2.shape)) * (a2 > 0)
    dp1, dc2, dcb2 = _conv_bwd(dr2, p1.shape, cols2, c2, True)
    dr1 = _pool_bwd(r1, p1, dp1) * (a1 > 0)
    _, dc1, dcb1 = _conv_bwd(dr1, x.shape, cols1, c1, False)
    gs = [dc1, dcb1, dc2, dcb2, flat.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ d3, d3.sum(0)]
    for p_, v, g in zip(ps, vs, gs):
        v *= mu
        v += g
        p_ -= lr * v
    return loss


def np_per_sample_grads(ps, x, y):
    """Per-sample gradients of the MLP's per-sample loss, by hand: per-sample outer products."""
    w1, b1, w2, b2, w3, b3 = ps
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.maximum(h1 @ w2 + b2, 0)
    p = np_softmax(h2 @ w3 + b3)
    d3 = p - y
    d2 = (d3 @ w3.T) * (h2 > 0)
    d1 = (d2 @ w2.T) * (h1 > 0)
    return [np.einsum("bi,bj->bij", x, d1), d1, np.einsum("bi,bj->bij", h1, d2), d2,
            np.einsum("bi,bj->bij", h2, d3), d3]


# ---- sporeflow -----------------------------------------------------------------------------------
def sf_models():
    import sporeflow as sf
    from sporeflow import ops

    def mlp_logits(ps, x):
        w1, b1, w2, b2, w3, b3 = ps
        h = ops.relu(ops.matmul(x, w1) + b1)
        h = ops.relu(ops.matmul(h, w2) + b2)
        return ops.matmul(h, w3) + b3

    def lenet_logits(ps, x):
        c1, cb1, c2, cb2, f1, fb1, f2, fb2, f3, fb3 = ps
        h = ops.max_pool2d(ops.relu(ops.conv2d(x, c1, cb1)), 2, 2)
        h = ops.max_pool2d(ops.relu(ops.conv2d(h, c2, cb2)), 2, 2)
        h = ops.reshape(h, (h.shape[0], -1))
        h = ops.relu(ops.matmul(h, f1) + fb1)
        h = ops.relu(ops.matmul(h, f2) + fb2)
        return ops.matmul(h, f3) + fb3

    def loss_of(logits_fn, ps, x, y):
        return ops.mean(ops.softmax_cross_entropy(logits_fn(ps, x), y))

    def train_step(logits_fn, np_params, backend):
        ps = [sf.Parameter(sf.Tensor(p.copy()), name=f"p{i}") for i, p in enumerate(np_params)]
        vs = [sf.Parameter(sf.Tensor(np.zeros_like(p)), name=f"v{i}") for i, p in enumerate(np_params)]
        grad_fn = sf.value_and_grad(lambda x, y: loss_of(logits_fn, ps, x, y), None, ps)

        def step(x, y):
            loss, grads = grad_fn(x, y)
            for p, v, g in zip(ps, vs, grads):
                nv = v * 0.9 + g
                ops.assign(v, nv)
                ops.assign(p, p - nv * 0.01)
            return loss
        return sf.jit(step, backend=backend)

    return sf, ops, mlp_logits, lenet_logits, loss_of, train_step


def sf_backend() -> str:
    """The native backend, or Unavailable naming what is missing."""
    try:
        import sporeflow.backends.llvm  # noqa: F401
        from sporeflow.backends import get_backend
        get_backend("llvm")
    except Exception as e:   # the reason is printed in the table
        raise Unavailable(f"llvm backend missing: {type(e).__name__}: {str(e)[:60]}") from None
    return "llvm"


def sf_vmap():
    import sporeflow as sf
    fn = getattr(sf, "vmap", None) or getattr(sf.ops, "vmap", None)
    if fn is None:
        raise Unavailable("sf.vmap missing")
    return fn


def sf_per_sample(np_params, backend):
    sf, ops, mlp_logits, _, _, _ = sf_models()
    vmap = sf_vmap()

    def loss1(w1, b1, w2, b2, w3, b3, x, y):
        logits = mlp_logits((w1, b1, w2, b2, w3, b3), ops.reshape(x, (1, -1)))
        return ops.sum(ops.softmax_cross_entropy(logits, ops.reshape(y, (1, -1))))
    g = sf.grad(loss1, grad_position=(0, 1, 2, 3, 4, 5))
    return sf.jit(vmap(g, in_axes=(None,) * 6 + (0, 0)), backend=backend)


# ---- JAX -----------------------------------------------------------------------------------------
def jax_mod():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise Unavailable("jax not installed") from None
    return jax, jnp


def jax_mlp_logits(jnp, ps, x):
    w1, b1, w2, b2, w3, b3 = ps
    h = jnp.maximum(x @ w1 + b1, 0)
    h = jnp.maximum(h @ w2 + b2, 0)
    return h @ w3 + b3


def jax_lenet_logits(jax, jnp, ps, x):
    c1, cb1, c2, cb2, f1, fb1, f2, fb2, f3, fb3 = ps

    def conv(h, w, b):
        return jax.lax.conv_general_dilated(h, w, (1, 1), "VALID") + b.reshape(1, -1, 1, 1)

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = pool(jnp.maximum(conv(x, c1, cb1), 0))
    h = pool(jnp.maximum(conv(h, c2, cb2), 0))
    h = h.reshape(h.shape[0], -1)
    h = jnp.maximum(h @ f1 + fb1, 0)
    h = jnp.maximum(h @ f2 + fb2, 0)
    return h @ f3 + fb3


def jax_train_step(jax, jnp, logits_fn):
    def loss(ps, x, y):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits_fn(ps, x)), axis=1))

    def step(ps, vs, x, y):
        l, gs = jax.value_and_grad(loss)(ps, x, y)
        vs = [0.9 * v + g for v, g in zip(vs, gs)]
        return [p - 0.01 * v for p, v in zip(ps, vs)], vs, l
    return jax.jit(step, donate_argnums=(0, 1))


# ---- PyTorch -------------------------------------------------------------------------------------
def torch_mod():
    try:
        import torch
    except ImportError:
        raise Unavailable("torch not installed") from None
    torch.set_num_threads(2)
    return torch


def torch_mlp(torch, np_params):
    ps = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in np_params]

    def logits(x):
        h = torch.relu(x @ ps[0] + ps[1])
        h = torch.relu(h @ ps[2] + ps[3])
        return h @ ps[4] + ps[5]
    return ps, logits


def torch_lenet(torch, np_params):
    F = torch.nn.functional
    ps = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in np_params]

    def logits(x):
        h = F.max_pool2d(torch.relu(F.conv2d(x, ps[0], ps[1])), 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, ps[2], ps[3])), 2)
        h = h.reshape(h.shape[0], -1)
        h = torch.relu(h @ ps[4] + ps[5])
        h = torch.relu(h @ ps[6] + ps[7])
        return h @ ps[8] + ps[9]
    return ps, logits


def torch_train_step(torch, ps, logits, x, y):
    opt = torch.optim.SGD(ps, lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = -(y * torch.log_softmax(logits(x), 1)).sum(1).mean()
        loss.backward()
        opt.step()
        return loss
    return step
