"""tinygrad_jp: 第3章「活性化関数と最適化」を学ぶための、numpy だけで書かれた小さな自動微分ライブラリ。"""

from .tensor import Tensor, get_default_dtype, set_default_dtype  # noqa: I001 (first: the rest builds on it)

from . import data, functional, init, inspect, losses, nn, ops, optim, probes, train
from .activations import Activation
from .autograd import (
    BackwardError, Function, backward, detect_anomaly, enable_grad, grad, is_anomaly_enabled, is_grad_enabled, no_grad,
)
from .gradcheck import DerivativeCheck, GradcheckError, check_derivative, gradcheck
from .ops import concatenate, maximum, minimum, stack, where
from .random import get_rng, manual_seed
from .serialization import load, save

__version__ = "0.1.0"

F = functional

# Plotting and the demos need matplotlib: they load on first use (tg.viz), so importing the core stays light.
# The PyTorch bridge loads on first use too (and PyTorch itself only when a conversion runs).
_LAZY = ("viz", "demos", "cli", "interop")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Activation", "BackwardError", "DerivativeCheck", "F", "Function", "GradcheckError", "Tensor", "__version__",
    "backward", "check_derivative", "concatenate",
    "data", "detect_anomaly", "enable_grad", "functional", "get_default_dtype", "get_rng", "grad", "gradcheck",
    "init", "inspect", "is_anomaly_enabled", "is_grad_enabled", "load", "losses", "manual_seed", "maximum", "minimum",
    "nn", "no_grad",
    "ops", "optim", "probes", "save", "set_default_dtype", "stack", "train", "viz", "where",
]
