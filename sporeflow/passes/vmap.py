"""The vmap pass: Graph -> Graph, adding a batch axis.

`batch_graph(graph, in_dims, size)` retraces `graph` into a fresh Trace whose inputs carry a
batch axis (in_dims[i] is the axis of input i, None = not batched). Every value is tracked as
a (Tracer, bdim) pair, as in JAX's BatchTrace: a node without batched inputs is re-emitted as
it is, any other node calls its op's `batch` rule (primitives/batching*.py), which emits ordinary
primitives. The result is therefore an ordinary graph that any pass can take again.

Control-flow rules batch their subgraphs by calling `batch_graph` recursively.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..errors import NoRuleError, SporeflowError
from ..ir.graph import Graph
from ..ir.registry import as_list, get_op
from ..ir.types import TensorType
from ..core.batching import materialize
from ..core.trace import Trace, emit_copy, emitting_for


def batched_type(t: TensorType, d: int | None, size: int) -> TensorType:
    """The physical type of a value of per-example type `t` batched at axis `d`."""
    if d is None:
        return t
    return TensorType(t.shape[:d] + (size,) + t.shape[d:], t.dtype)


def trace_graph(fn: Callable, in_types: Sequence[TensorType], name: str) -> Graph:
    """Trace fn(*tracers) -> list of tensors into a closed graph (rules build subgraphs so)."""
    with Trace(name) as tr:
        args = [tr.new_input(t) for t in in_types]
        outs = fn(*args)
        graph, captured, updated = tr.finish(list(outs))
    if captured or updated:
        raise SporeflowError(f"{name}: internal error, a rule-built subgraph captured outer values")
    return graph


def _fix_out(x, d: int | None, want: int | None, size: int):
    """Move output `x` (batched at d) to axis `want`; None keeps it where it is (unbatched stays
    unbatched, a batched value moves to axis 0: the canonical form of subgraph outputs)."""
    if want is None:
        return (x, None) if d is None else (materialize(x, d, size, 0), 0)
    return materialize(x, d, size, want), want


def apply_rule(node, args: list, dims: list) -> tuple[list, list]:
    """Call node's batch rule on (args, dims) and normalize its results."""
    rule = get_op(node.op).batch
    if rule is None:
        raise NoRuleError(f"vmap: primitive {node.op!r} has no batching rule (at {node.loc or '?'})")
    outs, odims = rule(args, dims, **dict(node.attrs))
    outs, odims = as_list(outs), as_list(odims)
    if len(outs) != len(node.outputs) or len(odims) != len(outs):
        raise SporeflowError(f"vmap: the batch rule of {node.op!r} returned {len(outs)} values for "
                             f"{len(node.outputs)} outputs")
    for v, o, d in zip(node.outputs, outs, odims):
        want = batched_type(v.type, d, size=o.shape[d] if d is not None else 0)
        if o._type != want:
            raise SporeflowError(f"vmap: the batch rule of {node.op!r} produced {o._type} at axis {d}, "
                                 f"expected {want} per example {v.type}")
    return outs, odims


def batch_graph(graph: Graph, in_dims: Sequence[int | None], size: int,
                out_axes: Sequence[int | None] | None = None, name: str | None = None
                ) -> tuple[Graph, list[int | None]]:
    """Batch `graph`: inputs batched at in_dims (None = shared), outputs moved to out_axes
    (an int forces a batch axis there, broadcasting an unbatched output; None or a missing
    out_axes leaves unbatched outputs unbatched and moves batched ones to axis 0).
    Returns (batched graph, the batch axis of each output)."""
    out_axes = list(out_axes) if out_axes is not None else [None] * len(graph.outputs)
    with Trace(name or f"vmap_{graph.name}") as tr:
        tr.scope_prefix = ""
        env: dict[int, tuple] = {}
        for v, d in zip(graph.inputs, in_dims):
            env[id(v)] = (tr.new_input(batched_type(v.type, d, size), v.name), d)
        for node in graph.nodes:
            pairs = [env[id(v)] for v in node.inputs]
            args = [a for a, _ in pairs]
            dims = [d for _, d in pairs]
            if all(d is None for d in dims):
                outs = emit_copy(tr, node, args)
                odims = [None] * len(outs)
            else:
                with emitting_for(tr, node, ""):   # the rule's nodes keep the node's source line and scope
                    outs, odims = apply_rule(node, args, dims)
            for v, o, d in zip(node.outputs, outs, odims):
                env[id(v)] = (o, d)
        results, rdims = [], []
        for v, want in zip(graph.outputs, out_axes):
            x, d = env[id(v)]
            x, d = _fix_out(x, d, want, size)
            results.append(x)
            rdims.append(d)
        out, captured, updated = tr.finish(results)
    assert not captured and not updated, "batch_graph: the batched graph captured outer values"
    return out, rdims
