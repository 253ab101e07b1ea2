"""層 (Layer) とそれを組み合わせたモデル。"""

from ..activations import Activation, ReLU, Sigmoid, Tanh
from ..layer import Layer
from .containers import Sequential
from .dropout import Dropout
from .linear import Linear
from .mlp import MLP
from .norm import BatchNorm1d
from .residual import Residual

__all__ = [
    "MLP", "Activation", "BatchNorm1d", "Dropout", "Layer", "Linear", "ReLU", "Residual", "Sequential", "Sigmoid",
    "Tanh",
]
