"""One benchmark runner: sporeflow next to numpy (always) and JAX / PyTorch (when importable),
measured in the same run, printed as a table of medians and ratios.

    python3 bench/run.py                 # everything, < 10 minutes
    python3 bench/run.py --quick         # fewer blocks (a smoke run)
    python3 bench/run.py --only chain,gemm
    python3 bench/run.py --no-roofs      # skip measuring the FMA / memory roofs (~2 s)

Peers are never dependencies: if jax/torch are not importable here, the runner re-executes
itself with the interpreter named by $SPOREFLOW_PEERS_PYTHON (a venv made with
--system-site-packages that has `pip install jax jaxlib torch==2.13.0`), when set.
A workload whose sporeflow pieces are missing prints "n/a (reason)".
Thread settings as in reference/peer-baselines.md: 2 threads everywhere. The frameworks' timing
blocks are interleaved per workload with a pause before each (see `compare`), so the VM's slow
phases and other frameworks' spinning threads do not land on one of them.
"""
from __future__ import annotations

import os

for _k, _v in {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "JAX_PLATFORMS": "cpu",
               "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"}.items():
    os.environ.setdefault(_k, _v)

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import roofs  # noqa: E402
import workloads as W  # noqa: E402
from workloads import Unavailable  # noqa: E402

QUICK = False
ROOFS: dict[str, float] = {}     # "flop": FMA GFLOP/s, "byte": copy GB/s, measured in main()


@dataclass
class Row:
    workload: str
    framework: str
    ms: float | None = None          # median per call
    value: float | None = None       # GB/s, GFLOP/s, steps/s, samples/s, s
    unit: str = ""
    first_s: float | None = None     # first call (compile) seconds
    note: str = ""
    roof: float | None = None        # fraction of the machine's measured roof (FMA or memory)


# A pause before each timed block, so no framework's idle worker threads are still spinning when
# the next one's block starts: numpy's OpenBLAS workers keep 0.55 / 0.25 / 0.05 cores busy 0 /
# 0.05 / 0.1 s after a call (none after 0.2 s; sporeflow, JAX and PyTorch none after 0.05 s).
# (With every framework in one process and 0.05 s, sporeflow's MLP step read 5.6 ms, 3.3 with 0.2 s.)
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", 0.2))


def _prepare(build, block_s):
    """Build, time the first call alone, 3 warm-ups, size a block to ~block_s; -> (run a block
    -> seconds per call, first-call seconds)."""
    fn, sync = build()
    if sync is _jax_sync:   # XLA:CPU may run independent calls concurrently: wait for each
        fn, sync = (lambda f=fn: _jax_sync(f())), _nosync
    t0 = time.perf_counter()
    sync(fn())
    first = time.perf_counter() - t0
    for _ in range(3):
        sync(fn())
    t0 = time.perf_counter()
    sync(fn())
    per_block = max(1, int(block_s / max(time.perf_counter() - t0, 1e-6)))

    def block() -> float:
        # one untimed call first: after the idle pause an allocating framework's freed pages
        # and caches are cold (numpy's 16M chain: 684 ms per call timed straight after the
        # pause, 140 with one call first), and a user's loop never idles
        sync(fn())
        t0 = time.perf_counter()
        for _ in range(per_block):
            r = fn()
        sync(r)
        return (time.perf_counter() - t0) / per_block
    return block, first


def _serve(conn, build, block_s) -> None:
    """A worker's loop: prepare, then time one block per request. Replies are (kind, value)."""
    try:
        block, first = _prepare(build, block_s)
        conn.send(("ok", first))
        while conn.recv() == "block":
            conn.send(("ok", block()))
    except Unavailable as e:
        conn.send(("unavailable", str(e)))
    except Exception as e:  # a failure is reported, not hidden, and the run goes on
        conn.send(("error", f"{type(e).__name__}: {str(e)[:80]}"))


class _Worker:
    """One framework on one workload in its own forked process, so the frameworks share no
    allocator, thread pool or BLAS state (sporeflow sets OpenBLAS's thread count around its
    calls; JAX and PyTorch bring pools of their own), and an idle worker waits on its pipe,
    using no CPU."""

    def __init__(self, framework: str, build, block_s: float):
        ctx = multiprocessing.get_context("fork")   # the build closures are inherited, not pickled
        self.framework, self.times = framework, []
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, build, block_s), daemon=True)
        self.proc.start()
        child.close()
        self.first = self._reply()

    def block(self) -> None:
        self.conn.send("block")
        self.times.append(self._reply())

    def _reply(self) -> float:
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the worker died (exit code {self.proc.exitcode})") from None
        if kind == "unavailable":
            raise Unavailable(value)
        if kind == "error":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def compare(rows, workload, builds, metric, unit, work=None, block_s=0.08, blocks=9, budget_s=8.0):
    """Time every framework's `build() -> (fn, sync)` on one workload, each in its own process
    (`_Worker`, prepared one after another), their blocks interleaved (numpy, sporeflow, jax,
    torch, numpy, ...) so a slow phase of this noisy VM hits all of them alike instead of
    whichever ran then; each row is the median of its blocks. metric(seconds) -> value; work =
    ("flop" | "byte", amount per call) gives the roof fraction. A framework that is unavailable
    gets an n/a row, one that fails a FAILED row, and the others go on."""
    if QUICK:
        blocks, budget_s = 3, 2.0
    workers, notes = [], {}

    def drop(framework, err):
        notes[framework] = f"n/a ({err})" if isinstance(err, Unavailable) else f"FAILED ({str(err)[:100]})"

    for framework, build in builds.items():
        try:
            workers.append(_Worker(framework, build, block_s))
        except Exception as e:
            drop(framework, e)
    start = time.perf_counter()
    for b in range(blocks):
        for w in list(workers):
            time.sleep(SETTLE_S)
            try:
                w.block()
            except Exception as e:
                drop(w.framework, e)
                w.close()
                workers.remove(w)
        if time.perf_counter() - start > budget_s * max(len(workers), 1) and b >= 2:
            break
    done = {w.framework: w for w in workers}
    for w in workers:
        w.close()
    for framework in builds:
        if framework not in done:
            rows.append(Row(workload, framework, note=notes[framework]))
            continue
        w = done[framework]
        t = statistics.median(w.times)
        roof = work[1] / t / 1e9 / ROOFS[work[0]] if work and ROOFS.get(work[0]) else None
        rows.append(Row(workload, framework, t * 1e3, metric(t), unit, w.first, roof=roof))


def _nosync(r):
    return r


def _jax_sync(r):
    import jax
    return jax.block_until_ready(r)


# ---- workloads ---------------------------------------------------------------------------------
def bench_chain(rows):
    for n in (1 << 20, 1 << 24):
        rng = np.random.default_rng(0)
        x, a, b = (rng.standard_normal(n).astype(np.float32) * s for s in (3, 1, 1))
        name = f"chain gelu*sigmoid {n >> 20}M"
        gbs = (lambda t, n=n: 16 * n / t / 1e9)
        builds = {"numpy": lambda: ((lambda: W.np_chain(x, a, b)), _nosync)}

        def sf_build():
            be = W.sf_backend()
            sf, ops, *_ = W.sf_models()
            f = sf.jit(lambda x, a, b: ops.gelu(x * a + b, approximate="tanh") * ops.sigmoid(x), backend=be)
            tx, ta, tb = sf.Tensor(x), sf.Tensor(a), sf.Tensor(b)
            return (lambda: f(tx, ta, tb)), _nosync
        builds["sporeflow"] = sf_build

        def jax_build():
            jax, jnp = W.jax_mod()
            f = jax.jit(lambda x, a, b: jax.nn.gelu(x * a + b, approximate=True) * jax.nn.sigmoid(x))
            jx, ja, jb = (jnp.asarray(v) for v in (x, a, b))
            return (lambda: f(jx, ja, jb)), _jax_sync
        builds["jax"] = jax_build

        def torch_build():
            torch = W.torch_mod()
            tx, ta, tb = (torch.from_numpy(v) for v in (x, a, b))
            F = torch.nn.functional
            return (lambda: F.gelu(tx * ta + tb, approximate="tanh") * torch.sigmoid(tx)), _nosync
        builds["torch"] = torch_build
        compare(rows, name, builds, gbs, "GB/s", ("byte", 16 * n))


def bench_reductions(rows):
    x = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    cases = [("softmax rows 4096^2", 8, W.np_softmax, "softmax"),
             ("sum axis 0 4096^2", 4, lambda a: a.sum(0), "sum0"),
             ("sum axis 1 4096^2", 4, lambda a: a.sum(1), "sum1")]
    for name, bpe, np_fn, kind in cases:
        gbs = (lambda t, bpe=bpe: bpe * x.size / t / 1e9)
        builds = {"numpy": lambda np_fn=np_fn: ((lambda: np_fn(x)), _nosync)}

        def sf_build(kind=kind):
            be = W.sf_backend()
            sf, ops, *_ = W.sf_models()
            fn = {"softmax": lambda a: ops.softmax(a, -1), "sum0": lambda a: ops.sum(a, 0),
                  "sum1": lambda a: ops.sum(a, 1)}[kind]
            f, tx = sf.jit(fn, backend=be), sf.Tensor(x)
            return (lambda: f(tx)), _nosync
        builds["sporeflow"] = sf_build

        def jax_build(kind=kind):
            jax, jnp = W.jax_mod()
            fn = {"softmax": lambda a: jax.nn.softmax(a, -1), "sum0": lambda a: a.sum(0),
                  "sum1": lambda a: a.sum(1)}[kind]
            f, jx = jax.jit(fn), jnp.asarray(x)
            return (lambda: f(jx)), _jax_sync
        builds["jax"] = jax_build

        def torch_build(kind=kind):
            torch = W.torch_mod()
            tx = torch.from_numpy(x)
            fn = {"softmax": lambda: torch.softmax(tx, -1), "sum0": lambda: tx.sum(0), "sum1": lambda: tx.sum(1)}[kind]
            return fn, _nosync
        builds["torch"] = torch_build
        compare(rows, name, builds, gbs, "GB/s", ("byte", bpe * x.size))


def bench_gemm(rows):
    for n in (1024, 2048):
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        name, gf = f"GEMM {n}^3", (lambda t, n=n: 2 * n ** 3 / t / 1e9)
        builds = {"numpy": lambda: ((lambda: a @ b), _nosync)}

        def sf_build():
            be = W.sf_backend()
            sf, ops, *_ = W.sf_models()
            f, ta, tb = sf.jit(lambda p, q: ops.matmul(p, q), backend=be), sf.Tensor(a), sf.Tensor(b)
            return (lambda: f(ta, tb)), _nosync
        builds["sporeflow"] = sf_build

        def jax_build():
            jax, jnp = W.jax_mod()
            f, ja, jb = jax.jit(lambda p, q: p @ q), jnp.asarray(a), jnp.asarray(b)
            return (lambda: f(ja, jb)), _jax_sync
        builds["jax"] = jax_build

        def torch_build():
            torch = W.torch_mod()
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            return (lambda: ta @ tb), _nosync
        builds["torch"] = torch_build
        compare(rows, name, builds, gf, "GFLOP/s", ("flop", 2 * n ** 3))


def _train(rows, name, np_params_fn, shape, n, np_step, sf_logits_name, jax_logits, torch_model, work=None):
    x, y = W.batch(n, shape)
    steps = lambda t: 1.0 / t  # noqa: E731

    def np_build():
        ps, vs = [p.copy() for p in np_params_fn()], [np.zeros_like(p) for p in np_params_fn()]
        return (lambda: np_step(ps, vs, x, y)), _nosync
    builds = {"numpy": np_build}

    def sf_build():
        be = W.sf_backend()
        sf, ops, mlp_logits, lenet_logits, _, train_step = W.sf_models()
        f = train_step(mlp_logits if sf_logits_name == "mlp" else lenet_logits, np_params_fn(), be)
        tx, ty = sf.Tensor(x), sf.Tensor(y)
        return (lambda: f(tx, ty)), _nosync
    builds["sporeflow"] = sf_build

    def jax_build():
        jax, jnp = W.jax_mod()
        step = W.jax_train_step(jax, jnp, jax_logits(jax, jnp))
        state = {"p": [jnp.asarray(p) for p in np_params_fn()], "v": [jnp.zeros(p.shape) for p in np_params_fn()]}
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def run():
            state["p"], state["v"], loss = step(state["p"], state["v"], jx, jy)
            return loss
        return run, _jax_sync
    builds["jax"] = jax_build

    def torch_build():
        torch = W.torch_mod()
        ps, logits = torch_model(torch, np_params_fn())
        return W.torch_train_step(torch, ps, logits, torch.from_numpy(x), torch.from_numpy(y)), _nosync
    builds["torch"] = torch_build
    compare(rows, name, builds, steps, "steps/s", work)


MLP_STEP_FLOP = 2 * 128 * (784 * 512 + 512 * 512 + 512 * 10) * 3 - 2 * 128 * 784 * 512   # fwd + bwd, no dx


def bench_train(rows):
    _train(rows, "MLP train step b128", W.mlp_params, (784,), 128, W.np_mlp_step, "mlp",
           lambda jax, jnp: (lambda ps, x: W.jax_mlp_logits(jnp, ps, x)), W.torch_mlp,
           ("flop", MLP_STEP_FLOP))
    _train(rows, "LeNet-5 train step b64", W.lenet_params, (1, 32, 32), 64, W.np_lenet_step, "lenet",
           lambda jax, jnp: (lambda ps, x: W.jax_lenet_logits(jax, jnp, ps, x)), W.torch_lenet)


def bench_per_sample(rows):
    x, y = W.batch(64, (784,))
    name, sps = "per-sample grads MLP b64", (lambda t: 64 / t)
    builds = {"numpy": lambda: ((lambda: W.np_per_sample_grads(W.mlp_params(), x, y)), _nosync)}

    def sf_build():
        be = W.sf_backend()
        sf = __import__("sporeflow")
        f = W.sf_per_sample(W.mlp_params(), be)
        args = [sf.Tensor(p) for p in W.mlp_params()] + [sf.Tensor(x), sf.Tensor(y)]
        return (lambda: f(*args)), _nosync
    builds["sporeflow"] = sf_build

    def jax_build():
        jax, jnp = W.jax_mod()

        def loss1(ps, xi, yi):
            return -jnp.sum(yi * jax.nn.log_softmax(W.jax_mlp_logits(jnp, ps, xi[None])[0]))
        f = jax.jit(jax.vmap(jax.grad(loss1), in_axes=(None, 0, 0)))
        ps, jx, jy = [jnp.asarray(p) for p in W.mlp_params()], jnp.asarray(x), jnp.asarray(y)
        return (lambda: f(ps, jx, jy)), _jax_sync
    builds["jax"] = jax_build

    def torch_build():
        torch = W.torch_mod()
        from torch.func import grad, vmap
        ps = tuple(torch.from_numpy(p) for p in W.mlp_params())

        def loss1(ps, xi, yi):
            h = torch.relu(xi @ ps[0] + ps[1])
            h = torch.relu(h @ ps[2] + ps[3])
            return -(yi * torch.log_softmax(h @ ps[4] + ps[5], -1)).sum()
        f = vmap(grad(loss1), in_dims=(None, 0, 0))
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        return (lambda: f(ps, tx, ty)), _nosync
    builds["torch"] = torch_build
    compare(rows, name, builds, sps, "samples/s")


_PROBE = r"""
import os, sys, time, json
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
t0 = time.perf_counter()
import numpy as np, workloads as W
be = W.sf_backend()
sf, ops, mlp_logits, _, _, train_step = W.sf_models()
t_import = time.perf_counter() - t0
x, y = W.batch(128, (784,))
f = train_step(mlp_logits, W.mlp_params(), be)
tx, ty = sf.Tensor(x), sf.Tensor(y)
t0 = time.perf_counter(); f(tx, ty); first = time.perf_counter() - t0
t0 = time.perf_counter(); f(tx, ty); second = time.perf_counter() - t0
c = next(iter(f._cache.values()))
print(json.dumps({{"first": first, "step": second, "import": t_import,
                   "compile": c.traced.trace_seconds + c.compile_seconds, "cache": c.executable.stats.get("cache")}}))
"""


def bench_compile(rows):
    """The MLP train step's trace + lowering time (passes, code generation, LLVM or the object
    cache) in fresh processes: a cold disk cache, then the warm one (same directory)."""
    name = "compile MLP train step"
    try:
        W.sf_backend()
    except Unavailable as e:
        rows.append(Row(name + " (cold)", "sporeflow", note=f"n/a ({e})"))
        return
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SPOREFLOW_CACHE_DIR=cache)
        code = _PROBE.format(root=os.path.dirname(HERE), here=HERE)
        for label in ("cold", "disk cache"):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                rows.append(Row(f"{name} ({label})", "sporeflow", note=f"FAILED ({r.stderr.strip()[-100:]})"))
                continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            c = d["compile"]        # trace + passes + codegen (+ object cache); first call - step in the note
            rows.append(Row(f"{name} ({label})", "sporeflow", c * 1e3, c, "s", d["first"],
                            note=f"object cache {d['cache']}; first call - step "
                                 f"{max(d['first'] - d['step'], 0):.3f} s; import {d['import']:.2f} s"))
    # peers' figure: JAX's first call of its jitted step (trace + XLA compile + one step), in a
    # worker process so that this process never imports JAX before it forks the others
    def jax_build():
        jax, jnp = W.jax_mod()
        # XLA's one-time start-up (client, compiler, LLVM) is not this step's compile time: warm
        # it on the same step at batch 64 (a new shape: traced and compiled again below), as the
        # runner's earlier workloads did when this ran in one process (a bare fresh process took
        # 0.85 s, 0.66 after a tiny warm-up)
        ps, x, y = W.mlp_params(), *W.batch(128, (784,))
        step = W.jax_train_step(jax, jnp, lambda ps, x: W.jax_mlp_logits(jnp, ps, x))
        jax.block_until_ready(step([jnp.asarray(p) for p in ps], [jnp.zeros(p.shape) for p in ps],
                                   jnp.asarray(x[:64]), jnp.asarray(y[:64])))
        # fresh device arrays per call: the step donates its parameters, and the worker calls
        # it again after the first call (the figure is the first call alone)
        return (lambda: step([jnp.asarray(p) for p in ps], [jnp.zeros(p.shape) for p in ps],
                             jnp.asarray(x), jnp.asarray(y))), _jax_sync
    try:
        w = _Worker("jax", jax_build, block_s=0.0)
        w.close()
        rows.append(Row(name + " (cold)", "jax", w.first * 1e3, w.first, "s", w.first,
                        note="first call at batch 128, after one at batch 64 (no persistent cache)"))
    except Unavailable as e:
        rows.append(Row(name + " (cold)", "jax", note=f"n/a ({e})"))
    except Exception as e:
        rows.append(Row(name + " (cold)", "jax", note=f"FAILED ({str(e)[:100]})"))


SUITES = {"chain": bench_chain, "reductions": bench_reductions, "gemm": bench_gemm, "train": bench_train,
          "per_sample": bench_per_sample, "compile": bench_compile}


# ---- table ---------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    """Markdown: one line per (workload, framework); `sf ×` = how many times faster sporeflow is
    than that framework (time ratio; > 1 means sporeflow wins)."""
    sf_ms = {r.workload: r.ms for r in rows if r.framework == "sporeflow" and r.ms is not None}
    out = ["| workload | framework | median ms | rate | roof | first call s | sporeflow × | note |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.ms is None:
            out.append(f"| {r.workload} | {r.framework} | | | | | | {r.note} |")
            continue
        ratio = ""
        s = sf_ms.get(r.workload)
        if s and r.framework != "sporeflow":
            ratio = f"{r.ms / s:.2f}"
        rate = f"{r.value:.4g} {r.unit}" if r.unit != "s" else f"{r.value:.3f} s"
        first = f"{r.first_s:.3f}" if r.first_s is not None else ""
        roof = f"{100 * r.roof:.0f}%" if r.roof is not None else ""
        out.append(f"| {r.workload} | {r.framework} | {r.ms:.3f} | {rate} | {roof} | {first} | {ratio} | {r.note} |")
    return "\n".join(out)


def _maybe_reexec() -> None:
    have = True
    for mod in ("jax", "torch"):
        try:
            __import__(mod)
        except ImportError:
            have = False
    peers = os.environ.get("SPOREFLOW_PEERS_PYTHON")
    if not have and peers and os.path.realpath(peers) != os.path.realpath(sys.executable) \
            and os.environ.get("_SF_BENCH_REEXEC") != "1":
        os.environ["_SF_BENCH_REEXEC"] = "1"
        os.execv(peers, [peers] + sys.argv)


def _codegen_target() -> str:
    try:
        from sporeflow.backends.llvm import hostcpu
        return hostcpu.host().describe()
    except Exception as e:
        return f"llvm target unknown ({type(e).__name__})"


def _load() -> float:
    return os.getloadavg()[0]


def main(argv=None) -> int:
    global QUICK
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated: " + ",".join(SUITES))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default="", help="also write the rows to this file")
    ap.add_argument("--no-roofs", action="store_true", help="skip measuring the FMA and memory roofs")
    args = ap.parse_args(argv)
    QUICK = args.quick
    _maybe_reexec()
    names = [s for s in args.only.split(",") if s] or list(SUITES)
    t0, rows = time.perf_counter(), []
    print(f"# sporeflow bench: python {sys.version.split()[0]}, numpy {np.__version__}, load {_load():.2f}, "
          f"threads 2", flush=True)
    print(f"# CPU: {roofs.cpu_model()}, {os.cpu_count()} cores; code: {_codegen_target()}", flush=True)
    if not args.no_roofs:
        try:
            ROOFS["flop"] = roofs.fma_gflops()
        except Exception as e:   # no LLVM: GFLOP/s rows get no roof fraction
            print(f"# FMA roof not measured ({type(e).__name__}: {str(e)[:60]})")
        copy, read = roofs.memory_gbs()
        ROOFS["byte"] = max(copy, read)
        fma = f"{ROOFS['flop']:.1f} GFLOP/s FP32 FMA, " if "flop" in ROOFS else ""
        print(f"# roofs (measured now, 'roof' column = fraction of these): {fma}memory {ROOFS['byte']:.1f} GB/s "
              f"(copy {copy:.1f}, read {read:.1f})", flush=True)
    for s in names:
        n0 = len(rows)
        SUITES[s](rows)
        for r in rows[n0:]:
            shown = f"{r.ms:.3f} ms" if r.ms is not None else r.note
            print(f"  {r.workload:32s} {r.framework:10s} {shown}", flush=True)
    print()
    print(table(rows))
    print(f"\n(total {time.perf_counter() - t0:.0f} s, load at end {_load():.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
