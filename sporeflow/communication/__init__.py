"""`sporeflow.communication` (MindSpore's mindspore.communication): the process world.

    from sporeflow.communication import init, get_rank, get_group_size
    init()                      # under `mpirun -n N python train.py`

CPU processes talk through MPI (mpi4py; `pip install -e ".[dist]"`), GPUs through NCCL
(cupy.cuda.nccl, its unique id exchanged over MPI). HCCL (Ascend) is not available here.
"""
from __future__ import annotations

from .. import context
from ..ir import comm as _comm
from ..ir.comm import CommError, CommTimeoutError, set_timeout  # noqa: F401
from ..frontend.functional.comm_ops import ReduceOp  # noqa: F401
from . import _nccl

_WORLD_GROUPS = {"mpi": "mccl_world_group", "nccl": "nccl_world_group"}


class GlobalComm:
    """MindSpore's GlobalComm: the backend and world group name, set by init()."""
    BACKEND = "mpi"
    WORLD_COMM_GROUP = "mccl_world_group"
    INITED = False


def init(backend_name: str | None = None, timeout: float | None = None) -> None:
    """Join the process world. backend_name: None (MPI on CPU, NCCL when the device target is
    GPU), 'mpi'/'mccl', 'nccl'; 'hccl' is refused. `timeout` (seconds) bounds every collective."""
    name = (backend_name or ("nccl" if context.get_context("device_target") == "GPU" else "mpi")).lower()
    if name == "hccl":
        raise CommError("init('hccl'): HCCL is Huawei Ascend's collective library and sporeflow has no Ascend "
                        "backend; use init() (MPI on CPU) or init('nccl') on NVIDIA GPUs")
    if name == "mccl":
        name = "mpi"
    if name not in _WORLD_GROUPS:
        raise CommError(f"init({backend_name!r}): unknown backend; use 'mpi' (CPU) or 'nccl' (GPU)")
    if name == "nccl":
        _nccl.check_available()                    # before MPI: a refusal leaves nothing initialised
    _comm.init_mpi(_WORLD_GROUPS[name], timeout)    # NCCL bootstraps its unique id over MPI too
    if name == "nccl":
        _nccl.init_nccl(_comm.WORLD)
    GlobalComm.BACKEND, GlobalComm.WORLD_COMM_GROUP, GlobalComm.INITED = name, _WORLD_GROUPS[name], True


def get_rank(group: str | None = None) -> int:
    """This process's rank in `group` (default: the world)."""
    return _comm.rank(group)


def get_group_size(group: str | None = None) -> int:
    """Number of ranks in `group` (default: the world)."""
    return _comm.size(group)


def get_local_rank(group: str | None = None) -> int:
    """Rank among the processes on this machine (shared-memory node)."""
    return _comm.local_rank(group)


def create_group(group: str, rank_ids) -> None:
    """A named group of world ranks; every rank of the world must call it with the same arguments."""
    _comm.create_group(group, rank_ids)


def destroy_group(group: str) -> None:
    _comm.destroy_group(group)


def get_world_rank_from_group_rank(group: str, group_rank_id: int) -> int:
    return _comm.WORLD.ranks[group][group_rank_id]


def get_group_rank_from_world_rank(world_rank_id: int, group: str) -> int:
    return _comm.WORLD.ranks[group].index(world_rank_id)


def release() -> None:
    """Free the communicators (init() may be called again)."""
    _comm.release()
    GlobalComm.INITED = False


__all__ = ["init", "release", "get_rank", "get_group_size", "get_local_rank", "create_group", "destroy_group",
           "get_world_rank_from_group_rank", "get_group_rank_from_world_rank", "GlobalComm", "ReduceOp",
           "CommError", "CommTimeoutError", "set_timeout"]
