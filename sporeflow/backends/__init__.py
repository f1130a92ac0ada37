"""Backends behind one interface: `interp` (the numpy oracle), `llvm` and `cuda` (which also
registers `cuda-emulated`). Each registers itself when imported; all three are imported here,
so a broken import in a backend is an error at `import sporeflow`, not a backend that is
silently missing (the CUDA backend needs CuPy only when a device is used)."""
from .base import Backend, Executable, check_inputs, get_backend, register_backend  # noqa: F401
from . import cuda, interp, llvm  # noqa: F401
