"""MultiheadAttention and the Transformer family with MindSpore's signatures and parameter names
(`in_proj_weight`, `in_proj_bias`, `out_proj.weight`; `self_attn`, `linear1`, `norm1`, ...).

Attention is softmax(q k^T / sqrt(head_dim) + masks) v per head. Masks follow MindSpore's
convention: a bool mask marks positions that may NOT be attended (True = masked out), a float
mask is added to the scores. `attn_mask` is (L, S) or (N * num_heads, L, S); `key_padding_mask`
is (N, S). Inputs are (L, N, E), or (N, L, E) with batch_first=True, or unbatched (L, E).
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ....ir import dtypes as D
from ... import functional as F
from ...cell import Cell
from ...random import next_key
from ...tensor import Parameter
from ..initializer import XavierUniform, initializer
from .._check import shape_error
from .activation import get_activation
from .basic import Dense, Dropout
from .container import CellList
from .normalization import LayerNorm


def _mask_scores(scores, mask, who: str, name: str):
    """Apply a bool (True = masked out) or additive float mask broadcastable to scores."""
    if mask is None:
        return scores
    if mask.dtype is D.bool_:
        low = F.full_like(scores, float(np.finfo(np.dtype(scores.dtype.name)).min))
        return F.select(F.broadcast_to(mask, scores.shape), low, scores)
    if not mask.dtype.is_float:
        raise TypeError(f"{who}: {name} must be bool or float, got {mask.dtype.name}")
    return F.add(scores, F.cast(mask, scores.dtype))


class MultiheadAttention(Cell):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, has_bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, dtype=D.float32):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be a positive multiple of num_heads "
                             f"{num_heads}")
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.has_bias = float(dropout), batch_first, has_bias
        self.add_zero_attn = add_zero_attn
        xavier = XavierUniform()
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(initializer(xavier, (3 * embed_dim, embed_dim), dtype),
                                            name="in_proj_weight")
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(initializer(xavier, (embed_dim, embed_dim), dtype), name="q_proj_weight")
            self.k_proj_weight = Parameter(initializer(xavier, (embed_dim, self.kdim), dtype), name="k_proj_weight")
            self.v_proj_weight = Parameter(initializer(xavier, (embed_dim, self.vdim), dtype), name="v_proj_weight")
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(initializer("zeros", (3 * embed_dim,), dtype), name="in_proj_bias") \
            if has_bias else None
        self.out_proj = Dense(embed_dim, embed_dim, has_bias=has_bias, bias_init="zeros", dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(initializer(xavier, (1, 1, embed_dim), dtype), name="bias_k")
            self.bias_v = Parameter(initializer(xavier, (1, 1, embed_dim), dtype), name="bias_v")
        else:
            self.bias_k = self.bias_v = None

    def _projections(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[0:E], w[E:2 * E], w[2 * E:3 * E])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        bs = (None, None, None) if self.in_proj_bias is None else \
            (self.in_proj_bias[0:E], self.in_proj_bias[E:2 * E], self.in_proj_bias[2 * E:3 * E])
        return ws, bs

    def construct(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                  average_attn_weights: bool = True):
        who = "MultiheadAttention"
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (F.expand_dims(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = F.expand_dims(key_padding_mask, 0)
        elif self.batch_first:
            query, key, value = (F.transpose(t, (1, 0, 2)) for t in (query, key, value))
        if query.ndim != 3 or query.shape[-1] != self.embed_dim:
            raise shape_error(f"{who}: query shape {tuple(query.shape)} does not end with embed_dim {self.embed_dim}")
        L, N, E = query.shape
        if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
            raise shape_error(f"{who}: key {tuple(key.shape)} and value {tuple(value.shape)} must share "
                             f"(S, N={N}) leading dims")
        (wq, wk, wv), (bq, bk, bv) = self._projections()
        q, k, v = F.dense(query, wq, bq), F.dense(key, wk, bk), F.dense(value, wv, bv)      # (L|S, N, E)
        if self.bias_k is not None:
            k = F.cat([k, F.broadcast_to(F.cast(self.bias_k, k.dtype), (1, N, E))], axis=0)
            v = F.cat([v, F.broadcast_to(F.cast(self.bias_v, v.dtype), (1, N, E))], axis=0)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        if self.add_zero_attn:
            k = F.cat([k, F.zeros((1, N, E), k.dtype)], axis=0)
            v = F.cat([v, F.zeros((1, N, E), v.dtype)], axis=0)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        S = k.shape[0]
        h, d = self.num_heads, self.head_dim

        def heads(t, n):                                     # (n, N, E) -> (N, h, n, d)
            return F.transpose(F.reshape(t, (n, N, h, d)), (1, 2, 0, 3))
        q, k, v = heads(q, L), heads(k, S), heads(v, S)
        scores = F.mul(F.matmul(q, F.swapaxes(k, 2, 3)), 1.0 / math.sqrt(d))         # (N, h, L, S)
        if attn_mask is not None:
            if attn_mask.ndim == 2 and tuple(attn_mask.shape) == (L, S):
                m = F.reshape(attn_mask, (1, 1, L, S))
            elif attn_mask.ndim == 3 and tuple(attn_mask.shape) == (N * h, L, S):
                m = F.reshape(attn_mask, (N, h, L, S))
            else:
                raise shape_error(f"{who}: attn_mask shape {tuple(attn_mask.shape)} must be ({L}, {S}) or "
                                 f"({N * h}, {L}, {S})")
            scores = _mask_scores(scores, m, who, "attn_mask")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (N, S):
                raise shape_error(f"{who}: key_padding_mask shape {tuple(key_padding_mask.shape)} must be ({N}, {S})")
            scores = _mask_scores(scores, F.reshape(key_padding_mask, (N, 1, 1, S)), who, "key_padding_mask")
        weights = F.softmax(scores, -1)
        attn = weights
        if self.training and self.dropout > 0:
            attn = F.dropout(weights, self.dropout, True, key=next_key())
        out = F.matmul(attn, v)                                                      # (N, h, L, d)
        out = F.reshape(F.transpose(out, (2, 0, 1, 3)), (L, N, E))
        out = self.out_proj(out)
        if unbatched:
            out = F.squeeze(out, 1)
        elif self.batch_first:
            out = F.transpose(out, (1, 0, 2))
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = F.mean(weights, 1)
        if unbatched:
            weights = F.squeeze(weights, 0)
        return out, weights


def _activation(act):
    if isinstance(act, str):
        if act not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {act!r}")
        return get_activation(act)
    return act


class TransformerEncoderLayer(Cell):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                 dtype=D.float32):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, dtype=dtype)
        self.linear1 = Dense(d_model, dim_feedforward, dtype=dtype)
        self.dropout = Dropout(p=dropout)
        self.linear2 = Dense(dim_feedforward, d_model, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(p=dropout)
        self.dropout2 = Dropout(p=dropout)
        self.activation = _activation(activation)

    def _sa(self, x, mask, kpm):
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False)[0])

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def construct(self, src, src_mask=None, src_key_padding_mask=None):
        x = src
        if self.norm_first:
            x = F.add(x, self._sa(self.norm1(x), src_mask, src_key_padding_mask))
            return F.add(x, self._ff(self.norm2(x)))
        x = self.norm1(F.add(x, self._sa(x, src_mask, src_key_padding_mask)))
        return self.norm2(F.add(x, self._ff(x)))


class TransformerDecoderLayer(Cell):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                 dtype=D.float32):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                 dtype=dtype)
        self.linear1 = Dense(d_model, dim_feedforward, dtype=dtype)
        self.dropout = Dropout(p=dropout)
        self.linear2 = Dense(dim_feedforward, d_model, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype)
        self.norm3 = LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(p=dropout)
        self.dropout2 = Dropout(p=dropout)
        self.dropout3 = Dropout(p=dropout)
        self.activation = _activation(activation)

    def _sa(self, x, mask, kpm):
        return self.dropout1(self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False)[0])

    def _mha(self, x, mem, mask, kpm):
        return self.dropout2(self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm,
                                                 need_weights=False)[0])

    def _ff(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def construct(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                  memory_key_padding_mask=None):
        x = tgt
        if self.norm_first:
            x = F.add(x, self._sa(self.norm1(x), tgt_mask, tgt_key_padding_mask))
            x = F.add(x, self._mha(self.norm2(x), memory, memory_mask, memory_key_padding_mask))
            return F.add(x, self._ff(self.norm3(x)))
        x = self.norm1(F.add(x, self._sa(x, tgt_mask, tgt_key_padding_mask)))
        x = self.norm2(F.add(x, self._mha(x, memory, memory_mask, memory_key_padding_mask)))
        return self.norm3(F.add(x, self._ff(x)))


def _clones(layer: Cell, n: int) -> CellList:
    return CellList([copy.deepcopy(layer) for _ in range(n)])


class TransformerEncoder(Cell):
    def __init__(self, encoder_layer: Cell, num_layers: int, norm=None):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def construct(self, src, mask=None, src_key_padding_mask=None):
        x = src
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Cell):
    def __init__(self, decoder_layer: Cell, num_layers: int, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def construct(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                  memory_key_padding_mask=None):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
        return self.norm(x) if self.norm is not None else x


class Transformer(Cell):
    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, dtype=D.float32):
        super().__init__()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                      dtype)

        def stack(custom, stack_cls, layer_cls, n):
            if custom is not None:
                return custom
            return stack_cls(layer_cls(*layer_args), n, LayerNorm((d_model,), epsilon=layer_norm_eps, dtype=dtype))
        self.encoder = stack(custom_encoder, TransformerEncoder, TransformerEncoderLayer, num_encoder_layers)
        self.decoder = stack(custom_decoder, TransformerDecoder, TransformerDecoderLayer, num_decoder_layers)

    def construct(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                  tgt_key_padding_mask=None, memory_key_padding_mask=None):
        b = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[b] != tgt.shape[b]:
            raise shape_error(f"Transformer: src {tuple(src.shape)} and tgt {tuple(tgt.shape)} have different "
                             "batch sizes")
        memory = self.encoder(src, src_mask, src_key_padding_mask)
        return self.decoder(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
