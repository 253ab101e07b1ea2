"""層 (Layer) とそれを組み合わせたモデル。"""

from ..activations import Activation, ReLU, Sigmoid, Tanh
from ..layer import Layer

__all__ = ["Activation", "Layer", "ReLU", "Sigmoid", "Tanh"]
