"""`sporeflow.common` (MindSpore's `mindspore.common`): Tensor, Parameter, ParameterTuple, dtype,
initializer, set_seed, under the paths tutorials import them from."""
from ..frontend.random import set_seed  # noqa: F401
from ..frontend.tensor import Parameter, ParameterTuple, Tensor  # noqa: F401
from . import dtype, initializer  # noqa: F401
