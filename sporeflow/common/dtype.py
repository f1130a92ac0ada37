"""`sporeflow.common.dtype` (`import mindspore.common.dtype as mstype`)."""
from ..ir.dtypes import *  # noqa: F401,F403
from ..ir.dtypes import (bfloat16, bool_, double, float16, float32, float64, float_, half, int8, int16,  # noqa: F401
                         int32, int64, int_, uint8, uint16, uint32, uint64,
                        dtype_to_nptype, dtype_to_pytype)

float = float32  # noqa: A001  (mstype.float is float32 in MindSpore)
int = int32  # noqa: A001
