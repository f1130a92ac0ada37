"""Global context (sf.set_context / sf.get_context), as in MindSpore."""
from __future__ import annotations

import os
from typing import Any

GRAPH_MODE = 0
PYNATIVE_MODE = 1

_DEVICE_TO_BACKEND = {"CPU": "llvm", "GPU": "cuda", "INTERP": "interp"}

_CONTEXT: dict[str, Any] = {
    "mode": PYNATIVE_MODE,
    "device_target": "CPU",      # compiled (LLVM), as MindSpore defaults to CPU on a CPU machine;
                                 # "INTERP" / backend="interp" selects the numpy oracle
    "backend": None,             # explicit override of the default backend ("interp", "llvm", "cuda")
    "save_graphs": False,
    "save_graphs_path": "./sporeflow_ir",
    "device_id": 0,
    "opt_level": 2,
    "verify_each_pass": False,
    "jit_explain": False,
    "pipeline": None,            # pass names every jit runs instead of its backend's default
    "max_call_depth": 1000,      # MindSpore's bound on graph-mode recursion; here also the most
                                 # iterations reverse mode tapes for a while_loop whose trip count
                                 # depends on data (its gradient is NaN when the loop ran longer)
}


def _from_environment() -> None:
    """MindSpore's env vars (MS_DEV_SAVE_GRAPHS=1, MS_DEV_SAVE_GRAPHS_PATH=dir) and sporeflow's
    own (SPOREFLOW_SAVE_GRAPHS, SPOREFLOW_SAVE_GRAPHS_PATH) turn IR dumps on at import."""
    for prefix in ("MS_DEV_", "SPOREFLOW_"):
        if os.environ.get(prefix + "SAVE_GRAPHS", "0") not in ("", "0"):
            _CONTEXT["save_graphs"] = True
        if os.environ.get(prefix + "SAVE_GRAPHS_PATH"):
            _CONTEXT["save_graphs_path"] = os.environ[prefix + "SAVE_GRAPHS_PATH"]


_from_environment()


def set_context(**kwargs) -> None:
    for k, v in kwargs.items():
        if k not in _CONTEXT and k not in ("pynative_synchronize", "enable_graph_kernel",
                                           "jit_config", "max_device_memory", "memory_optimize_level"):
            raise ValueError(f"set_context: unknown option {k!r}; known: {sorted(_CONTEXT)}")
        if k == "mode" and v not in (GRAPH_MODE, PYNATIVE_MODE):
            raise ValueError("mode must be sf.GRAPH_MODE or sf.PYNATIVE_MODE")
        if k == "device_target":
            v = str(v).upper()
            if v not in _DEVICE_TO_BACKEND and v != "ASCEND":
                raise ValueError(f"device_target must be 'CPU', 'GPU' or 'INTERP', got {v!r}")
            if v == "ASCEND":
                raise ValueError("device_target 'Ascend' is not available in sporeflow; use 'CPU' or 'GPU'")
        if k == "max_call_depth" and (not isinstance(v, int) or v < 1):
            raise ValueError(f"max_call_depth must be a positive int, got {v!r}")
        _CONTEXT[k] = v


def get_context(key: str):
    if key not in _CONTEXT:
        raise ValueError(f"get_context: unknown option {key!r}; known: {sorted(_CONTEXT)}")
    return _CONTEXT[key]


def set_device(device_target: str, device_id: int | None = None) -> None:
    set_context(device_target=device_target)


def default_backend() -> str:
    if _CONTEXT["backend"]:
        return _CONTEXT["backend"]
    return _DEVICE_TO_BACKEND.get(_CONTEXT["device_target"], "interp")


# ---- auto-parallel context (MindSpore's set_auto_parallel_context) ---------------------------------
class ParallelMode:
    """MindSpore's ParallelMode. sporeflow runs STAND_ALONE and DATA_PARALLEL."""
    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    HYBRID_PARALLEL = "hybrid_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    AUTO_PARALLEL = "auto_parallel"
    MODE_LIST = (STAND_ALONE, DATA_PARALLEL, HYBRID_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL)


DEFAULT_BUCKET_MB = 25.0    # gradient bytes per all-reduce bucket (comm_fusion size mode)

_PARALLEL_DEFAULTS: dict[str, Any] = {
    "parallel_mode": ParallelMode.STAND_ALONE,
    "gradients_mean": False,
    "device_num": 1,
    "global_rank": 0,
    "gradient_fp32_sync": True,
    "parameter_broadcast": False,
    "all_reduce_fusion_config": [],     # parameter indices where a new bucket starts (index mode)
    "comm_fusion": {"allreduce": {"mode": "size", "config": DEFAULT_BUCKET_MB}},
    "enable_parallel_optimizer": False,
    "dataset_strategy": "data_parallel",
    "full_batch": False,
    "search_mode": "dynamic_programming",
    "strategy_ckpt_save_file": "",
    "loss_repeated_mean": True,
    "comm_overlap": True,      # sporeflow's own: all-reduce as start/wait overlapping the backward pass
}
_PARALLEL: dict[str, Any] = dict(_PARALLEL_DEFAULTS)
_PARALLEL_ONLY_STAND_ALONE_OR_DP = (ParallelMode.SEMI_AUTO_PARALLEL, ParallelMode.AUTO_PARALLEL,
                                    ParallelMode.HYBRID_PARALLEL)


def set_auto_parallel_context(**kwargs) -> None:
    """parallel_mode=ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=N, ...; `comm_fusion`
    ({'allreduce': {'mode': 'size', 'config': MB}}) or `all_reduce_fusion_config` ([split indices])
    set the gradient buckets."""
    for k, v in kwargs.items():
        if k not in _PARALLEL:
            raise ValueError(f"set_auto_parallel_context: unknown option {k!r}; known: {sorted(_PARALLEL)}")
        if k == "parallel_mode":
            v = str(v).lower()
            if v not in ParallelMode.MODE_LIST:
                raise ValueError(f"parallel_mode must be one of {ParallelMode.MODE_LIST}, got {v!r}")
            if v in _PARALLEL_ONLY_STAND_ALONE_OR_DP:
                raise NotImplementedError(f"parallel_mode {v!r} (operator-level sharding) is not available in "
                                          "sporeflow; use ParallelMode.DATA_PARALLEL")
        if k == "device_num" and (not isinstance(v, int) or v < 1):
            raise ValueError(f"device_num must be a positive int, got {v!r}")
        if k == "comm_fusion":
            mode = v.get("allreduce", {}).get("mode", "size") if isinstance(v, dict) else None
            if mode not in ("size", "index", "auto"):
                raise ValueError("comm_fusion must look like {'allreduce': {'mode': 'size', 'config': 32}} "
                                 f"(mode 'size' in MB, 'index' with a list, or 'auto'), got {v!r}")
        _PARALLEL[k] = v


def get_auto_parallel_context(attr_key: str):
    if attr_key not in _PARALLEL:
        raise ValueError(f"get_auto_parallel_context: unknown option {attr_key!r}; known: {sorted(_PARALLEL)}")
    return _PARALLEL[attr_key]


def reset_auto_parallel_context() -> None:
    _PARALLEL.clear()
    _PARALLEL.update(_PARALLEL_DEFAULTS)


def data_parallel() -> bool:
    return _PARALLEL["parallel_mode"] == ParallelMode.DATA_PARALLEL
