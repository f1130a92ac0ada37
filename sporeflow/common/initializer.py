"""`sporeflow.common.initializer` (MindSpore's `mindspore.common.initializer`): the initializers
of `sporeflow.nn` (frontend/nn/initializer.py) under the path tutorials import them from."""
from ..frontend.nn.initializer import *  # noqa: F401,F403
from ..frontend.nn.initializer import Initializer, initializer  # noqa: F401
