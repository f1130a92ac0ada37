"""Shape primitives as data-movement loops: reshape, transpose, broadcast_to, slice, rev, pad,
concatenate, take (gather) and scatter_add. Pure moves copy the storage bits as integers of
the same width (no float semantics, NaN payloads kept); indices are clipped into range
exactly as the interpreter does, so native code never reads or writes out of bounds."""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import from_compute as np_from_compute, to_compute as np_to_compute
from .irgen import BYTES, FnBuilder, compute_ty, is_unsigned, storage_ty
from .kernels_elem import broadcast_strides, collapse, contiguous_strides, load_c, store_c
from .parallel import emit_parallel_for, gomp_available

_ITY = {1: "i8", 2: "i16", 4: "i32", 8: "i64"}


def bits_ty(dt) -> str:
    return _ITY[BYTES[storage_ty(dt)]]


def _nb(v) -> int:
    return v.type.size * BYTES[storage_ty(v.dtype)]


TILE = 16     # a transposing copy moves TILE x TILE blocks: one 64-byte line per tile row at float32


def copy_strided(b: FnBuilder, dst: str, src: str, dt, shape, dst_st, src_st, src_off="0", dst_off="0") -> None:
    """dst[dst_off + idx.dst_st] = src[src_off + idx.src_st] over `shape`.

    When the destination's innermost axis is strided in the source and another axis is the
    source's contiguous one (a transpose), that axis and the innermost are walked in TILE x TILE
    blocks, so every source line a block reads is used TILE times while it is in L1 (a 2048^2
    float32 transpose: 23.6 ms walked row by row, its reads a page apart)."""
    ty = bits_ty(dt)
    shp, (s_st, d_st) = collapse(list(shape), [list(src_st), list(dst_st)])
    j = _tile_axis(shp, s_st)
    if j is None:
        with b.loops(shp, "m") as idx:
            v = b.load(ty, src, b.add(src_off, b.linear(idx, s_st)))
            b.store(ty, v, dst, b.add(dst_off, b.linear(idx, d_st)))
        return
    last = len(shp) - 1
    outer = [k for k in range(last) if k != j]

    with b.loops([shp[k] for k in outer], "m") as oidx:
        with b.loop(shp[j], "tj", step=TILE) as tj, b.loop(shp[last], "tl", step=TILE) as tl:
            with b.loop(b.smin(b.add(tj, TILE), shp[j]), "jj", start=tj) as jj, \
                    b.loop(b.smin(b.add(tl, TILE), shp[last]), "ll", start=tl) as ll:
                idx = [None] * len(shp)
                for k, i in zip(outer, oidx):
                    idx[k] = i
                idx[j], idx[last] = jj, ll
                v = b.load(ty, src, b.add(src_off, b.linear(idx, s_st)))
                b.store(ty, v, dst, b.add(dst_off, b.linear(idx, d_st)))


def _tile_axis(shp: list[int], s_st: list[int]) -> int | None:
    """The axis to tile with the innermost one: the source's contiguous axis, when the innermost
    axis is strided in the source and both are long enough to fill a tile."""
    if len(shp) < 2 or s_st[-1] == 1 or shp[-1] < TILE:
        return None
    return next((k for k in range(len(shp) - 1) if s_st[k] == 1 and shp[k] >= TILE), None)


def lower_reshape(fx, node, ins, outs) -> None:
    fx.b.memcpy(outs[0], ins[0], _nb(node.outputs[0]))


PARALLEL_COPY_BYTES = 1 << 20   # transposes at least this large run on all cores


def lower_transpose(fx, node, ins, outs) -> None:
    """A transpose as copy_strided; a large one in blocks of its outermost axis spread over the
    cores (a 2048^2 float32 transpose: 9.3 -> 5.8-6.4 ms on two cores; a permutation that keeps
    the innermost axis is memory-bound and gains nothing measurable: (32, 128, 12, 64) permuted
    (0, 2, 1, 3), an attention layer's head split, 1.2 ms either way)."""
    x, out, perm = node.inputs[0], node.outputs[0], node.attrs["perm"]
    st = contiguous_strides(x.shape)
    shp, (s_st, d_st) = collapse(list(out.shape), [[st[p] for p in perm], contiguous_strides(out.shape)])
    rows = TILE if _tile_axis(shp, s_st) == 0 else 1      # whole tiles per block when axis 0 is tiled
    full = shp[0] // rows if shp else 0
    if _nb(out) < PARALLEL_COPY_BYTES or full < 2 or not gomp_available():
        copy_strided(fx.b, outs[0], ins[0], x.dtype, shp, d_st, s_st)
        return

    def body_fn(kb: FnBuilder, kp: list[str], start: str, end: str) -> None:
        with kb.loop(end, "blk", start=start) as blk:
            first = kb.mul(blk, rows)
            copy_strided(kb, kp[1], kp[0], x.dtype, [rows] + shp[1:], d_st, s_st,
                         src_off=kb.mul(first, s_st[0]), dst_off=kb.mul(first, d_st[0]))
    emit_parallel_for(fx, "transpose", [ins[0], outs[0]], full, body_fn, _nb(out))
    if shp[0] > full * rows:                               # the rows left after whole blocks
        copy_strided(fx.b, outs[0], ins[0], x.dtype, [shp[0] - full * rows] + shp[1:], d_st, s_st,
                     src_off=full * rows * s_st[0], dst_off=full * rows * d_st[0])


def lower_broadcast(fx, node, ins, outs) -> None:
    x, out = node.inputs[0], node.outputs[0]
    copy_strided(fx.b, outs[0], ins[0], x.dtype, out.shape, contiguous_strides(out.shape),
                 broadcast_strides(x.shape, out.shape))


def lower_slice(fx, node, ins, outs) -> None:
    x, out = node.inputs[0], node.outputs[0]
    st = contiguous_strides(x.shape)
    start, strides = node.attrs["start"], node.attrs["strides"]
    off = sum(s * t for s, t in zip(start, st))
    copy_strided(fx.b, outs[0], ins[0], x.dtype, out.shape, contiguous_strides(out.shape),
                 [t * k for t, k in zip(st, strides)], src_off=str(off))


def lower_rev(fx, node, ins, outs) -> None:
    x, b = node.inputs[0], fx.b
    axes = set(node.attrs["axes"])
    st = contiguous_strides(x.shape)
    ty = bits_ty(x.dtype)
    with b.loops(x.shape, "v") as idx:
        src = [b.op(f"sub i64 {d - 1}, {i}", "i") if k in axes else i for k, (i, d) in enumerate(zip(idx, x.shape))]
        b.store(ty, b.load(ty, ins[0], b.linear(src, st)), outs[0], b.linear(idx, st))


def storage_const(value, dt) -> str:
    """A Python scalar as the integer bits of `dt`'s storage (rounded as the reference does)."""
    arr = np_from_compute(np.asarray(np.full((), value, dtype=np_to_compute(np.zeros((), dt.storage), dt).dtype)), dt)
    raw = np.asarray(arr, dtype=dt.storage).reshape(1).view(f"u{BYTES[storage_ty(dt)]}")[0]
    n = int(raw)
    bits = 8 * BYTES[storage_ty(dt)]
    return str(n - (1 << bits) if n >= 1 << (bits - 1) else n)


def lower_pad(fx, node, ins, outs) -> None:
    b, x, out = fx.b, node.inputs[0], node.outputs[0]
    lo, interior = node.attrs["lo"], node.attrs["interior"]
    ty = bits_ty(x.dtype)
    fill = storage_const(node.attrs["value"], x.dtype)
    with b.loop(out.type.size, "f") as i:
        b.store(ty, fill, outs[0], i)
    ost = contiguous_strides(out.shape)
    off = sum(l * s for l, s in zip(lo, ost))
    copy_strided(b, outs[0], ins[0], x.dtype, x.shape, [s * (k + 1) for s, k in zip(ost, interior)],
                 contiguous_strides(x.shape), dst_off=str(off))


def lower_concatenate(fx, node, ins, outs) -> None:
    out, ax = node.outputs[0], node.attrs["axis"]
    ost = contiguous_strides(out.shape)
    pos = 0
    for p, v in zip(ins, node.inputs):
        copy_strided(fx.b, outs[0], p, v.dtype, v.shape, ost, contiguous_strides(v.shape), dst_off=str(pos * ost[ax]))
        pos += v.shape[ax]


def _clipped_index(b: FnBuilder, idx_ptr: str, idx_dt, at: str, n: int) -> str:
    v = b.load(storage_ty(idx_dt), idx_ptr, at)
    cty = storage_ty(idx_dt)
    if cty != "i64":
        v = b.op(f"{'zext' if is_unsigned(idx_dt) else 'sext'} {cty} {v} to i64")
    v = b.op(f"select i1 {b.op(f'icmp slt i64 {v}, 0')}, i64 0, i64 {v}")
    return b.op(f"select i1 {b.op(f'icmp sgt i64 {v}, {n - 1}')}, i64 {n - 1}, i64 {v}")


def _gather_space(node, x, idx):
    """(axis, the index space: x's dims with the index dims in place of the axis)."""
    ax = node.attrs["axis"]
    return ax, list(x.shape[:ax]) + list(idx.shape) + list(x.shape[ax + 1:])


def _gathered_offset(b: FnBuilder, idx_ptr: str, x, idx, ax: int, ii: list[str]) -> str:
    """Flat offset into x of the element that index space point `ii` (pre, index, post dims)
    reads or writes: the index, clipped to x.shape[ax], replaces the index dims."""
    xst = contiguous_strides(x.shape)
    pi, mi, qi = ii[:ax], ii[ax:ax + idx.type.ndim], ii[ax + idx.type.ndim:]
    j = _clipped_index(b, idx_ptr, idx.dtype, b.linear(mi, contiguous_strides(idx.shape)), x.shape[ax])
    return b.add(b.add(b.linear(pi, xst[:ax]), b.mul(j, xst[ax])), b.linear(qi, xst[ax + 1:]))


def lower_take(fx, node, ins, outs) -> None:
    b, (x, idx), out = fx.b, node.inputs, node.outputs[0]
    ax, space = _gather_space(node, x, idx)
    ty = bits_ty(x.dtype)
    with b.loops(space, "g") as ii:
        src = _gathered_offset(b, ins[1], x, idx, ax, ii)
        b.store(ty, b.load(ty, ins[0], src), outs[0], b.linear(ii, contiguous_strides(out.shape)))


def lower_scatter_add(fx, node, ins, outs) -> None:
    """out = x; out[..., clip(idx), ...] += upd, in index order (np.add.at). Half types add in
    float32 and round once at the end, as the reference (which runs on float32 copies) does."""
    b, (x, idx, upd) = fx.b, node.inputs
    ax, space = _gather_space(node, x, idx)
    cty = compute_ty(x.dtype)
    half = x.dtype.is_half
    acc = fx.scratch(x.type.size * 4) if half else outs[0]
    n = x.type.size
    if half:
        with b.loop(n, "s") as i:
            b.store("float", load_c(b, ins[0], x.dtype, i), acc, i)
    else:
        b.memcpy(outs[0], ins[0], _nb(x))
    with b.loops(space, "g") as ii:
        dst = _gathered_offset(b, ins[1], x, idx, ax, ii)
        u = load_c(b, ins[2], upd.dtype, b.linear(ii, contiguous_strides(upd.shape)))
        if half:
            cur = b.load("float", acc, dst)
            b.store("float", b.op(f"fadd float {cur}, {u}"), acc, dst)
        else:
            cur = load_c(b, outs[0], x.dtype, dst)
            r = b.op(f"{'fadd' if x.dtype.is_float else 'add'} {cty} {cur}, {u}")
            store_c(b, r, outs[0], x.dtype, dst)
    if half:
        with b.loop(n, "s") as i:
            store_c(b, b.load("float", acc, i), outs[0], x.dtype, i)


RULES = {
    "reshape": lower_reshape, "transpose": lower_transpose, "broadcast_to": lower_broadcast,
    "slice": lower_slice, "rev": lower_rev, "pad": lower_pad, "concatenate": lower_concatenate,
    "take": lower_take, "scatter_add": lower_scatter_add,
}
