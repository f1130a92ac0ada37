"""`sporeflow.dataset.vision` (MindSpore's `mindspore.dataset.vision`)."""
from ..runtime.dataset.vision import *  # noqa: F401,F403
from ..runtime.dataset.vision import Border, Inter  # noqa: F401
