"""nn.DistributedGradReducer: the data-parallel gradient all-reduce, bucketed.

Gradients are packed into buckets (one dtype each, in reverse parameter order: backprop makes
the last layers' gradients first), each bucket flattened into one vector and all-reduced by ONE
collective, then split back: k buckets cost k collectives instead of one per tensor. Bucket size
comes from the auto-parallel context (comm_fusion {'allreduce': {'mode': 'size', 'config': MB}},
or 'index' mode / all_reduce_fusion_config = parameter indices where buckets split).
With gradient_fp32_sync (the default) half-precision gradients are summed in float32.
"""
from __future__ import annotations

from ...context import DEFAULT_BUCKET_MB, get_auto_parallel_context
from ...ir import comm
from ...ir import dtypes as D
from ..cell import Cell
from .. import functional as F


def plan_buckets(params, bucket_bytes: float | None = None, split_indices=None) -> list[list[int]]:
    """Parameter indices per bucket (reverse order; a dtype change or the size limit starts a new one)."""
    buckets: list[list[int]] = []
    size, dtype = 0, None
    splits = set(split_indices or ())
    for i in reversed(range(len(params))):
        p = params[i]
        nbytes = p.size * (p.dtype.bits // 8)
        new = not buckets or p.dtype != dtype or (i + 1) in splits or \
            (bucket_bytes is not None and buckets[-1] and size + nbytes > bucket_bytes)
        if new:
            buckets.append([])
            size = 0
        buckets[-1].append(i)
        size, dtype = size + nbytes, p.dtype
    return buckets


def _context_buckets():
    """(bucket bytes or None, split indices) from the auto-parallel context."""
    fusion = get_auto_parallel_context("comm_fusion").get("allreduce", {})
    mode = fusion.get("mode", "size")
    if mode == "index":
        return None, list(fusion.get("config", []))
    indices = get_auto_parallel_context("all_reduce_fusion_config")
    if indices:
        return None, list(indices)
    mb = fusion.get("config", DEFAULT_BUCKET_MB) if mode == "size" else DEFAULT_BUCKET_MB
    return float(mb) * (1 << 20), []


class DistributedGradReducer(Cell):
    """grads -> the same gradients summed (mean=True: averaged) over the ranks of `group`."""

    def __init__(self, parameters, mean: bool | None = None, degree: int | None = None, fusion_type: int = 1,
                 group: str | None = None, bucket_bytes: float | None = None):
        super().__init__(auto_prefix=False)
        self._shapes = [(tuple(p.shape), p.dtype) for p in parameters]
        self.mean = get_auto_parallel_context("gradients_mean") if mean is None else bool(mean)
        self.group = comm.group_name(group)
        self.degree = degree if degree is not None else comm.size(group)
        if not isinstance(self.degree, int) or self.degree < 1:
            raise ValueError(f"DistributedGradReducer: degree must be a positive int, got {degree!r}")
        size, splits = _context_buckets()
        if bucket_bytes is not None:
            size, splits = float(bucket_bytes), []
        self.fp32_sync = get_auto_parallel_context("gradient_fp32_sync")
        self.buckets = plan_buckets(list(parameters), size, splits)

    def _reduce_bucket(self, grads: list):
        flat = [F.reshape(g, (-1,)) for g in grads]
        vec = flat[0] if len(flat) == 1 else F.cat(flat, 0)
        dt = vec.dtype
        if self.fp32_sync and dt.is_half:
            vec = F.cast(vec, D.float32)
        vec = F.all_reduce(vec, "sum", self.group)
        if self.mean:
            vec = vec // self.degree if vec.dtype.is_int else F.mul(vec, 1.0 / self.degree)
        if vec.dtype != dt:
            vec = F.cast(vec, dt)
        out, at = [], 0
        for g in grads:
            n = g.size
            out.append(F.reshape(vec[at:at + n], tuple(g.shape)))
            at += n
        return out

    def construct(self, grads):
        grads = list(grads)
        if len(grads) != len(self._shapes):
            raise ValueError(f"DistributedGradReducer: got {len(grads)} gradients for {len(self._shapes)} parameters")
        out = list(grads)
        for bucket in self.buckets:
            for i, g in zip(bucket, self._reduce_bucket([grads[i] for i in bucket])):
                out[i] = g
        return tuple(out)
