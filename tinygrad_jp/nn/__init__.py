"""層 (Layer) とそれを組み合わせたモデル。"""

from ..activations import (
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)
from ..layer import Layer
from . import utils
from .containers import Sequential
from .dropout import Dropout
from .linear import Linear
from .mlp import MLP
from .norm import BatchNorm1d
from .residual import Residual

__all__ = [
    "ELU", "GELU", "MLP", "Activation", "BatchNorm1d", "Dropout", "Identity", "Layer", "LeakyReLU", "Linear",
    "LogSoftmax", "ReLU", "Residual", "Sequential", "Sigmoid", "Softmax", "Softplus", "Swish", "Tanh",
    "utils",
]
