"""Importing this package registers every primitive."""
from . import control, elementwise, linalg, nn, random, reduce, shape  # noqa: F401
from . import fused  # noqa: F401,E402  (the fused-kernel primitive of passes.fusion)
from . import custom  # noqa: F401,E402  (custom_vjp: Cell.bprop)
from . import collective  # noqa: F401,E402  (all_reduce, all_gather, broadcast, reduce_scatter)
from . import debug  # noqa: F401,E402  (print: ops.Print in compiled code)
from . import collective_async  # noqa: F401,E402  (all_reduce_start / all_reduce_wait: the overlapped all-reduce)
