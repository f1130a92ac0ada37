"""Backends behind one interface. `interp` is always there; `llvm` and `cuda` register when
their modules import."""
from .base import Backend, Executable, check_inputs, get_backend, register_backend  # noqa: F401
from . import interp  # noqa: F401


def _register_optional() -> None:
    import importlib
    for mod in ("llvm", "cuda"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ImportError:
            pass


_register_optional()
