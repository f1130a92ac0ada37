"""conv2d at BLAS speed: im2col into a scratch panel, then one GEMM per image and group.

Why BLAS and not a generated register-blocked kernel: backend-derisk.md 1d measured the
generated 8x32 micro-kernel at 99 GFLOP/s on one core at 1024^3 without packing, equal to
OpenBLAS single-threaded, but "expect it to drop at other shapes"; convolutions here are
exactly the other shapes (LeNet: 6x784x25, and the weight gradients 16x25x(64*10*10)), where
OpenBLAS's packing and its own threading win, and calling it from the JIT code costs nothing
measurable. So the choice is: the same BLAS numpy uses (float32/float64), the direct loop
nest of kernels_nn.py for everything else (integers, half types, no BLAS found).

Layout (NCHW x OIHW, groups g, og = O/g, K = C/g*kh*kw, P = Ho*Wo): for image n and group q,
    cols[K, P]                 = im2col of x[n, q*C/g : (q+1)*C/g]   (zeros where padded)
    out[n, q*og:(q+1)*og, P]   = w[q*og:(q+1)*og, K] @ cols[K, P]
A 1x1 convolution with stride 1 and no padding reads x directly (cols is x[n]).
"""
from __future__ import annotations

from .irgen import BYTES, FnBuilder, compute_ty
from .kernels_nn import blas_available, emit_gemm, lower_conv2d as lower_conv2d_loops


def lower_conv2d(fx, node, ins, outs) -> None:
    b, (x, w), out = fx.b, node.inputs, node.outputs[0]
    cty = compute_ty(x.dtype)
    if x.dtype.name not in ("float32", "float64") or not blas_available() or out.type.size == 0:
        return lower_conv2d_loops(fx, node, ins, outs)
    s, p, d, g = node.attrs["stride"], node.attrs["padding"], node.attrs["dilation"], node.attrs["groups"]
    N, C, H, W = x.shape
    O, CG, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    og, K, P = O // g, CG * KH * KW, Ho * Wo
    direct = KH == KW == 1 and tuple(s) == (1, 1) and tuple(p) == (0, 0, 0, 0)
    cols = None if direct else fx.scratch(K * P * BYTES[cty])
    b.emit(f"; conv2d as im2col + gemm: {g} x gemm({og}x{P}x{K}) per image")
    with b.loop(N, "cn") as n:
        with b.loop(g, "cg") as q:
            xbase = b.add(b.mul(n, C * H * W), b.mul(q, CG * H * W))
            if direct:
                panel = b.gep(cty, ins[0], xbase)
            else:
                _im2col(b, cty, ins[0], xbase, cols, CG, H, W, KH, KW, Ho, Wo, s, p, d)
                panel = cols
            wq = b.gep(cty, ins[1], b.mul(q, og * K))
            oq = b.gep(cty, outs[0], b.add(b.mul(n, O * P), b.mul(q, og * P)))
            emit_gemm(b, cty, wq, panel, oq, og, P, K, False, False)


def _im2col(b: FnBuilder, ty: str, x: str, xbase: str, cols: str, CG, H, W, KH, KW, Ho, Wo, s, p, d) -> None:
    """cols[(c*KH+i)*KW+j, oh*Wo+ow] = x[c, oh*s0+i*d0-p0, ow*s1+j*d1-p2] or 0 outside."""
    P = Ho * Wo
    with b.loops([CG, KH, KW], "ic") as (c, i, j):
        row = b.add(b.mul(b.add(b.mul(c, KH), i), KW), j)
        rbase = b.mul(row, P)
        cbase = b.add(xbase, b.mul(c, H * W))
        with b.loop(Ho, "oh") as oh:
            ih = b.op(f"sub i64 {b.add(b.mul(oh, s[0]), b.mul(i, d[0]))}, {p[0]}", "i")
            okh = b.op(f"icmp ult i64 {ih}, {H}")
            ihc = b.op(f"select i1 {okh}, i64 {ih}, i64 0")
            obase = b.add(rbase, b.mul(oh, Wo))
            xrow = b.add(cbase, b.mul(ihc, W))
            with b.loop(Wo, "ow") as ow:
                iw = b.op(f"sub i64 {b.add(b.mul(ow, s[1]), b.mul(j, d[1]))}, {p[2]}", "i")
                ok = b.op(f"and i1 {okh}, {b.op(f'icmp ult i64 {iw}, {W}')}")
                iwc = b.op(f"select i1 {ok}, i64 {iw}, i64 0")
                v = b.load(ty, x, b.add(xrow, iwc))
                v = b.op(f"select i1 {ok}, {ty} {v}, {ty} 0.0")   # padding is a real zero
                b.store(ty, v, cols, b.add(obase, ow))


RULES = {"conv2d": lower_conv2d}
