"""Data-parallel communication over MPI: real processes on localhost through `mpirun`.

Each test launches a script of tests/dist/ under `mpirun -n N` and checks what every rank
printed; the scripts compare against numpy themselves. Skipped (with the reason) when mpi4py or
mpirun is missing: `pip install -e ".[dist]"` provides both.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests", "dist")

try:
    import mpi4py  # noqa: F401
    _MISSING = None if shutil.which("mpirun") else "mpirun not on PATH (pip install mpich)"
except ImportError:
    _MISSING = "mpi4py not installed (pip install -e '.[dist]')"
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


def mpirun(n: int, script: str, *args: str, timeout: float = 60) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["mpirun", "-n", str(n), sys.executable, os.path.join(HERE, script), *args]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{out[-4000:]}"
    return out


@pytest.mark.parametrize("n", [2, 4])
def test_collectives_against_numpy_and_their_gradients(n):
    out = mpirun(n, "collectives.py")
    assert sorted(line for line in out.splitlines() if line.startswith("OK")) == [f"OK {r}" for r in range(n)]


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_dead_rank_times_out_with_a_clear_error(backend):
    out = mpirun(2, "failures.py", "dead", backend)
    line = next(ln for ln in out.splitlines() if ln.startswith("rank 0:"))
    assert "CommTimeoutError" in line and "did not complete within 1.5 s" in line, out
    assert float(line.split(" after ")[1].split("s:")[0]) < 5, line


@pytest.mark.parametrize("backend", ["interp", "llvm"])
def test_mismatched_graphs_are_refused_before_the_first_collective(backend):
    out = mpirun(2, "failures.py", "mismatch", backend)
    for r in (0, 1):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"rank {r}:"))
        assert "CommError" in line and "the ranks run different graphs" in line, out


def test_a_rank_changing_its_step_later_fails_everywhere_within_the_timeout():
    out = mpirun(2, "failures.py", "stale", "interp")
    lines = {r: next(ln for ln in out.splitlines() if ln.startswith(f"rank {r}:")) for r in (0, 1)}
    assert "CommTimeoutError" in lines[0] and "all_reduce" in lines[0], out
    assert "CommTimeoutError" in lines[1] and "fingerprint exchange" in lines[1], out


def test_overlapped_all_reduce_equals_blocking_and_starts_inside_the_backward_pass():
    out = mpirun(2, "overlap.py")
    assert sorted(line for line in out.splitlines() if line.startswith("OK")) == ["OK 0", "OK 1"], out
    assert "llvm: 4 buckets" in out and "interp: 4 buckets" in out, out


def test_dead_rank_during_an_overlapped_step_times_out_in_the_wait():
    out = mpirun(2, "failures.py", "dead", "llvm", "split")
    line = next(ln for ln in out.splitlines() if ln.startswith("rank 0:"))
    assert "CommTimeoutError" in line and "all_reduce(sum)" in line and "within 1.5 s" in line, out


def _no_nccl_gpu():
    try:
        import cupy
        from cupy.cuda import nccl
        return None if cupy.cuda.is_available() and nccl.available else "no CUDA device with NCCL (pip install -e '.[gpu,nccl]' on a GPU machine)"
    except ImportError:
        return "CuPy not installed (pip install -e '.[gpu,nccl]')"


@pytest.mark.parametrize("where", ["emulated", pytest.param("device", marks=pytest.mark.skipif(
    _no_nccl_gpu() is not None, reason=str(_no_nccl_gpu())))])
def test_cuda_program_collectives_on_device_buffers_through_the_nccl_interface(where):
    n = 2 if where == "emulated" else 1          # real NCCL: one rank per GPU
    out = mpirun(n, "nccl_collectives.py", *(["device"] if where == "device" else []), timeout=180)
    assert sorted(line for line in out.splitlines() if line.startswith("OK")) == [f"OK {k}" for k in range(n)], out
    assert "device path: 3 buckets, 9 NCCL all-reduces in 3 steps" in out, out


def test_hccl_is_refused_and_uninitialised_use_is_explained():
    from sporeflow import communication as C
    from sporeflow.ir import comm
    with pytest.raises(C.CommError, match="HCCL is Huawei Ascend"):
        C.init("hccl")
    if not comm.initialized():
        with pytest.raises(C.CommError, match="call sporeflow.communication.init"):
            C.get_rank()


def test_nccl_without_a_gpu_is_refused_before_mpi_starts():
    from sporeflow import communication as C
    from sporeflow.ir import comm
    try:
        import cupy
        if cupy.cuda.is_available():
            pytest.skip("a CUDA device is present: init('nccl') would succeed")
    except ImportError:
        pass
    was = comm.initialized()
    with pytest.raises(C.CommError, match=r"init\('nccl'\): .*(CuPy|NCCL library|CUDA device)"):
        C.init("nccl")
    assert comm.initialized() == was and comm.WORLD.nccl is None


@pytest.mark.parametrize("n,backend", [(2, "llvm"), (4, "interp")])
def test_data_parallel_training_equals_single_process_and_only_rank0_saves(n, backend, tmp_path):
    out = mpirun(n, "train_dp.py", str(tmp_path), backend)
    lines = [ln for ln in out.splitlines() if ln.startswith("rank ")]
    assert len(lines) == n, out
    for ln in lines:
        worst = float(ln.split("max|diff| ")[1].split(" ")[0])
        assert worst < 1e-5 and "3 buckets" in ln, ln
    # rank 0 alone wrote: one file per save point, none from another rank
    assert sorted(os.listdir(tmp_path)) == ["dp-1_2.ckpt", "dp-1_4.ckpt"]


def test_bucket_plan_splits_by_size_dtype_and_index():
    import numpy as np
    from sporeflow import Parameter, Tensor, float16
    from sporeflow.frontend.nn.grad_reducer import plan_buckets
    ps = [Parameter(Tensor(np.zeros(s, np.float32)), name=f"p{i}") for i, s in enumerate([10, 20, 5, 5])]
    assert plan_buckets(ps, None) == [[3, 2, 1, 0]]                 # reverse order, one bucket
    assert plan_buckets(ps, 4 * 30) == [[3, 2, 1], [0]]             # 30 floats fit, then a new one
    assert plan_buckets(ps, None, [2]) == [[3, 2], [1, 0]]          # a split before parameter 2
    ps[1] = Parameter(Tensor(np.zeros(20, np.float16)), name="h")
    assert ps[1].dtype == float16 and plan_buckets(ps, None) == [[3, 2], [1], [0]]   # one dtype per bucket
