"""`sporeflow.ops`: the functional namespace under MindSpore 2.x names."""
from .array_ops import *  # noqa: F401,F403
from .array_ops import getitem  # noqa: F401
from .control_ops import ForiLoop, Scan, WhileLoop, cond, fori_loop, scan, while_loop  # noqa: F401
from .math_ops import *  # noqa: F401,F403
from .math_ops import abs, all, any, max, min, pow, sum  # noqa: F401,A004
from .nn_ops import *  # noqa: F401,F403
from .state_ops import assign, assign_add, assign_sub, depend, print_  # noqa: F401
from .primitives import *  # noqa: F401,F403  (ops.MatMul(...), ops.HyperMap, ops.partial, ...)
from .linalg_ops import cumsum, diag, dot, inner, norm, outer, sort, topk, tril, triu  # noqa: F401
from .random_ops import (normal, rand, rand_like, randint, randint_like, randn, randn_like,  # noqa: F401
                         uniform)
from .index_ops import *  # noqa: F401,F403
from .composite_ops import *  # noqa: F401,F403
from .composite_ops import shape, rank  # noqa: F401
from .math_ops import elu, hardsigmoid, hardswish, mish, round  # noqa: F401,A004
from .comm_ops import ReduceOp, all_gather, all_reduce, broadcast, reduce_scatter  # noqa: F401,E402
