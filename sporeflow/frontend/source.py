"""Find the user's source line: the innermost frame outside the sporeflow package."""
from __future__ import annotations

import linecache
import os
import sys

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


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
