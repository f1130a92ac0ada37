"""LLVM IR text -> machine code in this process, with an on-disk object cache.

Recipe from backend-derisk.md 1a/1e: host target machine (cpu name + features), llvmlite's
new pass manager at O3 with the vectorizers on, `tm.emit_object` -> bytes -> MCJIT
`add_object_file`. Compiling and loading from the cache go through the same object bytes, so
a cached run executes exactly the code a fresh compile would.

Cache: SPOREFLOW_CACHE_DIR (default ~/.cache/sporeflow)/llvm/<sha256>.obj, keyed on the IR
text, target triple, the target of hostcpu.py (cpu name, features, vector width), opt level,
LLVM_OPTIONS, llvmlite and codegen versions. Each file is MAGIC + sha256(payload) + payload,
written atomically (temp file + os.replace); a file whose checksum does not match (truncated,
corrupted) is deleted and rebuilt, never loaded.
A fresh TargetMachine is made per engine (MCJIT takes ownership of it; sharing one between
engines aborts the process when the first is collected).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
from ...errors import BackendError

from . import hostcpu

CODEGEN_VERSION = "sporeflow-llvm-3"
OPT_LEVEL = 3
# Two LLVM phases left out of every compile, measured on the MLP train step's module (0.20 ->
# 0.16 s of optimisation + code generation, no workload of bench/run.py slower):
# - loop strength reduction: the codegen pipeline's single most expensive pass here (a fifth of
#   code generation); x86 addressing modes already take base + index*scale + offset, which is
#   every address the kernels compute;
# - epilogue vectorization: a second, narrower vector loop for the remainder of each
#   vectorized loop; the remainder (fewer elements than one vector) runs scalar instead.
# These are process-wide LLVM settings (llvmlite has no per-module switch for them); they are
# part of the object cache key.
LLVM_OPTIONS = ("-disable-lsr", "-enable-epilogue-vectorization=false")
MAGIC = b"SFOBJ1\n"

_lock = threading.Lock()
_init_done = False


def _init() -> None:
    global _init_done
    if not _init_done:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()
        _add_runtime_symbols()
        for option in LLVM_OPTIONS:
            llvm.set_option("sporeflow", option)
        _init_done = True


def _add_runtime_symbols() -> None:
    """Compiler-runtime helpers LLVM may call: it folds double->float->half into one
    double->half truncation, which has no instruction on x86 and becomes `__truncdfhf2`.
    MCJIT does not search libgcc by itself, and an unresolved call would jump to address 0."""
    import ctypes
    try:
        gcc = ctypes.CDLL("libgcc_s.so.1")
    except OSError:
        return
    for sym in ("__truncdfhf2", "__truncsfhf2", "__extendhfsf2", "__extendhfdf2"):
        fn = getattr(gcc, sym, None)
        if fn is not None:
            llvm.add_symbol(sym, ctypes.cast(fn, ctypes.c_void_p).value)


def host_tm(jit: bool = True):
    _init()
    cpu = hostcpu.host()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=cpu.name, features=cpu.features,
                                        opt=OPT_LEVEL, reloc="pic",
                                        codemodel="default", jit=jit)


def target_id() -> str:
    _init()
    return "|".join([llvm.get_process_triple(), hostcpu.host().key(),
                     f"O{OPT_LEVEL}", *LLVM_OPTIONS, llvmlite.__version__, CODEGEN_VERSION])


def cache_dir() -> Path:
    root = os.environ.get("SPOREFLOW_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sporeflow")
    return Path(root) / "llvm"


def cache_key(ir_text: str) -> str:
    return hashlib.sha256((target_id() + "\n" + ir_text).encode()).hexdigest()


def _read_cached(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if len(data) < head or not data.startswith(MAGIC) or hashlib.sha256(data[head:]).digest() != data[len(MAGIC):head]:
        try:
            path.unlink()     # corrupt or truncated: never load it, rebuild below
        except OSError:
            pass
        return None
    return data[head:]


def _write_cached(path: Path, obj: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(obj).digest() + obj)
        os.replace(tmp, path)
    except OSError:
        pass     # a read-only cache directory only costs compile time


def optimize(mod, tm) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL)
    pto.loop_vectorization = pto.slp_vectorization = pto.loop_interleaving = pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def compile_object(ir_text: str) -> tuple[bytes, dict]:
    """Optimized object code for `ir_text` (from the cache when possible) and timing stats."""
    stats: dict = {}
    with _lock:
        _init()
        path = cache_dir() / (cache_key(ir_text) + ".obj")
        t0 = time.perf_counter()
        existed = path.exists()
        obj = _read_cached(path)
        if obj is not None:
            stats.update(cache="hit", cache_path=str(path), load_seconds=time.perf_counter() - t0)
            return obj, stats
        stats["cache"] = "rebuilt" if existed else "miss"
        tm = host_tm()
        mod = llvm.parse_assembly(ir_text)
        mod.triple, mod.data_layout = llvm.get_process_triple(), str(tm.target_data)
        mod.verify()
        t1 = time.perf_counter()
        optimize(mod, tm)
        t2 = time.perf_counter()
        obj = tm.emit_object(mod)
        t3 = time.perf_counter()
        stats.update(parse_seconds=t1 - t0, opt_seconds=t2 - t1, codegen_seconds=t3 - t2, cache_path=str(path))
        _write_cached(path, obj)
        return obj, stats


_DECL = re.compile(r"^declare [^@]*@([A-Za-z_$][\w.$]*)\(", re.M)


def check_symbols(ir_text: str) -> None:
    """Every external function the module calls must resolve before its code is loaded: MCJIT
    would otherwise bind an unresolved call to address 0 and the first call would crash."""
    import ctypes
    proc = ctypes.CDLL(None)
    missing = [n for n in dict.fromkeys(_DECL.findall(ir_text)) if not n.startswith("llvm.")
               and not llvm.address_of_symbol(n) and not hasattr(proc, n)]
    if missing:
        raise BackendError(f"llvm backend: external function(s) {missing} cannot be resolved in this process "
                           "(a library the generated code calls is not loaded)")


class Loaded:
    """An MCJIT engine holding one object file; keep it alive while its functions are used."""

    def __init__(self, obj: bytes, ir_text: str | None = None):
        if ir_text is not None:
            check_symbols(ir_text)
        with _lock:
            backing = llvm.parse_assembly("")
            backing.triple = llvm.get_process_triple()
            self.engine = llvm.create_mcjit_compiler(backing, host_tm())
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise RuntimeError(f"llvm backend: symbol {name!r} not found in the compiled object")
        return addr


def optimized_ir_and_asm(ir_text: str) -> tuple[str, str]:
    """For inspection only (`.asm`, `.optimized_source`): recompiles, never cached."""
    with _lock:
        tm = host_tm()
        mod = llvm.parse_assembly(ir_text)
        mod.triple, mod.data_layout = llvm.get_process_triple(), str(tm.target_data)
        optimize(mod, tm)
        return str(mod), tm.emit_assembly(mod)
