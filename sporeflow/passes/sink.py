"""Loop sinking: a step graph becomes ONE scan over a staged buffer of `length` steps' inputs.

The step graph (forward, loss, grad and update, already one graph: graph sinking) has inputs
(per-step data..., state...) and outputs (per-step results..., new values of some state). The
sunk graph takes the data stacked along a new leading axis and the state once; its scan
carries the whole state (an updated input carries its update, the others pass through), scans
over the data, and returns every step's results stacked and the final state. So `length`
steps are one native call, and the outputs keep the step graph's order, which lets the
caller's donation (state output -> its own input buffer) apply unchanged.

The body is the step graph itself, as the backend pipeline left it, so each step computes
bit for bit what one un-sunk call computes.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import SporeflowError
from ..ir.graph import Graph, GraphBuilder
from ..ir.types import TensorType
from .manager import PassInfo


def sink_graph(step: Graph, n_data: int, updates: Sequence[tuple[int, int]], length: int,
               name: str | None = None) -> Graph:
    """The sunk graph of `step`.

    `n_data`: how many leading inputs are per-step data (the rest is state). `updates`:
    (output index, state input index) for each output that is a new value of a state input;
    those outputs must come after the per-step results. `length`: steps per call (>= 1)."""
    if length < 1:
        raise SporeflowError(f"sink: length must be >= 1, got {length}")
    n_in, n_out = len(step.inputs), len(step.outputs)
    if not 0 <= n_data <= n_in:
        raise SporeflowError(f"sink: n_data={n_data} must be in [0, {n_in}]")
    upd = dict(updates)
    if len(upd) != len(updates) or len(set(upd.values())) != len(upd):
        raise SporeflowError(f"sink: each output and each state input may appear once in updates {updates}")
    n_user = n_out - len(upd)
    if sorted(upd) != list(range(n_user, n_out)):
        raise SporeflowError(f"sink: the update outputs must be the last ones ({n_user}..{n_out - 1}), got {sorted(upd)}")
    for j, i in upd.items():
        if not n_data <= i < n_in:
            raise SporeflowError(f"sink: update output {j} names input {i}, which is not a state input")
        if step.outputs[j].type != step.inputs[i].type:
            raise SporeflowError(f"sink: update output {j} ({step.outputs[j].type}) does not match state input {i} "
                                 f"({step.inputs[i].type})")
    data, state = step.inputs[:n_data], step.inputs[n_data:]
    new_state = {i: step.outputs[j] for j, i in upd.items()}
    carry_out = [new_state.get(n_data + k, v) for k, v in enumerate(state)]
    body = Graph(step.name + "_step", list(state) + list(data), step.nodes,
                 carry_out + list(step.outputs[:n_user]))

    b = GraphBuilder(name or step.name + f"_sink{length}")
    xs = [b.add_input(TensorType((length,) + v.type.shape, v.type.dtype), v.name) for v in data]
    st = [b.add_input(v.type, v.name) for v in state]
    outs = b.emit("scan", st + xs, {"body": body, "num_carry": len(state), "length": length, "reverse": False})
    finals, ys = outs[:len(state)], outs[len(state):]
    return b.finish(list(ys) + [finals[i - n_data] for _, i in sorted(upd.items())])


def sink_pass(n_data: int, updates: Sequence[tuple[int, int]], length: int) -> PassInfo:
    """`sink_graph` with its options bound, for a pipeline (PassManager accepts a PassInfo)."""
    return PassInfo("sink", lambda g: sink_graph(g, n_data, updates, length), 0,
                    f"loop sinking: {length} steps in one scan")
