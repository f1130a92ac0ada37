"""Optimizers (`sporeflow.nn` re-exports them)."""
from .adam import Adam, AdamW, AdamWeightDecay  # noqa: F401
from .lamb import Lamb  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import Adagrad, RMSProp  # noqa: F401
from .sgd import SGD, Momentum  # noqa: F401
