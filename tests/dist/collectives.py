"""Run under mpirun by tests/test_dist.py: every collective against numpy on both backends,
in eager mode, under jit, gradients through them. Prints 'OK <rank>' at the end."""
import sys

import numpy as np

import sporeflow as sf
from sporeflow import communication as C

C.init(timeout=20)
r, n = C.get_rank(), C.get_group_size()


def data(rank, dtype, shape=(2 * 4, 3)):
    return (np.random.default_rng(rank).standard_normal(shape) * 3).astype(dtype)


ALL = lambda dt: [data(k, dt) for k in range(n)]  # noqa: E731
REF = {"sum": lambda xs: np.sum(xs, 0), "max": lambda xs: np.max(xs, 0), "min": lambda xs: np.min(xs, 0),
       "prod": lambda xs: np.prod(xs, 0)}

for backend in ("interp", "llvm"):
    for dt in (np.float32, np.float64, np.int32):
        xs, x = ALL(dt), sf.Tensor(data(r, dt))
        for op, ref in REF.items():
            want = ref(np.stack(xs)).astype(dt)
            for got in (sf.ops.all_reduce(x, op).asnumpy(),
                        sf.jit(lambda v, op=op: sf.ops.AllReduce(op)(v), backend)(x).asnumpy()):
                np.testing.assert_allclose(got, want, rtol=1e-6 if dt == np.float32 else 1e-12,
                                           err_msg=f"all_reduce {op} {dt} {backend}")
            got = sf.jit(lambda v, op=op: sf.ops.reduce_scatter(v, op), backend)(x).asnumpy()
            blk = want.shape[0] // n
            np.testing.assert_allclose(got, want[r * blk:(r + 1) * blk], rtol=1e-6, err_msg=f"reduce_scatter {op}")
        got = sf.jit(lambda v: sf.ops.AllGather()(v), backend)(x).asnumpy()
        np.testing.assert_array_equal(got, np.concatenate(xs), err_msg=f"all_gather {backend}")
        root = n - 1
        got = sf.jit(lambda v: sf.ops.Broadcast(root)((v,))[0], backend)(x).asnumpy()
        np.testing.assert_array_equal(got, xs[root], err_msg=f"broadcast {backend}")

    # gradients: the loss of the program is the sum of every rank's loss
    w = sf.Tensor(data(r, np.float64, (4,)))
    xw = [data(k, np.float64, (4,)) for k in range(n)]
    g = sf.jit(sf.grad(lambda v: (sf.ops.all_reduce(v * v) * 1.5).sum()), backend)(w).asnumpy()
    np.testing.assert_allclose(g, n * 1.5 * 2 * xw[r], rtol=1e-12, err_msg=f"grad all_reduce sum {backend}")
    g = sf.jit(sf.grad(lambda v: sf.ops.all_reduce(v, "max").sum()), backend)(w).asnumpy()
    np.testing.assert_allclose(g, n * (xw[r] == np.max(xw, 0)), err_msg=f"grad all_reduce max {backend}")
    c = np.arange(4 * n, dtype=np.float64)
    g = sf.jit(sf.grad(lambda v: (sf.ops.all_gather(v) * sf.Tensor(c)).sum()), backend)(w).asnumpy()
    np.testing.assert_allclose(g, n * c[r * 4:(r + 1) * 4], err_msg=f"grad all_gather {backend}")
    g = sf.jit(sf.grad(lambda v: (sf.ops.broadcast(v, 0) * 2.0).sum()), backend)(w).asnumpy()
    np.testing.assert_allclose(g, np.full(4, 2.0 * n if r == 0 else 0.0), err_msg=f"grad broadcast {backend}")
    # finite differences (float64): the directional derivative of the global loss sum_k L_k along
    # a random direction v (every rank its own part) against <grad, v> summed over the ranks
    v = sf.Tensor(data(r + 100, np.float64, (4,)))
    cw = sf.Tensor(data(r + 200, np.float64, (4 * n,)))
    for name, f in [("all_reduce sum", lambda u: (sf.ops.all_reduce(sf.ops.sin(u) * (r + 1.0)) ** 2).sum()),
                    ("all_reduce max", lambda u: (sf.ops.all_reduce(u * (r + 1.0), "max") ** 2).sum()),
                    ("all_reduce prod", lambda u: (sf.ops.all_reduce(sf.ops.sin(u) * (r + 1.0), "prod") ** 2).sum()),
                    ("all_gather", lambda u: (sf.ops.sin(sf.ops.all_gather(u)) * cw).sum()),
                    ("reduce_scatter", lambda u: (sf.ops.reduce_scatter(sf.ops.tile(u, (n,)) ** 2) * cw[:4]).sum()),
                    ("broadcast", lambda u: (sf.ops.broadcast(u, n - 1) ** 3 * (r + 1.0)).sum())]:
        g = sf.jit(sf.grad(f), backend)(w)
        lin = float(sf.ops.all_reduce((g * v).sum()).asnumpy())
        total = lambda u: float(sf.ops.all_reduce(f(u)).asnumpy())  # noqa: E731
        fd = (total(w + v * 1e-6) - total(w - v * 1e-6)) / 2e-6
        np.testing.assert_allclose(lin, fd, rtol=1e-5, atol=1e-7, err_msg=f"grad {name} vs FD {backend}")
        _, t = sf.jvp(f, (w,), (v,))
        np.testing.assert_allclose(float(sf.ops.all_reduce(t).asnumpy()), fd, rtol=1e-5, atol=1e-7,
                                   err_msg=f"jvp {name} vs FD {backend}")
    # jvp and vmap
    _, t = sf.jvp(lambda v: sf.ops.all_reduce(v), (w,), (sf.Tensor(np.ones(4)),))
    np.testing.assert_allclose(t.asnumpy(), np.full(4, float(n)))
    b = sf.Tensor(np.stack([data(r, np.float64, (4,)), data(r + 7, np.float64, (4,))]))
    got = sf.vmap(lambda v: sf.ops.all_gather(v))(b).asnumpy()
    want = np.stack([np.concatenate([data(k, np.float64, (4,)) for k in range(n)]),
                     np.concatenate([data(k + 7, np.float64, (4,)) for k in range(n)])])
    np.testing.assert_array_equal(got, want, err_msg="vmap all_gather")
    # every collective's vmap rule against a Python loop, batch axis 0 and 1
    bb = sf.Tensor(data(r + 9, np.float64, (2, 4 * n, 3)))
    for name, f in [("all_reduce", lambda u: sf.ops.all_reduce(u, "max")), ("all_gather", sf.ops.all_gather),
                    ("broadcast", lambda u: sf.ops.broadcast(u, n - 1)), ("reduce_scatter", sf.ops.reduce_scatter)]:
        for ax in (0, 1):
            got = sf.vmap(f, in_axes=ax)(bb if ax == 0 else sf.ops.transpose(bb, (1, 0, 2))).asnumpy()
            want = np.stack([f(bb[i]).asnumpy() for i in range(2)])
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"vmap {name} in_axes={ax}")
if n == 2:   # the CUDA program's host step (emulated device: g++, one compile)
    x = sf.Tensor(data(r, np.float32))
    got = sf.jit(lambda v: sf.ops.all_reduce(v * 2.0) + sf.ops.all_gather(v)[:8], "cuda-emulated")(x)
    np.testing.assert_allclose(np.asarray(got.asnumpy()), 2 * np.sum(ALL(np.float32), 0) + ALL(np.float32)[0],
                               rtol=1e-6, err_msg="cuda-emulated")
sys.stdout.write(f"OK {r}\n")   # one write: ranks share the pipe
sys.stdout.flush()
sys.exit(0)
