"""sporeflow: a MindSpore-style deep-learning framework whose every step is compiled.

    import sporeflow as sf            # in place of `import mindspore as ms`
"""
from .ir import dtypes as _dtypes
from .ir.dtypes import (bfloat16, bool_, double, float16, float32, float64, float_, half, int8, int16,  # noqa: F401
                        int32, int64, int_, uint8, uint16, uint32, uint64,
                        dtype_to_nptype, dtype_to_pytype)
from . import primitives  # noqa: F401  (registers every primitive)
from .context import GRAPH_MODE, PYNATIVE_MODE, get_context, set_context, set_device  # noqa: F401
from .context import (ParallelMode, get_auto_parallel_context, reset_auto_parallel_context,  # noqa: F401
                      set_auto_parallel_context)
from .frontend.tensor import Parameter, ParameterTuple, Tensor  # noqa: F401
from .frontend.jit import JitConfig, jit, jit_class, mutable  # noqa: F401
from .frontend.sink import data_sink  # noqa: F401
from .frontend.transforms import get_grad, grad, jacfwd, jacrev, jvp, value_and_grad, vjp  # noqa: F401
from .frontend.vmap import vmap  # noqa: F401
from .frontend.random import set_seed  # noqa: F401
from . import ops  # noqa: F401
from . import backends  # noqa: F401
from .frontend import nn  # noqa: F401

import sys as _sys
_sys.modules[__name__ + ".nn"] = nn   # `import sporeflow.nn as nn` works like mindspore.nn
from .runtime.checkpoint import load_checkpoint, load_param_into_net, save_checkpoint  # noqa: F401
from .runtime.export import export, load  # noqa: F401
from . import dataset  # noqa: F401
from . import train  # noqa: F401
from .train import (Callback, CheckpointConfig, EarlyStopping, History, LambdaCallback,  # noqa: F401,E402
                    LossMonitor, Model, ModelCheckpoint, ReduceLROnPlateau, RunContext, TimeMonitor)

from .frontend import amp  # noqa: F401,E402
_sys.modules[__name__ + ".amp"] = amp   # `from sporeflow.amp import auto_mixed_precision`
from . import common  # noqa: F401,E402
from . import numpy  # noqa: F401,E402  (sporeflow.numpy, MindSpore's mindspore.numpy)
from . import communication  # noqa: F401,E402  (init, get_rank, ...: MPI via mpi4py, imported at init())

dtype = _dtypes
__version__ = "0.1.0"
