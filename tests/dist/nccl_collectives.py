"""Run under mpirun by tests/test_dist.py: the CUDA program's collectives on device buffers, the
path a GPU takes after init('nccl').

    mpirun -n 2 python tests/dist/nccl_collectives.py            # the CPU emulator
    mpirun -n 1 python tests/dist/nccl_collectives.py device     # a GPU with real NCCL (one per rank)

On the emulator NCCL cannot run (it needs a GPU), so a stand-in with NcclCommunicator's methods
and arguments (pointers, element counts, NCCL's dtype and op codes, a stream) runs MPI on the
memory those pointers name; the emulator's device memory is host memory. Either communicator
is wrapped in a call log. Checks each collective against numpy, that the device path (not the
host copy) ran, the fallbacks (bool, a sub-group), a data-parallel step with overlapped and
blocking all-reduces against the same step on LLVM, and the deadline's abort. Prints 'OK <rank>'
at the end."""
import ctypes
import sys
import types

import numpy as np

import sporeflow as sf
from sporeflow import communication as C, nn
from sporeflow.backends.cuda import nccl_collective
from sporeflow.backends.cuda.device import EmulatedDevice
from sporeflow.ir import comm

# NCCL's codes (nccl.h's ncclDataType_t and ncclRedOp_t, as cupy.cuda.nccl exports them)
API = types.SimpleNamespace(NCCL_INT8=0, NCCL_UINT8=1, NCCL_INT32=2, NCCL_UINT32=3, NCCL_INT64=4, NCCL_UINT64=5,
                            NCCL_FLOAT16=6, NCCL_FLOAT32=7, NCCL_FLOAT64=8,
                            NCCL_SUM=0, NCCL_PROD=1, NCCL_MAX=2, NCCL_MIN=3)
DTYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64, 6: np.float16,
          7: np.float32, 8: np.float64}


class Logged:
    """A communicator whose calls are logged as (method, arguments after the two pointers)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        fn = getattr(self.inner, name)

        def call(*args):
            self.calls.append((name,) + tuple(args[2:]))
            return fn(*args)
        return call


class HostNccl:
    """NcclCommunicator's collective methods over MPI, on host pointers."""

    def __init__(self, mpi_comm):
        self.c = mpi_comm
        M = comm.WORLD.mpi
        self.ops = {0: M.SUM, 1: M.PROD, 2: M.MAX, 3: M.MIN}

    @staticmethod
    def _view(ptr: int, count: int, datatype: int) -> np.ndarray:
        dt = np.dtype(DTYPES[datatype])
        return np.frombuffer((ctypes.c_char * (count * dt.itemsize)).from_address(ptr), dt)

    def allReduce(self, send, recv, count, datatype, op, stream):
        self.c.Allreduce(self._view(send, count, datatype), self._view(recv, count, datatype), self.ops[op])

    def allGather(self, send, recv, count, datatype, stream):
        self.c.Allgather(self._view(send, count, datatype),
                         self._view(recv, count * self.c.Get_size(), datatype))

    def broadcast(self, send, recv, count, datatype, root, stream):
        out = self._view(recv, count, datatype)
        out[...] = self._view(send, count, datatype)
        self.c.Bcast(out, root=root)

    def reduceScatter(self, send, recv, recvcount, datatype, op, stream):
        self.c.Reduce_scatter_block(self._view(send, recvcount * self.c.Get_size(), datatype),
                                    self._view(recv, recvcount, datatype), self.ops[op])

    def abort(self):
        pass

    def destroy(self):
        pass


ON_GPU = sys.argv[1:] == ["device"]
BACKEND = "cuda" if ON_GPU else "cuda-emulated"
if ON_GPU:
    C.init("nccl", timeout=30)
    API = comm.WORLD.nccl_api
    comm.WORLD.nccl = fake = Logged(comm.WORLD.nccl)
else:
    C.init(timeout=30)
    fake = Logged(HostNccl(comm.WORLD.groups[comm.WORLD.world_group].Dup()))
    comm.WORLD.nccl, comm.WORLD.nccl_api, comm.WORLD.nccl_memory = fake, API, "host"
r, n = C.get_rank(), C.get_group_size()


def data(rank, dtype, shape=(2 * 4, 3)):
    return (np.random.default_rng(rank).standard_normal(shape) * 3).astype(dtype)


# 1. every collective on device buffers against numpy
xs = [data(k, np.float32) for k in range(n)]
ks = [data(k + 50, np.int32) for k in range(n)]
f = sf.jit(lambda v, k: (sf.ops.all_reduce(v * 2.0), sf.ops.all_reduce(v, "max"), sf.ops.all_gather(v),
                         sf.ops.broadcast(v, n - 1), sf.ops.reduce_scatter(v, "min"), sf.ops.all_reduce(k, "prod")),
           BACKEND)
got = [np.asarray(t.asnumpy()) for t in f(sf.Tensor(xs[r]), sf.Tensor(ks[r]))]
blk = xs[0].shape[0] // n
want = [2 * np.sum(xs, 0), np.max(xs, 0), np.concatenate(xs), xs[n - 1], np.min(xs, 0)[r * blk:(r + 1) * blk],
        np.prod(ks, 0).astype(np.int32)]
for name, a, b in zip(("all_reduce sum", "max", "all_gather", "broadcast", "reduce_scatter min", "int32 prod"),
                      got, want):
    np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=f"device-buffer {name}")
kinds = sorted(c[0] for c in fake.calls)
assert kinds == ["allGather", "allReduce", "allReduce", "allReduce", "broadcast", "reduceScatter"], fake.calls
assert ("allReduce", 24, API.NCCL_INT32, API.NCCL_PROD) in [c[:4] for c in fake.calls], fake.calls
assert ("reduceScatter", 24 // n, API.NCCL_FLOAT32, API.NCCL_MIN) in [c[:4] for c in fake.calls], fake.calls

# 2. what NCCL cannot take goes through MPI on a host copy: bool, a sub-group
fake.calls.clear()
LOW = list(range(min(n, 2)))
C.create_group("low", LOW)
b = np.array([r == 0, False, True])
g = sf.jit(lambda v, m: (sf.ops.all_reduce(m, "max"), sf.ops.all_reduce(v, group="low") if r in LOW else v * 1.0),
           BACKEND)
bo, lo = g(sf.Tensor(xs[r][0]), sf.Tensor(b))
np.testing.assert_array_equal(np.asarray(bo.asnumpy()), [True, False, True], err_msg="bool all_reduce (host path)")
if r in LOW:
    np.testing.assert_allclose(np.asarray(lo.asnumpy()), sum(xs[k][0] for k in LOW), rtol=1e-6, err_msg="sub-group")
assert fake.calls == [], fake.calls
assert not nccl_collective.on_device(EmulatedDevice(), np.bool_, None)

# 3. a data-parallel step, overlapped (split all-reduce on the side stream) and blocking, on the
#    device path against LLVM
sf.set_auto_parallel_context(parallel_mode=sf.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                             comm_fusion={"allreduce": {"mode": "size", "config": 200 / (1 << 20)}})
rng = np.random.default_rng(r)
X = rng.standard_normal((3, 4, 6)).astype(np.float32)
Y = rng.integers(0, 3, (3, 4)).astype(np.int32)


def train(backend: str, overlap: bool):
    sf.set_auto_parallel_context(comm_overlap=overlap)
    sf.set_seed(5)
    net = nn.SequentialCell([nn.Dense(6, 12, activation="relu"), nn.Dense(12, 3)])
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    jstep = sf.jit(step, backend)
    for s in range(len(X)):
        jstep(sf.Tensor(X[s]), sf.Tensor(Y[s]))
    return [np.asarray(p.asnumpy()).copy() for p in net.trainable_params()], len(step.grad_reducer.buckets)


want, nb = train("llvm", True)
for overlap in (True, False):
    fake.calls.clear()
    got, _ = train(BACKEND, overlap)
    for a, b_ in zip(got, want):
        np.testing.assert_allclose(a, b_, rtol=2e-5, atol=1e-6, err_msg=f"{BACKEND} DP step, overlap={overlap}")
    reduces = [c for c in fake.calls if c[0] == "allReduce"]
    assert nb >= 2 and len(reduces) == nb * len(X), (nb, fake.calls)
assert not nccl_collective.IN_FLIGHT, nccl_collective.IN_FLIGHT

# 4. a collective whose stream never completes (a dead peer): the deadline, then the abort
class Never:
    @staticmethod
    def Test():
        return False


C.set_timeout(0.3)
try:
    nccl_collective._finish(Never(), "all_reduce(sum)", 0)
    raise AssertionError("no timeout")
except C.CommTimeoutError as e:
    assert "all_reduce(sum)" in str(e) and "within 0.3 s" in str(e), e
assert fake.calls[-1] == ("abort",) and comm.WORLD.nccl is None, fake.calls[-1:]
if r == 0:
    sys.stdout.write(f"{BACKEND} device path: {nb} buckets, {len(reduces)} NCCL all-reduces in {len(X)} steps\n")
sys.stdout.write(f"OK {r}\n")
sys.stdout.flush()
sys.exit(0)
