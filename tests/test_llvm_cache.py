"""LLVM executables: the on-disk object cache (a second process skips the compile; a truncated
or corrupted entry is detected by its checksum and rebuilt), input checks before native code,
`.source`/`.asm`, and device_target="CPU" making LLVM the default."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sporeflow as sf
from sporeflow.backends import get_backend
from sporeflow.errors import BackendError
from sporeflow.ir import GraphBuilder, TensorType, dtypes as D, run_graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = textwrap.dedent("""
    import json, numpy as np
    from sporeflow.backends import get_backend
    from sporeflow.ir import GraphBuilder, TensorType, dtypes as D
    b = GraphBuilder("cached")
    x = b.add_input(TensorType((5, 7), D.float32))
    y = b.emit("tanh", [b.emit("exp", [x])[0]])[0]
    g = b.finish([b.emit("reduce_sum", [y], {"axes": (1,), "keepdims": False})[0]])
    exe = get_backend("llvm").compile(g)
    out = exe(np.linspace(-2, 2, 35, dtype=np.float32).reshape(5, 7))[0]
    print(json.dumps({"cache": exe.stats["cache"], "path": exe.stats["cache_path"], "out": out.tolist()}))
""")


def run_child(cache_dir):
    env = dict(os.environ, SPOREFLOW_CACHE_DIR=str(cache_dir), PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_process_hits_cache_and_truncated_entry_is_rebuilt(tmp_path):
    first = run_child(tmp_path)
    assert first["cache"] == "miss" and os.path.exists(first["path"])
    second = run_child(tmp_path)
    assert second["cache"] == "hit" and second["out"] == first["out"]
    size = os.path.getsize(first["path"])
    with open(first["path"], "r+b") as f:
        f.truncate(size // 2)
    third = run_child(tmp_path)
    assert third["cache"] == "rebuilt" and third["out"] == first["out"]
    assert os.path.getsize(first["path"]) == size
    with open(first["path"], "r+b") as f:       # same length, one flipped byte in the code
        f.seek(size - 40)
        byte = f.read(1)
        f.seek(size - 40)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert run_child(tmp_path)["cache"] == "rebuilt"


def _graph():
    b = GraphBuilder("checked")
    x = b.add_input(TensorType((3, 4), D.float32))
    k = b.add_input(TensorType((4,), D.int32))
    return b.finish([b.emit("add", [x, b.emit("cast", [k], {"dtype": D.float32})[0]])[0]])


def test_inputs_are_checked_before_native_code():
    exe = get_backend("llvm").compile(_graph())
    x, k = np.ones((3, 4), np.float32), np.arange(4, dtype=np.int32)
    with pytest.raises(BackendError, match=r"input 0 .* must be f32\[3,4\].*got float64\[3, 4\]"):
        exe(x.astype(np.float64), k)
    with pytest.raises(BackendError, match=r"input 1 .* must be i32\[4\].*got int32\[5\]"):
        exe(x, np.arange(5, dtype=np.int32))
    with pytest.raises(BackendError, match="takes 2 inputs, got 1"):
        exe(x)
    with pytest.raises(BackendError, match="got list"):
        exe([[1.0]], k)
    # non-contiguous views are copied, never passed as raw pointers
    big = np.arange(24, dtype=np.float32).reshape(6, 4)
    view = big[::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(exe(view, k)[0], view + k)
    tr = np.arange(12, dtype=np.float32).reshape(4, 3).T
    np.testing.assert_array_equal(exe(tr, k)[0], tr + k)


def test_source_asm_and_stats():
    exe = get_backend("llvm").compile(_graph())
    assert "define void @" in exe.source and "sitofp" in exe.source
    assert "ret" in exe.asm and ("xmm" in exe.asm or "ymm" in exe.asm or "zmm" in exe.asm)
    assert exe.stats["cache"] in ("hit", "miss", "rebuilt") and exe.stats["object_bytes"] > 0


def test_cpu_device_target_selects_llvm_and_interp_stays_selectable():
    sf.set_context(device_target="CPU")
    f = sf.jit(lambda a: sf.ops.exp(a) * 2)
    x = sf.Tensor(np.linspace(-1, 1, 6, dtype=np.float32))
    y = f(x)
    key = list(f._cache)[0]
    assert key[-1] == "llvm"
    g = sf.jit(lambda a: sf.ops.exp(a) * 2, backend="interp")
    np.testing.assert_allclose(y.asnumpy(), g(x).asnumpy(), rtol=2e-7)
    assert list(g._cache)[0][-1] == "interp"


def test_bf16_and_f16_storage_round_like_the_interpreter():
    b = GraphBuilder("half")
    xs = [b.add_input(TensorType((64,), dt)) for dt in (D.float16, D.bfloat16)]
    outs = []
    for x in xs:
        y = b.emit("mul", [x, x])[0]
        outs.append(b.emit("add", [y, x])[0])
        outs.append(b.emit("cast", [y], {"dtype": D.float32})[0])
    g = b.finish(outs)
    rng = np.random.default_rng(1)
    vals = np.concatenate([rng.normal(0, 100, 56), [np.nan, np.inf, -np.inf, 0, -0.0, 1e-30, 6e4, 3e38]])
    args = [D.from_compute(vals, D.float16), D.from_compute(vals, D.bfloat16)]
    for a, r in zip(get_backend("llvm").compile(g)(*args), run_graph(g, args), strict=True):
        np.testing.assert_array_equal(a, r)


def test_unresolvable_external_is_a_clear_error_not_a_crash():
    from sporeflow.backends.llvm.jit import check_symbols
    check_symbols("declare double @sin(double)\ndeclare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)\n")
    with pytest.raises(BackendError, match="no_such_function_sf"):
        check_symbols("declare void @no_such_function_sf(ptr)\n")


def test_concurrent_calls_from_threads_are_safe():
    """ctypes releases the GIL; the executable serializes calls that share its arena (the
    intermediate exp(x) lives there; without the lock this test sees torn results)."""
    import threading
    b = GraphBuilder("thr")
    x = b.add_input(TensorType((20000,), D.float32))
    e = b.emit("exp", [x])[0]
    s = b.emit("reduce_sum", [e], {"axes": (0,), "keepdims": True})[0]
    g = b.finish([b.emit("mul", [b.emit("tanh", [e])[0], s])[0]])
    exe = get_backend("llvm").compile(g)
    assert exe.arena_bytes > 0
    xs = [np.full(20000, k / 7, np.float32) for k in range(4)]
    want = [exe(a)[0] for a in xs]          # single-threaded results
    bad = []

    def work(k):
        for _ in range(60):
            if not np.array_equal(exe(xs[k])[0], want[k]):
                bad.append(k)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad


def test_kernels_are_internal_and_take_each_buffer_once():
    """Kernels are internal (one inlined into its only caller is not compiled again), and a
    kernel whose output is planned in place of an input gets that buffer as one parameter:
    two noalias parameters naming one buffer would let LLVM reorder the in-place update."""
    import re
    p = [sf.Parameter(sf.Tensor(np.full((64, 64), float(k), np.float32)), name=f"w{k}") for k in range(2)]
    v = [sf.Parameter(sf.Tensor(np.zeros((64, 64), np.float32)), name=f"v{k}") for k in range(2)]

    def step(g0, g1):
        for w, m, g in zip(p, v, (g0, g1)):
            nm = m * 0.9 + sf.ops.exp(g)
            sf.ops.assign(m, nm)
            sf.ops.assign(w, w - nm * 0.01)
        return sf.ops.matmul(g0, g1)
    f = sf.jit(step, backend="llvm")
    g = [np.random.default_rng(k).standard_normal((64, 64)).astype(np.float32) for k in range(2)]
    for _ in range(2):
        f(sf.Tensor(g[0]), sf.Tensor(g[1]))
    for k in range(2):
        e = np.exp(g[k].astype(np.float64))
        np.testing.assert_allclose(v[k].asnumpy(), 1.9 * e, rtol=1e-5)
        np.testing.assert_allclose(p[k].asnumpy(), k - 0.01 * (e + 1.9 * e), rtol=1e-5, atol=1e-5)
    (c,) = f._cache.values()
    src = c.executable.source
    kernels = re.findall(r"^define (\w+) void @(k_\w+)\(", src, re.M)
    assert kernels and all(link == "internal" for link, _ in kernels), kernels
    slots = dict(re.findall(r"(%p\d+) = getelementptr inbounds i8, ptr %arena, i64 (\d+)", src))
    calls = re.findall(r"call void @k_\w+\(([^)]*)\)", src)
    for call in calls:
        args = [slots.get(a.split()[-1], a.split()[-1]) for a in call.split(",") if a.strip().startswith("ptr")]
        assert len(args) == len(set(args)), call
    assert any(len(call.split(",")) > 3 for call in calls), calls
