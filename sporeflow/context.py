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
        if k not in _CONTEXT and k not in ("max_call_depth", "pynative_synchronize", "enable_graph_kernel",
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
