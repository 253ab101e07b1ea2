"""関数の形の API (``import tinygrad_jp.functional as F``、PyTorch の ``torch.nn.functional`` に相当)。

どの関数も Tensor を渡せば逆伝播できる Tensor を、ndarray を渡せば ndarray を返す::

    F.relu(t)          # Tensor → Tensor
    F.relu(np_array)   # ndarray → ndarray (曲線を描くときなど)

損失関数 (``mse_loss``, ``softmax_cross_entropy``, ...) は ``tinygrad_jp.losses`` のものと同じ。
"""

from __future__ import annotations

from .activations import ELU, GELU, RELU, SIGMOID, TANH, LeakyReLU, Softplus, Swish
from .losses import (
    accuracy,
    binary_cross_entropy_with_logits,
    log_softmax,
    mse_loss,
    softmax,
    softmax_cross_entropy,
)

_GELU = GELU()
_SOFTPLUS = Softplus()


def relu(x):
    """ReLU(x) = max(0, x)。"""
    return RELU(x)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^{-x})。"""
    return SIGMOID(x)


def tanh(x):
    """tanh(x)。"""
    return TANH(x)


def leaky_relu(x, alpha: float = 0.01):
    """x (x > 0)、αx (x ≤ 0)。"""
    return LeakyReLU(alpha)(x)


def elu(x, alpha: float = 1.0):
    """x (x > 0)、α(e^x - 1) (x ≤ 0)。"""
    return ELU(alpha)(x)


def swish(x, beta: float = 1.0):
    """x σ(βx)。"""
    return Swish(beta)(x)


def silu(x):
    """SiLU(x) = x σ(x) (β = 1 の Swish)。"""
    return swish(x, 1.0)


def gelu(x):
    """GELU の tanh 近似 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))。"""
    return _GELU(x)


def softplus(x):
    """log(1 + e^x) (どんな有限の x でもあふれない)。"""
    return _SOFTPLUS(x)


__all__ = [
    "accuracy", "binary_cross_entropy_with_logits", "elu", "gelu", "leaky_relu", "log_softmax", "mse_loss",
    "relu", "sigmoid", "silu", "softmax", "softmax_cross_entropy", "softplus", "swish", "tanh",
]
