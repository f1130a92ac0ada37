"""Compiling a translation unit: NVRTC to a cubin for the device's sm_XX (checks that the code
is valid CUDA and reports registers/shared memory per kernel), and g++ against
emulator/cucpu.h to a shared library for the CPU emulator. Both are cached on disk under
SPOREFLOW_CACHE_DIR (default ~/.cache/sporeflow)/cuda/<sha256 of source, options, versions>,
written atomically (temp file + rename) like the LLVM objects.

NVRTC comes from the `nvidia-cuda-nvrtc` wheel through CuPy's low-level binding
(cupy_backends.cuda.libs.nvrtc): CuPy's own compile helpers ask the driver for the device first
and fail on a machine without one, the low-level calls do not (backend-derisk.md 2a).
Options: --fmad=false (no a*b+c contraction: results equal the interpreter's),
-Xptxas=-v (the resource report).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from ...errors import BackendError

CODEGEN_VERSION = "sporeflow-cuda-1"
DEFAULT_ARCH = "90"
NVRTC_OPTIONS = ("--fmad=false", "-Xptxas=-v", "--std=c++17")
GXX = os.environ.get("SPOREFLOW_CXX", "g++")
GXX_OPTIONS = ("-std=c++20", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-pthread",
               "-Wno-unknown-pragmas")
HEADER = Path(__file__).parent / "emulator" / "cucpu.h"
_lock = threading.Lock()


def cache_dir() -> Path:
    root = os.environ.get("SPOREFLOW_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sporeflow")
    return Path(root) / "cuda"


def _key(*parts: str) -> str:
    return hashlib.sha256("\n\0".join((CODEGEN_VERSION,) + parts).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


# ---- NVRTC ----------------------------------------------------------------------------------
def nvrtc_available() -> str | None:
    """None when NVRTC can be called, else why not."""
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
        return None
    except Exception as e:       # ImportError, DynamicLibNotFoundError, ...
        return f"NVRTC is not available ({type(e).__name__}: {e}); pip install -e '.[gpu]'"


_RES = re.compile(r"Compiling entry function '(\w+)'.*?Used (\d+) registers(?:, used \d+ barriers)?"
                  r"(?:, (\d+) bytes smem)?", re.S)


def resources(log: str) -> dict:
    """kernel -> {"registers": n, "smem": bytes} from ptxas -v output."""
    out = {}
    for block in log.split("ptxas info    : Compiling entry function")[1:]:
        m = re.match(r" '(\w+)'", block)
        reg = re.search(r"Used (\d+) registers", block)
        smem = re.search(r"(\d+) bytes smem", block)
        if m and reg:
            out[m.group(1)] = {"registers": int(reg.group(1)), "smem": int(smem.group(1)) if smem else 0}
    return out


def nvrtc_compile(source: str, arch: str = DEFAULT_ARCH) -> tuple[bytes, str]:
    """(cubin, ptxas log) for `source` on sm_`arch`; cached. Raises BackendError with the log
    when the source does not compile."""
    from cupy_backends.cuda.libs import nvrtc
    version = ".".join(map(str, nvrtc.getVersion()))
    opts = (f"-arch=sm_{arch}",) + NVRTC_OPTIONS
    key = _key(source, " ".join(opts), version)
    path = cache_dir() / f"{key}.cubin"
    log_path = path.with_suffix(".log")
    if path.exists() and log_path.exists():
        return path.read_bytes(), log_path.read_text()
    with _lock:
        prog = nvrtc.createProgram(source, "sporeflow.cu", [], [])
        try:
            try:
                nvrtc.compileProgram(prog, list(opts))
            except Exception as e:
                raise BackendError(f"cuda backend: NVRTC rejected the generated code ({e}):\n"
                                   f"{nvrtc.getProgramLog(prog)}") from None
            log = nvrtc.getProgramLog(prog)
            cubin = nvrtc.getCUBIN(prog)
        finally:
            nvrtc.destroyProgram(prog)
    _write_atomic(log_path, log.encode())
    _write_atomic(path, cubin)
    return cubin, log


# ---- g++ for the emulator -------------------------------------------------------------------
def emulator_library(source: str, exports: str) -> Path:
    """Path of the shared library running `source` on the CPU (cucpu.h); cached."""
    header = HEADER.read_text()
    key = _key(source, exports, header, " ".join(GXX_OPTIONS))
    path = cache_dir() / f"{key}.so"
    if path.exists():
        return path
    with tempfile.TemporaryDirectory(prefix="sf-cucpu-") as tmp:
        cpp = Path(tmp) / "tu.cpp"
        cpp.write_text(source + "\n// ---- emulator entry points ----\n" + exports)
        out = Path(tmp) / "tu.so"
        cmd = [GXX, *GXX_OPTIONS, "-include", str(HEADER), str(cpp), "-o", str(out)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            raise BackendError(f"cuda-emulated backend: the C++ compiler {GXX!r} was not found "
                               "(set SPOREFLOW_CXX)") from None
        if r.returncode != 0:
            raise BackendError(f"cuda-emulated backend: g++ rejected the generated code:\n{r.stderr[-4000:]}")
        _write_atomic(path, out.read_bytes())
        if not path.exists():          # unwritable cache: keep a private copy
            keep = Path(tempfile.mkdtemp(prefix="sf-cucpu-")) / "tu.so"
            keep.write_bytes(out.read_bytes())
            return keep
    return path
