"""A tiny LLVM-IR text emitter: SSA names, blocks, counted loops, typed loads/stores.

Why text and not llvmlite.ir: the renderer is a handful of string templates (as tinygrad's
llvmir renderer), emitting is fast, and the text is exactly what `.source` shows.
Addresses are always formed with GEP (never ptrtoint/inttoptr: LLVM 22 can miscompile
integer pointer arithmetic after unrolling, see backend-derisk.md 4.2).
"""
from __future__ import annotations

import contextlib
import struct
from typing import Iterator, Sequence

from ...ir.dtypes import DType

# storage type of each dtype in LLVM (bf16 is kept as i16 and converted with integer ops so
# that rounding is bit-identical to ir/dtypes.py, subnormals included; see derisk 1f)
STORAGE = {"bool": "i8", "uint8": "i8", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
           "uint16": "i16", "uint32": "i32", "uint64": "i64", "float16": "half", "bfloat16": "i16", "float32": "float", "float64": "double"}
# type arithmetic runs in (half types compute in float32, as the interpreter does)
COMPUTE = {"bool": "i1", "uint8": "i8", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
           "uint16": "i16", "uint32": "i32", "uint64": "i64", "float16": "float", "bfloat16": "float", "float32": "float", "float64": "double"}
BYTES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "half": 2, "float": 4, "double": 8}


def storage_ty(dt: DType) -> str:
    return STORAGE[dt.name]


def compute_ty(dt: DType) -> str:
    return COMPUTE[dt.name]


def is_unsigned(dt: DType) -> bool:
    return dt.name in ("uint8", "uint16", "uint32", "uint64", "bool")


def fconst(x: float, ty: str = "float") -> str:
    """A float literal LLVM accepts exactly: hex of the double (float constants must be
    exactly representable in float, so the value is rounded to float first)."""
    if ty == "float":
        x = struct.unpack("<f", struct.pack("<f", x))[0]
    if ty == "half":
        raise ValueError("half constants are not emitted; half computes in float")
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", x))[0]


SHORT_LOOP = 16    # iterations: below, a constant loop is a candidate for full unrolling


class FnBuilder:
    """Builds one function: `emit` appends instructions to the current block."""

    def __init__(self, name: str, params: str, module: "ModuleBuilder"):
        self.name = name
        self.params = params
        self.module = module
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self._n = 0
        self.block = "entry"
        self._long_loop_inside = False   # see loop(): the loop being emitted contains a long one
        self._locations: dict[str, tuple[str, int]] = {}   # see location()

    # -- names and raw emission ---------------------------------------------------------
    def tmp(self, hint: str = "t") -> str:
        self._n += 1
        return f"%{hint}{self._n}"

    def label(self, hint: str = "b") -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def op(self, text: str, hint: str = "t") -> str:
        """Emit `%r = text` and return %r."""
        r = self.tmp(hint)
        self.emit(f"{r} = {text}")
        return r

    def intrinsic(self, name: str, ty: str, *args: str) -> str:
        """Call the float/double overload of LLVM's intrinsic `name` (declared in the module)."""
        suf = {"float": "f32", "double": "f64"}[ty]
        self.module.declare(f"declare {ty} @llvm.{name}.{suf}({', '.join([ty] * len(args))})")
        return self.op(f"call {ty} @llvm.{name}.{suf}({', '.join(f'{ty} {a}' for a in args)})")

    def start_block(self, lab: str) -> None:
        self.lines.append(f"{lab}:")
        self.block = lab

    def br(self, lab: str) -> None:
        self.emit(f"br label %{lab}")

    def alloca(self, ty: str, hint: str = "a", count: int = 1) -> str:
        """Stack slot in the entry block (so mem2reg promotes scalar accumulators)."""
        r = self.tmp(hint)
        self.allocas.append(f"  {r} = alloca {ty}" + (f", i64 {count}" if count != 1 else "") + ", align 64")
        return r

    # -- addressing --------------------------------------------------------------------------
    def gep(self, ty: str, ptr: str, idx: str | int) -> str:
        if idx == 0 or idx == "0":
            return ptr
        r = self.op(f"getelementptr inbounds {ty}, ptr {ptr}, i64 {idx}", "p")
        if isinstance(idx, int) or str(idx).lstrip("-").isdigit():
            base, off = self.location(ptr)
            self._locations[r] = (base, off + int(idx) * BYTES[ty]) if ty in BYTES else (r, 0)
        return r

    def location(self, ptr: str) -> tuple[str, int]:
        """(base pointer, constant byte offset) of a pointer this builder made by constant
        geps (an arena slot: ('%arena', 5888)); (ptr, 0) for any other. Two arguments with
        one location are the same buffer (an output planned in place of an input)."""
        return self._locations.get(ptr, (ptr, 0))

    def load(self, ty: str, ptr: str, idx: str | int = 0) -> str:
        return self.op(f"load {ty}, ptr {self.gep(ty, ptr, idx)}", "v")

    def store(self, ty: str, val: str, ptr: str, idx: str | int = 0) -> None:
        self.emit(f"store {ty} {val}, ptr {self.gep(ty, ptr, idx)}")

    def memcpy(self, dst: str, src: str, nbytes: int | str) -> None:
        if nbytes == 0:
            return
        self.module.declare("declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)")
        self.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr {dst}, ptr {src}, i64 {nbytes}, i1 false)")

    def memmove(self, dst: str, src: str, nbytes: int | str) -> None:
        if nbytes == 0:
            return
        self.module.declare("declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)")
        self.emit(f"call void @llvm.memmove.p0.p0.i64(ptr {dst}, ptr {src}, i64 {nbytes}, i1 false)")

    # -- integer helpers on i64 ------------------------------------------------------------
    def add(self, a, b) -> str:
        if b == 0 or b == "0":
            return str(a)
        if a == 0 or a == "0":
            return str(b)
        return self.op(f"add i64 {a}, {b}", "i")

    def smin(self, a, b) -> str:
        """min(a, b) of signed i64 values (a loop bound clipped to the end)."""
        return self.op(f"select i1 {self.op(f'icmp slt i64 {a}, {b}')}, i64 {a}, i64 {b}", "i")

    def mul(self, a, b) -> str:
        if b == 1 or b == "1":
            return str(a)
        if b == 0 or a == 0:
            return "0"
        return self.op(f"mul i64 {a}, {b}", "i")

    def linear(self, idx: Sequence[str | int], strides: Sequence[int]) -> str:
        """sum(idx[d] * strides[d]) as i64 (skipping zero strides)."""
        acc: str = "0"
        for i, s in zip(idx, strides):
            if s:
                acc = self.add(acc, self.mul(i, s))
        return acc

    # -- control flow -----------------------------------------------------------------------
    @contextlib.contextmanager
    def loop(self, n: int | str, hint: str = "i", start: int | str = 0, step: int = 1,
             interleave: int = 0) -> Iterator[str]:
        """for (i = start; i < n; i += step) { body }  (signed i64 compare).

        interleave: the interleave count the loop vectorizer must use (loop metadata, which
        also keeps the loop from being fully unrolled before it). For a loop that carries a
        float reduction it is the number of independent vector accumulators per reduction (4
        for one sum, fewer when the loop carries several). A short constant trip count is
        otherwise fully unrolled first and left to the SLP vectorizer, which turned a 64-element
        partial sum into a serial chain of scalar adds and a 1024-element one into a 2x slower
        jumble (sum over rows of a 4096^2 matrix: 6.1 and 4.6 ms against 2.4 ms); see
        ModuleBuilder.loop_metadata."""
        pre = self.block
        enclosing, self._long_loop_inside = self._long_loop_inside, False
        head, body, latch, done = self.label("head"), self.label("body"), self.label("latch"), self.label("done")
        i, nxt = self.tmp(hint), self.tmp(hint + "n")
        self.br(head)
        self.start_block(head)
        self.emit(f"{i} = phi i64 [{start}, %{pre}], [{nxt}, %{latch}]")
        c = self.op(f"icmp slt i64 {i}, {n}", "c")
        self.emit(f"br i1 {c}, label %{body}, label %{done}")
        self.start_block(body)
        yield i
        self.br(latch)
        self.start_block(latch)
        self.emit(f"{nxt} = add nuw nsw i64 {i}, {step}")
        # No loop but a short constant one is unrolled. A loop around a long loop (a
        # vectorization target): LLVM fully unrolled short constant outer loops (16 row groups
        # of a column sum) and then vectorized every copy of the inner loop, a 6x slower compile
        # for no faster code. A long innermost loop: LLVM unrolled its vector loop again, fully
        # for a constant trip count (a 512-wide row: 8 iterations, 32 zmm bodies), which made
        # the MLP train step's cold compile 0.31 s instead of 0.23 s with no step measurably
        # faster; with the metadata it is interleaved only where `interleave` asks.
        short = isinstance(n, int) and isinstance(start, int) and (n - start) < SHORT_LOOP * step
        if interleave or self._long_loop_inside or not short:
            self.emit(f"br label %{head}, !llvm.loop {self.module.loop_metadata(interleave)}")
        else:
            self.br(head)
        self.start_block(done)
        self._long_loop_inside = enclosing or self._long_loop_inside or not short

    @contextlib.contextmanager
    def loops(self, shape: Sequence[int], hint: str = "i", interleave: int = 0) -> Iterator[list[str]]:
        """Nested loops over `shape` (outermost first); yields the index names. `interleave`
        applies to the innermost loop (see loop())."""
        with contextlib.ExitStack() as st:
            idx = [st.enter_context(self.loop(d, f"{hint}{k}_", interleave=interleave if k == len(shape) - 1 else 0))
                   for k, d in enumerate(shape)]
            yield idx

    def render(self) -> str:
        body = "\n".join(self.lines)
        allocas = "\n".join(self.allocas)
        return f"define {self.params} {{\nentry:\n{allocas}\n{body}\n  ret void\n}}\n"


class ModuleBuilder:
    """Collects functions, declarations and global constants of one module."""

    def __init__(self, name: str):
        self.name = name
        self.decls: dict[str, None] = {}
        self.globals: list[str] = []
        self.functions: list[str] = []
        self.metadata: list[str] = []
        self._n = 0
        self._md = 0

    def declare(self, line: str) -> None:
        self.decls[line] = None

    def global_bytes(self, data: bytes, hint: str = "const") -> str:
        self._n += 1
        name = f"@{hint}{self._n}"
        body = "".join(f"\\{b:02X}" for b in data)
        self.globals.append(f"{name} = private unnamed_addr constant [{max(len(data), 1)} x i8] "
                            f"c\"{body or chr(92) + '00'}\", align 64")
        return name

    def unique(self, hint: str) -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def loop_metadata(self, interleave: int) -> str:
        """A fresh distinct loop id (LLVM requires one per loop): no unrolling (and so no full
        unroll before the loop vectorizer sees the loop), then `interleave` vectors per
        iteration when given (for a reduction: independent accumulators)."""
        if not self.metadata:
            self.metadata = ['!1 = !{!"llvm.loop.unroll.disable"}']
        self._md += 1
        name, count = f"!{2 * self._md}", f"!{2 * self._md + 1}"
        if interleave:
            self.metadata += [f'{count} = !{{!"llvm.loop.interleave.count", i32 {interleave}}}',
                              f"{name} = distinct !{{{name}, !1, {count}}}"]
        else:
            self.metadata.append(f"{name} = distinct !{{{name}, !1}}")
        return name

    def render(self) -> str:
        parts = [f"; ModuleID = '{self.name}'", *self.globals, "", *self.decls, "", *self.functions,
                 "attributes #0 = { nounwind \"no-trapping-math\"=\"true\" }",
                 "attributes #1 = { nounwind noinline \"no-trapping-math\"=\"true\" }", *self.metadata]
        return "\n".join(parts) + "\n"
