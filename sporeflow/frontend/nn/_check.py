"""Errors for inputs a layer cannot take: a ShapeError naming the layer, the shapes and the
user's own line (so tracebacks are filtered down to the user's frame, as for ops)."""
from __future__ import annotations

from ...errors import ShapeError
from ...core.source import user_line_description


def shape_error(msg: str) -> ShapeError:
    return ShapeError(f"{msg}\n  at {user_line_description()}")
