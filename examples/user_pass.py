"""A user pass in sf.jit's pipeline: strength-reduce `x * 2` to `x + x`.

A pass is a function Graph -> Graph that builds a new graph (never mutating the old one),
registered with a name, an opt level, the passes it requires earlier in the pipeline and the
analyses it preserves. sf.jit(f, pipeline=[...]) runs exactly the named passes; the same names
work in set_context(pipeline=...), `disabled=` and `sporeflow-ir opt --passes`.

  python examples/user_pass.py        prints the IR before and after, and both results
"""
from __future__ import annotations

import numpy as np

import sporeflow as sf
from sporeflow import ops
from sporeflow.ir.graph import Graph, Node
from sporeflow.passes.manager import observers, register_pass
from sporeflow.passes.simplify import Rebuilder, const_of


def _times_two(node: Node, rb: Rebuilder):
    if node.op != "mul" or not node.outputs[0].dtype.is_float:
        return None
    for x, c in ((node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])):
        k = const_of(c)
        if k is not None and np.all(np.asarray(k.array) == 2.0) and x.type == node.outputs[0].type:
            return rb.emit("add", [x, x], {}, node)     # x + x is exactly 2 * x in floating point
    return None


@register_pass("mul2_to_add", opt_level=1, requires=("simplify",), preserves=(),
               doc="x * 2.0 -> x + x (exact)", replace=True)
def mul2_to_add(graph: Graph) -> Graph:
    return Rebuilder(_times_two).graph(graph)


def main() -> None:
    seen: list[tuple[str, Graph]] = []
    observers.append(lambda stage, g: seen.append((stage, g)))
    f = sf.jit(lambda x: ops.relu(x * 2.0).sum(), backend="llvm", pipeline=["simplify", "mul2_to_add", "dce"])
    x = sf.Tensor(np.arange(-3, 3, dtype=np.float32).reshape(2, 3))
    print("result:", f(x), "expected:", float(np.maximum(np.arange(-3, 3) * 2.0, 0).sum()))
    for stage, g in seen:
        print(f"// after {stage}\n{g}")
    try:
        sf.jit(lambda x: x, pipeline=["simplify", "no_such_pass"])
    except sf.errors.SporeflowError as e:
        print("unknown pass:", e)


if __name__ == "__main__":
    main()
