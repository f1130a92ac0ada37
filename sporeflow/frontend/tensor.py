"""Tensor (eager, numpy-backed), Tracer (a Tensor standing for a value being traced), and
Parameter. Operators and methods go through `functional` (the `sf.ops` namespace), which
binds primitives, so eager code and traced code share one path."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes as D
from ..ir.dtypes import DType, as_dtype
from ..ir.interpret import run_graph
from ..ir.tensor_format import format_tensor, ms_dtype_name
from ..ir.types import TensorType
from ..core.source import wrap_methods
from ..core.trace import current_trace, install_arrays
from ..core.tracer import Tracer as CoreTracer
from . import placement
from .placement import place, to_host


def _to_storage(data, dtype: DType | None) -> tuple[np.ndarray, DType]:
    """Python/numpy data -> (storage array, dtype); default dtypes follow MindSpore."""
    if isinstance(data, Tensor):
        if isinstance(data, Tracer):
            raise TypeError("Tensor(tracer) is not allowed inside a traced function; use the tracer itself")
        arr, dt = data._data, data.dtype
        if dtype is None or as_dtype(dtype) is dt:
            return arr, dt
        data = D.to_compute(arr, dt)
    if isinstance(data, np.ndarray) and data.dtype == np.uint16 and dtype is not None and \
            as_dtype(dtype) is D.bfloat16:
        return data, D.bfloat16  # already bfloat16 bits
    if isinstance(data, (bool, np.bool_)) and dtype is None:
        return np.asarray(data, dtype=np.bool_), D.bool_
    if isinstance(data, float) and dtype is None:
        return np.asarray(data, dtype=np.float32), D.float32
    if isinstance(data, int) and dtype is None:
        return np.asarray(data, dtype=np.int64), D.int64
    arr = np.asarray(data)
    if dtype is None:
        if arr.dtype == np.float64 and not isinstance(data, np.ndarray):
            dt = D.float32  # lists of Python floats become float32, as in MindSpore
        else:
            dt = D.from_numpy(arr.dtype)
    else:
        dt = as_dtype(dtype)
    if dt is D.bfloat16:
        return D.f32_to_bf16_bits(arr if arr.dtype.kind in "fiu" else arr.astype(np.float32)), dt
    if dt.is_int and arr.dtype.kind == "f":
        arr = np.trunc(arr)
    return np.array(arr, dtype=dt.storage, order="C"), dt


def _no_out(out) -> bool:
    if out is not None:
        raise TypeError("sporeflow tensors are immutable values: out= is not supported; use the result")
    return True


def _keep(keepdims, kw: dict) -> bool:
    """keepdims under any of its spellings (MindSpore keep_dims, numpy/torch keepdims/keepdim)."""
    extra = set(kw) - {"keepdims", "keep_dims", "keepdim", "where", "initial"}
    if extra:
        raise TypeError(f"unexpected keyword argument(s) {sorted(extra)}")
    if kw.get("where") is not None or kw.get("initial") is not None:
        raise TypeError("where=/initial= are not supported; mask with ops.where first")
    for k in ("keepdims", "keep_dims", "keepdim"):
        if k in kw:
            return bool(kw[k])
    return bool(keepdims)


class Tensor:
    """An n-dimensional array. Eager ops run immediately; inside `jit` they are traced."""
    __array_priority__ = 100

    def __init__(self, input_data=None, dtype=None, shape=None, init=None, const_arg=False):
        if input_data is None and shape is not None:
            input_data = np.zeros(shape, dtype=as_dtype(dtype or D.float32).storage)
            if init is not None:
                input_data = _initializer.initializer(init, shape, dtype or D.float32)._data
        if input_data is None:
            raise TypeError("Tensor needs input_data (or shape=...)")
        data, self._dtype = _to_storage(input_data, dtype)
        self._data = place(data)       # on the device under device_target="GPU"
        self._type = TensorType(self._data.shape, self._dtype)

    @classmethod
    def _wrap(cls, arr: np.ndarray, dtype: DType, ttype: TensorType | None = None) -> "Tensor":
        """ttype: the array's known type (a compiled graph's output), saving its construction."""
        t = object.__new__(Tensor)
        t._data, t._dtype, t._type = arr, dtype, ttype or TensorType(arr.shape, dtype)
        return t

    # -- properties ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._type.shape

    @property
    def dtype(self) -> DType:
        return self._type.dtype

    @property
    def ndim(self) -> int:
        return len(self._type.shape)

    @property
    def size(self) -> int:
        return self._type.size

    @property
    def T(self):
        return F.transpose(self, tuple(range(self.ndim))[::-1])

    # -- conversions -------------------------------------------------------------------------
    def asnumpy(self) -> np.ndarray:
        """A numpy copy; bfloat16 comes back as float32 (numpy has no bfloat16)."""
        if self.dtype is D.bfloat16:
            return D.bf16_bits_to_f32(to_host(self._data))
        return np.array(to_host(self._data), copy=True)

    def numpy(self) -> np.ndarray:
        return self.asnumpy()

    def __array__(self, dtype=None, copy=None):
        a = self.asnumpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        return self.asnumpy().item()

    def tolist(self):
        return self.asnumpy().tolist()

    def __bool__(self) -> bool:
        return bool(self.asnumpy())   # asnumpy, not _data: bf16 bits of -0.0 are nonzero

    def _scalar(self):
        """The one element as a numpy scalar (any rank, as MindSpore and PyTorch allow)."""
        a = self.asnumpy()
        if a.size != 1:
            raise TypeError(f"only one-element tensors can be converted to Python scalars, got shape {a.shape}")
        return a.reshape(())[()]

    def __int__(self) -> int:
        return int(self._scalar())

    def __float__(self) -> float:
        return float(self._scalar())

    def __format__(self, spec: str) -> str:
        """`f"{loss:.4f}"` formats a 0-d tensor's value; an empty spec is str(tensor)."""
        if not spec:
            return str(self)
        if self.shape:
            raise TypeError(f"unsupported format string {spec!r} for a Tensor of shape {self.shape}; "
                            "only 0-d tensors take a format spec")
        return format(self.item(), spec)

    def __index__(self) -> int:
        if not self.dtype.is_int:
            raise TypeError("only integer tensors can be used as an index")
        return int(self.asnumpy())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        """MindSpore's format: `Tensor(shape=[2, 3], dtype=Float32, value=\n[[...]])`."""
        return format_tensor(self.asnumpy(), self.dtype)

    __str__ = lambda self: np.array2string(self.asnumpy())  # noqa: E731

    # -- operators ---------------------------------------------------------------------------
    def __add__(self, o): return F.add(self, o)
    def __radd__(self, o): return F.add(o, self)
    def __sub__(self, o): return F.sub(self, o)
    def __rsub__(self, o): return F.sub(o, self)
    def __mul__(self, o): return F.mul(self, o)
    def __rmul__(self, o): return F.mul(o, self)
    def __truediv__(self, o): return F.div(self, o)
    def __rtruediv__(self, o): return F.div(o, self)
    def __floordiv__(self, o): return F.floor_divide(self, o)
    def __rfloordiv__(self, o): return F.floor_divide(o, self)
    def __mod__(self, o): return F.remainder(self, o)
    def __pow__(self, o): return F.pow(self, o)
    def __rpow__(self, o): return F.pow(o, self)
    def __matmul__(self, o): return F.matmul(self, o)
    def __rmatmul__(self, o): return F.matmul(o, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __invert__(self): return F.logical_not(self)
    def __and__(self, o): return F.logical_and(self, o)
    def __or__(self, o): return F.logical_or(self, o)
    def __xor__(self, o): return F.logical_xor(self, o)
    def __eq__(self, o): return F.equal(self, o)
    def __ne__(self, o): return F.not_equal(self, o)
    def __lt__(self, o): return F.less(self, o)
    def __le__(self, o): return F.less_equal(self, o)
    def __gt__(self, o): return F.greater(self, o)
    def __ge__(self, o): return F.greater_equal(self, o)
    def __getitem__(self, key): return F.getitem(self, key)

    def __setitem__(self, key, value) -> None:
        """x[key] = value. The tensor object takes the new value (under a trace it stands for the
        new graph value from here on; a Parameter records an assignment)."""
        new = F.setitem(self, key, value)
        if isinstance(self, Parameter):
            F.assign(self, new)
        elif isinstance(self, Tracer):
            if self._trace is not current_trace():
                raise TypeError("item assignment to a value of an enclosing trace; assign to a copy instead")
            self._value = new._value
        elif isinstance(new, Tracer):
            raise TypeError("item assignment of a traced value into a concrete Tensor; build the tensor "
                            "inside the compiled function (e.g. with ops.zeros) instead")
        else:
            self._data = new._data

    # -- methods -----------------------------------------------------------------------------
    # reductions accept numpy's keywords too (np.sum(t), np.mean(t, keepdims=True) call these)
    def sum(self, axis=None, keepdims=False, dtype=None, out=None, **kw):
        return F.sum(self, axis, _keep(keepdims, kw), dtype=dtype) if _no_out(out) else None

    def mean(self, axis=None, keep_dims=False, dtype=None, out=None, **kw):
        r = F.mean(self, axis, _keep(keep_dims, kw)) if _no_out(out) else None
        return r if dtype is None else F.cast(r, dtype)

    def max(self, axis=None, keepdims=False, out=None, **kw):
        return F.amax(self, axis, _keep(keepdims, kw)) if _no_out(out) else None

    def min(self, axis=None, keepdims=False, out=None, **kw):
        return F.amin(self, axis, _keep(keepdims, kw)) if _no_out(out) else None

    def argmax(self, axis=None, keepdims=False, out=None, **kw):
        return F.argmax(self, axis, _keep(keepdims, kw)) if _no_out(out) else None

    def argmin(self, axis=None, keepdims=False, out=None, **kw):
        return F.argmin(self, axis, _keep(keepdims, kw)) if _no_out(out) else None

    def var(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None, **kw):
        return F.var(self, axis, ddof, _keep(keepdims, kw)) if _no_out(out) else None

    def std(self, axis=None, ddof=0, keepdims=False, dtype=None, out=None, **kw):
        return F.std(self, axis, ddof, _keep(keepdims, kw)) if _no_out(out) else None

    def abs(self): return F.abs(self)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def clip(self, min=None, max=None): return F.clamp(self, min, max)
    def reshape(self, *shape): return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    def view(self, *shape): return self.reshape(*shape)
    def flatten(self, start_dim=0, end_dim=-1): return F.flatten(self, start_dim=start_dim, end_dim=end_dim)
    def transpose(self, *axes):
        if not axes:
            return self.T
        return F.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes)
    def permute(self, *axis): return self.transpose(*axis)   # MindSpore's Tensor.permute(*axis)
    def swapaxes(self, a, b): return F.swapaxes(self, a, b)
    def squeeze(self, axis=None): return F.squeeze(self, axis)
    def expand_dims(self, axis): return F.expand_dims(self, axis)
    def unsqueeze(self, dim): return F.expand_dims(self, dim)
    def broadcast_to(self, shape): return F.broadcast_to(self, shape)
    def astype(self, dtype): return F.cast(self, dtype)
    def to(self, dtype): return F.cast(self, dtype)
    def float(self): return F.cast(self, D.float32)
    def int(self): return F.cast(self, D.int32)
    def copy(self): return Tensor._wrap(self._data.copy(), self.dtype) if not isinstance(self, Tracer) else self
    def set_dtype(self, dtype): return F.cast(self, dtype)
    def dim(self): return self.ndim
    def numel(self): return self.size
    def is_floating_point(self): return self.dtype.is_float
    def repeat(self, repeats, axis=None): return F.repeat_interleave(self, repeats, axis)  # np.repeat
    def repeat_interleave(self, repeats, dim=None): return F.repeat_interleave(self, repeats, dim)
    def tile(self, reps): return F.tile(self, reps)
    def masked_fill(self, mask, value): return F.masked_fill(self, mask, value)
    def pow(self, exponent): return F.pow(self, exponent)
    def matmul(self, tensor2): return F.matmul(self, tensor2)
    def all(self, axis=None, keep_dims=False): return F.all(self, axis, keep_dims)
    def any(self, axis=None, keep_dims=False): return F.any(self, axis, keep_dims)
    def softmax(self, axis=-1, dtype=None):
        return F.softmax(self if dtype is None else F.cast(self, dtype), axis)
    def round(self, decimals=0): return F.round(self, decimals=decimals)
    def floor(self): return F.floor(self)
    def ceil(self): return F.ceil(self)
    def roll(self, shifts, dims=None): return F.roll(self, shifts, dims)
    def nonzero(self, as_tuple=False): return F.nonzero(self, as_tuple)
    def unique(self): return F.unique(self)[0]   # sorted distinct values (eager only)

    def init_data(self, slice_index=None, shape=None, opt_shape=None):
        """MindSpore materializes a lazily initialized tensor here; sporeflow tensors always
        hold their data, so this returns the tensor itself."""
        return self


class Tracer(CoreTracer, Tensor):
    """A Tensor standing for a Value of a graph being traced: the core Tracer (no data, clear
    errors where data would be needed) with every Tensor method."""


class Parameter(Tensor):
    """A named, trainable tensor held by a Cell. Compiled steps read it as an input and write
    its updates back into its buffer."""

    def __init__(self, default_input, name: str | None = None, requires_grad: bool = True, layerwise_parallel=False,
                 parallel_optimizer=True):
        if isinstance(default_input, Tensor):
            data, dt = default_input._data, default_input.dtype
        else:
            data, dt = _to_storage(default_input, None)
        self._data = place(np.array(to_host(data), copy=True))
        self._dtype = dt
        self._type = TensorType(self._data.shape, dt)
        self.name = name if name is not None else "Parameter"
        self._name_set = name is not None
        self.requires_grad = requires_grad

    def set_data(self, data, slice_shape=False) -> "Parameter":
        """Replace the value (same shape and dtype, unless slice_shape)."""
        new, dt = _to_storage(data, self.dtype)
        if new.shape != self.shape and not slice_shape:
            raise ValueError(f"Parameter {self.name}: set_data with shape {new.shape}, expected {self.shape}")
        self._data = place(np.array(to_host(new), copy=True))
        self._type = TensorType(self._data.shape, dt)
        return self

    def _assign_storage(self, arr: np.ndarray) -> None:
        """Write back a compiled step's update into this parameter's buffer."""
        if arr.shape != self._data.shape:
            raise ValueError(f"Parameter {self.name}: update of shape {arr.shape}, expected {self._data.shape}")
        self._data = arr

    @property
    def data(self) -> "Parameter":
        return self

    def value(self) -> Tensor:
        return Tensor._wrap(self._data, self.dtype)

    def clone(self, init="same") -> "Parameter":
        p = Parameter(Tensor._wrap(self._data.copy(), self.dtype), self.name, self.requires_grad)
        if init != "same":
            p.set_data(_initializer.initializer(init, self.shape, self.dtype))
        return p

    def __repr__(self) -> str:
        return (f"Parameter (name={self.name}, shape={list(self.shape)}, dtype={ms_dtype_name(self.dtype)}, "
                f"requires_grad={self.requires_grad})")

    __hash__ = Tensor.__hash__


class ParameterTuple(tuple):
    """ms.ParameterTuple: a tuple of Parameters that can be cloned under a name prefix
    (optimizers keep their moments this way: `params.clone(prefix="moment1", init="zeros")`)."""

    def __new__(cls, iterable=()):
        items = tuple(iterable)
        bad = [type(p).__name__ for p in items if not isinstance(p, Parameter)]
        if bad:
            raise TypeError(f"ParameterTuple holds Parameters only, got {bad}")
        return super().__new__(cls, items)

    def clone(self, prefix: str, init="same") -> "ParameterTuple":
        out = []
        for p in self:
            c = p.clone(init)
            c.name = f"{prefix}.{p.name}"
            out.append(c)
        return ParameterTuple(out)


from . import functional as F  # noqa: E402  (operators dispatch here; imported last to break the cycle)
from .nn import initializer as _initializer  # noqa: E402  (initializers build Tensors)

for _cls in (Tensor, Tracer, Parameter):
    wrap_methods(_cls)


def _eager_op(opdef, arrays: list, attrs, in_types: list, out_types: list) -> list:
    if placement.current_device() is not None or placement.on_device(arrays):
        return placement.run_eager(opdef, arrays, attrs, in_types, out_types)   # device kernels
    return opdef.run(arrays, attrs, in_types, out_types)


def _eager_graph(graph, arrays: list) -> list:
    if placement.current_device() is not None or placement.on_device(arrays):
        return placement.run_graph_on_device(graph, arrays)
    return run_graph(graph, arrays)


install_arrays(tensor=Tensor, tracer=Tracer, parameter=Parameter, wrap=Tensor._wrap, to_host=to_host,
               run_op=_eager_op, run_graph=_eager_graph)
