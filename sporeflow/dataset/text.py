"""`sporeflow.dataset.text` (MindSpore's `mindspore.dataset.text`)."""
from ..runtime.dataset.text import *  # noqa: F401,F403
from ..runtime.dataset.text import Vocab  # noqa: F401
