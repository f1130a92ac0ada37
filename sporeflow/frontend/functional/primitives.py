"""MindSpore's primitive-style op classes, instantiated then called: `ops.MatMul(transpose_b=True)(x, w)`.

One table row per class: its name, the functional op it calls, and its constructor attributes
with their defaults (MindSpore's). The classes are generated from the table, so each is just
"remember the attributes, call the functional op" and behaves the same eagerly and traced.
Also here: HyperMap / Map / MultitypeFuncGraph / partial, the functional-programming helpers
MindSpore's optimizers and tutorials use.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from ...ir import dtypes as D
from ...core import lax
from ..tensor import Tensor
from . import array_ops as A
from . import comm_ops as CO
from . import composite_ops as C
from . import index_ops as I
from . import linalg_ops as L
from . import math_ops as M
from . import nn_ops as N
from . import state_ops as S
from ._core import tensor


class Primitive:
    """Base of the primitive-style classes: attributes given at construction, tensors at call."""
    _fn: Callable = None
    _defaults: dict = {}

    def __init__(self, *args, **kwargs):
        names = list(self._defaults)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} positional attribute(s)")
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unknown attribute(s) {sorted(unknown)}; "
                            f"it has {names}")
        self.attrs = dict(self._defaults)
        self.attrs.update(zip(names, args))
        self.attrs.update(kwargs)
        self.name = type(self).__name__

    def add_prim_attr(self, name: str, value) -> "Primitive":
        self.attrs[name] = value
        return self

    def __call__(self, *args, **kwargs):
        return type(self)._fn(*args, **kwargs, **self.attrs)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"Prim[{self.name}]" + (f"<{inner}>" if inner else "")


def _axes_or_all(axis):
    return None if axis == () or axis == [] else axis


def _matmul(x, y, transpose_a=False, transpose_b=False):
    x, y = tensor(x), tensor(y)
    if transpose_a:
        x = A.swapaxes(x, -1, -2)
    if transpose_b:
        y = A.swapaxes(y, -1, -2)
    return A.matmul(x, y)


def _argmax(x, axis=-1, output_type=D.int32):
    return A.cast(M.argmax(x, axis), output_type)


def _argmin(x, axis=-1, output_type=D.int32):
    return A.cast(M.argmin(x, axis), output_type)


def _squeeze(x, axis=()):
    return A.squeeze(x, _axes_or_all(axis))


def _shape(x):
    return tuple(tensor(x).shape)


def _one_hot(indices, depth, on_value, off_value, axis=-1):
    on, off = tensor(on_value), tensor(off_value)
    hot = A.one_hot(indices, depth, 1.0, 0.0, axis)
    return A.where(A.cast(hot, D.bool_), on, off)


def _arg_with_value(reduce, arg):
    def fn(x, axis=0, keep_dims=False):
        x = tensor(x)
        return A.cast(arg(x, axis, keep_dims), D.int32), reduce(x, axis, keep_dims)
    return fn


def _conv2d(x, weight, out_channel=None, kernel_size=None, mode=1, pad_mode="valid", pad=0, stride=1,
            dilation=1, group=1, data_format="NCHW"):
    """ops.Conv2D: weight [out_channel, in/group, kh, kw]; `pad` is an int or (top, bottom, left, right)."""
    w = tensor(weight)
    if out_channel is not None and w.shape[0] != out_channel:
        raise ValueError(f"Conv2D: out_channel={out_channel} but the weight has {w.shape[0]} output channels")
    if data_format != "NCHW":
        raise NotImplementedError("Conv2D: only data_format='NCHW' is supported")
    return N.conv2d(x, w, None, stride, pad_mode.lower(), pad, dilation, group)


def _split(x, axis=0, output_num=1):
    x = tensor(x)
    n = x.shape[axis]
    if n % output_num:
        raise ValueError(f"Split: dim {axis} of size {n} does not split into {output_num} equal parts")
    return A.split(x, n // output_num, axis)


def _pad(x, paddings=()):
    """ops.Pad(paddings): ((before, after), ...) per dim, from the FIRST dim."""
    x = tensor(x)
    if len(paddings) != x.ndim:
        raise ValueError(f"Pad: paddings has {len(paddings)} pairs for a tensor of rank {x.ndim}")
    flat = [int(v) for pair in reversed(list(paddings)) for v in pair]
    return A.pad(x, flat)


def _topk(x, k, sorted=True):
    return L.topk(x, int(k), None, True, sorted)


# name -> (function, {attribute: default}); the function takes the call arguments, then the
# attributes as keywords
TABLE: dict[str, tuple[Callable, dict]] = {
    # elementwise math
    "Add": (M.add, {}), "Sub": (M.sub, {}), "Mul": (M.mul, {}), "Div": (M.div, {}), "RealDiv": (M.div, {}),
    "FloorDiv": (M.floor_divide, {}), "FloorMod": (M.remainder, {}), "Mod": (M.remainder, {}),
    "Pow": (M.pow, {}), "Maximum": (M.maximum, {}), "Minimum": (M.minimum, {}),
    "AddN": (lambda xs: functools.reduce(M.add, xs), {}),
    "Neg": (M.neg, {}), "Abs": (M.abs, {}), "Sign": (M.sign, {}), "Square": (M.square, {}),
    "Sqrt": (M.sqrt, {}), "Rsqrt": (M.rsqrt, {}), "Reciprocal": (M.reciprocal, {}),
    "Exp": (M.exp, {}), "Log": (M.log, {}), "Log1p": (M.log1p, {}), "Expm1": (M.expm1, {}),
    "Sin": (M.sin, {}), "Cos": (M.cos, {}), "Tan": (M.tan, {}), "Tanh": (M.tanh, {}), "Erf": (M.erf, {}),
    "Floor": (M.floor, {}), "Ceil": (M.ceil, {}), "IsFinite": (M.isfinite, {}), "IsNan": (M.isnan, {}),
    # comparisons and logic
    "Equal": (M.equal, {}), "NotEqual": (M.not_equal, {}), "Less": (M.less, {}), "LessEqual": (M.less_equal, {}),
    "Greater": (M.greater, {}), "GreaterEqual": (M.greater_equal, {}), "LogicalAnd": (M.logical_and, {}),
    "LogicalOr": (M.logical_or, {}), "LogicalNot": (M.logical_not, {}), "Select": (A.select, {}),
    # activations
    "ReLU": (M.relu, {}), "ReLU6": (M.relu6, {}), "Sigmoid": (M.sigmoid, {}), "SiLU": (M.silu, {}),
    "GeLU": (M.gelu, {}), "FastGeLU": (lambda x: M.gelu(x, "tanh"), {}), "Softplus": (M.softplus, {}),
    "LeakyReLU": (lambda x, alpha=0.2: M.leaky_relu(x, alpha), {"alpha": 0.2}),
    "Softmax": (lambda x, axis=-1: N.softmax(x, axis), {"axis": -1}),
    "LogSoftmax": (lambda x, axis=-1: N.log_softmax(x, axis), {"axis": -1}),
    # reductions (MindSpore's axis=() means every axis)
    "ReduceSum": (lambda x, axis=(), keep_dims=False: M.sum(x, _axes_or_all(axis), keep_dims), {"keep_dims": False}),
    "ReduceMean": (lambda x, axis=(), keep_dims=False: M.mean(x, _axes_or_all(axis), keep_dims),
                   {"keep_dims": False}),
    "ReduceMax": (lambda x, axis=(), keep_dims=False: M.amax(x, _axes_or_all(axis), keep_dims), {"keep_dims": False}),
    "ReduceMin": (lambda x, axis=(), keep_dims=False: M.amin(x, _axes_or_all(axis), keep_dims), {"keep_dims": False}),
    "ReduceAll": (lambda x, axis=(), keep_dims=False: M.all(x, _axes_or_all(axis), keep_dims), {"keep_dims": False}),
    "ReduceAny": (lambda x, axis=(), keep_dims=False: M.any(x, _axes_or_all(axis), keep_dims), {"keep_dims": False}),
    "Argmax": (_argmax, {"axis": -1, "output_type": D.int32}),
    "Argmin": (_argmin, {"axis": -1, "output_type": D.int32}),
    "ArgMaxWithValue": (_arg_with_value(M.amax, M.argmax), {"axis": 0, "keep_dims": False}),
    "ArgMinWithValue": (_arg_with_value(M.amin, M.argmin), {"axis": 0, "keep_dims": False}),
    "TopK": (_topk, {"sorted": True}),
    # linear algebra / nn
    "MatMul": (_matmul, {"transpose_a": False, "transpose_b": False}),
    "BatchMatMul": (_matmul, {"transpose_a": False, "transpose_b": False}),
    "BiasAdd": (lambda x, b, data_format="NCHW": N.bias_add(x, b), {"data_format": "NCHW"}),
    "OneHot": (_one_hot, {"axis": -1}),
    "Conv2D": (_conv2d, {"out_channel": None, "kernel_size": None, "mode": 1, "pad_mode": "valid", "pad": 0,
                         "stride": 1, "dilation": 1, "group": 1, "data_format": "NCHW"}),
    "Einsum": (lambda xs, equation: C.einsum(equation, *xs), {"equation": None}),
    # shape and creation
    "Reshape": (A.reshape, {}), "Transpose": (A.transpose, {}), "ExpandDims": (A.expand_dims, {}),
    "Squeeze": (_squeeze, {"axis": ()}), "Flatten": (lambda x: A.flatten(x), {}),
    "Concat": (lambda xs, axis=0: A.cat(list(xs), axis), {"axis": 0}),
    "Stack": (lambda xs, axis=0: A.stack(list(xs), axis), {"axis": 0}),
    "Tile": (A.tile, {}), "BroadcastTo": (lambda x, shape=(): A.broadcast_to(x, shape), {"shape": ()}),
    "Split": (_split, {"axis": 0, "output_num": 1}),
    "StridedSlice": (I.strided_slice, {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0,
                                       "shrink_axis_mask": 0}),
    "Pad": (_pad, {"paddings": ()}),
    "GatherNd": (I.gather_nd, {}), "ScatterNd": (I.scatter_nd, {}),
    "TensorScatterUpdate": (I.tensor_scatter_update, {}), "TensorScatterAdd": (I.tensor_scatter_add, {}),
    "Unique": (I.unique, {}), "Roll": (lambda x, shift, axis: I.roll(x, shift, axis), {"shift": 0, "axis": 0}),
    "Gather": (lambda x, idx, axis, batch_dims=0: A.gather(x, idx, axis), {"batch_dims": 0}),
    "Cast": (A.cast, {}), "Shape": (_shape, {}), "Size": (lambda x: tensor(x).size, {}),
    "Rank": (lambda x: tensor(x).ndim, {}),
    "OnesLike": (lambda x: A.ones_like(x), {}), "ZerosLike": (lambda x: A.zeros_like(x), {}),
    "Ones": (lambda shape, dtype=D.float32: A.ones(shape, dtype), {}),
    "Zeros": (lambda shape, dtype=D.float32: A.zeros(shape, dtype), {}),
    "Fill": (A.fill, {}), "Identity": (lambda x: lax.convert(tensor(x), tensor(x).dtype), {}),
    "StopGradient": (A.stop_gradient, {}),
    # state
    "Assign": (S.assign, {}), "AssignAdd": (S.assign_add, {}), "AssignSub": (S.assign_sub, {}),
    "Depend": (S.depend, {}), "Print": (S.print_, {}),
    # collectives (MindSpore's defaults: the world group)
    "AllReduce": (CO.all_reduce, {"op": CO.ReduceOp.SUM, "group": None}),
    "AllGather": (CO.all_gather, {"group": None}),
    "Broadcast": (CO._broadcast_tuple, {"root_rank": 0, "group": None}),
    "ReduceScatter": (CO.reduce_scatter, {"op": CO.ReduceOp.SUM, "group": None}),
}


def _make_class(name: str, fn: Callable, defaults: dict) -> type:
    return type(name, (Primitive,), {"_fn": staticmethod(fn), "_defaults": dict(defaults),
                                     "__doc__": f"ops.{name}: MindSpore's primitive class (calls "
                                                f"{getattr(fn, '__name__', 'a composite')}).",
                                     "__module__": __name__})


CLASSES = {name: _make_class(name, fn, d) for name, (fn, d) in TABLE.items()}
globals().update(CLASSES)
__all__ = ["Primitive", "HyperMap", "Map", "MultitypeFuncGraph", "partial", "Partial", *CLASSES]


# ---- functional-programming helpers ------------------------------------------------------------
def _map_seqs(fn: Callable, seqs: tuple, reverse: bool = False) -> Any:
    """fn over the elements of equally long tuples/lists, recursively; other values: fn(*values)."""
    first = seqs[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in seqs):
            raise ValueError("HyperMap: the sequences must be tuples/lists of the same length")
        idx = range(len(first) - 1, -1, -1) if reverse else range(len(first))
        out = {i: _map_seqs(fn, tuple(s[i] for s in seqs), reverse) for i in idx}
        items = [out[i] for i in range(len(first))]
        return tuple(items) if isinstance(first, tuple) else items
    return fn(*seqs)


class HyperMap:
    """ops.HyperMap(ops=None, reverse=False): apply an op over (nested) tuples/lists of tensors."""

    def __init__(self, ops: Callable | None = None, reverse: bool = False):
        self.ops, self.reverse = ops, reverse

    def __call__(self, *args):
        fn, seqs = (self.ops, args) if self.ops is not None else (args[0], args[1:])
        if not seqs:
            raise TypeError("HyperMap needs at least one sequence")
        return _map_seqs(fn, seqs, self.reverse)


class Map(HyperMap):
    """ops.Map: like HyperMap, one level deep."""

    def __call__(self, *args):
        fn, seqs = (self.ops, args) if self.ops is not None else (args[0], args[1:])
        n = len(seqs[0])
        order = range(n - 1, -1, -1) if self.reverse else range(n)
        out = {i: fn(*(s[i] for s in seqs)) for i in order}
        items = [out[i] for i in range(n)]
        return tuple(items) if isinstance(seqs[0], tuple) else items


def _type_name(x) -> str:
    if isinstance(x, Tensor):
        return "Tensor"
    if isinstance(x, bool):
        return "Bool"
    if isinstance(x, (int, float)):
        return "Number"
    if isinstance(x, str):
        return "String"
    if x is None:
        return "None"
    if isinstance(x, tuple):
        return "Tuple"
    if isinstance(x, list):
        return "List"
    if isinstance(x, dict):
        return "Dictionary"
    return "Function" if callable(x) else type(x).__name__


class MultitypeFuncGraph:
    """ops.MultitypeFuncGraph(name): a function overloaded on argument types, registered with
    `@f.register("Tensor", "Number")` (MindSpore type names; "Bool" also matches "Number")."""

    def __init__(self, name: str, read_value: bool = False):
        self.name = name
        self.entries: list[tuple[tuple[str, ...], Callable]] = []

    def register(self, *type_names: str):
        def deco(fn):
            self.entries.append((tuple(type_names), fn))
            return fn
        return deco

    def __call__(self, *args):
        got = tuple(_type_name(a) for a in args)
        for types, fn in self.entries:
            if len(types) == len(args) and all(t == g or (t == "Number" and g == "Bool") for t, g in zip(types, got)):
                return fn(*args)
        raise TypeError(f"MultitypeFuncGraph {self.name!r}: no overload for ({', '.join(got)}); "
                        f"registered: {[t for t, _ in self.entries]}")


def partial(func: Callable, *args) -> Callable:
    """ops.partial(func, *args): fix the first arguments."""
    return functools.partial(func, *args)


class Partial:
    """ops.Partial()(func, *args)."""

    def __call__(self, func: Callable, *args) -> Callable:
        return functools.partial(func, *args)
