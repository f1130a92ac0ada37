"""Loop-nest kernels over index spaces: elementwise/broadcast ops, reductions, arg-reductions,
iota, random bits, constants.

Every lowering rule has the signature `rule(fx, node, ins, outs)`: `fx` is the GraphFn being
emitted (fx.b the builder), `ins`/`outs` pointer SSA names of the node's buffers.
Buffers are dense row-major; broadcasting is a zero stride. Adjacent dimensions that are
contiguous for every operand are merged, so same-shape elementwise ops become one flat loop
the vectorizer turns into zmm code.
"""
from __future__ import annotations

import numpy as np

from ...ir.dtypes import as_dtype
from ...ir.registry import REGISTRY
from ...primitives.random import PARITY, ROTATIONS
from .irgen import FnBuilder, compute_ty, fconst, is_unsigned, storage_ty
from .scalar_ops import SCALAR_RULES, convert, from_compute, scalar_rule, to_compute


def contiguous_strides(shape) -> list[int]:
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return st[::-1]


def broadcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of a dense `in_shape` buffer read at `out_shape` indices."""
    st = contiguous_strides(in_shape)
    pad = len(out_shape) - len(in_shape)
    return [0] * pad + [0 if d == 1 else s for d, s in zip(in_shape, st)]


def collapse(shape, strides_list):
    """Drop size-1 dims and merge dims that are contiguous in every operand."""
    dims = [k for k, d in enumerate(shape) if d != 1]
    shp = [shape[k] for k in dims]
    sts = [[s[k] for k in dims] for s in strides_list]
    k = len(shp) - 1
    while k > 0:
        if all(s[k - 1] == s[k] * shp[k] for s in sts):
            shp[k - 1] *= shp[k]
            for s in sts:
                s[k - 1] = s[k]
                del s[k]
            del shp[k]
        k -= 1
    return shp, sts


def load_c(b: FnBuilder, ptr: str, dt, idx) -> str:
    return to_compute(b, b.load(storage_ty(dt), ptr, idx), dt)


def store_c(b: FnBuilder, val: str, ptr: str, dt, idx) -> None:
    b.store(storage_ty(dt), from_compute(b, val, dt), ptr, idx)


def lower_elementwise(fx, node, ins, outs) -> None:
    b, out = fx.b, node.outputs[0]
    shape = out.shape
    strides = [broadcast_strides(v.shape, shape) for v in node.inputs] + [contiguous_strides(shape)]
    shp, sts = collapse(shape, strides)
    rule = scalar_rule(node.op, out.dtype)
    in_dts = [v.dtype for v in node.inputs]
    with b.loops(shp) as idx:
        args = [load_c(b, p, v.dtype, b.linear(idx, st)) for p, v, st in zip(ins, node.inputs, sts)]
        r = rule(b, args, in_dts, out.dtype, node.attrs)
        store_c(b, r, outs[0], out.dtype, b.linear(idx, sts[-1]))


# ---- reductions ----------------------------------------------------------------------------------
def _acc_ty(dt, kind: str) -> str:
    if kind == "sum":
        if dt.is_float:   # float32/half sums accumulate in double: at least as accurate as numpy's pairwise
            return "double"
        return "i64"
    return compute_ty(dt)


def _init(dt, kind: str, ty: str) -> str:
    if kind == "sum":
        return "0.0" if dt.is_float else "0"
    if dt.is_float:
        return fconst(-np.inf if kind == "max" else np.inf, ty)
    bits = {"i8": 8, "i16": 16, "i32": 32, "i64": 64}[ty]
    if is_unsigned(dt):
        return "0" if kind == "max" else str((1 << bits) - 1)
    return str(-(1 << (bits - 1))) if kind == "max" else str((1 << (bits - 1)) - 1)


def _reduce_kind(kind: str):
    def rule(fx, node, ins, outs) -> None:
        b, x, out = fx.b, node.inputs[0], node.outputs[0]
        axes = set(node.attrs["axes"])
        st = contiguous_strides(x.shape)
        kept = [k for k in range(x.type.ndim) if k not in axes]
        red = [k for k in range(x.type.ndim) if k in axes]
        ty, cty = _acc_ty(x.dtype, kind), compute_ty(x.dtype)
        acc = b.alloca(ty, "acc")
        with b.loops([x.shape[k] for k in kept], "o") as oidx:
            b.store(ty, _init(x.dtype, kind, ty), acc)
            base = b.linear(oidx, [st[k] for k in kept])
            with b.loops([x.shape[k] for k in red], "r") as ridx:
                v = load_c(b, ins[0], x.dtype, b.add(base, b.linear(ridx, [st[k] for k in red])))
                a = b.load(ty, acc)
                if kind == "sum":
                    if ty == "double" and cty != "double":
                        v = b.op(f"fpext {cty} {v} to double")
                    elif ty == "i64" and cty != "i64":
                        v = b.op(f"{'zext' if is_unsigned(x.dtype) else 'sext'} {cty} {v} to i64")
                    r = b.op(f"{'fadd' if x.dtype.is_float else 'add'} {ty} {a}, {v}")
                else:
                    r = SCALAR_RULES["maximum" if kind == "max" else "minimum"](b, [a, v], [x.dtype] * 2,
                                                                                  x.dtype, None)
                b.store(ty, r, acc)
            r = b.load(ty, acc)
            if ty != cty:
                r = b.op(f"fptrunc double {r} to {cty}" if ty == "double" else f"trunc i64 {r} to {cty}")
            store_c(b, r, outs[0], out.dtype, b.linear(oidx, contiguous_strides([x.shape[k] for k in kept])))
    return rule


def _arg_kind(kind: str):
    """First index of the max (min); NaN counts as the extreme (numpy's argmax/argmin)."""
    def rule(fx, node, ins, outs) -> None:
        b, x = fx.b, node.inputs[0]
        ax = node.attrs["axis"]
        st = contiguous_strides(x.shape)
        kept = [k for k in range(x.type.ndim) if k != ax]
        cty = compute_ty(x.dtype)
        best, bi = b.alloca(cty, "best"), b.alloca("i64", "bi")
        with b.loops([x.shape[k] for k in kept], "o") as oidx:
            base = b.linear(oidx, [st[k] for k in kept])
            b.store(cty, load_c(b, ins[0], x.dtype, base), best)
            b.store("i64", "0", bi)
            with b.loop(x.shape[ax], "r", start=1) as j:
                v = load_c(b, ins[0], x.dtype, b.add(base, b.mul(j, st[ax])))
                cur = b.load(cty, best)
                if x.dtype.is_float:
                    better = b.op(f"fcmp {'ogt' if kind == 'max' else 'olt'} {cty} {v}, {cur}")
                    vnan = b.op(f"fcmp uno {cty} {v}, 0.0")
                    cnan = b.op(f"fcmp ord {cty} {cur}, 0.0")
                    better = b.op(f"or i1 {better}, {b.op(f'and i1 {vnan}, {cnan}')}")
                else:
                    pred = ("ugt" if kind == "max" else "ult") if is_unsigned(x.dtype) else \
                        ("sgt" if kind == "max" else "slt")
                    better = b.op(f"icmp {pred} {cty} {v}, {cur}")
                b.store(cty, b.op(f"select i1 {better}, {cty} {v}, {cty} {cur}"), best)
                b.store("i64", b.op(f"select i1 {better}, i64 {j}, i64 {b.load('i64', bi)}"), bi)
            r = b.op(f"trunc i64 {b.load('i64', bi)} to i32")
            b.store("i32", r, outs[0], b.linear(oidx, contiguous_strides([x.shape[k] for k in kept])))
    return rule


# ---- generators ----------------------------------------------------------------------------------
def lower_iota(fx, node, ins, outs) -> None:
    b, out = fx.b, node.outputs[0]
    dt, ax = out.dtype, node.attrs["axis"]
    with b.loops(out.shape) as idx:
        i = idx[ax]
        if dt.is_float:   # the reference computes in float64 and rounds once
            v = b.op(f"sitofp i64 {i} to double")
            if compute_ty(dt) == "float":
                v = b.op(f"fptrunc double {v} to float")
        else:
            v = convert(b, i, as_dtype("int64"), dt)
        store_c(b, v, outs[0], dt, b.linear(idx, contiguous_strides(out.shape)))


def lower_constant(fx, node, ins, outs) -> None:
    c = node.attrs["value"]
    fx.ptrs[id(node.outputs[0])] = fx.cg.mod.global_bytes(np.ascontiguousarray(c.array).tobytes(), "const")


def threefry_word0(b: FnBuilder, k0: str, k1: str, c0: str, c1: str) -> str:
    """Threefry-2x32 (20 rounds), first output word; primitives/random.threefry2x32 exactly."""
    ks = [k0, k1, b.op(f"xor i32 {b.op(f'xor i32 {k0}, {k1}')}, {PARITY}")]
    x0, x1 = b.op(f"add i32 {c0}, {ks[0]}"), b.op(f"add i32 {c1}, {ks[1]}")
    for group in range(5):
        for r in (ROTATIONS[:4] if group % 2 == 0 else ROTATIONS[4:]):
            x0 = b.op(f"add i32 {x0}, {x1}")
            rot = b.op(f"or i32 {b.op(f'shl i32 {x1}, {r}')}, {b.op(f'lshr i32 {x1}, {32 - r}')}")
            x1 = b.op(f"xor i32 {rot}, {x0}")
        x0 = b.op(f"add i32 {x0}, {ks[(group + 1) % 3]}")
        x1 = b.op(f"add i32 {b.op(f'add i32 {x1}, {ks[(group + 2) % 3]}')}, {group + 1}")
    return x0


def _random(uniform: bool):
    def rule(fx, node, ins, outs) -> None:
        b, out = fx.b, node.outputs[0]
        k0, k1 = b.load("i32", ins[0], 0), b.load("i32", ins[0], 1)
        with b.loop(out.type.size) as i:
            c0 = b.op(f"trunc i64 {b.op(f'lshr i64 {i}, 32')} to i32")
            c1 = b.op(f"trunc i64 {i} to i32")
            w = threefry_word0(b, k0, k1, c0, c1)
            if not uniform:
                b.store("i32", w, outs[0], i)
            else:
                f = b.op(f"uitofp i32 {b.op(f'lshr i32 {w}, 8')} to double")
                f = b.op(f"fmul double {f}, {fconst(2.0 ** -24, 'double')}")
                if compute_ty(out.dtype) == "float":
                    f = b.op(f"fptrunc double {f} to float")
                store_c(b, f, outs[0], out.dtype, i)
    return rule


ELEMENTWISE_OPS = tuple(SCALAR_RULES)
# the generic loop nests of the reductions, which fused.py's row/column kernels fall back to
# (the table entries are there)
REDUCE_LOOPS = {name: _reduce_kind(op.monoid) for name, op in REGISTRY.items() if op.monoid is not None}
RULES = {
    **{op: lower_elementwise for op in ELEMENTWISE_OPS},
    "argmax": _arg_kind("max"), "argmin": _arg_kind("min"),
    "iota": lower_iota, "constant": lower_constant,
    "random_bits": _random(False), "random_uniform": _random(True),
}


def widened(fx, ptr: str, v) -> str:
    """A float32 scratch copy of a half-type buffer (one vectorizable fpext loop)."""
    dst = fx.scratch(v.type.size * 4)
    with fx.b.loop(v.type.size, "h") as i:
        fx.b.store("float", load_c(fx.b, ptr, v.dtype, i), dst, i)
    return dst


def narrow_into(fx, src: str, dst: str, v) -> None:
    """dst (v's half type) = float32 src rounded once (one vectorizable loop)."""
    with fx.b.loop(v.type.size, "h") as i:
        store_c(fx.b, fx.b.load("float", src, i), dst, v.dtype, i)
