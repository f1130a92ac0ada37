"""`sf.vmap(fn, in_axes=0, out_axes=0)` with MindSpore 2.x semantics.

The function is traced once on per-example types into a fresh Trace, the vmap pass
(`passes.vmap.batch_graph`) adds the batch axis, and the batched graph is `inline`d: eagerly
it runs on the interpreter, under `sf.jit` or another transform it is recorded into the
enclosing trace, which is why vmap composes with itself, with grad and with jit.

Values the function reads without receiving them (Parameters of a Cell, closure-captured
tensors and outer tracers) are shared by every example (in_axes=None), as in MindSpore.

Model ensembling: `vmap(CellList([net1, ..., netE]))` (or a list/tuple of Cells) stacks the
members' Parameters along a new axis 0 and runs the first member's construct once with its
Parameters batched: member i sees its own weights and, with in_axes=0, its own inputs.
Parameter assignments inside an ensemble are split back into the members' Parameters.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ShapeError
from ..ir.types import TensorType
from .autograph import convert
from .jit import save_graph
from .pytree import join_leaves, split_leaves, tree_flatten, tree_unflatten
from ..core.source import user_line_description, wrap_methods
from .tensor import Parameter, Tensor
from ..core.trace import Trace, current_trace, inline
from ..passes.vmap import batch_graph
from .cell import Cell
from .nn.layer.container import CellList
from . import functional as F
from .functional import assign


class VmapError(ShapeError):
    """A bad in_axes/out_axes or inconsistent batch sizes; the message ends with the user's line."""

    def __init__(self, msg: str):
        super().__init__(f"{msg}\n  at {user_line_description()}")


# ---- axes specs: a pytree prefix of the arguments -------------------------------------------
def _broadcast_prefix(spec, tree, where: str) -> list:
    """One axis per leaf of `tree`, from `spec` (an int/None for a whole subtree, or a tuple/list/
    dict matching the structure of `tree` as far as it goes)."""
    if spec is None or isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return [None if spec is None else int(spec)] * len(tree_flatten(tree)[0])
    if isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(spec) != len(tree):
            raise VmapError(f"vmap: {where} has {len(spec)} entries but the value has {len(tree)}: "
                            f"{spec!r} for a {type(tree).__name__} of length {len(tree)}")
        return [a for i, (s, t) in enumerate(zip(spec, tree)) for a in _broadcast_prefix(s, t, f"{where}[{i}]")]
    if isinstance(spec, dict) and isinstance(tree, dict):
        if set(spec) != set(tree):
            raise VmapError(f"vmap: {where} has keys {sorted(spec, key=repr)} but the value has "
                            f"{sorted(tree, key=repr)}")
        keys = sorted(tree, key=repr)
        return [a for k in keys for a in _broadcast_prefix(spec[k], tree[k], f"{where}[{k!r}]")]
    raise VmapError(f"vmap: {where} must be an int, None, or a tuple/list/dict matching the value's "
                    f"structure; got {spec!r} for a value of type {type(tree).__name__}")


def _leaf_names(fn, args: Sequence, kwargs: dict) -> list[str]:
    """Human names of the leaves ("argument 'x'", "argument 'params'[1]") for error messages."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    out = []

    def walk(x, label):
        if isinstance(x, (tuple, list)):
            for i, c in enumerate(x):
                walk(c, f"{label}[{i}]")
        elif isinstance(x, dict):
            for k in sorted(x, key=repr):
                walk(x[k], f"{label}[{k!r}]")
        elif x is not None:
            out.append(label)
    for i, a in enumerate(args):
        nm = f"'{names[i]}'" if i < len(names) and names[i] not in ("args", "self") else str(i)
        walk(a, f"argument {nm}")
    for k in sorted(kwargs):
        walk(kwargs[k], f"keyword argument '{k}'")
    return out


def _as_leaf(x):
    return Tensor(x) if isinstance(x, np.ndarray) else x


# ---- ensembles ------------------------------------------------------------------------------------
def _ensemble_members(fn) -> list | None:
    """The member Cells when `fn` is an ensemble (CellList, or a list/tuple of Cells)."""
    if isinstance(fn, (list, tuple)) and fn and all(isinstance(c, Cell) for c in fn):
        return list(fn)
    if isinstance(fn, CellList):
        return list(fn.cells())
    return None


def _member_params(members: list) -> list[list[Parameter]]:
    plists = [list(m.get_parameters()) for m in members]
    first = plists[0]
    for i, ps in enumerate(plists[1:], 1):
        if len(ps) != len(first) or any(p._type != q._type for p, q in zip(ps, first)):
            raise VmapError(
                "vmap over a CellList: the cells must have identical structure; member 0 has parameters "
                f"{[(p.name, p.shape) for p in first]} but member {i} has {[(p.name, p.shape) for p in ps]}")
    return plists


def _stack(params: Sequence[Parameter]) -> Tensor:
    if current_trace() is None:
        return Tensor._wrap(np.stack([p._data for p in params]), params[0].dtype)
    return F.stack(list(params), 0)


# ---- the transform ----------------------------------------------------------------------------------
class VmapFunction:
    """The callable `sf.vmap` returns."""

    def __init__(self, fn, in_axes=0, out_axes=0):
        self.members = _ensemble_members(fn)
        if self.members is None and not callable(fn):
            raise TypeError(f"vmap: fn must be a function, a Cell or a CellList, got {type(fn).__name__}")
        self.fn = self.members[0] if self.members else fn
        self.in_axes, self.out_axes = in_axes, out_axes
        if not (in_axes is None or isinstance(in_axes, (int, tuple, list))) or isinstance(in_axes, bool):
            raise VmapError(f"vmap: in_axes must be an int, None, or a tuple/list with one entry per "
                            f"positional argument; got {in_axes!r}")
        self.__name__ = f"vmap_{getattr(self.fn, '__name__', type(self.fn).__name__)}"

    def sf_wrapped(self) -> list:
        """What the trace depends on (sf.jit reads the Cells' train flags from it)."""
        return [self.fn] + (self.members or [])

    # -- inputs ----------------------------------------------------------------------------------------
    def _in_dims(self, args, kwargs) -> tuple[list, list, list[str]]:
        """Flattened leaves of (args, kwargs), their normalized axes, and their names."""
        spec = self.in_axes
        if isinstance(spec, (tuple, list)):
            if len(spec) != len(args):
                raise VmapError(f"vmap: in_axes has {len(spec)} entries but {self.__name__[5:]} was called with "
                                f"{len(args)} positional arguments (in_axes={spec!r})")
            axes = _broadcast_prefix(tuple(spec), tuple(args), "in_axes")
        else:
            axes = _broadcast_prefix(spec, tuple(args), "in_axes")
        leaves = [_as_leaf(x) for x in tree_flatten((tuple(args), kwargs))[0]]
        # keyword arguments: tensors are mapped over axis 0 (as in JAX), anything else is static
        axes += [0 if isinstance(x, Tensor) else None for x in leaves[len(axes):]]
        names = _leaf_names(self.fn, args, kwargs)
        out = []
        for x, a, nm in zip(leaves, axes, names):
            if a is None:
                out.append(None)
                continue
            if not isinstance(x, Tensor):
                raise VmapError(f"vmap: {nm} is a {type(x).__name__}, not a Tensor, so it cannot be mapped over "
                                f"axis {a}; give it in_axes None")
            if not -x.ndim <= a < x.ndim:
                raise VmapError(f"vmap: in_axes {a} is out of range for {nm} of shape {tuple(x.shape)} "
                                f"(rank {x.ndim})")
            out.append(a % x.ndim)
        return leaves, out, names

    def _size(self, leaves, dims, names) -> int:
        sizes = [(nm, tuple(x.shape), d, x.shape[d]) for x, d, nm in zip(leaves, dims, names) if d is not None]
        if self.members:
            sizes.insert(0, ("the CellList", (len(self.members),), 0, len(self.members)))
        if not sizes:
            raise VmapError("vmap: at least one argument must be mapped: in_axes is None for every argument")
        if len({s for *_, s in sizes}) > 1:
            shown = "; ".join(f"{nm} has shape {shp} and is mapped over axis {d} (size {s})"
                              for nm, shp, d, s in sizes)
            raise VmapError(f"vmap: inconsistent batch sizes: the 'axis_size' of each argument in the scope "
                            f"of 'vmap' should be equal, but {shown}")
        return sizes[0][3]

    # -- call ------------------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        leaves, dims, names = self._in_dims(args, kwargs)
        size = self._size(leaves, dims, names)
        _, td = tree_flatten((tuple(args), kwargs))
        is_t = [isinstance(x, Tensor) for x in leaves]
        with Trace(self.__name__) as tr:
            call = []
            for x, d, t in zip(leaves, dims, is_t):
                if not t:
                    call.append(x)
                    continue
                shp = tuple(x.shape) if d is None else x.shape[:d] + x.shape[d + 1:]
                call.append(tr.new_input(TensorType(shp, x.dtype)))
            cargs, ckwargs = tree_unflatten(td, call)
            out = convert(self.fn)(*cargs, **ckwargs)
            out_leaves, out_td = tree_flatten(out)
            out_static, tensors = split_leaves(out_leaves, lambda x: isinstance(x, Tensor))
            graph, captured, updated = tr.finish(tensors)
        # captured values are shared, except an ensemble's stacked Parameters
        plists = _member_params(self.members) if self.members else None
        index = {id(p): k for k, p in enumerate(plists[0])} if plists else {}
        cap_dims = [0 if id(c) in index else None for c in captured]
        cap_vals = [_stack([ps[index[id(c)]] for ps in plists]) if id(c) in index else c for c in captured]
        out_axes = self._out_axes(out, out_leaves, tensors)
        upd_axes = [0 if id(p) in index else None for p in updated]
        in_dims = [d for d, t in zip(dims, is_t) if t] + cap_dims
        save_graph(graph, "vmap_in")
        bg, odims = batch_graph(graph, in_dims, size, out_axes + upd_axes, name=self.__name__)
        save_graph(bg, "vmap")
        n = len(tensors)
        for i, (want, got) in enumerate(zip(out_axes + upd_axes, odims)):
            if want is None and got is not None:
                what = f"output {i}" if i < n else f"the new value of Parameter {updated[i - n].name!r}"
                raise VmapError(f"vmap: {what} depends on the mapped inputs, so it needs a batch axis, but its "
                                f"out_axes is None (or it updates a Parameter shared by every example)")
        phys = [x for x, t in zip(leaves, is_t) if t] + cap_vals
        res = inline(bg, phys)
        self._write_updates(updated, res[n:], index, plists)
        return join_leaves(out_td, out_static, res[:n])

    def _out_axes(self, out, out_leaves, tensors) -> list:
        spec = self.out_axes
        if isinstance(spec, (tuple, list)) and len(spec) == 1 and not isinstance(out, (tuple, list)):
            spec = spec[0]
        axes = _broadcast_prefix(spec, out, "out_axes")
        res = []
        for x, a in zip(out_leaves, axes):
            if not isinstance(x, Tensor):
                continue
            if a is not None:
                r = x.ndim + 1
                if not -r <= a < r:
                    raise VmapError(f"vmap: out_axes {a} is out of range for an output of per-example shape "
                                    f"{tuple(x.shape)} (batched rank {r})")
                a %= r
            res.append(a)
        return res

    @staticmethod
    def _write_updates(updated, values, index, plists) -> None:
        for p, v in zip(updated, values):
            if id(p) in index:                      # an ensemble Parameter: member i gets slice i
                for i, ps in enumerate(plists):
                    assign(ps[index[id(p)]], v[i])
            else:
                assign(p, v)


wrap_methods(VmapFunction)   # user mistakes surface at the user's line


def vmap(fn: Callable | Any, in_axes=0, out_axes=0) -> VmapFunction:
    """Vectorizing map (MindSpore `ms.vmap`): `fn` mapped over axis `in_axes` of its arguments,
    results stacked along `out_axes`. in_axes: an int for every argument, or one entry per
    positional argument (int, None, or a nested tuple for tuple arguments); negative axes count
    from the end. out_axes: an int or one entry per output; an output that does not depend on
    the mapped inputs is broadcast. fn may be a function, a Cell, or a CellList (ensembling)."""
    return VmapFunction(fn, in_axes, out_axes)
