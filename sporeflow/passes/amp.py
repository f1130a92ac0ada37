"""Mixed precision as a pass: run each op in the precision its region and its OpDef ask for.

The decision is per node, from data only:
- the node's *region*: the most specific rule of `AmpPlan.rules` whose Cell scope contains the
  node's scope (`Net.bn1` holds `Net.bn1.*`). Modes:
    "low"  every float op in the low dtype, except the ops of `black_ops` (O2, O3, to_float(f16))
    "fp32" every float op in float32, except the ops of `white_ops` (O1, to_float(f32), BatchNorm at O2)
    "auto" ops of `white_ops` low, of `black_ops` float32, the rest follow their inputs and take the
           widest input type when the inputs differ (MindSpore's "auto" level)
- the op's `amp` policy (`OpDef.amp`: LOW / NEVER / FOLLOW) is where the default white and black
  lists come from (`white_ops()` / `black_ops()`), so they are a field of each OpDef, not if-chains.

Casts are inserted on the inputs that are not yet in the chosen dtype; one cast per (value, dtype)
is made, and a cast of a value that this pass itself widened from the target dtype is folded
away (f16 -> f32 -> f16 is the f16 value). Graph outputs are cast back to their traced dtype
(MindSpore's `_OutputTo32`), except the first `low_outputs` ones (`Cell.to_float` keeps the Cell's
output in low precision, as MindSpore does). Ops that carry subgraphs, casts, constants and ops
without float inputs keep their traced input types. The pass runs where the forward is traced
(before autodiff differentiates it, so the backward is in the same precision) and before fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import dtypes as D
from ..ir.graph import Graph, GraphBuilder, Value
from ..ir.registry import REGISTRY, Amp
from .manager import PassInfo, register_pass

MODES = ("low", "fp32", "auto")
_KEEP_OPS = frozenset({"cast", "constant", "cond", "while_loop", "scan", "fused", "custom_vjp"})


def white_ops() -> frozenset:
    """Ops that run in low precision at O1 / auto (OpDef.amp == LOW: matmul, conv2d)."""
    return frozenset(n for n, op in REGISTRY.items() if op.amp == Amp.LOW)


def black_ops() -> frozenset:
    """Ops kept in float32 at the auto level (OpDef.amp == NEVER: exp, log, pow, reductions...)."""
    return frozenset(n for n, op in REGISTRY.items() if op.amp == Amp.NEVER)


@dataclass(frozen=True)
class AmpPlan:
    dtype: D.DType                               # float16 or bfloat16
    rules: tuple = (("", "auto"),)               # (cell scope, mode); "" is the whole graph
    white_ops: frozenset = frozenset()
    black_ops: frozenset = frozenset()
    low_outputs: int = 0                         # leading outputs that may stay in low precision

    def __post_init__(self):
        if self.dtype not in (D.float16, D.bfloat16):
            raise ValueError(f"mixed precision: dtype must be float16 or bfloat16, got {self.dtype}")
        for scope, mode in self.rules:
            if mode not in MODES:
                raise ValueError(f"mixed precision: unknown mode {mode!r} for scope {scope!r}; one of {MODES}")

    def mode_of(self, scope: str) -> str | None:
        scope = scope.rsplit("/", 1)[-1]          # "grad/Net.fc1" was emitted for Net.fc1
        best, best_len = None, -1
        for s, mode in self.rules:
            if (s == "" or scope == s or scope.startswith(s + ".")) and len(s) > best_len:
                best, best_len = mode, len(s)
        return best


def _lossless(src: D.DType, dst: D.DType) -> bool:
    return src.is_float and dst.is_float and (src.is_half and not dst.is_half or src is D.float32 and dst is D.float64)


def amp_graph(graph: Graph, plan: AmpPlan) -> Graph:
    """The graph with each float op in its chosen precision and casts at the boundaries."""
    low = plan.dtype
    b = GraphBuilder(graph.name)
    env: dict[int, Value] = {}
    for v in graph.inputs:
        env[id(v)] = v
    b.inputs = list(graph.inputs)
    casts: dict[tuple[int, D.DType], Value] = {}
    widened: dict[int, Value] = {}                # cast output made here -> its source value

    def cast(v: Value, dt: D.DType, loc: str, scope: str) -> Value:
        if v.dtype is dt:
            return v
        src = widened.get(id(v))
        if src is not None and src.dtype is dt:
            return src                            # our own lossless widening, undone
        hit = casts.get((id(v), dt))
        if hit is None:
            hit = casts[(id(v), dt)] = b.emit("cast", [v], {"dtype": dt}, loc=loc, scope=scope)[0]
            if _lossless(v.dtype, dt):
                widened[id(hit)] = v
        return hit

    for node in graph.nodes:
        ins = [env[id(v)] for v in node.inputs]
        target = _target(node, ins, plan, low)
        if target is None:
            ins = [cast(x, o.dtype, node.loc, node.scope) for x, o in zip(ins, node.inputs)]
        else:
            ins = [cast(x, target, node.loc, node.scope) if o.dtype.is_float else x for x, o in zip(ins, node.inputs)]
        outs = b.emit(node.op, ins, node.attrs, loc=node.loc, scope=node.scope)
        for o, n in zip(node.outputs, outs):
            env[id(o)] = n
    outputs = []
    for i, v in enumerate(graph.outputs):
        nv = env[id(v)]
        if i >= plan.low_outputs or not v.dtype.is_float:
            nv = cast(nv, v.dtype, "", "")
        outputs.append(nv)
    return b.finish(outputs)


def _target(node, ins: list[Value], plan: AmpPlan, low: D.DType) -> D.DType | None:
    """The float dtype `node` computes in, or None to keep its traced input types."""
    if node.op in _KEEP_OPS or node.subgraphs():
        return None
    floats = [o.dtype for o in node.inputs if o.dtype.is_float]
    if not floats or any(d is not floats[0] for d in floats) or floats[0] not in (D.float32, low):
        return None                               # no float inputs, mixed or float64 inputs: as traced
    mode = plan.mode_of(node.scope) or "fp32"
    if mode == "low":
        return D.float32 if node.op in plan.black_ops else low
    if mode == "fp32":
        return low if node.op in plan.white_ops else D.float32
    if node.op in plan.white_ops:
        return low
    if node.op in plan.black_ops:
        return D.float32
    now = {x.dtype for x in ins if x.dtype.is_float}
    return low if now == {low} else D.float32    # follow the inputs; mixed ones promote to float32


def amp_pass(plan: AmpPlan) -> PassInfo:
    """The pass with its plan bound, for a PassManager pipeline."""
    return PassInfo("amp", lambda g: amp_graph(g, plan), 0, "mixed precision (casts by region and OpDef.amp)")


@register_pass("amp", opt_level=9, doc="mixed precision at the auto level in float16 (for ir_tool opt)")
def _amp_auto_f16(graph: Graph) -> Graph:
    return amp_graph(graph, AmpPlan(D.float16, (("", "auto"),), white_ops(), black_ops()))
