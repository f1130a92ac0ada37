"""nn.GraphCell: a Cell that runs a loaded graph (`sf.load` of a MindIR or ONNX file).

The graph's inputs are the user's tensors followed by its weights, which become this Cell's
Parameters (so a checkpoint loads into them and `params_init` can replace them). Called eagerly
the graph runs on the interpreter; inside `jit`, GRAPH_MODE or Model it is inlined into the
caller's graph and compiled with it.
"""
from __future__ import annotations

from ....errors import ShapeError
from ...cell import Cell
from ...tensor import Parameter, Tensor
from ....core.trace import inline


class GraphCell(Cell):
    """GraphCell(graph, params_init=None): `graph` is what sf.load returns; `params_init` maps
    parameter names to Tensors/Parameters that replace the loaded values."""

    def __init__(self, graph, params_init: dict | None = None):
        super().__init__()
        if not hasattr(graph, "graph") or not hasattr(graph, "parameters"):
            raise TypeError(f"GraphCell: expected the graph that sf.load returns, got {type(graph).__name__}")
        object.__setattr__(self, "_graph", graph.graph)
        object.__setattr__(self, "_num_inputs", graph.num_inputs)
        replace = dict(params_init or {})
        unknown = sorted(set(replace) - {name for name, _, _ in graph.parameters})
        if unknown:
            raise ValueError(f"GraphCell: params_init names {unknown}, which the graph does not have")
        order = []
        for i, (name, arr, dt) in enumerate(graph.parameters):
            value = replace.get(name, Tensor._wrap(arr, dt))
            p = Parameter(value, name=name, requires_grad=False)
            if p._type != self._graph.inputs[self._num_inputs + i].type:
                raise ShapeError(f"GraphCell: params_init['{name}'] is {p._type}, the graph needs "
                                 f"{self._graph.inputs[self._num_inputs + i].type}")
            self.insert_param_to_cell(f"param{i}", p)
            order.append(p)
        object.__setattr__(self, "_ordered_params", order)

    def construct(self, *inputs):
        want = self._graph.in_types[:self._num_inputs]
        if len(inputs) != len(want):
            raise TypeError(f"GraphCell: the graph takes {len(want)} inputs ({', '.join(map(str, want))}), "
                            f"got {len(inputs)}")
        for i, (x, t) in enumerate(zip(inputs, want)):
            got = getattr(x, "_type", None)
            if got != t:
                raise ShapeError(f"GraphCell: input {i} is {got if got is not None else type(x).__name__}, the "
                                 f"exported graph takes {t} (export again with inputs of the new shape)")
        outs = inline(self._graph, [*inputs, *self._ordered_params])
        return outs[0] if len(outs) == 1 else tuple(outs)
