"""Collective ops under MindSpore's names: functional `all_reduce(x, op, group)` ... and the
`ReduceOp` constants. Each binds one collective primitive (primitives/collective.py), eagerly or
into the traced step."""
from __future__ import annotations

from ...ir import comm
from ...core import lax
from ._core import tensor


class ReduceOp:
    """MindSpore's ops.ReduceOp: the element operation of AllReduce / ReduceScatter."""
    SUM = "sum"
    MAX = "max"
    MIN = "min"
    PROD = "prod"


def _op(op) -> str:
    name = str(op).lower()
    if name not in comm.REDUCE_OPS:
        raise ValueError(f"reduce op must be one of ReduceOp.SUM/MAX/MIN/PROD {comm.REDUCE_OPS}, got {op!r}")
    return name


def all_reduce(x, op=ReduceOp.SUM, group=None):
    """Elementwise reduction of x over every rank of `group` (default: the world)."""
    return lax.all_reduce(tensor(x), op=_op(op), group=comm.group_name(group))


def all_gather(x, group=None):
    """x of every rank, concatenated along axis 0 in rank order."""
    return lax.all_gather(tensor(x), group=comm.group_name(group))


def broadcast(x, root_rank=0, group=None):
    """Every rank gets rank `root_rank`'s x."""
    return lax.broadcast(tensor(x), root=int(root_rank), group=comm.group_name(group))


def reduce_scatter(x, op=ReduceOp.SUM, group=None):
    """all_reduce, then rank r keeps block r of axis 0."""
    return lax.reduce_scatter(tensor(x), op=_op(op), group=comm.group_name(group))


def _broadcast_tuple(xs, root_rank=0, group=None):
    """ops.Broadcast takes and returns a tuple of tensors."""
    return tuple(broadcast(x, root_rank, group) for x in xs)


__all__ = ["ReduceOp", "all_reduce", "all_gather", "broadcast", "reduce_scatter"]
