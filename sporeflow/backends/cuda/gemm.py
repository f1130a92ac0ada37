"""matmul and conv2d: the GEMM is the device's (cuBLAS through `cupy.matmul` on a GPU; in the
CPU emulator numpy's matmul stands in for that call), everything around it is generated
kernels: float16/bfloat16 operands are widened to float32 first (float32 accumulation) and the
result is rounded once; conv2d is an im2col kernel, one batched GEMM over the groups, and a
kernel that puts the [G, O/G, N*Ho*Wo] result in NCHW order. An elementwise epilogue fused
onto either runs as its own kernel afterwards (fused.py).
"""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import float32
from . import ctypes_c as C
from .kernels_index import strides_of
from .module import ELEMENTWISE_BLOCK, Kernel, coords, grid_for, grid_stride


def _convert_kernel(name, n, src_dt, dst_dt) -> Kernel:
    body = grid_stride(n) + f"    out0[i] = {C.store(dst_dt, C.load(src_dt, 'in0[i]'))};\n  }}\n"
    return Kernel(name, [(C.storage(src_dt), "in0", False), (C.storage(dst_dt), "out0", True)], body,
                  grid_for(n), ELEMENTWISE_BLOCK)


def widened(pb, slot: int, v) -> int:
    """A float32 copy of a half-typed value (its own slot); other dtypes as they are."""
    if not v.dtype.is_half:
        return slot
    t = pb.new_slot()
    pb.launch(_convert_kernel(pb.module.unique("widen"), v.type.size, v.dtype, float32), [slot],
              [(t, v.type.shape, np.float32)])
    return t


def _narrow_into(pb, tmp: int, out: tuple, dt) -> None:
    slot, shape, _ = out
    n = int(np.prod(shape, dtype=np.int64))
    pb.launch(_convert_kernel(pb.module.unique("narrow"), n, float32, dt), [tmp], [(slot, shape, dt.storage)])


def matmul_into(pb, node, in_slots: list, out: tuple) -> None:
    a, b = node.inputs
    ta, tb = bool(node.attrs["transpose_a"]), bool(node.attrs["transpose_b"])
    dt = node.outputs[0].dtype
    sa, sb = widened(pb, in_slots[0], a), widened(pb, in_slots[1], b)
    dst = pb.new_slot() if dt.is_half else out[0]

    def run(dev, env):
        env[dst] = dev.gemm(env[sa], env[sb], ta, tb)
    pb.host(run, [sa, sb], [dst], "gemm")
    if dt.is_half:
        _narrow_into(pb, dst, out, dt)


def conv2d_into(pb, node, in_slots: list, out: tuple) -> None:
    x, w = node.inputs
    y = node.outputs[0]
    n, c, h, wd = x.type.shape
    o, cg, kh, kw = w.type.shape
    g = node.attrs["groups"]
    (sh, sw), (dh, dw), pad = node.attrs["stride"], node.attrs["dilation"], node.attrs["padding"]
    ho, wo = y.type.shape[2:]
    og, kk, p = o // g, cg * kh * kw, n * ho * wo
    dt = y.dtype
    cdt = float32 if dt.is_half else dt
    cty = C.compute(cdt)
    # im2col: cols[g, (c, i, j), (n, ho, wo)], zero outside the input
    cols_shape = (g, kk, p)
    src = (grid_stride(g * kk * p) + coords("q", "i", (g, cg, kh, kw, n, ho, wo))
           + f"    long long hh = q5 * {sh}LL - {pad[0]}LL + q2 * {dh}LL, ww = q6 * {sw}LL - {pad[2]}LL + q3 * {dw}LL;\n"
           + f"    {cty} v = ({cty})0;\n"
           + f"    if (hh >= 0 && hh < {h}LL && ww >= 0 && ww < {wd}LL)\n"
           + f"      v = {C.load(dt, f'in0[((q4 * {c}LL + q0 * {cg}LL + q1) * {h}LL + hh) * {wd}LL + ww]')};\n"
           + "    out0[i] = v;\n  }\n")
    cols = pb.new_slot()
    pb.launch(Kernel(pb.module.unique("im2col"), [(C.storage(dt), "in0", False), (C.storage(cdt), "out0", True)],
                     src, grid_for(g * kk * p), ELEMENTWISE_BLOCK), [in_slots[0]], [(cols, cols_shape, cdt.storage)])
    sw_ = widened(pb, in_slots[1], w)
    res = pb.new_slot()

    def run(dev, env):
        env[res] = dev.gemm(dev.reshape(env[sw_], (g, og, kk)), env[cols], False, False)
    pb.host(run, [sw_, cols], [res], "gemm")
    # [g, og, (n, ho, wo)] -> y[n, g*og + o, ho, wo]
    rs = strides_of((g, og, p))
    src = (grid_stride(y.type.size) + coords("y", "i", y.type.shape)
           + f"    long long gg = y1 / {og}LL, oo = y1 % {og}LL;\n"
           + f"    out0[i] = {C.store(dt, f'in0[gg * {rs[0]}LL + oo * {rs[1]}LL + (y0 * {ho}LL + y2) * {wo}LL + y3]')};\n  }}\n")
    pb.launch(Kernel(pb.module.unique("conv_out"), [(C.storage(cdt), "in0", False), (C.storage(dt), "out0", True)],
                     src, grid_for(y.type.size), ELEMENTWISE_BLOCK), [res], [out])
