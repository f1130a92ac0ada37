"""Every error a user can see. Messages name the op, the shapes and the user's own line."""
from __future__ import annotations


class SporeflowError(Exception):
    """Base of sporeflow's errors."""


class OpTypeError(SporeflowError, TypeError):
    """Raised by an OpDef's `infer` for bad shapes/dtypes/attributes (message without context)."""


class ShapeError(SporeflowError, ValueError):
    """A shape or dtype mismatch at an op, with the op, the input types and the user's line."""


class ScalarOverflowError(ShapeError, OverflowError):
    """A Python int operand that does not fit the integer dtype it would take (never wrapped)."""


class TracerError(SporeflowError, TypeError):
    """A Python control-flow or conversion on a traced value."""


class VerifyError(SporeflowError):
    """An invalid graph (bad type, use before def, double definition, bad subgraph)."""


class IRParseError(SporeflowError, ValueError):
    """Malformed IR text; carries line and column."""

    def __init__(self, msg: str, line: int, col: int, text_line: str = ""):
        caret = f"\n    {text_line}\n    {' ' * max(col - 1, 0)}^" if text_line else ""
        super().__init__(f"IR parse error at line {line}, column {col}: {msg}{caret}")
        self.line, self.col = line, col


class NoRuleError(SporeflowError, NotImplementedError):
    """A transformation met an op without the rule it needs."""


class BackendError(SporeflowError):
    """A backend cannot lower an op, or was handed inputs it was not compiled for."""


class CheckpointError(SporeflowError, ValueError):
    """A corrupt, truncated or mismatched checkpoint file."""


class DatasetError(SporeflowError, ValueError):
    """Bad data in a dataset pipeline (a corrupt file, a column of the wrong shape); names the row and column."""
