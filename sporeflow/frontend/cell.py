"""nn.Cell: the MindSpore module. Parameters are named by attribute path (`fc1.weight`);
`__call__` runs `construct` eagerly in PYNATIVE mode and compiled in GRAPH mode; while
tracing, each Cell pushes its scope (`Net.fc1`) so IR nodes say where they come from."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

from ..ir import dtypes as D
from .autograph import convert_method
from .autocast import CellAmp, amp_call, amp_mark, needs_amp_call, set_amp_mark
from ..core.source import api_boundary
from .tensor import Parameter
from ..core.trace import current_trace
from ..context import GRAPH_MODE, get_context
from .jit import JitFunction
from .custom_grad import call_with_bprop


class Cell:
    """Base class of all layers and networks. Subclasses define `construct`."""
    __sf_self_converting__ = True   # autograph leaves Cell calls alone: __call__ converts construct

    def __init__(self, auto_prefix: bool = True, flags=None):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_cells", OrderedDict())
        object.__setattr__(self, "_auto_prefix", auto_prefix)
        object.__setattr__(self, "training", False)
        object.__setattr__(self, "_graph_fn", None)
        object.__setattr__(self, "_bprop_cache", {})
        object.__setattr__(self, "_amp", None)

    # -- attribute registration -------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_params" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting "
                               "attributes")
        params, cells = self.__dict__["_params"], self.__dict__["_cells"]
        params.pop(name, None)
        cells.pop(name, None)
        if isinstance(value, Parameter):
            if not value._name_set or value.name == "Parameter":
                value.name = name
                value._name_set = True
            params[name] = value
        elif isinstance(value, Cell):
            if self._auto_prefix:
                value._prefix_names(name)
            cells[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._params.pop(name, None)
        self._cells.pop(name, None)
        object.__delattr__(self, name)

    def _prefix_names(self, prefix: str) -> None:
        for _, p in self.parameters_and_names():
            p.name = f"{prefix}.{p.name}"

    def insert_param_to_cell(self, param_name: str, param: Parameter, check_name_contain_dot=True) -> None:
        setattr(self, param_name, param)

    def insert_child_to_cell(self, child_name: str, child_cell: "Cell") -> None:
        setattr(self, child_name, child_cell)

    # -- traversal ----------------------------------------------------------------------------------
    def cells_and_names(self, cells=None, name_prefix: str = "") -> Iterator[tuple[str, "Cell"]]:
        seen = set() if cells is None else cells
        if id(self) in seen:
            return
        seen.add(id(self))
        yield name_prefix, self
        for n, c in self._cells.items():
            yield from c.cells_and_names(seen, f"{name_prefix}.{n}" if name_prefix else n)

    def name_cells(self) -> dict:
        return OrderedDict(self._cells)

    def cells(self):
        return list(self._cells.values())

    def parameters_and_names(self, name_prefix: str = "", expand: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        for _, cell in self.cells_and_names():
            for p in cell._params.values():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p.name, p
            if not expand:
                break

    def get_parameters(self, expand: bool = True) -> Iterator[Parameter]:
        for _, p in self.parameters_and_names(expand=expand):
            yield p

    def trainable_params(self, recurse: bool = True) -> list[Parameter]:
        return [p for p in self.get_parameters(recurse) if p.requires_grad]

    def untrainable_params(self, recurse: bool = True) -> list[Parameter]:
        return [p for p in self.get_parameters(recurse) if not p.requires_grad]

    def parameters_dict(self, recurse: bool = True) -> "OrderedDict[str, Parameter]":
        return OrderedDict(self.parameters_and_names(expand=recurse))

    # -- modes ----------------------------------------------------------------------------------------
    def set_train(self, mode: bool = True) -> "Cell":
        for _, c in self.cells_and_names():
            object.__setattr__(c, "training", bool(mode))
        return self

    def training_signature(self) -> tuple:
        """What a compiled step depends on besides inputs and Parameters: train/eval mode and the
        compute dtypes (a later to_float recompiles)."""
        return tuple(c.training if amp_mark(c) is None else (c.training, amp_mark(c)) for _, c in self.cells_and_names())

    def set_jit_config(self, jit_config) -> None:
        """Accepted for MindSpore compatibility (see sf.JitConfig); no effect."""
        object.__setattr__(self, "_jit_config", jit_config)

    def set_grad(self, requires_grad: bool = True) -> "Cell":
        return self

    def to_float(self, dst_type) -> "Cell":
        """Compute this Cell (and its sub-Cells without a dtype of their own) in `dst_type`:
        float16/bfloat16 run every float op low and return low-precision outputs, float32 keeps the
        Cell in float32 inside a low-precision network. Parameters stay float32 (the casts are in the
        graph: see frontend/autocast.py and passes/amp.py)."""
        if dst_type not in (D.float16, D.bfloat16, D.float32):
            raise ValueError(f"{type(self).__name__}.to_float: dst_type must be float16, bfloat16 or float32, "
                             f"got {dst_type}")
        if dst_type is D.float32:
            set_amp_mark(self, CellAmp("fp32"))
        else:
            set_amp_mark(self, CellAmp("low", dst_type, low_outputs=True))
        return self

    @property
    def phase(self) -> str:
        return "train" if self.training else "predict"

    # -- calling ----------------------------------------------------------------------------------------
    def construct(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define construct()")

    @api_boundary
    def __call__(self, *args, **kwargs):
        trace = current_trace()
        if trace is not None:
            return self._traced_call(trace, args, kwargs)
        if get_context("mode") == GRAPH_MODE:
            if self._graph_fn is None:
                object.__setattr__(self, "_graph_fn", JitFunction(self, name=type(self).__name__))
            return self._graph_fn(*args, **kwargs)
        if needs_amp_call(self):
            return amp_call(self, type(self).__name__, args, kwargs)
        return self._call_construct(args, kwargs)

    def _call_construct(self, args, kwargs):
        if type(self).bprop is not Cell.bprop:
            return call_with_bprop(self, args, kwargs)
        if current_trace() is not None:   # compiled: Python control flow on tensors is converted
            return convert_method(self, "construct")(*args, **kwargs)
        return self.construct(*args, **kwargs)

    def _traced_call(self, trace, args, kwargs):
        parent = trace.scopes[-1] if trace.scopes else None
        if parent is None:
            scope = type(self).__name__
        else:
            pcell, pscope = parent
            name = next((n for n, c in pcell._cells.items() if c is self), type(self).__name__)
            scope = f"{pscope}.{name}"
        if needs_amp_call(self):
            return amp_call(self, scope, args, kwargs)
        trace.scopes.append((self, scope))
        try:
            return self._call_construct(args, kwargs)
        finally:
            trace.scopes.pop()

    def bprop(self, *args):
        """Override as `bprop(self, *inputs, out, dout)` to give the Cell a custom backward."""
        raise NotImplementedError

    # -- misc ---------------------------------------------------------------------------------------------
    def extend_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}<{self.extend_repr()}>" if self.extend_repr() else f"{type(self).__name__}<"]
        if not self._cells:
            return lines[0] + (">" if not self.extend_repr() else "")
        for n, c in self._cells.items():
            sub = repr(c).replace("\n", "\n  ")
            lines.append(f"  ({n}): {sub}")
        lines.append("  >")
        return "\n".join(lines)

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        for _, p in self.parameters_and_names():
            p.name = prefix + p.name

    def apply(self, fn) -> "Cell":
        for _, c in self.cells_and_names():
            fn(c)
        return self
