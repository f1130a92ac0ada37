"""The CUDA backend on a real GPU: HBM bandwidth of the fused gelu*sigmoid chain and of softmax
against the device's peak, the MLP and LeNet train steps and per-sample gradients, next to
PyTorch CUDA when it is importable (never a dependency), measured in the same run.

    python bench/bench_gpu.py [--quick] [--reps 50]

Without a CUDA device (or without cupy) it prints why and measures nothing (exit status 0),
so it can sit in scripts that run everywhere; `backend="cuda-emulated"` is for correctness,
not speed, and is not timed here.

Bandwidth = bytes the kernel must move (each input read once, each output written once) over
the median time of one call, synchronized; the peak comes from the device attributes
(2 x memory clock x bus width), and a cupy device-to-device copy of the same size is printed
as the reachable reference.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def gpu_or_reason():
    """(cupy module, None) when a CUDA device is usable, else (None, reason)."""
    try:
        import cupy
    except Exception as e:   # the reason is the message
        return None, f"cupy is not importable ({type(e).__name__}: {e}); pip install -e '.[gpu]'"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return None, f"no CUDA driver/device ({type(e).__name__}: {str(e)[:80]})"
    if n < 1:
        return None, "no CUDA device"
    return cupy, None


def peak_bandwidth(cupy) -> float:
    """Bytes/s: 2 (DDR) x memory clock x bus width, from the device attributes."""
    rt = cupy.cuda.runtime
    clock_khz = rt.deviceGetAttribute(36, 0)        # cudaDevAttrMemoryClockRate
    bus_bits = rt.deviceGetAttribute(37, 0)         # cudaDevAttrGlobalMemoryBusWidth
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


def timed(fn, sync, reps: int) -> float:
    fn()
    sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def torch_cuda():
    try:
        import torch
        return torch if torch.cuda.is_available() else None
    except Exception:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args()
    cupy, reason = gpu_or_reason()
    if cupy is None:
        print(f"bench_gpu: skipped, {reason}; nothing measured")
        return 0

    import sporeflow as sf
    from sporeflow import ops
    import workloads as W

    reps = 10 if a.quick else a.reps
    sf.set_context(mode=sf.GRAPH_MODE, device_target="GPU", backend="cuda")
    sync = cupy.cuda.Device().synchronize
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    peak = peak_bandwidth(cupy)
    torch = torch_cuda()
    print(f"device: {name}, peak HBM {peak / 1e12:.2f} TB/s; PyTorch CUDA: "
          f"{torch.__version__ if torch else 'not importable'}")

    # -- bandwidth: fused chain and softmax ----------------------------------------------------
    n = 1 << (24 if a.quick else 27)
    x = sf.Tensor(np.random.default_rng(0).standard_normal(n).astype(np.float32))
    chain = sf.jit(lambda v: ops.gelu(v * 2.0 + 1.0, approximate="tanh") * ops.sigmoid(v))
    rows, cols = (n // 4096, 4096)
    xs = sf.Tensor(np.random.default_rng(1).standard_normal((rows, cols)).astype(np.float32))
    softmax = sf.jit(lambda v: ops.softmax(v, -1))
    src = cupy.empty(n, cupy.float32)
    dst = cupy.empty_like(src)
    t_copy = timed(lambda: cupy.copyto(dst, src), sync, reps)
    print(f"  cupy copy      {2 * 4 * n / t_copy / 1e12:6.2f} TB/s ({100 * 2 * 4 * n / t_copy / peak:5.1f}% of peak)")
    for label, fn, arg in (("gelu*sigmoid", chain, x), ("softmax", softmax, xs)):
        t = timed(lambda: fn(arg), sync, reps)
        bw = 2 * 4 * n / t
        line = f"  {label:14s} {bw / 1e12:6.2f} TB/s ({100 * bw / peak:5.1f}% of peak), {t * 1e3:.3f} ms"
        if torch is not None:
            tx = torch.randn(n, device="cuda") if label != "softmax" else torch.randn(rows, cols, device="cuda")
            tf = (lambda: torch.nn.functional.gelu(tx * 2.0 + 1.0, approximate="tanh") * torch.sigmoid(tx)) \
                if label != "softmax" else (lambda: torch.softmax(tx, -1))
            tt = timed(tf, torch.cuda.synchronize, reps)
            line += f"; torch {2 * 4 * n / tt / 1e12:.2f} TB/s, {tt * 1e3:.3f} ms ({t / tt:.2f}x torch)"
        print(line)

    # -- train steps and per-sample gradients ---------------------------------------------------
    _, _, mlp_logits, lenet_logits, _, train_step = W.sf_models()
    cases = [("MLP step (b128)", mlp_logits, W.mlp_params(), (128, (784,)), W.torch_mlp),
             ("LeNet step (b64)", lenet_logits, W.lenet_params(), (64, (1, 32, 32)), W.torch_lenet)]
    for label, logits, params, (bs, shape), torch_net in cases:
        xb, yb = W.batch(bs, shape)
        step = train_step(logits, params, "cuda")
        tx, ty = sf.Tensor(xb), sf.Tensor(yb)
        t = timed(lambda: step(tx, ty), sync, reps)
        line = f"  {label:18s} {t * 1e3:8.3f} ms"
        if torch is not None:
            ps, tlogits = torch_net(torch, params)
            ps[:] = [torch.nn.Parameter(p.detach().cuda()) for p in ps]   # the closure reads this list
            tstep = W.torch_train_step(torch, ps, tlogits, torch.from_numpy(xb).cuda(), torch.from_numpy(yb).cuda())
            tt = timed(tstep, torch.cuda.synchronize, reps)
            line += f"; torch {tt * 1e3:.3f} ms ({t / tt:.2f}x torch)"
        print(line)
    xb, yb = W.batch(128, (784,))
    psg = W.sf_per_sample(W.mlp_params(), "cuda")
    ps = [sf.Tensor(p) for p in W.mlp_params()]
    t = timed(lambda: psg(*ps, sf.Tensor(xb), sf.Tensor(yb)), sync, reps)
    print(f"  per-sample grads (MLP, b128) {t * 1e3:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
