"""NCCL through CuPy (cupy.cuda.nccl): a communicator per process, its unique id broadcast over
MPI. Needs an NVIDIA GPU; without one init('nccl') fails with a clear message."""
from __future__ import annotations

from ..ir.comm import CommError


def _cupy():
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as e:
        raise CommError("init('nccl'): needs CuPy (pip install -e \".[gpu,nccl]\")") from e
    if not getattr(nccl, "available", False):
        raise CommError("init('nccl'): CuPy found no NCCL library; install the nccl extra "
                        "(pip install -e \".[gpu,nccl]\": the nvidia-nccl-cu13 wheel)")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:   # CUDARuntimeError without a driver
        raise CommError(f"init('nccl'): no usable CUDA device ({e}); use init() for MPI on CPU") from e
    if n == 0:
        raise CommError("init('nccl'): no CUDA device found; use init() for MPI on CPU")
    return cupy, nccl, n


def check_available() -> None:
    """Raise CommError naming what is missing (CuPy, the NCCL library, a CUDA device)."""
    _cupy()


def init_nccl(world) -> None:
    """One NCCL communicator over the MPI world, each rank on GPU (local rank mod device count)."""
    cupy, nccl, ndev = _cupy()
    mpi_world = world.groups[world.world_group]
    node = mpi_world.Split_type(world.mpi.COMM_TYPE_SHARED)
    cupy.cuda.Device(node.Get_rank() % ndev).use()
    node.Free()
    uid = nccl.get_unique_id() if mpi_world.Get_rank() == 0 else None
    uid = mpi_world.bcast(uid, root=0)
    world.nccl_api, world.nccl_memory = nccl, "cuda"
    world.nccl = nccl.NcclCommunicator(mpi_world.Get_size(), uid, mpi_world.Get_rank())
