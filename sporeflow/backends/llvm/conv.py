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

A "full" convolution, padded by K-1 on every side (autodiff's input gradient of a stride-1
convolution: dy convolved with the flipped weights), is mostly zeros in cols. With stride 1 and
groups 1 it is computed from the input pixels instead ("scatter", as a transposed convolution):
per image
    T[(o,a,b), (u,v)]  = wr[(o,a,b), C] @ x[n][C, H*W]      wr = w as [O, KH, KW, C]
    out[n, o, i, j]    = sum over a, b of T[(o,a,b), (i+a-p0, j+b-p2)] where inside x
H*W / (Ho*Wo) of the multiply-adds (LeNet's second input gradient: 100 / 196). That conv alone,
two cores, medians: 0.46 ms, against 1.0 ms for the padded copy + im2col it replaces; adding the
contributions row by row (rows of W = 10, too short to vectorize) instead of as shifts of whole
planes (see _conv_blas_scatter) took 0.57 ms.

A single image (N == 1: how autodiff writes a weight gradient, the batch becoming the channels)
has no images to spread over the cores, so its channels are split into CHANNEL_CHUNKS chunks
instead: each chunk's GEMM writes a partial output, and the partials are summed in chunk order
(a fixed number of chunks, so the result does not depend on the thread count).
"""
from __future__ import annotations

from .irgen import BYTES, FnBuilder, compute_ty
from .gemm import single_threaded_blas
from .kernels_elem import narrow_into, widened
from .parallel import emit_parallel_for, gomp_available, team_size
from .kernels_nn import blas_available, emit_gemm, lower_conv2d as lower_conv2d_loops


def lower_conv2d(fx, node, ins, outs) -> None:
    """float32/float64 as im2col + BLAS; float16/bfloat16 the same on float32 copies, rounded
    once at the end (the interpreter's rule, as matmul in gemm.py); others: the loop nest."""
    (x, w), out = node.inputs, node.outputs[0]
    half = x.dtype.is_half and w.dtype is x.dtype
    if not (x.dtype.name in ("float32", "float64") or half) or not blas_available() or out.type.size == 0:
        return lower_conv2d_loops(fx, node, ins, outs)
    if not half:
        return _conv_blas(fx, node, ins, outs, compute_ty(x.dtype))
    c32 = fx.scratch(out.type.size * 4)
    _conv_blas(fx, node, [widened(fx, ins[0], x), widened(fx, ins[1], w)], [c32], "float")
    narrow_into(fx, c32, outs[0], out)


CHANNEL_CHUNKS = 4     # chunks of a single image's channels (see the module note)


def _conv_blas(fx, node, ins, outs, cty: str) -> None:
    b, (x, w), out = fx.b, node.inputs, node.outputs[0]
    if x.shape[0] == 1 and node.attrs["groups"] == 1 and x.shape[1] % CHANNEL_CHUNKS == 0 \
            and gomp_available() and team_size() > 1:
        return _conv_blas_channel_split(fx, node, ins, outs, cty)
    s, p, d, g = node.attrs["stride"], node.attrs["padding"], node.attrs["dilation"], node.attrs["groups"]
    N, C, H, W = x.shape
    O, CG, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    if g == 1 and tuple(s) == (1, 1) and tuple(d) == (1, 1) and KH * KW > 1 \
            and tuple(p) == (KH - 1, KH - 1, KW - 1, KW - 1):
        return _conv_blas_scatter(fx, node, ins, outs, cty)
    og, K, P = O // g, CG * KH * KW, Ho * Wo
    direct = KH == KW == 1 and tuple(s) == (1, 1) and tuple(p) == (0, 0, 0, 0)
    # cols[K, P] copies runs of Wo output columns; when the kernel is wider than the output
    # (weight gradients: a 28x28 "kernel" over a 5x5 output) the transposed panel cols_t[P, K]
    # copies runs of KW instead, and the gemm reads it transposed
    transposed = not direct and KW > Wo
    b.emit(f"; conv2d as im2col + gemm: {g} x gemm({og}x{P}x{K}) per image"
           + (" (transposed panel)" if transposed else ""))
    # images run in parallel (each thread its own im2col panel, indexed by its thread number)
    threads = team_size() if gomp_available() else 1
    cols = None if direct else fx.scratch(threads * K * P * BYTES[cty])
    restore = single_threaded_blas(b)      # see gemm.py: OpenBLAS's own threads stall under load
    ptrs = [ins[0], ins[1], outs[0]] + ([cols] if cols else [])

    def body_fn(kb: FnBuilder, kp: list[str], start: str, end: str) -> None:
        panel0 = None
        if not direct and threads == 1:
            panel0 = kp[3]
        elif not direct:
            kb.module.declare("declare i32 @omp_get_thread_num()")
            tid = kb.op("sext i32 " + kb.op("call i32 @omp_get_thread_num()") + " to i64")
            panel0 = kb.gep(cty, kp[3], kb.mul(tid, K * P))
        with kb.loop(end, "cn", start=start) as n:
            with kb.loop(g, "cg") as q:
                xbase = kb.add(kb.mul(n, C * H * W), kb.mul(q, CG * H * W))
                if direct:
                    panel = kb.gep(cty, kp[0], xbase)
                elif transposed:
                    _im2col_t(kb, cty, kp[0], xbase, panel0, CG, H, W, KH, KW, Ho, Wo, s, p, d)
                    panel = panel0
                else:
                    _im2col(kb, cty, kp[0], xbase, panel0, CG, H, W, KH, KW, Ho, Wo, s, p, d)
                    panel = panel0
                wq = kb.gep(cty, kp[1], kb.mul(q, og * K))
                oq = kb.gep(cty, kp[2], kb.add(kb.mul(n, O * P), kb.mul(q, og * P)))
                if transposed and K >= DOT_MIN_K:
                    emit_dot_gemm(kb, cty, wq, K, panel, K, oq, og, P, K)
                else:
                    emit_gemm(kb, cty, wq, panel, oq, og, P, K, False, transposed)
    emit_parallel_for(fx, "conv2d", ptrs, N, body_fn, N * og * g * P * K if N > 1 else 0)
    restore()


def _conv_blas_scatter(fx, node, ins, outs, cty: str) -> None:
    """A "full" convolution (stride 1, groups 1, padding K-1 on every side): one GEMM over the
    input pixels per image, then each output plane adds up its KH*KW shifted contributions.
    The image is copied with rows of Wo (zeros after column W) so that every contribution is one
    contiguous shift of the flattened plane: a long loop that vectorizes, not H rows of W."""
    b, (x, w), out = fx.b, node.inputs, node.outputs[0]
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    M, HWo, plane = O * KH * KW, H * Wo, Ho * Wo
    b.emit(f"; conv2d as scatter: gemm({M}x{HWo}x{C}) per image, then {KH}x{KW} shifted adds")
    wr = fx.scratch(M * C * BYTES[cty])
    with b.loops([O, C, KH * KW], "wr") as (o, c, ab):      # wr[(o, ab), c] = w[o, c, ab]
        val = b.load(cty, ins[1], b.add(b.mul(b.add(b.mul(o, C), c), KH * KW), ab))
        b.store(cty, val, wr, b.add(b.mul(b.add(b.mul(o, KH * KW), ab), C), c))
    threads = team_size() if gomp_available() else 1
    per_thread = C * HWo + M * HWo       # the widened image, then T
    panels = fx.scratch(threads * per_thread * BYTES[cty])
    restore = single_threaded_blas(b)

    def body_fn(kb: FnBuilder, kp: list[str], start: str, end: str) -> None:
        xs = kp[3]
        if threads > 1:
            kb.module.declare("declare i32 @omp_get_thread_num()")
            tid = kb.op("sext i32 " + kb.op("call i32 @omp_get_thread_num()") + " to i64")
            xs = kb.gep(cty, kp[3], kb.mul(tid, per_thread))
        t = kb.gep(cty, xs, C * HWo)
        with kb.loop(end, "sn", start=start) as n:
            with kb.loop(C * H, "sr") as r:          # row r of the image, widened to Wo
                _copy_run(kb, cty, kp[0], kb.add(kb.mul(n, C * H * W), kb.mul(r, W)), 1, xs, kb.mul(r, Wo), "0", str(W))
                _fill(kb, cty, xs, kb.mul(r, Wo), str(W), str(Wo))
            emit_gemm(kb, cty, kp[1], xs, t, M, HWo, C, False, False)
            with kb.loop(O, "so") as o:
                obase = kb.mul(kb.add(kb.mul(n, O), o), plane)
                _fill(kb, cty, kp[2], obase, "0", str(plane))
                with kb.loops([KH, KW], "sk") as (a, bb):
                    # T[(o,a,b), u*Wo + v] lands on out[o, (u + KH-1-a)*Wo + v + KW-1-b]
                    shift = kb.add(kb.mul(kb.op(f"sub i64 {KH - 1}, {a}", "i"), Wo), kb.op(f"sub i64 {KW - 1}, {bb}", "i"))
                    room = kb.op(f"sub i64 {plane}, {shift}", "i")     # zero columns past the plane's end
                    hi = kb.smin(room, HWo)
                    src = kb.mul(kb.add(kb.mul(o, KH * KW), kb.add(kb.mul(a, KW), bb)), HWo)
                    dst = kb.add(obase, shift)
                    with kb.loop(hi, "sv") as v:
                        acc = kb.load(cty, kp[2], kb.add(dst, v))
                        term = kb.load(cty, t, kb.add(src, v))
                        kb.store(cty, kb.op(f"fadd {cty} {acc}, {term}"), kp[2], kb.add(dst, v))
    emit_parallel_for(fx, "conv2d_scatter", [ins[0], wr, outs[0], panels], N, body_fn, N * M * HWo * C)
    restore()


def _conv_blas_channel_split(fx, node, ins, outs, cty: str) -> None:
    """One image: chunk q of the channels -> part[q] = w[:, chunk] @ cols(chunk); out = sum of
    parts. The chunks run in parallel, each thread with its own im2col panel."""
    b, (x, w), out = fx.b, node.inputs, node.outputs[0]
    s, p, d = node.attrs["stride"], node.attrs["padding"], node.attrs["dilation"]
    _, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    CC = C // CHANNEL_CHUNKS
    K, Kc, P = C * KH * KW, CC * KH * KW, Ho * Wo
    transposed = KW > Wo
    b.emit(f"; conv2d of one image as {CHANNEL_CHUNKS} channel chunks: gemm({O}x{P}x{Kc}) each"
           + (" (transposed panel)" if transposed else ""))
    threads = team_size()
    cols = fx.scratch(threads * Kc * P * BYTES[cty])
    parts = fx.scratch(CHANNEL_CHUNKS * O * P * BYTES[cty])
    restore = single_threaded_blas(b)

    def body_fn(kb: FnBuilder, kp: list[str], start: str, end: str) -> None:
        kb.module.declare("declare i32 @omp_get_thread_num()")
        tid = kb.op("sext i32 " + kb.op("call i32 @omp_get_thread_num()") + " to i64")
        panel = kb.gep(cty, kp[3], kb.mul(tid, Kc * P))
        with kb.loop(end, "cq", start=start) as q:
            xbase = kb.mul(q, CC * H * W)
            im2col = _im2col_t if transposed else _im2col
            im2col(kb, cty, kp[0], xbase, panel, CC, H, W, KH, KW, Ho, Wo, s, p, d)
            wq = kb.gep(cty, kp[1], kb.mul(q, Kc))
            part = kb.gep(cty, kp[4], kb.mul(q, O * P))
            if transposed and Kc >= DOT_MIN_K:
                emit_dot_gemm(kb, cty, wq, K, panel, Kc, part, O, P, Kc)
            else:
                emit_gemm(kb, cty, wq, panel, part, O, P, Kc, False, transposed, lda=K)
    emit_parallel_for(fx, "conv2d_chunks", [ins[0], ins[1], outs[0], cols, parts], CHANNEL_CHUNKS, body_fn,
                      O * P * K)
    restore()
    with b.loop(O * P, "cs") as i:
        acc = b.load(cty, parts, i)
        for q in range(1, CHANNEL_CHUNKS):
            acc = b.op(f"fadd {cty} {acc}, {b.load(cty, parts, b.add(i, q * O * P))}")
        b.store(cty, acc, outs[0], i)


DOT_MR, DOT_NR = 2, 4     # output block of the dot-product kernel: 8 accumulators
DOT_MIN_K = 1024         # below this the transposed product stays with BLAS


def emit_dot_gemm(b: FnBuilder, ty: str, a: str, lda: int, bt: str, ldb: int, c: str, m: int, n: int, k: int) -> None:
    """C[m, n] = sum_k A[m, k] * B[n, k] (both operands read along k), generated.

    The weight gradients' products have tiny outputs and very long k (6x25x12544 for LeNet's
    first layer), where OpenBLAS ran at ~15 GFLOP/s a core: each 2x4 output block here streams
    its 2 + 4 rows once with 8 vector accumulators (the loop vectorizer's reductions)."""
    b.emit(f"; dot-product gemm {m}x{n}x{k}")

    def block(m0: str, n0: str, mr: int, nr: int) -> None:
        accs = [[b.alloca(ty, "dacc") for _ in range(nr)] for _ in range(mr)]
        for row in accs:
            for slot in row:
                b.store(ty, "0.0", slot)
        arow = [b.mul(b.add(m0, i), lda) for i in range(mr)]
        brow = [b.mul(b.add(n0, j), ldb) for j in range(nr)]
        with b.loop(k, "dk", interleave=2) as kk:
            av = [b.load(ty, a, b.add(r, kk)) for r in arow]
            bv = [b.load(ty, bt, b.add(r, kk)) for r in brow]
            for i in range(mr):
                for j in range(nr):
                    prod = b.op(f"fmul contract {ty} {av[i]}, {bv[j]}")
                    b.store(ty, b.op(f"fadd reassoc contract {ty} {b.load(ty, accs[i][j])}, {prod}"), accs[i][j])
        for i in range(mr):
            for j in range(nr):
                b.store(ty, b.load(ty, accs[i][j]), c, b.add(b.mul(b.add(m0, i), n), b.add(n0, j)))

    def rows(m0: str, mr: int) -> None:
        full = n - n % DOT_NR
        if full:
            with b.loop(full, "dn", step=DOT_NR) as n0:
                block(m0, n0, mr, DOT_NR)
        if n % DOT_NR:
            block(m0, str(full), mr, n % DOT_NR)
    full_m = m - m % DOT_MR
    if full_m:
        with b.loop(full_m, "dm", step=DOT_MR) as m0:
            rows(m0, DOT_MR)
    if m % DOT_MR:
        rows(str(full_m), m % DOT_MR)


def _clamp_range(b: FnBuilder, off: str, stride: int, size: int, n: int) -> tuple[str, str]:
    """[lo, hi) of t in [0, n) with 0 <= t*stride + off < size (off may be negative)."""
    # lo = off >= 0 ? 0 : ceil(-off / stride);  hi = min(n, floor((size - 1 - off) / stride) + 1)
    neg = b.op(f"sub i64 0, {off}", "i")
    lo = b.op(f"sdiv i64 {b.op(f'add i64 {neg}, {stride - 1}', 'i')}, {stride}", "i")
    lo = b.op(f"select i1 {b.op(f'icmp sgt i64 {off}, 0')}, i64 0, i64 {lo}", "i")
    top = b.op(f"sub i64 {size - 1}, {off}", "i")
    hi = b.op(f"add i64 {b.op(f'sdiv i64 {top}, {stride}', 'i')}, 1", "i")
    hi = b.op(f"select i1 {b.op(f'icmp slt i64 {top}, 0')}, i64 0, i64 {hi}", "i")
    hi = b.smin(hi, n)
    lo = b.smin(lo, hi)
    return lo, hi


def _fill(b: FnBuilder, ty: str, dst: str, base: str, lo, hi) -> None:
    with b.loop(hi, "z", start=lo) as t:
        b.store(ty, "0.0", dst, b.add(base, t))


def _copy_run(b: FnBuilder, ty: str, x: str, src0: str, step: int, dst: str, dbase: str, lo: str, hi: str) -> None:
    """dst[dbase + t] = x[src0 + t*step] for t in [lo, hi): no bounds checks (vectorizes)."""
    with b.loop(hi, "cp", start=lo) as t:
        b.store(ty, b.load(ty, x, b.add(src0, b.mul(t, step))), dst, b.add(dbase, t))


def _im2col(b: FnBuilder, ty: str, x: str, xbase: str, cols: str, CG, H, W, KH, KW, Ho, Wo, s, p, d) -> None:
    """cols[(c*KH+i)*KW+j, oh*Wo+ow] = x[c, oh*s0+i*d0-p0, ow*s1+j*d1-p2] or 0 outside; each
    output row splits into a zero border, an unchecked strided copy, a zero border."""
    P = Ho * Wo
    with b.loops([CG, KH, KW], "ic") as (c, i, j):
        row = b.add(b.mul(b.add(b.mul(c, KH), i), KW), j)
        rbase = b.mul(row, P)
        cbase = b.add(xbase, b.mul(c, H * W))
        woff = b.op(f"sub i64 {b.mul(j, d[1])}, {p[2]}", "i")
        lo, hi = _clamp_range(b, woff, s[1], W, Wo)
        hoff = b.op(f"sub i64 {b.mul(i, d[0])}, {p[0]}", "i")
        hlo, hhi = _clamp_range(b, hoff, s[0], H, Ho)
        with b.loop(Ho, "oh") as oh:
            obase = b.add(rbase, b.mul(oh, Wo))
            inside = b.op(f"and i1 {b.op(f'icmp sge i64 {oh}, {hlo}')}, {b.op(f'icmp slt i64 {oh}, {hhi}')}")
            rlo = b.op(f"select i1 {inside}, i64 {lo}, i64 {Wo}", "i")
            rhi = b.op(f"select i1 {inside}, i64 {hi}, i64 {Wo}", "i")
            ih = b.add(b.mul(oh, s[0]), hoff)
            ihc = b.op(f"select i1 {inside}, i64 {ih}, i64 0", "i")
            src0 = b.add(b.add(cbase, b.mul(ihc, W)), woff)
            _fill(b, ty, cols, obase, "0", rlo)
            _copy_run(b, ty, x, src0, s[1], cols, obase, rlo, rhi)
            _fill(b, ty, cols, obase, rhi, Wo)


def _im2col_t(b: FnBuilder, ty: str, x: str, xbase: str, cols: str, CG, H, W, KH, KW, Ho, Wo, s, p, d) -> None:
    """cols_t[oh*Wo+ow, (c*KH+i)*KW+j], the same values as _im2col, runs along j."""
    K = CG * KH * KW
    with b.loops([Ho, Wo, CG, KH], "it") as (oh, ow, c, i):
        dbase = b.add(b.mul(b.add(b.mul(oh, Wo), ow), K), b.mul(b.add(b.mul(c, KH), i), KW))
        ih = b.op(f"sub i64 {b.add(b.mul(oh, s[0]), b.mul(i, d[0]))}, {p[0]}", "i")
        okh = b.op(f"icmp ult i64 {ih}, {H}")
        woff = b.op(f"sub i64 {b.mul(ow, s[1])}, {p[2]}", "i")
        lo, hi = _clamp_range(b, woff, d[1], W, KW)
        rlo = b.op(f"select i1 {okh}, i64 {lo}, i64 {KW}", "i")
        rhi = b.op(f"select i1 {okh}, i64 {hi}, i64 {KW}", "i")
        ihc = b.op(f"select i1 {okh}, i64 {ih}, i64 0", "i")
        src0 = b.add(b.add(b.add(xbase, b.mul(c, H * W)), b.mul(ihc, W)), woff)
        _fill(b, ty, cols, dbase, "0", rlo)
        _copy_run(b, ty, x, src0, d[1], cols, dbase, rlo, rhi)
        _fill(b, ty, cols, dbase, rhi, KW)


RULES = {"conv2d": lower_conv2d}
