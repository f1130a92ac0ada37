"""The host side of a compiled graph: a flat list of steps over numbered buffer slots.

Kernels run on the device; the host only allocates outputs (from the device's memory pool),
launches kernels, calls GEMM (cuBLAS through CuPy on a GPU) and drives structured control flow
(cond reads its one-byte predicate, while_loop/scan loop on the host around subprograms).
A slot is released after its last use, so the pool recycles its memory within one call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import BackendError
from ...ir.graph import Graph, Node, Value
from ...ir.registry import REGISTRY
from .module import Kernel, Module


@dataclass
class Step:
    run: Callable           # run(device, env)
    reads: tuple            # slots read
    writes: tuple           # slots written
    what: str = ""


@dataclass
class Program:
    n_in: int
    in_slots: list
    out_slots: list
    steps: list = field(default_factory=list)
    n_slots: int = 0
    consts: dict = field(default_factory=dict)   # slot -> numpy array (uploaded once)
    frees: list = field(default_factory=list)    # per step: slots dead after it

    def finish(self) -> None:
        last: dict[int, int] = {}
        for k, s in enumerate(self.steps):
            for slot in s.reads + s.writes:
                last[slot] = k
        keep = set(self.in_slots) | set(self.out_slots) | set(self.consts)
        self.frees = [[] for _ in self.steps]
        for slot, k in last.items():
            if slot not in keep:
                self.frees[k].append(slot)

    _uploaded: tuple = (None, {})                # (device, slot -> device array)

    def run(self, dev, args: list) -> list:
        if self._uploaded[0] is not dev:     # constants go to the device once
            self._uploaded = (dev, {s: dev.upload(a) for s, a in self.consts.items()})
        env: list = [None] * self.n_slots
        for slot, a in zip(self.in_slots, args):
            env[slot] = a
        for slot, a in self._uploaded[1].items():
            env[slot] = a
        for step, dead in zip(self.steps, self.frees):
            step.run(dev, env)
            for slot in dead:
                env[slot] = None
        return [env[s] for s in self.out_slots]


class ProgramBuilder:
    """Lowers one graph (main or a control-flow body) into a Program; kernels go into the
    shared Module. Lowering rules (lowering.py) call `launch`, `host` and `slot`."""

    def __init__(self, module: Module, graph: Graph, subprograms: dict):
        self.module = module
        self.graph = graph
        self.subprograms = subprograms      # id(Graph) -> Program, shared by the whole module
        self.slot_of: dict[int, int] = {}
        self.prog = Program(len(graph.inputs), [], [])

    # -- slots ----------------------------------------------------------------------------------
    def new_slot(self) -> int:
        self.prog.n_slots += 1
        return self.prog.n_slots - 1

    def slot(self, v: Value) -> int:
        if id(v) not in self.slot_of:
            self.slot_of[id(v)] = self.new_slot()
        return self.slot_of[id(v)]

    def alias(self, v: Value, slot: int) -> None:
        self.slot_of[id(v)] = slot

    # -- steps ----------------------------------------------------------------------------------
    def host(self, fn: Callable, reads, writes, what: str = "") -> None:
        self.prog.steps.append(Step(fn, tuple(reads), tuple(writes), what))

    def launch(self, kernel: Kernel, in_slots: list, outs: list, tail: list = ()) -> None:
        """Allocate `outs` ([(slot, shape, numpy dtype)]) and launch `kernel` on
        ins + outs + tail (inputs passed after the outputs)."""
        self.module.add(kernel)
        out_slots = [s for s, _, _ in outs]
        alloc = [(s, tuple(shape), np.dtype(dt)) for s, shape, dt in outs]
        order = list(in_slots) + out_slots + list(tail)
        name, grid, block = kernel.name, kernel.grid, kernel.block

        def run(dev, env):
            for s, shape, dt in alloc:
                if env[s] is None:
                    env[s] = dev.empty(shape, dt)
            dev.launch(name, grid, block, [env[s] for s in order])
        self.host(run, list(in_slots) + list(tail), out_slots, name)

    def alloc_for(self, v: Value) -> tuple:
        return (self.slot(v), v.type.shape, v.type.dtype.storage)

    def subprogram(self, g: Graph) -> Program:
        if id(g) not in self.subprograms:
            self.subprograms[id(g)] = build_program(self.module, g, self.subprograms)
        return self.subprograms[id(g)]

    # -- lowering -------------------------------------------------------------------------------
    def lower_node(self, node: Node) -> None:
        rule = REGISTRY[node.op].lower.get("cuda")
        if rule is None:
            raise BackendError(f"cuda backend: no lowering for op {node.op!r}")
        rule(self, node)

    def lower_nodes(self, nodes) -> None:
        for n in nodes:
            self.lower_node(n)


def build_program(module: Module, g: Graph, subprograms: dict | None = None) -> Program:
    pb = ProgramBuilder(module, g, {} if subprograms is None else subprograms)
    pb.prog.in_slots = [pb.slot(v) for v in g.inputs]
    pb.lower_nodes(g.nodes)
    outs = []
    seen: set = set(pb.prog.in_slots) | set(pb.prog.consts)
    for v in g.outputs:
        s = pb.slot(v)
        if s in seen:     # an input, a constant or a repeated output: its own copy (callers own outputs)
            t = pb.new_slot()
            pb.host(lambda dev, env, s=s, t=t: env.__setitem__(t, dev.copy(env[s])), [s], [t], "copy")
            s = t
        seen.add(s)
        outs.append(s)
    pb.prog.out_slots = outs
    pb.prog.finish()
    return pb.prog
