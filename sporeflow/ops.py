"""`sporeflow.ops` (MindSpore's `mindspore.ops`): the functional namespace."""
from .frontend.functional import *  # noqa: F401,F403
from .frontend.functional import (ForiLoop, Scan, WhileLoop, abs, all, any, assign, assign_add,  # noqa: F401
                                  assign_sub, cond, depend, getitem, max, min, pow, sum)
from .core.source import api_boundary


def _wrap_public() -> None:
    """User-mistake errors leave sf.ops functions with the user's line as the last frame."""
    import types
    for name, fn in list(globals().items()):
        if isinstance(fn, types.FunctionType) and not name.startswith("_"):
            globals()[name] = api_boundary(fn)
        elif isinstance(fn, types.ModuleType) or name in ("annotations", "Sequence"):
            del globals()[name]   # modules the star-imports dragged in (np, lax, math_ops, ...)


_wrap_public()
from .frontend.vmap import vmap  # noqa: F401,E402
from .frontend.transforms import (GradOperation, get_grad, grad, jacfwd, jacrev, jvp,  # noqa: F401,E402
                                   value_and_grad, vjp)
