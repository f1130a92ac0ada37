"""Graph -> one LLVM module. Every graph (the main one and each control-flow subgraph) becomes
`void @<name>(ptr %ins, ptr %outs, ptr %arena)`: `ins`/`outs` are arrays of buffer pointers,
`arena` is one preallocated block holding every intermediate value at a fixed offset.

Why a static arena: shapes are static, so each value's buffer is known at compile time and
native code never allocates; subgraph bodies reuse their slots on every iteration (calls are
never re-entrant). Dead values' slots are reused as passes/memory.py plans.
Nodes are lowered by the backend's table (LOWERINGS in this package's __init__), which the
package records in each `OpDef.lower["llvm"]` at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import BackendError
from ...ir.graph import Graph, Node, Value
from ...ir.registry import REGISTRY
from .irgen import BYTES, FnBuilder, ModuleBuilder, storage_ty
from ...passes.memory import plan_memory

ALIGN = 64


def nbytes(v: Value) -> int:
    return v.type.size * BYTES[storage_ty(v.dtype)]


@dataclass
class ModuleCodegen:
    """Owns the module text, the arena layout and the graph -> function names."""
    mod: ModuleBuilder
    arena_size: int = 0
    fn_names: dict = field(default_factory=dict)
    fns: dict = field(default_factory=dict)            # id(graph) -> its GraphFn
    main_fn: "GraphFn | None" = None

    def alloc(self, size: int) -> int:
        off = self.arena_size
        self.arena_size += -(-max(size, 1) // ALIGN) * ALIGN
        return off

    def function_for(self, g: Graph, donate: tuple = (), keep: frozenset = frozenset()) -> str:
        """Emit (once) the function of graph `g`; returns its @name. `donate` as in generate();
        `keep`: output positions that are the input at the same position and that the caller
        passes as the same buffer (a loop's pass-through carries), so nothing is copied."""
        if id(g) not in self.fn_names:
            name = self.mod.unique("g_" + "".join(ch if ch.isalnum() else "_" for ch in g.name)[:40] + "_")
            self.fn_names[id(g)] = name
            fn = self.fns[id(g)] = GraphFn(self, g, name, donate, keep)
            if self.main_fn is None:
                self.main_fn = fn
            fn.emit()
        return "@" + self.fn_names[id(g)]


class GraphFn:
    """Lowers one graph into one function."""

    def __init__(self, cg: ModuleCodegen, g: Graph, name: str, donate: tuple = (), keep: frozenset = frozenset()):
        self.cg, self.g, self.name = cg, g, name
        self.keep = frozenset(i for i in keep if g.outputs[i] is g.inputs[i])
        # buffers from the memory planner (liveness reuse, in-place, donated inputs)
        self.plan = plan_memory(g, donate)
        self.buf_off: dict[int, int] = {}
        # a graph output is produced straight into the caller's output buffer (no arena slot,
        # no copy at the end); repeated outputs and passthrough inputs are still copied
        self.direct: dict[int, int] = {}
        self.direct_ptr: dict[int, str] = {}
        in_ids = {id(v) for v in g.inputs}
        # a value that is also a donated output lives in the donated input's buffer (the same
        # value may be a user output too, e.g. `return p * 1.0` simplified to the update)
        in_ids |= {id(g.outputs[j]) for j in self.plan.donated}
        for i, v in enumerate(g.outputs):
            if id(v) not in self.direct and id(v) not in in_ids and i not in self.plan.donated:
                self.direct[id(v)] = i
        self.b = FnBuilder(name, f"void @{name}(ptr noalias %ins, ptr noalias %outs, ptr noalias %arena) #0",
                           cg.mod)
        self.ptrs: dict[int, str] = {}

    # -- what lowering rules use ----------------------------------------------------------------
    def ptr(self, v: Value) -> str:
        return self.ptrs[id(v)]

    def scratch(self, size: int) -> str:
        """A private arena region for a kernel's temporaries."""
        return self.b.gep("i8", "%arena", self.cg.alloc(size))

    def ptr_array(self, ptrs: list[str]) -> str:
        """An on-stack array of pointers (for calling a subgraph function)."""
        arr = self.b.alloca("ptr", "pa", max(len(ptrs), 1))
        for k, p in enumerate(ptrs):
            self.b.store("ptr", p, arr, k)
        return arr

    # -- emission -------------------------------------------------------------------------------
    def emit(self) -> None:
        b = self.b
        for i, v in enumerate(self.g.inputs):
            self.ptrs[id(v)] = b.load("ptr", "%ins", i)
        for node in self.g.nodes:
            self._lower(node)
        for i, v in enumerate(self.g.outputs):
            if i in self.plan.donated or i in self.keep:   # already in the caller's buffer
                continue
            if self.direct.get(id(v)) == i and self.ptrs.get(id(v)) == self.direct_ptr.get(id(v)):
                continue                     # produced in place (see __init__); a rule that
                                             # re-pointed its result (custom_vjp) is copied
            dst = b.load("ptr", "%outs", i)
            b.memcpy(dst, self.ptr(v), nbytes(v))
        self.cg.mod.functions.append(b.render())

    def _planned(self, v: Value) -> str:
        """The value's buffer: a planned (reused) arena slot, a donated input, or a new slot
        for values the planner does not see (nested bodies lowered inline)."""
        if id(v) in self.direct:
            p = self.b.load("ptr", "%outs", self.direct[id(v)])
            self.direct_ptr[id(v)] = p
            return p
        buf = self.plan.buffer_of.get(id(v))
        if buf is None:
            return self.b.gep("i8", "%arena", self.cg.alloc(nbytes(v)))
        if isinstance(buf, tuple):
            return self.ptrs[id(self.g.inputs[buf[1]])]
        if buf not in self.buf_off:
            self.buf_off[buf] = self.cg.alloc(self.plan.buffer_bytes[buf])
        return self.b.gep("i8", "%arena", self.buf_off[buf])

    def _lower(self, node: Node) -> None:
        rule = REGISTRY[node.op].lower.get("llvm")
        if rule is None:
            raise BackendError(f"llvm backend: no lowering for op {node.op!r}")
        if node.op != "constant":
            for v in node.outputs:
                self.ptrs[id(v)] = self._planned(v)
        ins = [self.ptr(v) for v in node.inputs]
        outs = [self.ptrs.get(id(v), "") for v in node.outputs]
        self.b.emit(f"; {node.op} {' '.join(str(v.type) for v in node.outputs)}"
                    + (f"  {node.scope}" if node.scope else ""))
        rule(self, node, ins, outs)


def generate(g: Graph, donate: tuple = ()) -> tuple[str, int, str, dict]:
    """(module IR text, arena bytes, entry function name, donated output -> input) for `g`.
    `donate`: (output, input) pairs the caller allows to be updated in place."""
    cg = ModuleCodegen(ModuleBuilder(g.name))
    entry = cg.function_for(g, tuple(donate))[1:]
    fn = cg.main_fn
    return cg.mod.render(), cg.arena_size, entry, dict(fn.plan.donated) if fn else {}
