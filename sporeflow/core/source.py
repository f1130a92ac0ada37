"""Find the user's source line (the innermost frame outside the sporeflow package), and keep
sporeflow's own frames out of the tracebacks of user mistakes.

`api_boundary` wraps the public entry points (sf.ops functions, Tensor operators and methods,
Cell.__call__, jit calls). When a ShapeError or TracerError passes through one, the frames that
belong to sporeflow are dropped from its traceback, so the last frame a user sees is their own
line (as JAX's traceback filtering does). SPOREFLOW_TRACEBACK_FILTERING=off keeps every frame.
"""
from __future__ import annotations

import functools
import linecache
import os
import sys
import types

from ..errors import ShapeError, TracerError

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NOTE = "(sporeflow-internal frames are hidden; set SPOREFLOW_TRACEBACK_FILTERING=off to see them)"


def user_frame():
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    return f


def user_loc() -> str:
    """`file.py:LINE` (basename) of the user's line, or '' when called from sporeflow only."""
    f = user_frame()
    if f is None:
        return ""
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def user_line_description() -> str:
    """'File "path", line N: <source text>' of the user's line, for error messages."""
    f = user_frame()
    if f is None:
        return "(called from inside sporeflow)"
    text = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f'File "{f.f_code.co_filename}", line {f.f_lineno}: {text}'


def _user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback chain with sporeflow's frames removed (None when nothing is left)."""
    keep = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_PKG_DIR):
            keep.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(keep):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _user_errors() -> tuple:
    return (ShapeError, TracerError)


def api_boundary(fn):
    """Wrap a public entry point so user-mistake errors leave it with a user-only traceback."""
    if getattr(fn, "_sf_api_boundary", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            if os.environ.get("SPOREFLOW_TRACEBACK_FILTERING", "on").lower() in ("off", "0", "false"):
                raise
            if _NOTE not in getattr(e, "__notes__", ()):
                e.add_note(_NOTE)
            tb = _user_traceback(e.__traceback__)
            raise e.with_traceback(tb) from e.__cause__  # the error is at your line (above)
    wrapper._sf_api_boundary = True
    return wrapper


def wrap_methods(cls, skip=("__init__", "__repr__", "__str__", "__hash__", "__init_subclass__")) -> None:
    """api_boundary on every public method and operator of `cls` defined in its own body."""
    for name, fn in list(vars(cls).items()):
        public = not name.startswith("_") or (name.startswith("__") and name.endswith("__"))
        if public and name not in skip and isinstance(fn, types.FunctionType):
            setattr(cls, name, api_boundary(fn))


def concrete_error(what: str, fix: str) -> TracerError:
    return TracerError(
        f"{what} of a traced tensor: its value is not known while the function is being compiled.\n"
        f"  at {user_line_description()}\n  {fix}")
