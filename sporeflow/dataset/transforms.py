"""`sporeflow.dataset.transforms` (MindSpore's `mindspore.dataset.transforms`)."""
from ..runtime.dataset.transforms import *  # noqa: F401,F403
