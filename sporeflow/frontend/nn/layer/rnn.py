"""Recurrent layers: RNN, LSTM, GRU and their single-step Cells, with MindSpore's signatures.

Gate order and formulas are MindSpore's (rnn_cells): LSTM rows are [i, f, g, o]; GRU rows are
[r, z, n] with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) and h' = (1 - z) * n + z * h.
Parameters are named as MindSpore names them (`weight_ih_l0`, `bias_hh_l1_reverse`; the Cells'
`weight_ih` ...), so a checkpoint maps by name, and initialised U(-1/sqrt(hidden), 1/sqrt(hidden)).

The recurrence is `ops.scan` over time of existing ops: the input projection of the whole
sequence is one matmul before the loop, the loop body holds the hidden projection and the
gates. `seq_length` masks padded steps as MindSpore does: past a sequence's length the state
stops changing and the output is zero; the reverse direction starts at each sequence's last
valid step (the same result as MindSpore's reverse_sequence around a forward pass).
"""
from __future__ import annotations

import math

from ....ir import dtypes as D
from ... import functional as F
from ...cell import Cell
from ...random import next_key
from ...tensor import Parameter
from ..initializer import Uniform, initializer
from .._check import shape_error

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _proj(x, w, b):
    return F.dense(x, F.cast(w, x.dtype), None if b is None else F.cast(b, x.dtype))


def _cell_step(mode: str, gi, h, c, w_hh, b_hh):
    """One step given the input projection `gi` = W_ih x + b_ih. Returns (h', c')."""
    gh = _proj(h, w_hh, b_hh)
    if mode == "LSTM":
        i, f, g, o = F.split(F.add(gi, gh), h.shape[-1], axis=-1)
        c_new = F.add(F.mul(F.sigmoid(f), c), F.mul(F.sigmoid(i), F.tanh(g)))
        return F.mul(F.sigmoid(o), F.tanh(c_new)), c_new
    if mode == "GRU":
        i_r, i_z, i_n = F.split(gi, h.shape[-1], axis=-1)
        h_r, h_z, h_n = F.split(gh, h.shape[-1], axis=-1)
        r = F.sigmoid(F.add(i_r, h_r))
        z = F.sigmoid(F.add(i_z, h_z))
        n = F.tanh(F.add(i_n, F.mul(r, h_n)))
        return F.add(n, F.mul(z, F.sub(h, n))), None          # (1 - z) * n + z * h
    pre = F.add(gi, gh)
    return (F.tanh(pre) if mode == "RNN_TANH" else F.relu(pre)), None


def _check_positive(who: str, **kw) -> None:
    for k, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise TypeError(f"{who}: {k} must be a positive int, got {v!r}")


def _direction(mode: str, x, h0, c0, mask, w_ih, w_hh, b_ih, b_hh, reverse: bool):
    """Run one direction of one layer over x [T, B, I]. Returns (out [T, B, H], h_n, c_n)."""
    gi = _proj(x, w_ih, b_ih)                                  # [T, B, G*H]: one matmul for all steps
    lstm = mode == "LSTM"

    def body(carry, xs):
        h, c = carry if lstm else (carry, None)
        g_t, m_t = xs if mask is not None else (xs, None)
        h_new, c_new = _cell_step(mode, g_t, h, c, w_hh, b_hh)
        if m_t is not None:
            out = F.select(m_t, h_new, F.zeros_like(h_new))
            h_new = F.select(m_t, h_new, h)
            if lstm:
                c_new = F.select(m_t, c_new, c)
        else:
            out = h_new
        return ((h_new, c_new) if lstm else h_new), out

    init = (h0, c0) if lstm else h0
    carry, out = F.scan(body, init, (gi, mask) if mask is not None else gi, reverse=reverse)
    h_n, c_n = carry if lstm else (carry, None)
    return out, h_n, c_n


class _RNNBase(Cell):
    """Stacked (bi)directional recurrence; subclasses pick the mode."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, has_bias: bool = True,
                 batch_first: bool = False, dropout=0.0, bidirectional: bool = False, dtype=D.float32):
        super().__init__()
        who = type(self).__name__
        _check_positive(who, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        for k, v in (("has_bias", has_bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(v, bool):
                raise TypeError(f"{who}: {k} must be a bool, got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"{who}: dropout must be a number in [0, 1), got {dropout!r}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.has_bias, self.batch_first, self.bidirectional = has_bias, batch_first, bidirectional
        self.dropout = float(dropout)
        self.is_lstm = mode == "LSTM"
        self.num_directions = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        init = Uniform(1 / math.sqrt(hidden_size))
        lists: dict[str, list[Parameter]] = {"w_ih_list": [], "w_hh_list": [], "b_ih_list": [], "b_hh_list": []}
        for layer in range(num_layers):
            for d in range(self.num_directions):
                in_size = input_size if layer == 0 else hidden_size * self.num_directions
                sfx = f"l{layer}{'_reverse' if d else ''}"
                shapes = {"w_ih_list": ("weight_ih", (gate, in_size)), "w_hh_list": ("weight_hh", (gate, hidden_size))}
                if has_bias:
                    shapes.update(b_ih_list=("bias_ih", (gate,)), b_hh_list=("bias_hh", (gate,)))
                for key, (stem, shape) in shapes.items():
                    lists[key].append(Parameter(initializer(init, shape, dtype), name=f"{stem}_{sfx}"))
        for key, ps in lists.items():            # registered list by list, in MindSpore's order
            for p in ps:
                self._params[p.name] = p
            object.__setattr__(self, key, tuple(ps))

    def _weights(self, k: int):
        b = (self.b_ih_list[k], self.b_hh_list[k]) if self.has_bias else (None, None)
        return self.w_ih_list[k], self.w_hh_list[k], b[0], b[1]

    def _check_state(self, name: str, s, batch: int, dtype):
        want = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if tuple(s.shape) != want:
            raise shape_error(f"{type(self).__name__}: {name} has shape {tuple(s.shape)}, expected {want} "
                             "(num_directions * num_layers, batch_size, hidden_size)")
        return F.cast(s, dtype)

    def construct(self, x, hx=None, seq_length=None):
        who = type(self).__name__
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise shape_error(f"{who}: input shape {tuple(x.shape)} does not match "
                             f"{'[batch, seq, ' if self.batch_first else '[seq, batch, '}{self.input_size}]")
        if self.batch_first:
            x = F.transpose(x, (1, 0, 2))
        steps, batch = x.shape[0], x.shape[1]
        n_state = self.num_layers * self.num_directions
        if hx is None:
            zeros = F.zeros((n_state, batch, self.hidden_size), x.dtype)
            h0, c0 = zeros, (zeros if self.is_lstm else None)
        elif self.is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{who}: hx must be a tuple (h_0, c_0)")
            h0, c0 = (self._check_state(n, s, batch, x.dtype) for n, s in (("h_0", hx[0]), ("c_0", hx[1])))
        else:
            h0, c0 = self._check_state("hx", hx, batch, x.dtype), None
        mask = None
        if seq_length is not None:
            if tuple(seq_length.shape) != (batch,):
                raise shape_error(f"{who}: seq_length has shape {tuple(seq_length.shape)}, expected ({batch},)")
            t = F.reshape(F.arange(0, steps, dtype=D.int32), (steps, 1, 1))
            mask = F.broadcast_to(F.less(t, F.reshape(F.cast(seq_length, D.int32), (1, batch, 1))),
                                  (steps, batch, self.hidden_size))
        layer_in, hs, cs = x, [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                out, h_n, c_n = _direction(self.mode, layer_in, h0[k], c0[k] if self.is_lstm else None, mask,
                                           *self._weights(k), reverse=bool(d))
                outs.append(out)
                hs.append(h_n)
                cs.append(c_n)
            layer_in = outs[0] if len(outs) == 1 else F.cat(outs, axis=2)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True, key=next_key())
        out = F.transpose(layer_in, (1, 0, 2)) if self.batch_first else layer_in
        h_n = F.stack(hs)
        if self.is_lstm:
            return out, (h_n, F.stack(cs))
        return out, h_n

    def extend_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"has_bias={self.has_bias}, batch_first={self.batch_first}, bidirectional={self.bidirectional}")


class RNN(_RNNBase):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh); nonlinearity 'tanh' or 'relu'."""

    def __init__(self, *args, **kwargs):
        nl = kwargs.pop("nonlinearity", "tanh")
        if nl not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nl!r}")
        super().__init__("RNN_TANH" if nl == "tanh" else "RNN_RELU", *args, **kwargs)


class LSTM(_RNNBase):
    """Returns (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(_RNNBase):
    """Returns (output, h_n)."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class _RNNCellBase(Cell):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, has_bias: bool = True, dtype=D.float32,
                 mode: str | None = None):
        super().__init__()
        self.mode = mode or type(self).mode
        _check_positive(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.has_bias = input_size, hidden_size, has_bias
        gate = _GATES[self.mode] * hidden_size
        init = Uniform(1 / math.sqrt(hidden_size))
        self.weight_ih = Parameter(initializer(init, (gate, input_size), dtype), name="weight_ih")
        self.weight_hh = Parameter(initializer(init, (gate, hidden_size), dtype), name="weight_hh")
        self.bias_ih = self.bias_hh = None
        if has_bias:
            self.bias_ih = Parameter(initializer(init, (gate,), dtype), name="bias_ih")
            self.bias_hh = Parameter(initializer(init, (gate,), dtype), name="bias_hh")

    def _step(self, x, h, c=None):
        who = type(self).__name__
        if x.ndim != 2 or x.shape[-1] != self.input_size:
            raise shape_error(f"{who}: x has shape {tuple(x.shape)}, expected (batch_size, {self.input_size})")
        if tuple(h.shape) != (x.shape[0], self.hidden_size):
            raise shape_error(f"{who}: hx has shape {tuple(h.shape)}, expected ({x.shape[0]}, {self.hidden_size})")
        return _cell_step(self.mode, _proj(x, self.weight_ih, self.bias_ih), F.cast(h, x.dtype),
                          None if c is None else F.cast(c, x.dtype), self.weight_hh, self.bias_hh)

    def extend_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, has_bias={self.has_bias}"


class RNNCell(_RNNCellBase):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, has_bias: bool = True, nonlinearity: str = "tanh",
                 dtype=D.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, has_bias, dtype, "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        self.nonlinearity = nonlinearity

    def construct(self, x, hx):
        return self._step(x, hx)[0]


class LSTMCell(_RNNCellBase):
    """(h', c') = LSTMCell(x, (h, c))."""
    mode = "LSTM"

    def construct(self, x, hx):
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("LSTMCell: hx must be a tuple (h, c)")
        return self._step(x, hx[0], hx[1])


class GRUCell(_RNNCellBase):
    """h' = GRUCell(x, h)."""
    mode = "GRU"

    def construct(self, x, hx):
        return self._step(x, hx)[0]
