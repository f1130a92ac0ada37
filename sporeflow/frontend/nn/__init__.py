"""`sporeflow.nn` (MindSpore's `mindspore.nn`): Cell, layers, losses, optimizers, LR schedules,
wrappers. `sf.nn.Cell` is frontend/cell.py's Cell."""
from ..cell import Cell  # noqa: F401
from ..tensor import Parameter  # noqa: F401
from . import initializer  # noqa: F401
from .layer.activation import (GELU, LeakyReLU, LogSoftmax, PReLU, ReLU, ReLU6, Sigmoid, SiLU,  # noqa: F401
                               Softmax, Tanh, get_activation)
from .layer.basic import Dense, Dropout, Embedding, Flatten, Identity, Pad  # noqa: F401
from .layer.container import CellList, SequentialCell  # noqa: F401
from .layer.graph_cell import GraphCell  # noqa: F401
from .layer.conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, Conv2dTranspose, MaxPool2d  # noqa: F401
from .layer.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm  # noqa: F401
from .layer.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .layer.transformer import (MultiheadAttention, Transformer, TransformerDecoder,  # noqa: F401
                                TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)
from .learning_rate_schedule import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .optim import SGD, Adagrad, Adam, AdamW, AdamWeightDecay, Lamb, Momentum, Optimizer, RMSProp  # noqa: F401
from .wrap import GradAccumulationCell, TrainOneStepCell, WithEvalCell, WithLossCell  # noqa: F401
from .grad_reducer import DistributedGradReducer  # noqa: F401
from .wrap_loss_scale import (DynamicLossScaleUpdateCell, FixedLossScaleUpdateCell,  # noqa: F401,E402
                              TrainOneStepWithLossScaleCell)
