"""Kernels that compute each output element from its coordinates: data movement (reshape,
broadcast_to, transpose, slice, rev, pad, concatenate), iota, gathers (take), reductions over
arbitrary axes and arg-reductions, pooling, and the Threefry random bits. One thread per output
element, grid-stride; data movement copies storage bits untouched.
"""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import as_dtype
from ...ir.registry import get_op
from ...primitives.random import PARITY, ROTATIONS
from . import ctypes_c as C
from .module import ELEMENTWISE_BLOCK, Kernel, coords, grid_for, grid_stride, linear, pointer_params


def strides_of(shape) -> list[int]:
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return st[::-1]


def map_kernel(name: str, ins, out, body_fn) -> Kernel:
    """`body_fn(o)` (o: coordinate names of the output element) -> C statements ending in
    `res = <storage value>;`."""
    total = out.type.size
    o = [f"o{k}" for k in range(len(out.type.shape))]
    src = (grid_stride(total) + coords("o", "i", out.type.shape) + f"    {C.storage(out.dtype)} res;\n"
           + body_fn(o) + "    out0[i] = res;\n  }\n")
    return Kernel(name, pointer_params(ins, [out]), src, grid_for(total), ELEMENTWISE_BLOCK)


def gather_from(x, idx_coords: list[str]) -> str:
    return f"    res = in0[{linear(idx_coords, strides_of(x.type.shape))}];\n"


# ---- data movement --------------------------------------------------------------------------
def k_reshape(name, node):
    x, y = node.inputs[0], node.outputs[0]
    return map_kernel(name, [x], y, lambda o: "    res = in0[i];\n")


def k_broadcast(name, node):
    x, y = node.inputs[0], node.outputs[0]
    pad = len(y.type.shape) - len(x.type.shape)
    ic = [("0" if d == 1 else o) for d, o in zip(x.type.shape, [f"o{k + pad}" for k in range(len(x.type.shape))])]
    return map_kernel(name, [x], y, lambda o: gather_from(x, ic))


def k_transpose(name, node):
    x, y = node.inputs[0], node.outputs[0]
    perm = node.attrs["perm"]
    ic = [None] * len(perm)
    for k, p in enumerate(perm):
        ic[p] = f"o{k}"
    return map_kernel(name, [x], y, lambda o: gather_from(x, ic))


def k_slice(name, node):
    x, y = node.inputs[0], node.outputs[0]
    st, sd = node.attrs["start"], node.attrs["strides"]
    ic = [f"({s}LL + o{k} * {d}LL)" for k, (s, d) in enumerate(zip(st, sd))]
    return map_kernel(name, [x], y, lambda o: gather_from(x, ic))


def k_rev(name, node):
    x, y = node.inputs[0], node.outputs[0]
    axes = set(node.attrs["axes"])
    ic = [f"({d - 1}LL - o{k})" if k in axes else f"o{k}" for k, d in enumerate(x.type.shape)]
    return map_kernel(name, [x], y, lambda o: gather_from(x, ic))


def k_pad(name, node):
    x, y = node.inputs[0], node.outputs[0]
    lo, interior = node.attrs["lo"], node.attrs["interior"]
    fill = C.store(y.dtype, C.literal(node.attrs["value"], y.dtype) if y.dtype.is_float or y.dtype.name == "bool"
                   else C.literal(int(node.attrs["value"]), y.dtype))

    def body(o):
        lines = [f"    res = {fill};\n", "    bool inside = true;\n"]
        ic = []
        for k, (l, it, d) in enumerate(zip(lo, interior, x.type.shape)):
            lines.append(f"    long long t{k} = o{k} - {l}LL;\n")
            cond = f"t{k} < 0 || t{k} % {it + 1}LL != 0 || t{k} / {it + 1}LL >= {d}LL" if it else \
                f"t{k} < 0 || t{k} >= {d}LL"
            lines.append(f"    if ({cond}) inside = false;\n")
            ic.append(f"(t{k} / {it + 1}LL)" if it else f"t{k}")
        lines.append(f"    if (inside) res = in0[{linear(ic, strides_of(x.type.shape))}];\n")
        return "".join(lines)
    return map_kernel(name, [x], y, body)


def k_concatenate(name, node):
    y, ax = node.outputs[0], node.attrs["axis"]
    xs = node.inputs

    def body(o):
        lines, off = [], 0
        for k, x in enumerate(xs):
            n = x.type.shape[ax]
            ic = [f"(o{ax} - {off}LL)" if q == ax else f"o{q}" for q in range(len(y.type.shape))]
            cond = "if" if k == 0 else "else if"
            lines.append(f"    {cond} (o{ax} < {off + n}LL) res = in{k}[{linear(ic, strides_of(x.type.shape))}];\n")
            off += n
        return "".join(lines)
    return map_kernel(name, list(xs), y, body)


def k_iota(name, node):
    y = node.outputs[0]
    dt = as_dtype(node.attrs["dtype"])
    ax = node.attrs["axis"]
    return map_kernel(name, [], y, lambda o: f"    res = {C.store(dt, f'(({C.compute(dt)})o{ax})')};\n")


def k_take(name, node):
    x, idx = node.inputs
    y, ax = node.outputs[0], node.attrs["axis"]
    n = x.type.shape[ax]
    ir = len(idx.type.shape)

    def body(o):
        ic_idx = [f"o{ax + q}" for q in range(ir)]
        lines = [f"    long long t = (long long)in1[{linear(ic_idx, strides_of(idx.type.shape))}];\n",
                 f"    t = t < 0 ? 0 : (t > {n - 1}LL ? {n - 1}LL : t);\n"]
        xc = [f"o{q}" for q in range(ax)] + ["t"] + [f"o{q + ir - 1}" for q in range(ax + 1, len(x.type.shape))]
        lines.append(gather_from(x, xc))
        return "".join(lines)
    return map_kernel(name, [x, idx], y, body)


# ---- reductions over any axes ---------------------------------------------------------------
_COMBINE = {"sum": "SfSum", "max": "SfMax", "min": "SfMin"}   # by OpDef.monoid


def k_reduce(name, node):
    """One thread per output element, a loop over the reduced sub-space (any axes)."""
    x, y = node.inputs[0], node.outputs[0]
    axes = sorted(node.attrs["axes"])
    keep = [k for k in range(len(x.type.shape)) if k not in axes]
    red_shape = [x.type.shape[k] for k in axes] or [1]
    nred = int(np.prod(red_shape, dtype=np.int64))
    dt = x.dtype
    ident = {"sum": C.literal(0, dt), "max": C.lowest(dt), "min": C.highest(dt)}[get_op(node.op).monoid]
    kept_shape = [x.type.shape[k] for k in keep]
    total = y.type.size
    xs = strides_of(x.type.shape)
    cc = [f"o{k}" for k in range(len(keep))]
    rr = [f"q{k}" for k in range(len(axes))]
    ic = [None] * len(x.type.shape)
    for k, a in enumerate(keep):
        ic[a] = cc[k]
    for k, a in enumerate(axes):
        ic[a] = rr[k]
    src = (grid_stride(total) + coords("o", "i", kept_shape) + f"    {C.compute(dt)} acc = {ident};\n"
           + f"    for (long long s = 0; s < {nred}LL; ++s) {{\n" + coords("q", "s", red_shape, "      ")
           + f"      acc = {_COMBINE[get_op(node.op).monoid]}::f(acc, {C.load(dt, f'in0[{linear(ic, xs)}]')});\n    }}\n"
           + f"    out0[i] = {C.store(dt, 'acc')};\n  }}\n")
    return Kernel(name, pointer_params([x], [y]), src, grid_for(total), ELEMENTWISE_BLOCK)


def k_argminmax(name, node):
    """First index of the max (min); a NaN wins at its first position, as numpy's argmax."""
    x, y = node.inputs[0], node.outputs[0]
    ax = node.attrs["axis"]
    shp = x.type.shape
    kept = [d for k, d in enumerate(shp) if k != ax]
    n = shp[ax]
    xs = strides_of(shp)
    cc = [f"o{k}" for k in range(len(kept))]
    ic = cc[:ax] + ["t"] + cc[ax:]
    better = ">" if node.op == "argmax" else "<"
    cty = C.compute(x.dtype)
    isnan = "(v != v)" if x.dtype.is_float else "false"
    src = (grid_stride(y.type.size) + coords("o", "i", kept)
           + f"    long long t = 0;\n    {cty} best = {C.load(x.dtype, f'in0[{linear(ic, xs)}]')};\n"
           + "    int at = 0;\n" + f"    bool nan = {isnan.replace('v', 'best')};\n"
           + f"    for (t = 1; t < {n}LL && !nan; ++t) {{\n"
           + f"      {cty} v = {C.load(x.dtype, f'in0[{linear(ic, xs)}]')};\n"
           + f"      if ({isnan}) {{ nan = true; at = (int)t; }}\n"
           + f"      else if (v {better} best) {{ best = v; at = (int)t; }}\n    }}\n"
           + "    out0[i] = at;\n  }\n")
    return Kernel(name, pointer_params([x], [y]), src, grid_for(y.type.size), ELEMENTWISE_BLOCK)


# ---- pooling ----------------------------------------------------------------------------------
def k_pool(name, node):
    """max: padding never wins (NaN propagates); avg: padded zeros count in the divisor."""
    x, y = node.inputs[0], node.outputs[0]
    (kh, kw), (sh, sw), pad = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    _, _, h, w = x.type.shape
    dt = x.dtype
    is_max = node.op == "max_pool2d"
    acc0 = C.lowest(dt) if is_max else C.literal(0, dt)
    comb = "acc = sf_max(acc, v);" if is_max else "acc = acc + v;"
    fin = "acc" if is_max else f"acc / ({C.compute(dt)}){kh * kw}"
    src = (grid_stride(y.type.size) + coords("o", "i", y.type.shape) + f"    {C.compute(dt)} acc = {acc0};\n"
           + f"    for (int a = 0; a < {kh}; ++a) for (int b = 0; b < {kw}; ++b) {{\n"
           + f"      long long hh = o2 * {sh}LL + a - {pad[0]}LL, ww = o3 * {sw}LL + b - {pad[2]}LL;\n"
           + f"      if (hh < 0 || hh >= {h}LL || ww < 0 || ww >= {w}LL) continue;\n"
           + f"      {C.compute(dt)} v = {C.load(dt, f'in0[((o0 * {x.type.shape[1]}LL + o1) * {h}LL + hh) * {w}LL + ww]')};\n"
           + f"      {comb}\n    }}\n"
           + f"    out0[i] = {C.store(dt, fin)};\n  }}\n")
    return Kernel(name, pointer_params([x], [y]), src, grid_for(y.type.size), ELEMENTWISE_BLOCK)


def k_max_pool_grad(name, node):
    """One thread per input element (no atomics): it sums, in window order, the g of every
    window whose first maximum (row-major, padding never) it is."""
    x, y, dx = node.inputs[0], node.inputs[1], node.outputs[0]
    (kh, kw), (sh, sw), pad = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    _, c, h, w = x.type.shape
    ho, wo = y.type.shape[2:]
    ct = C.compute(x.dtype)
    plane = f"(o0 * {c}LL + o1)"
    xat = lambda hh, ww: C.load(x.dtype, f"in0[({plane} * {h}LL + {hh}) * {w}LL + {ww}]")  # noqa: E731

    def window_range(v, coord, k, s, p, n):
        """{v}p: the padded coordinate; [{v}lo, {v}hi]: the windows that contain it."""
        return (f"    long long {v}p = {coord} + {p}LL, {v}lo = {v}p - {k - 1}LL;\n"
                f"    {v}lo = {v}lo <= 0 ? 0 : ({v}lo + {s - 1}LL) / {s}LL;\n"
                f"    long long {v}hi = {v}p / {s}LL < {n - 1}LL ? {v}p / {s}LL : {n - 1}LL;\n")
    src = (grid_stride(dx.type.size) + coords("o", "i", dx.type.shape)
           + window_range("h", "o2", kh, sh, pad[0], ho) + window_range("w", "o3", kw, sw, pad[2], wo)
           + f"    {ct} v = {xat('o2', 'o3')}, acc = {C.literal(0, x.dtype)};\n"
           + "    for (long long oh = hlo; oh <= hhi; ++oh) for (long long ow = wlo; ow <= whi; ++ow) {\n"
           + f"      long long yi = ({plane} * {ho}LL + oh) * {wo}LL + ow;\n"
           + f"      {ct} m = {C.load(y.dtype, 'in1[yi]')};\n"
           + "      if (!(v == m)) continue;\n"
           + f"      long long mine = (hp - oh * {sh}LL) * {kw}LL + (wp - ow * {sw}LL);\n"
           + "      bool first = true;\n"
           + "      for (long long t = 0; t < mine && first; ++t) {\n"
           + f"        long long th = oh * {sh}LL + t / {kw}LL - {pad[0]}LL, tw = ow * {sw}LL + t % {kw}LL - {pad[2]}LL;\n"
           + f"        if (th >= 0 && th < {h}LL && tw >= 0 && tw < {w}LL && {xat('th', 'tw')} == m) first = false;\n"
           + "      }\n"
           + f"      if (first) acc = acc + {C.load(y.dtype, 'in2[yi]')};\n    }}\n"
           + f"    out0[i] = {C.store(x.dtype, 'acc')};\n  }}\n")
    return Kernel(name, pointer_params(node.inputs, [dx]), src, grid_for(dx.type.size), ELEMENTWISE_BLOCK)


# ---- random bits: Threefry-2x32, 20 rounds (primitives/random.py), the same numbers as on CPU -----
def _threefry() -> str:
    lines = ["    unsigned int k0 = in0[0], k1 = in0[1], k2 = k0 ^ k1 ^ %du;\n" % PARITY,
             "    unsigned int ks[3] = {k0, k1, k2};\n",
             "    unsigned int x0 = (unsigned int)((unsigned long long)i >> 32) + k0;\n",
             "    unsigned int x1 = (unsigned int)((unsigned long long)i & 0xffffffffULL) + k1;\n"]
    for group in range(5):
        rots = ROTATIONS[:4] if group % 2 == 0 else ROTATIONS[4:]
        for r in rots:
            lines.append(f"    x0 += x1; x1 = ((x1 << {r}) | (x1 >> {32 - r})) ^ x0;\n")
        lines.append(f"    x0 += ks[{(group + 1) % 3}]; x1 += ks[{(group + 2) % 3}] + {group + 1}u;\n")
    return "".join(lines)


def k_random(name, node):
    y = node.outputs[0]
    if node.op == "random_bits":
        res = "x0"
    else:
        dt = as_dtype(node.attrs["dtype"])
        val = f"((double)(x0 >> 8) * {1.0 / (1 << 24)!r})"
        res = C.store(dt, f"(({C.compute(dt)}){val})")
    src = grid_stride(y.type.size) + _threefry() + f"    out0[i] = {res};\n  }}\n"
    return Kernel(name, pointer_params(node.inputs, [y]), src, grid_for(y.type.size), ELEMENTWISE_BLOCK)
