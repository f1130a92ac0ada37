"""The process world that collective primitives run in: MPI communicators through mpi4py.

The collective OpDefs (primitives/collective.py) execute through the functions here, on the
interpreter (their `impl`) and from LLVM-compiled steps (a C-callable callback). Every collective
is started non-blocking and waited on with a deadline, so a rank that died or stopped stepping
makes the others raise CommTimeoutError instead of hanging in MPI forever.

mpi4py is imported by `init()` only: importing it initialises MPI, which a single-process
user of sporeflow never needs. It is an optional dependency (the `dist` extra).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import SporeflowError


class CommError(SporeflowError, RuntimeError):
    """A distributed-communication failure: not initialised, unknown group, mismatched graphs."""


class CommTimeoutError(CommError, TimeoutError):
    """A collective did not complete within the timeout (a rank died or is not stepping)."""


REDUCE_OPS = ("sum", "max", "min", "prod")
DEFAULT_TIMEOUT = float(os.environ.get("SPOREFLOW_COMM_TIMEOUT", "300"))


@dataclass
class World:
    backend: str = ""                 # "mpi" | "nccl" | "" before init
    world_group: str = ""
    groups: dict = field(default_factory=dict)   # name -> mpi4py communicator
    control: dict = field(default_factory=dict)  # name -> a duplicate for checks, so a check can
                                                 # never be matched with a data collective
    ranks: dict = field(default_factory=dict)    # name -> world ranks in the group
    timeout: float = DEFAULT_TIMEOUT
    mpi: object = None                # the mpi4py.MPI module once initialised
    nccl: object = None               # a cupy NcclCommunicator over the world after init("nccl")
    nccl_api: object = None           # the module holding its constants (cupy.cuda.nccl)
    nccl_memory: str = "cuda"         # whose buffers it reads: "cuda" device memory (a test's
                                      # stand-in over MPI reads the emulator's, "host")


WORLD = World()


def initialized() -> bool:
    return bool(WORLD.backend)


def _need_init(what: str) -> None:
    if not WORLD.backend:
        raise CommError(f"{what}: the communication world is not initialised; call "
                        "sporeflow.communication.init() first (and launch with `mpirun -n N python ...`)")


def init_mpi(world_group: str, timeout: float | None = None) -> None:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise CommError("init(): the MPI backend needs mpi4py and an MPI library; install them with "
                        "`pip install -e \".[dist]\"` (mpi4py + the mpich wheel)") from e
    if WORLD.backend:
        return
    WORLD.mpi = MPI
    WORLD.backend = "mpi"
    WORLD.world_group = world_group
    WORLD.groups = {world_group: MPI.COMM_WORLD.Dup()}
    WORLD.control = {world_group: MPI.COMM_WORLD.Dup()}
    WORLD.ranks = {world_group: list(range(MPI.COMM_WORLD.Get_size()))}
    if timeout is not None:
        WORLD.timeout = float(timeout)


def set_timeout(seconds: float) -> None:
    """How long a collective may wait for the other ranks before raising CommTimeoutError."""
    if not seconds > 0:
        raise ValueError(f"communication timeout must be positive, got {seconds}")
    WORLD.timeout = float(seconds)


def comm(group: str | None, what: str = "collective"):
    _need_init(what)
    name = group or WORLD.world_group
    c = WORLD.groups.get(name)
    if c is None:
        raise CommError(f"{what}: unknown communication group {name!r}; known: {sorted(WORLD.groups)} "
                        "(create_group(name, ranks) first)")
    return c


def group_name(group: str | None) -> str:
    return group or WORLD.world_group


def rank(group: str | None = None) -> int:
    return comm(group, "get_rank").Get_rank()


def size(group: str | None = None) -> int:
    if not WORLD.backend:
        raise CommError("get_group_size: the communication world is not initialised; call "
                        "sporeflow.communication.init() first")
    return comm(group, "get_group_size").Get_size()


def local_rank(group: str | None = None) -> int:
    c = comm(group, "get_local_rank")
    node = c.Split_type(WORLD.mpi.COMM_TYPE_SHARED)
    r = node.Get_rank()
    node.Free()
    return r


def create_group(name: str, ranks) -> None:
    """Collective over the world: every rank calls it with the same name and ranks."""
    world = comm(None, "create_group")
    ranks = [int(r) for r in ranks]
    if name in WORLD.groups:
        raise CommError(f"create_group: group {name!r} exists already")
    if len(set(ranks)) != len(ranks) or not ranks or min(ranks) < 0 or max(ranks) >= world.Get_size():
        raise CommError(f"create_group({name!r}): ranks {ranks} must be distinct world ranks "
                        f"in [0, {world.Get_size()})")
    me = world.Get_rank()
    sub = world.Split(0 if me in ranks else WORLD.mpi.UNDEFINED, ranks.index(me) if me in ranks else 0)
    if me in ranks:
        WORLD.groups[name] = sub
        WORLD.control[name] = sub.Dup()
    WORLD.ranks[name] = ranks


def destroy_group(name: str) -> None:
    if name == WORLD.world_group:
        raise CommError("destroy_group: the world group cannot be destroyed")
    WORLD.ranks.pop(name, None)
    for table in (WORLD.groups, WORLD.control):
        c = table.pop(name, None)
        if c is not None:
            c.Free()


def release() -> None:
    """Free the communicators; the process can init() again (MPI itself stays up until exit)."""
    for c in list(WORLD.groups.values()) + list(WORLD.control.values()):
        c.Free()
    if WORLD.nccl is not None:
        WORLD.nccl.destroy()
        WORLD.nccl = WORLD.nccl_api = None
    WORLD.groups, WORLD.control, WORLD.ranks, WORLD.backend, WORLD.world_group = {}, {}, {}, "", ""


def _mpi_op(op: str):
    MPI = WORLD.mpi
    return {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}[op]


STATS = {"calls": 0, "seconds": 0.0, "bytes": 0}   # collectives run by this process (for profiling)


def reset_stats() -> None:
    STATS.update(calls=0, seconds=0.0, bytes=0)


def wait(req, what: str, group: str | None, nbytes: int = 0) -> None:
    """Poll a non-blocking request (anything with `Test()`: an MPI request, a CUDA event's
    marker) until done or the deadline; a timeout names the collective."""
    t0 = time.monotonic()
    deadline = t0 + WORLD.timeout
    sleep = 0.0
    while not req.Test():
        if time.monotonic() > deadline:
            raise CommTimeoutError(
                f"{what} over group {group_name(group)!r} ({size(group)} ranks, this is rank {rank(group)}) "
                f"did not complete within {WORLD.timeout:g} s: another rank has died or is not running "
                "the same step (set the limit with sporeflow.communication.set_timeout or "
                "SPOREFLOW_COMM_TIMEOUT)")
        time.sleep(sleep)
        sleep = min(sleep * 2 + 1e-6, 1e-3)
    STATS["calls"] += 1
    STATS["seconds"] += time.monotonic() - t0
    STATS["bytes"] += nbytes


def _buf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    x = x if x.flags.c_contiguous else x.copy()    # (ascontiguousarray would make 0-d 1-d)
    return x.astype(np.uint8) if x.dtype == np.bool_ else x


def _unbuf(y: np.ndarray, dtype) -> np.ndarray:
    return y.astype(np.bool_) if dtype == np.bool_ else y


def _bool_op(op: str) -> str:
    """bool reductions as uint8: sum/max are logical or, prod/min logical and."""
    return {"sum": "max", "prod": "min"}.get(op, op)


def all_reduce(x: np.ndarray, op: str = "sum", group: str | None = None) -> np.ndarray:
    c = comm(group, "all_reduce")
    src = _buf(x)
    out = np.empty_like(src)
    wait(c.Iallreduce(src, out, _mpi_op(_bool_op(op) if x.dtype == np.bool_ else op)), f"all_reduce({op})", group,
          src.nbytes)
    return _unbuf(out, x.dtype)


# ---- split all-reduce: a non-blocking start and a wait (passes/overlap.py schedules them) -----
# In flight: the buffer's address -> (request, buffer, description, group, bytes). The start
# copies its input into the buffer and reduces there in place (MPI_IN_PLACE), so the input may
# be overwritten as soon as the start returns and only the buffer must outlive the wait: in a
# compiled step it is the start's output value, live until the wait node reads it.
IN_FLIGHT: dict[int, tuple] = {}


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def start_all_reduce(x: np.ndarray, buf: np.ndarray, op: str = "sum", group: str | None = None) -> np.ndarray:
    """Start all_reduce(x) into `buf` (same shape and dtype; may be x itself) and return `buf`
    without waiting; `wait_all_reduce(buf, ...)` completes it. A bool buffer (no MPI logical
    type on uint8 in place) is reduced at once."""
    c = comm(group, "all_reduce")
    if x.dtype == np.bool_:
        buf[...] = all_reduce(x, op, group)
        return buf
    if _addr(x) != _addr(buf):
        np.copyto(buf, x)
    req = c.Iallreduce(WORLD.mpi.IN_PLACE, buf, _mpi_op(op))
    IN_FLIGHT[_addr(buf)] = (req, buf, f"all_reduce({op})", group, buf.nbytes)   # a stale entry
    return buf                                                  # (a step that raised) is replaced


def wait_all_reduce(buf: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Wait, with the deadline, for the all-reduce started into `buf`; copy it into `out` when given."""
    entry = IN_FLIGHT.pop(_addr(buf), None)
    if entry is not None:
        req, _, what, group, nbytes = entry
        wait(req, what, group, nbytes)
    if out is None or _addr(out) == _addr(buf):
        return buf
    np.copyto(out, buf)
    return out


def progress() -> None:
    """Drive MPI's progress engine for the collectives in flight (MPICH progresses a
    non-blocking collective only inside MPI calls unless MPICH_ASYNC_PROGRESS=1)."""
    for req, *_ in list(IN_FLIGHT.values()):
        req.Test()


def all_gather(x: np.ndarray, group: str | None = None) -> np.ndarray:
    c = comm(group, "all_gather")
    src = _buf(x)
    out = np.empty((c.Get_size() * src.shape[0],) + src.shape[1:], src.dtype)
    wait(c.Iallgather(src, out), "all_gather", group)
    return _unbuf(out, x.dtype)


def broadcast(x: np.ndarray, root: int = 0, group: str | None = None) -> np.ndarray:
    c = comm(group, "broadcast")
    out = _buf(x).copy()
    wait(c.Ibcast(out, root=root), f"broadcast(root={root})", group)
    return _unbuf(out, x.dtype)


def reduce_scatter(x: np.ndarray, op: str = "sum", group: str | None = None) -> np.ndarray:
    c = comm(group, "reduce_scatter")
    src = _buf(x)
    n = c.Get_size()
    out = np.empty((src.shape[0] // n,) + src.shape[1:], src.dtype)
    wait(c.Ireduce_scatter_block(src, out, _mpi_op(_bool_op(op) if x.dtype == np.bool_ else op)),
          f"reduce_scatter({op})", group)
    return _unbuf(out, x.dtype)


def all_gather_object(obj, group: str | None = None) -> list:
    c = comm(group, "all_gather_object")
    return c.allgather(obj)


def check_same_everywhere(key: str, what: str, group: str | None = None) -> None:
    """Raise on every rank when `key` differs between ranks (e.g. a graph fingerprint), before
    any collective of that graph runs: a mismatched graph would otherwise deadlock or mix
    buffers of different shapes."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    comm(group, what)
    c = WORLD.control[group_name(group)]
    src = np.frombuffer(bytes.fromhex(digest), np.uint8).copy()
    out = np.empty(c.Get_size() * src.size, np.uint8)
    wait(c.Iallgather(src, out), f"{what} (fingerprint exchange)", group)
    digests = [out[i * 8:(i + 1) * 8].tobytes().hex() for i in range(c.Get_size())]
    if len(set(digests)) != 1:
        mine = digests[c.Get_rank()]
        other = [r for r, d in enumerate(digests) if d != mine]
        raise CommError(f"{what}: the ranks run different graphs (rank {c.Get_rank()} fingerprint {mine}; "
                        f"rank(s) {other} differ). Every rank must build the same step: same network, "
                        "shapes and dtypes (is the batch split evenly? drop_remainder=True)")


def graph_fingerprint(graph) -> str:
    """What every rank must agree on: the step's input and output types and its collectives in
    order (op, attributes, types). Constant values and local ops are left out: ranks may
    legitimately differ there (a rank-dependent mask), and simplification may then differ too."""
    parts = ["in:" + ",".join(str(v.type) for v in graph.inputs),
             "out:" + ",".join(str(v.type) for v in graph.outputs)]
    for n in graph.walk():
        if not n.opdef.pure:
            parts.append(f"{n.op}{sorted(n.attrs.items())}:{','.join(str(v.type) for v in n.inputs)}")
    return ";".join(parts)


def check_graph(graph) -> None:
    """Before a compiled step with collectives runs: every rank of the world compiled the same one."""
    groups = {n.attrs.get("group") for n in graph.walk() if not n.opdef.pure}
    if WORLD.backend and groups:     # one group: its ranks alone compile the step
        check_same_everywhere(graph_fingerprint(graph), f"compiling @{graph.name}",
                              groups.pop() if len(groups) == 1 else None)
