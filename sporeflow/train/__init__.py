"""`sporeflow.train` (MindSpore's `mindspore.train`): Model, callbacks, metrics; the code lives in
`sporeflow.runtime`, this namespace only re-exports. (Append new re-exports as separate lines.)"""
from ..runtime.metrics import (F1, MAE, MSE, Accuracy, ConfusionMatrix, EvaluationBase, Fbeta, Loss,  # noqa: F401
                               Metric, Precision, Recall, Top1CategoricalAccuracy, Top5CategoricalAccuracy,
                               TopKCategoricalAccuracy, get_metric_fn, get_metrics, names, rearrange_inputs)
from ..runtime import metrics  # noqa: F401
from ..runtime.checkpoint import load_checkpoint, load_param_into_net, save_checkpoint  # noqa: F401
from ..runtime.model import Model  # noqa: F401
from ..runtime.callbacks import (Callback, EarlyStopping, History, InternalCallbackParam, LambdaCallback,  # noqa: F401
                                 LearningRateScheduler, LossMonitor, ReduceLROnPlateau, RunContext, TimeMonitor)
from ..runtime.callback_checkpoint import CheckpointConfig, ModelCheckpoint  # noqa: F401
from ..runtime.progress import ProgressBar  # noqa: F401
from ..runtime import callbacks as callback  # noqa: F401
from ..runtime.summary import SummaryCollector, SummaryRecord  # noqa: F401
