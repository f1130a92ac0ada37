"""`dataset.config`: the pipeline's seed and prefetch depth (MindSpore's `mindspore.dataset.config`).

The seed is `config.set_seed(s)` if called, else the last `sporeflow.set_seed(s)`, else 0.
Unlike MindSpore (which draws a random seed when none is set), an unseeded pipeline is
reproducible; each epoch still gets its own shuffle (see Dataset.set_epoch).
"""
from __future__ import annotations
from ...frontend.random import _GLOBAL

_STATE = {"seed": None, "prefetch_size": 16, "num_parallel_workers": 1}


def set_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"dataset.config.set_seed: seed must be a non-negative int, got {seed!r}")
    _STATE["seed"] = seed


def get_seed() -> int:
    if _STATE["seed"] is not None:
        return _STATE["seed"]
    return int(_GLOBAL.get("seed", 0)) % (2 ** 63)


def set_prefetch_size(size: int) -> None:
    """How many rows/batches the background thread may run ahead of the consumer."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"dataset.config.set_prefetch_size: size must be a positive int, got {size!r}")
    _STATE["prefetch_size"] = size


def get_prefetch_size() -> int:
    return _STATE["prefetch_size"]


def set_num_parallel_workers(num: int) -> None:
    """Accepted for compatibility; the pipeline runs in one background thread."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num_parallel_workers must be a positive int, got {num!r}")
    _STATE["num_parallel_workers"] = num


def get_num_parallel_workers() -> int:
    return _STATE["num_parallel_workers"]


# -- the random generator random transforms draw from -------------------------------------------
# Inside a pipeline, `map` installs a generator keyed by (seed, pipeline position, epoch) for the
# thread that runs it, so random augmentations are reproducible; called eagerly, transforms use a
# module generator seeded from get_seed() on first use.
import threading as _threading  # noqa: E402

import numpy as _np  # noqa: E402

_LOCAL = _threading.local()
_EAGER = {"rng": None, "seed": None}


def current_rng() -> "_np.random.Generator":
    rng = getattr(_LOCAL, "rng", None)
    if rng is not None:
        return rng
    if _EAGER["rng"] is None or _EAGER["seed"] != get_seed():
        _EAGER["seed"] = get_seed()
        _EAGER["rng"] = _np.random.default_rng([_EAGER["seed"], 0x5EED])
    return _EAGER["rng"]


def _set_thread_rng(rng) -> None:
    _LOCAL.rng = rng
