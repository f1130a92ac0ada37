"""`sporeflow.ops` (MindSpore's `mindspore.ops`): the functional namespace."""
from .frontend.functional import *  # noqa: F401,F403
from .frontend.functional import (ForiLoop, Scan, WhileLoop, abs, all, any, assign, assign_add,  # noqa: F401
                                  assign_sub, cond, depend, getitem, max, min, pow, sum)
