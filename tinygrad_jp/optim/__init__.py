"""最適化手法 (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW) と学習率スケジューラ。"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .adaptive import AdaGrad, RMSprop
from .optimizer import Optimizer
from .sgd import SGD, Momentum, Nesterov

__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "Momentum", "Nesterov", "Optimizer", "RMSprop", "lr_scheduler"]
