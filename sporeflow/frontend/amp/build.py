"""amp.build_train_network: the train step at an amp level (MindSpore's _config_level defaults)."""
from __future__ import annotations

from ...ir import dtypes as D
from .. import functional as F
from ..cell import Cell
from ..nn.wrap import TrainOneStepCell, WithLossCell
from ..nn.wrap_loss_scale import TrainOneStepWithLossScaleCell
from .cast_policy import LEVELS, auto_mixed_precision
from .managers import DynamicLossScaleManager, LossScaleManager

# level -> (keep_batchnorm_fp32, cast_model_type, default loss scale manager factory)
_LEVEL_DEFAULTS = {
    "O0": (False, D.float32, None),
    "O1": (False, D.float16, None),
    "O2": (True, D.float16, DynamicLossScaleManager),
    "O3": (False, D.float16, None),
    "auto": (True, D.float16, DynamicLossScaleManager),
}
_KWARGS = ("cast_model_type", "keep_batchnorm_fp32", "loss_scale_manager")


class _AmpWithLossCell(Cell):
    """WithLossCell that computes the loss in float32: network output and label are cast first."""

    def __init__(self, backbone: Cell, loss_fn: Cell):
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._loss_fn = loss_fn

    @property
    def backbone_network(self) -> Cell:
        return self._backbone

    def construct(self, data, label):
        out = self._backbone(data)
        out = F.cast(out, D.float32) if out.dtype.is_float else out
        label = F.cast(label, D.float32) if label.dtype.is_float else label
        return self._loss_fn(out, label)


def build_train_network(network: Cell, optimizer: Cell, loss_fn: Cell | None = None, level: str = "O0",
                        boost_level: str = "O0", **kwargs) -> Cell:
    """`network` (+ `loss_fn`) converted at `level` and wrapped into the one-step train Cell."""
    if level not in LEVELS:
        raise ValueError(f"build_train_network: level must be one of {LEVELS}, got {level!r}")
    if boost_level != "O0":
        raise ValueError(f"build_train_network: boost_level={boost_level!r} is not supported by sporeflow "
                         "(boost is an Ascend feature); use 'O0'")
    unknown = set(kwargs) - set(_KWARGS)
    if unknown:
        raise ValueError(f"build_train_network: unsupported keyword arguments {sorted(unknown)}; "
                         f"allowed: {list(_KWARGS)}")
    keep_bn, cast_type, default_manager = _LEVEL_DEFAULTS[level]
    keep_bn = kwargs.get("keep_batchnorm_fp32", keep_bn)
    cast_type = kwargs.get("cast_model_type", cast_type)
    manager = kwargs["loss_scale_manager"] if "loss_scale_manager" in kwargs else \
        (default_manager() if default_manager else None)
    if manager is not None and not isinstance(manager, LossScaleManager):
        raise TypeError(f"build_train_network: loss_scale_manager must be a LossScaleManager, got "
                        f"{type(manager).__name__}")
    if cast_type not in (D.float16, D.bfloat16, D.float32):
        raise ValueError(f"build_train_network: cast_model_type must be float16, bfloat16 or float32, got {cast_type}")
    converted = level != "O0" and cast_type is not D.float32
    if converted:
        auto_mixed_precision(network, level, cast_type, keep_batchnorm_fp32=keep_bn)
    if loss_fn is not None:
        network = _AmpWithLossCell(network, loss_fn) if converted else WithLossCell(network, loss_fn)
    if manager is None:
        return TrainOneStepCell(network, optimizer)
    update_cell = manager.get_update_cell()
    if update_cell is not None:
        return TrainOneStepWithLossScaleCell(network, optimizer, scale_sense=update_cell)
    return TrainOneStepCell(network, optimizer, sens=manager.get_loss_scale())

