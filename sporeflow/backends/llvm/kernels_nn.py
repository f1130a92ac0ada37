"""Opaque kernels: matmul, conv2d, max/avg pooling and the max-pool input gradient.

matmul: float32/float64 (and half types, through float32 scratch copies) call the BLAS numpy
ships (OpenBLAS, `scipy_cblas_[sd]gemm64_`, ILP64; backend-derisk.md 1d: as fast as numpy,
no measurable call overhead). Integers and machines without that library use the loop nest.
conv2d and pooling are direct loop nests (accumulating in double for float32 and half types).
The matmul and conv2d rules here are the generic paths: the backend's table lowers the two
ops with gemm.py (threaded BLAS blocks) and conv.py (im2col + BLAS), which fall back to them.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

from .irgen import BYTES, FnBuilder, compute_ty, fconst, is_unsigned, storage_ty
from .kernels_elem import contiguous_strides, load_c, narrow_into, store_c
from .parallel import emit_parallel_for
from .scalar_ops import SCALAR_RULES

_BLAS_SYMBOLS = {"float": "scipy_cblas_sgemm64_", "double": "scipy_cblas_dgemm64_"}
_blas_ok: bool | None = None


def expose_openblas(symbols) -> bool:
    """Find numpy's bundled OpenBLAS and expose `symbols` from it to the JIT linker; False when
    the library or a symbol is missing."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libscipy_openblas64_*.so"))
    if not libs:
        return False
    try:
        import llvmlite.binding as llvm
        lib = ctypes.CDLL(libs[0])
        for sym in symbols:
            llvm.add_symbol(sym, ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value)
    except (OSError, AttributeError):
        return False
    return True


def blas_available() -> bool:
    """Whether the gemm symbols of numpy's OpenBLAS are exposed to the JIT linker (tried once)."""
    global _blas_ok
    if _blas_ok is None:
        _blas_ok = expose_openblas(_BLAS_SYMBOLS.values())
    return _blas_ok


def emit_gemm(b: FnBuilder, ty: str, a: str, bb: str, c: str, m: int | str, n: int | str, k: int,
              ta: bool, tb: bool, lda: int | None = None, ldb: int | None = None, ldc: int | None = None,
              beta: float = 0.0) -> None:
    """C[m,n] = op(A) @ op(B) + beta C for one matrix, `ty` float/double, via BLAS; m/n may be
    runtime values (a block of a product), lda/ldb/ldc default to dense rows (a sub-block of a
    wider matrix passes its row stride)."""
    sym = _BLAS_SYMBOLS[ty]
    b.module.declare(f"declare void @{sym}(i32, i32, i32, i64, i64, i64, {ty}, ptr, i64, ptr, i64, {ty}, ptr, i64)")
    lda = lda or max(m if ta else k, 1)
    ldb = ldb or max(k if tb else n, 1)
    ldc = ldc or max(n, 1)
    b.emit(f"call void @{sym}(i32 101, i32 {112 if ta else 111}, i32 {112 if tb else 111}, i64 {m}, i64 {n}, "
           f"i64 {k}, {ty} 1.0, ptr {a}, i64 {lda}, ptr {bb}, i64 {ldb}, {ty} {float(beta)!r}, ptr {c}, i64 {ldc})")


def _matmul_loops(fx, node, ins, outs, batch, m, n, k, ta, tb) -> None:
    b, (x, _), out = fx.b, node.inputs, node.outputs[0]
    dt = x.dtype
    cty = compute_ty(dt)
    acc_ty = "double" if cty in ("float", "double") else "i64"
    acc = b.alloca(acc_ty, "acc")
    sa = (1, m) if ta else (k, 1)      # (row stride, k stride) of A
    sb = (1, k) if tb else (n, 1)      # (k stride, col stride) of B
    with b.loops([batch, m, n], "mm") as (bi, i, j):
        b.store(acc_ty, "0.0" if acc_ty == "double" else "0", acc)
        abase = b.add(b.mul(bi, m * k), b.mul(i, sa[0]))
        bbase = b.add(b.mul(bi, k * n), b.mul(j, sb[1]))
        with b.loop(k, "kk") as kk:
            av = load_c(b, ins[0], dt, b.add(abase, b.mul(kk, sa[1])))
            bv = load_c(b, ins[1], dt, b.add(bbase, b.mul(kk, sb[0])))
            if acc_ty == "double":
                if cty == "float":
                    av, bv = b.op(f"fpext float {av} to double"), b.op(f"fpext float {bv} to double")
                p = b.op(f"fmul double {av}, {bv}")
                b.store(acc_ty, b.op(f"fadd double {b.load(acc_ty, acc)}, {p}"), acc)
            else:
                if cty != "i64":
                    ext = "zext" if is_unsigned(dt) else "sext"
                    av, bv = b.op(f"{ext} {cty} {av} to i64"), b.op(f"{ext} {cty} {bv} to i64")
                b.store(acc_ty, b.op(f"add i64 {b.load(acc_ty, acc)}, {b.op(f'mul i64 {av}, {bv}')}"), acc)
        r = b.load(acc_ty, acc)
        if acc_ty != cty:
            r = b.op(f"fptrunc double {r} to {cty}" if acc_ty == "double" else f"trunc i64 {r} to {cty}")
        store_c(b, r, outs[0], out.dtype, b.add(b.mul(bi, m * n), b.add(b.mul(i, n), j)))


def lower_matmul(fx, node, ins, outs) -> None:
    b, (x, y), out = fx.b, node.inputs, node.outputs[0]
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    m, n = out.shape[-2:]
    k = x.shape[-1] if not ta else x.shape[-2]
    batch = int(np.prod(out.shape[:-2], dtype=np.int64))
    cty = compute_ty(x.dtype)
    if cty not in ("float", "double") or not blas_available() or m * n * k == 0:
        return _matmul_loops(fx, node, ins, outs, batch, m, n, k, ta, tb)
    a_p, b_p, c_p = ins[0], ins[1], outs[0]
    if x.dtype.is_half:     # the reference multiplies float32 copies and rounds once
        a_p, b_p, c_p = fx.scratch(x.type.size * 4), fx.scratch(y.type.size * 4), fx.scratch(out.type.size * 4)
        for src, dst, v in ((ins[0], a_p, x), (ins[1], b_p, y)):
            with b.loop(v.type.size, "h") as i:
                b.store("float", load_c(b, src, v.dtype, i), dst, i)
    esz = BYTES[cty]
    with b.loop(batch, "bt") as bi:
        pa = b.gep(cty, a_p, b.mul(bi, m * k))
        pb = b.gep(cty, b_p, b.mul(bi, k * n))
        pc = b.gep(cty, c_p, b.mul(bi, m * n))
        emit_gemm(b, cty, pa, pb, pc, m, n, k, ta, tb)
    if x.dtype.is_half:
        with b.loop(out.type.size, "h") as i:
            store_c(b, b.load("float", c_p, i), outs[0], out.dtype, i)
    _ = esz


def _window_loops(b: FnBuilder, x, kh: int, kw: int, s, p, d, oh: str, ow: str, body) -> None:
    """Call body(ih_ok_and_iw_ok, ih, iw, i, j) for every window tap (indices clamped to 0 when
    out of range, so the load is always in bounds; `ok` says whether it is real)."""
    H, W = x.shape[2], x.shape[3]
    with b.loops([kh, kw], "w") as (i, j):
        ih = b.op(f"sub i64 {b.add(b.mul(oh, s[0]), b.mul(i, d[0]))}, {p[0]}", "i")
        iw = b.op(f"sub i64 {b.add(b.mul(ow, s[1]), b.mul(j, d[1]))}, {p[2]}", "i")
        okh = b.op(f"icmp ult i64 {ih}, {H}")
        okw = b.op(f"icmp ult i64 {iw}, {W}")
        ok = b.op(f"and i1 {okh}, {okw}")
        ihc = b.op(f"select i1 {ok}, i64 {ih}, i64 0")
        iwc = b.op(f"select i1 {ok}, i64 {iw}, i64 0")
        body(ok, ihc, iwc, i, j)


def lower_conv2d(fx, node, ins, outs) -> None:
    b, (x, w), out = fx.b, node.inputs, node.outputs[0]
    s, p, d, g = node.attrs["stride"], node.attrs["padding"], node.attrs["dilation"], node.attrs["groups"]
    N, C, H, W = x.shape
    O, CG, KH, KW = w.shape
    og = O // g
    cty = compute_ty(x.dtype)
    acc = b.alloca("double", "acc")
    xs, ws, os_ = contiguous_strides(x.shape), contiguous_strides(w.shape), contiguous_strides(out.shape)
    with b.loops(out.shape, "cv") as (n, o, oh, ow):
        b.store("double", "0.0", acc)
        grp = b.op(f"udiv i64 {o}, {og}", "i")
        with b.loop(CG, "c") as c:
            ch = b.add(b.mul(grp, CG), c)

            def tap(ok, ih, iw, i, j):
                xv = load_c(b, ins[0], x.dtype, b.linear([n, ch, ih, iw], xs))
                wv = load_c(b, ins[1], w.dtype, b.linear([o, c, i, j], ws))
                if cty == "float":
                    xv, wv = b.op(f"fpext float {xv} to double"), b.op(f"fpext float {wv} to double")
                xv = b.op(f"select i1 {ok}, double {xv}, double 0.0")   # padding is a real zero (0*nan=nan)
                prod = b.op(f"fmul double {xv}, {wv}")
                b.store("double", b.op(f"fadd double {b.load('double', acc)}, {prod}"), acc)
            _window_loops(b, x, KH, KW, s, p, d, oh, ow, tap)
        r = b.load("double", acc)
        if cty == "float":
            r = b.op(f"fptrunc double {r} to float")
        store_c(b, r, outs[0], out.dtype, b.linear([n, o, oh, ow], os_))


def _pool(kind: str):
    def rule(fx, node, ins, outs) -> None:
        b, x, out = fx.b, node.inputs[0], node.outputs[0]
        k, s, p = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
        cty = compute_ty(x.dtype)
        aty = cty if kind == "max" else "double"
        acc = b.alloca(aty, "acc")
        xs, os_ = contiguous_strides(x.shape), contiguous_strides(out.shape)
        with b.loops(out.shape, "pl") as (n, c, oh, ow):
            b.store(aty, fconst(-np.inf, aty) if kind == "max" else "0.0", acc)

            def tap(ok, ih, iw, i, j):
                v = load_c(b, ins[0], x.dtype, b.linear([n, c, ih, iw], xs))
                a = b.load(aty, acc)
                if kind == "max":
                    m = SCALAR_RULES["maximum"](b, [a, v], [x.dtype] * 2, x.dtype, None)   # numpy's NaN/tie rule
                else:
                    if cty == "float":
                        v = b.op(f"fpext float {v} to double")
                    m = b.op(f"fadd double {a}, {b.op(f'select i1 {ok}, double {v}, double 0.0')}")
                b.store(aty, b.op(f"select i1 {ok}, {aty} {m}, {aty} {a}"), acc)
            _window_loops(b, x, k[0], k[1], s, p, (1, 1), oh, ow, tap)
            r = b.load(aty, acc)
            if kind == "avg":
                r = b.op(f"fdiv double {r}, {fconst(float(k[0] * k[1]), 'double')}")
                if cty == "float":
                    r = b.op(f"fptrunc double {r} to float")
            store_c(b, r, outs[0], out.dtype, b.linear([n, c, oh, ow], os_))
    return rule


def _lower_max_pool_grad(fx, node, ins, outs) -> None:
    """Per window, its taps are a constant chain of compares with y (padding never hits).
    Disjoint windows without padding (stride >= kernel: LeNet's 2x2/2) store every tap once,
    g at the first hit and 0 elsewhere: no read-modify-write, and dx is zeroed only where no
    window reaches. Otherwise dx = 0, then dx[first hit] += g per window, unconditionally
    (adding +0.0 changes nothing: dx starts at +0.0 and never holds -0.0), windows in order
    as the interpreter sums them. Planes (n, c) run in parallel; half types accumulate in a
    float32 scratch rounded once."""
    (x, y, g), out = node.inputs, node.outputs[0]
    (kh, kw), (sh, sw), p = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    cty = compute_ty(x.dtype)
    acc = fx.scratch(out.type.size * 4) if x.dtype.is_half else outs[0]
    padded = any(p)
    disjoint = not padded and sh >= kh and sw >= kw
    covered = disjoint and (sh, sw) == (kh, kw) and (Ho * kh, Wo * kw) == (H, W)

    def taps(kb: FnBuilder, xp: str, xb: str, oh: str, ow: str, yv: str) -> list[tuple[str, str]]:
        """(index in the plane, hit) per tap, row-major."""
        res = []
        for a in range(kh):
            for bb in range(kw):
                ih = kb.op(f"sub i64 {kb.add(kb.mul(oh, sh), a)}, {p[0]}")
                iw = kb.op(f"sub i64 {kb.add(kb.mul(ow, sw), bb)}, {p[2]}")
                idx, ok = kb.add(kb.mul(ih, W), iw), "true"
                if padded:
                    ok = kb.op(f"and i1 {kb.op(f'icmp ult i64 {ih}, {H}')}, {kb.op(f'icmp ult i64 {iw}, {W}')}")
                    idx = kb.op(f"select i1 {ok}, i64 {idx}, i64 0")
                v = load_c(kb, xp, x.dtype, kb.add(xb, idx))
                res.append((idx, kb.op(f"and i1 {ok}, {kb.op(f'fcmp oeq {cty} {v}, {yv}')}")))
        return res

    def body(kb: FnBuilder, kp: list[str], start: str, end: str) -> None:
        with kb.loop(end, "pl", start=start) as plane:
            xb, yb = kb.mul(plane, H * W), kb.mul(plane, Ho * Wo)
            dst = kb.gep(cty, kp[3], xb)
            if not covered:
                with kb.loop(H * W, "z") as i:
                    kb.store(cty, "0.0", dst, i)
            with kb.loops([Ho, Wo], "pw") as (oh, ow):
                yi = kb.add(yb, kb.add(kb.mul(oh, Wo), ow))
                yv, gv = load_c(kb, kp[1], y.dtype, yi), load_c(kb, kp[2], g.dtype, yi)
                if disjoint:
                    gv = kb.op(f"fadd {cty} {gv}, 0.0")     # a sum from +0.0: g = -0.0 gives +0.0
                    taken = "false"
                    for idx, hit in taps(kb, kp[0], xb, oh, ow, yv):
                        first = kb.op(f"and i1 {hit}, {kb.op(f'xor i1 {taken}, true')}")
                        taken = kb.op(f"or i1 {taken}, {hit}")
                        kb.store(cty, kb.op(f"select i1 {first}, {cty} {gv}, {cty} 0.0"), dst, idx)
                else:
                    pos, found = "0", "false"
                    for idx, hit in reversed(taps(kb, kp[0], xb, oh, ow, yv)):   # the last select wins: the first hit
                        pos = kb.op(f"select i1 {hit}, i64 {idx}, i64 {pos}")
                        found = kb.op(f"or i1 {found}, {hit}")
                    add = kb.op(f"select i1 {found}, {cty} {gv}, {cty} 0.0")
                    kb.store(cty, kb.op(f"fadd {cty} {kb.load(cty, dst, pos)}, {add}"), dst, pos)

    emit_parallel_for(fx, "max_pool2d_grad", [ins[0], ins[1], ins[2], acc], N * C, body, x.type.size * kh * kw)
    if x.dtype.is_half:
        narrow_into(fx, acc, outs[0], out)


# matmul and conv2d: lower_matmul / lower_conv2d above are the generic paths that gemm.py and
# conv.py fall back to; their table entries are there
RULES = {"max_pool2d": _pool("max"), "avg_pool2d": _pool("avg"), "max_pool2d_grad": _lower_max_pool_grad}
_ = storage_ty
