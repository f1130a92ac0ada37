"""Run under mpirun by tests/test_dist.py: `dead` (rank 1 stops taking part: the others must raise
CommTimeoutError within the timeout), `mismatch` (rank 1 compiles a different step: every
rank must refuse before the first collective) and `stale` (after a good step together, rank 1
alone recompiles: both time out, rank 1 in the fingerprint exchange). A third argument `split`
makes the step's all-reduce an overlapped start/wait pair. Prints what each rank raised."""
import os
import sys
import time

import numpy as np

import sporeflow as sf
from sporeflow import communication as C
from sporeflow.passes import prepare_for_backend

mode, backend = sys.argv[1], sys.argv[2]
split = sys.argv[3:] == ["split"]    # the step's all-reduce is a start, other work, then the wait


def say(line: str) -> None:
    sys.stdout.write(line + "\n")   # one write: the ranks share the pipe
    sys.stdout.flush()


C.init(timeout=60)     # generous while compiling: ranks' compile times differ on a busy machine
r = C.get_rank()
if split:
    step = sf.jit(lambda v: (sf.ops.all_reduce(v * 2.0), sf.ops.exp(v).sum()), backend)
    ops = [nd.op for nd in prepare_for_backend(step.trace(sf.Tensor(np.ones(3, np.float32))).graph, backend).nodes]
    between = ops[ops.index("all_reduce_start") + 1:ops.index("all_reduce_wait")]
    assert any(o != "constant" for o in between), ops     # exp(v).sum() (fused on llvm) runs in flight
else:
    step = sf.jit(lambda v: sf.ops.all_reduce(v * 2.0), backend)
if mode != "mismatch":
    step(sf.Tensor(np.ones(3, np.float32)))   # one good step together (stale: rank 1 then changes shape)
if mode == "dead" and r == 1:
    time.sleep(6)           # alive but gone from the step (a hung rank); then leave without MPI
    os._exit(0)
if mode != "mismatch":
    C.set_timeout(1.5)
shape = (4,) if mode != "dead" and r == 1 else (3,)
t0 = time.monotonic()
try:
    step(sf.Tensor(np.ones(shape, np.float32)))
    say(f"rank {r}: no error")
except C.CommError as e:
    say(f"rank {r}: {type(e).__name__} after {time.monotonic() - t0:.1f}s: {e}")
os._exit(0)   # MPI_Finalize would wait for the abandoned request
