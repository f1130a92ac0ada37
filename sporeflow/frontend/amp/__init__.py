"""sporeflow.amp: MindSpore's mindspore.amp (mixed precision and loss scaling).

The casts are made by the `amp` pass (passes/amp.py) on the traced graph; this package marks
Cells (cast_policy), scales losses (loss_scale, managers) and builds train steps (build).
"""
from ..functional.overflow import all_finite, init_status  # noqa: F401
from .build import build_train_network  # noqa: F401
from .cast_policy import auto_mixed_precision, custom_mixed_precision, get_black_list, get_white_list  # noqa: F401
from .loss_scale import DynamicLossScaler, LossScaler, StaticLossScaler  # noqa: F401
from .managers import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager  # noqa: F401
