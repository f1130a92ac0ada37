"""LLVM IR text -> machine code in this process, with an on-disk object cache.

Recipe from backend-derisk.md 1a/1e: host target machine (cpu name + features), llvmlite's
new pass manager at O3 with the vectorizers on, `tm.emit_object` -> bytes -> MCJIT
`add_object_file`. A large module is split into parts (module_split.py) that compile on
several threads at once, each in an LLVM context of its own; one engine links their objects.
Compiling and loading from the cache go through the same object bytes, so a cached run executes
exactly the code a fresh compile would.

Cache: SPOREFLOW_CACHE_DIR (default ~/.cache/sporeflow)/llvm/<sha256>.obj, keyed on the IR
text, target triple, the target of hostcpu.py (cpu name, features, vector width), opt level,
LLVM_OPTIONS, llvmlite and codegen versions. Each file is MAGIC + sha256(payload) + payload (the
parts' objects), written atomically (temp file + os.replace); a file whose checksum does not
match (truncated, corrupted) is deleted and rebuilt, never loaded.
A fresh TargetMachine is made per engine (MCJIT takes ownership of it; sharing one between
engines aborts the process when the first is collected).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
from llvmlite.binding import ffi
from ...errors import BackendError

from . import hostcpu, module_split

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
MAGIC = b"SFOBJ2\n"    # then sha256(payload), then each object as 8-byte length + bytes

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


def _read_cached(path: Path) -> list[bytes] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 32
    objs = None
    if len(data) >= head and data.startswith(MAGIC) and hashlib.sha256(data[head:]).digest() == data[len(MAGIC):head]:
        objs = _unframe(data[head:])
    if objs is None:
        try:
            path.unlink()     # corrupt or truncated: never load it, rebuild below
        except OSError:
            pass
    return objs


def _frame(objs: list[bytes]) -> bytes:
    return b"".join(len(o).to_bytes(8, "little") + o for o in objs)


def _unframe(payload: bytes) -> list[bytes] | None:
    objs, i = [], 0
    while i + 8 <= len(payload):
        n = int.from_bytes(payload[i:i + 8], "little")
        objs.append(payload[i + 8:i + 8 + n])
        i += 8 + n
    return objs if objs and i == len(payload) else None


def _write_cached(path: Path, objs: list[bytes]) -> None:
    payload = _frame(objs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, path)
    except OSError:
        pass     # a read-only cache directory only costs compile time


def _unlocked(name: str):
    """llvmlite's C function `name` without llvmlite's process-wide lock (which serializes every
    call into LLVM, so two threads could never optimize at once). Called only on a module, pass
    builder and target machine of the calling thread's own LLVM context; ctypes releases the
    GIL for the call. Falls back to the locked call if llvmlite's wrapper changes shape."""
    fn = getattr(ffi.lib, name)
    return getattr(fn, "_cfn", fn)


def _pass_builder(tm):
    pto = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL)
    pto.loop_vectorization = pto.slp_vectorization = pto.loop_interleaving = pto.loop_unrolling = True
    return llvm.create_pass_builder(tm, pto)


def _parse_for(ir_text: str, tm, context=None):
    """The module of `ir_text` with the host's triple and `tm`'s data layout."""
    mod = llvm.parse_assembly(ir_text, context=context)
    mod.triple, mod.data_layout = llvm.get_process_triple(), str(tm.target_data)
    return mod


def optimize(mod, tm) -> None:
    pb = _pass_builder(tm)
    pb.getModulePassManager().run(mod, pb)


def _compile_part(ir_text: str) -> tuple[bytes, float, float]:
    """(object, optimization seconds, code generation seconds) for one module, in a context of
    its own so that parts compile on several threads at once."""
    tm = host_tm()
    mod = _parse_for(ir_text, tm, llvm.create_context())
    mod.verify()
    pb = _pass_builder(tm)
    mpm = pb.getModulePassManager()
    t0 = time.perf_counter()
    _unlocked("LLVMPY_RunNewModulePassManager")(mpm, mod, pb)
    t1 = time.perf_counter()
    with ffi.OutputString() as err:
        buf = _unlocked("LLVMPY_TargetMachineEmitToMemory")(tm, mod, 1, err)
        if not buf:
            raise BackendError(f"llvm backend: code generation failed: {err}")
    try:
        obj = ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buf), ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)
    return obj, t1 - t0, time.perf_counter() - t1


def compile_threads() -> int:
    """Modules compiled at once: SPOREFLOW_COMPILE_THREADS, else the cores this process may
    run on (at most 4: parts below module_split.MIN_PART_LINES are not made anyway)."""
    env = os.environ.get("SPOREFLOW_COMPILE_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"SPOREFLOW_COMPILE_THREADS must be a positive integer, got {env!r}")
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4)


def compile_object(ir_text: str) -> tuple[list[bytes], dict]:
    """Optimized object code for `ir_text` (from the cache when possible) and timing stats:
    one object per part of the module (module_split.py), compiled on as many threads."""
    stats: dict = {}
    with _lock:
        _init()
        path = cache_dir() / (cache_key(ir_text) + ".obj")
        t0 = time.perf_counter()
        existed = path.exists()
        objs = _read_cached(path)
        if objs is not None:
            stats.update(cache="hit", cache_path=str(path), load_seconds=time.perf_counter() - t0)
            return objs, stats
        stats["cache"] = "rebuilt" if existed else "miss"
        parts = module_split.split(ir_text, compile_threads())
        t1 = time.perf_counter()
        with ThreadPoolExecutor(len(parts) - 1) if len(parts) > 1 else contextlib.nullcontext() as pool:
            later = [pool.submit(_compile_part, p) for p in parts[1:]] if pool else []
            done = [_compile_part(parts[0])] + [f.result() for f in later]
        t2 = time.perf_counter()
        objs = [d[0] for d in done]
        stats.update(parts=len(parts), split_seconds=t1 - t0, llvm_seconds=t2 - t1,
                     opt_seconds=sum(d[1] for d in done), codegen_seconds=sum(d[2] for d in done),
                     cache_path=str(path))
        _write_cached(path, objs)
        return objs, stats


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
    """An MCJIT engine holding the object files of one module (its parts, linked to each
    other here); keep it alive while its functions are used."""

    def __init__(self, objs: bytes | list[bytes], ir_text: str | None = None):
        if ir_text is not None:
            check_symbols(ir_text)
        with _lock:
            backing = llvm.parse_assembly("")
            backing.triple = llvm.get_process_triple()
            self.engine = llvm.create_mcjit_compiler(backing, host_tm())
            for obj in [objs] if isinstance(objs, bytes) else objs:
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise RuntimeError(f"llvm backend: symbol {name!r} not found in the compiled object")
        return addr


def optimized_ir_and_asm(ir_text: str) -> tuple[str, str]:
    """For inspection only (`.asm`, `.optimized_source`): recompiles, never cached; the parts
    compile_object would make, one after the other."""
    irs, asms = [], []
    with _lock:
        for k, part in enumerate(module_split.split(ir_text, compile_threads())):
            tm = host_tm()
            mod = _parse_for(part, tm)
            optimize(mod, tm)
            irs.append(f"; part {k}\n{mod}")
            asms.append(f"# part {k}\n{tm.emit_assembly(mod)}")
    return "\n".join(irs), "\n".join(asms)
