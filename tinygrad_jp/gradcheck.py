"""gradcheck: 逆伝播の勾配を、float64 の中心差分による数値微分と比べる。

* ``gradcheck(fn, *inputs)``: どんな関数でも。出力がスカラーでなければ、乱数の重み v で Σ v·fn(x) の
  勾配を比べる。
* 要素ごとの関数 (``Activation`` のインスタンス、または ``elementwise=True``) では、点ごとに
  x・解析的な導関数 (Activation なら自分の ``df``)・数値微分を並べて比べる (``check_derivative``)。
  左右の片側差分が食い違う点 (折れ目、たとえば ReLU の x = 0) は微分できない点として報告し、
  比べずに飛ばす。
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import Activation
from .autograd import grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """解析的な勾配と数値微分が食い違ったときに送出される。"""


def _num(value: float) -> str:
    """A number as a learner writes it: 0.01, -4, 1.2e-11 (never np.float64(...))."""
    return f"{float(value):.6g}"


# ---------------------------------------------------------------------- elementwise functions
@dataclass
class DerivativeCheck:
    """要素ごとの関数の導関数を、点ごとに数値微分と比べた結果 (``check_derivative`` が返す)。

    配列はどれも点ごと (入力を 1 列に並べた順):

    * ``x``: 点。``analytic``: 解析的な導関数 (逆伝播 ∂/∂x Σ f(x)。Activation ならその ``df`` そのもの)。
    * ``numerical``: 中心差分 (f(x + ε) − f(x − ε)) / 2ε (float64)。
    * ``left``, ``right``: 片側差分 (f(x) − f(x − ε)) / ε と (f(x + ε) − f(x)) / ε。
    * ``kink``: 左右の片側差分が許容差より大きく食い違う点 (折れ目: 微分できないので比べない)。

    ``gap`` は微分できる点での |analytic − numerical| の最大値、``failed`` は許容差
    atol + rtol·|numerical| を超えた点、``ok`` はそういう点がないこと。``print`` すると
    差の大きい点から順に表が出る。
    """

    name: str
    label: str
    x: np.ndarray
    analytic: np.ndarray
    numerical: np.ndarray
    left: np.ndarray
    right: np.ndarray
    eps: float
    atol: float
    rtol: float

    def _allowed(self, reference: np.ndarray) -> np.ndarray:
        return self.atol + self.rtol * np.abs(reference)

    @property
    def kink(self) -> np.ndarray:
        scale = np.maximum(np.abs(self.left), np.abs(self.right))
        return np.abs(self.right - self.left) > self._allowed(scale)

    @property
    def difference(self) -> np.ndarray:
        """点ごとの |analytic − numerical| (微分できない点では nan)。"""
        return np.where(self.kink, np.nan, np.abs(self.analytic - self.numerical))

    @property
    def gap(self) -> float:
        """微分できる点での |analytic − numerical| の最大値 (そういう点がなければ nan)。"""
        d = self.difference
        smooth = ~self.kink
        if not smooth.any():
            return float("nan")
        return float(np.max(np.where(np.isfinite(d[smooth]), d[smooth], np.inf)))

    @property
    def failed(self) -> np.ndarray:
        """許容差を超えた (または有限でない) 微分できる点。"""
        bad = ~(np.abs(self.analytic - self.numerical) <= self._allowed(self.numerical))
        return bad & ~self.kink

    @property
    def ok(self) -> bool:
        return not self.failed.any()

    def table(self, max_rows: int | None = 10) -> str:
        """点ごとの表: 差の大きい点から順に、微分できない点は最後に (``max_rows`` 行まで)。"""
        kink = self.kink
        smooth = np.flatnonzero(~kink)
        excess = np.abs(self.analytic - self.numerical) - self._allowed(self.numerical)
        excess = np.where(np.isfinite(excess), excess, np.inf)
        order = list(smooth[np.argsort(-excess[smooth], kind="stable")]) + list(np.flatnonzero(kink))
        shown = order if max_rows is None else order[:max_rows]
        rows = [["x", self.label, "numerical", "difference", ""]]
        for i in shown:
            if kink[i]:
                rows.append([_num(self.x[i]), _num(self.analytic[i]), "-", "-",
                             f"not differentiable (left {_num(self.left[i])}, right {_num(self.right[i])}): skipped"])
            else:
                status = "FAIL" if self.failed[i] else "ok"
                rows.append([_num(self.x[i]), _num(self.analytic[i]), _num(self.numerical[i]),
                             _num(abs(self.analytic[i] - self.numerical[i])), status])
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
        if len(shown) < len(order):
            lines.append(f"... and {len(order) - len(shown)} more points")
        return "\n".join(line.rstrip() for line in lines)

    def summary(self) -> str:
        """2 行の要約: 何と何を何点で比べたか、失敗した点・微分できない点の数、最大の差。"""
        n, n_kink, n_failed = self.x.size, int(self.kink.sum()), int(self.failed.sum())
        return (f"{self.name}: {self.label} against central differences of f in float64 (eps={_num(self.eps)}) "
                f"at {n} points\n{n_failed} failed (|difference| > {_num(self.atol)} + {_num(self.rtol)}*|numerical|), "
                f"{n_kink} not differentiable (skipped), largest difference {_num(self.gap)}")

    def __str__(self) -> str:
        return self.summary() + "\n" + self.table()


def _values(fn: Callable[[Tensor], Any], x: np.ndarray) -> np.ndarray:
    with no_grad():
        out = fn(Tensor(x, dtype=np.float64))
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)


def _name(fn: Any) -> str:
    return type(fn).__name__ if isinstance(fn, Activation) else getattr(fn, "__name__", type(fn).__name__)


def check_derivative(fn: Callable[[Tensor], Any], x: Any, *, eps: float = 1e-6, atol: float = 1e-5,
                     rtol: float = 1e-3) -> DerivativeCheck:
    """要素ごとの関数 ``fn`` の導関数を、点 ``x`` ごとに数値微分と比べる (float64 で計算する)。

    ``fn`` は ``Activation`` のインスタンスか、Tensor を受け取って同じ形の Tensor を返す要素ごとの関数。
    解析的な導関数は逆伝播 ∂/∂x Σ fn(x) (要素ごとなので点ごとの f'(x)。Activation なら逆伝播が使う
    ``df`` そのもの)、数値微分は f だけから作る中心差分なので、両者は独立に求めた値である。
    """
    x64 = np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64).reshape(-1)
    t = Tensor(x64, requires_grad=True, dtype=np.float64)
    out = fn(t)
    if not isinstance(out, Tensor) or out.shape != t.shape:
        got = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"check_derivative: fn must be elementwise, returning a Tensor of the input's shape "
                         f"{t.shape}; got {got}")
    if out.requires_grad:
        (g,) = grad(out, [t], grad_outputs=np.ones(out.shape), allow_unused=True)
        analytic = np.zeros(x64.shape) if g is None else np.asarray(g.data, dtype=np.float64)
    else:
        analytic = np.zeros(x64.shape)
    # The steps actually taken (x ± eps rounded to float64) divide the differences.
    hi, lo = x64 + eps, x64 - eps
    f_hi, f_mid, f_lo = _values(fn, hi), _values(fn, x64), _values(fn, lo)
    label = "df(x)" if isinstance(fn, Activation) else "backward"
    return DerivativeCheck(_name(fn), label, x64, analytic, (f_hi - f_lo) / (hi - lo), (f_mid - f_lo) / (x64 - lo),
                           (f_hi - f_mid) / (hi - x64), eps, atol, rtol)


# ---------------------------------------------------------------------- any function
def _as_input(x: Any) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    wants = x.requires_grad if isinstance(x, Tensor) else np.asarray(x).dtype.kind == "f"
    if data.dtype.kind != "f":
        return Tensor(data)
    return Tensor(data.astype(np.float64), requires_grad=wants)


def _numerical(scalar: Callable[[], float], x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of scalar() in each element of x (changed in place and restored), and the
    one-sided differences' disagreement per element (large where the function has a kink)."""
    base = scalar()
    num, disagreement = np.zeros(x.shape), np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        hi = scalar()
        x[idx] = orig - eps
        lo = scalar()
        x[idx] = orig
        num[idx] = (hi - lo) / (2 * eps)
        disagreement[idx] = ((hi - base) - (base - lo)) / eps
    return num, disagreement


def _general_failure(i: int, x: np.ndarray, ana: np.ndarray, num: np.ndarray, disagreement: np.ndarray,
                     atol: float, rtol: float) -> str | None:
    err = np.abs(ana - num) - (atol + rtol * np.abs(num))
    if not err.size or (np.max(err) <= 0 and np.all(np.isfinite(ana))):
        return None
    worst = np.unravel_index(np.nanargmax(np.where(np.isfinite(err), err, np.inf)), x.shape)
    message = (f"gradcheck failed for input {i} (shape {x.shape}) at index {tuple(int(j) for j in worst)}: "
               f"analytic gradient {_num(ana[worst])} but numerical {_num(num[worst])} "
               f"(allowed difference {_num(atol + rtol * abs(num[worst]))})")
    if abs(disagreement[worst]) > atol + rtol * abs(num[worst]):
        message += (f"; the one-sided differences there differ by {_num(disagreement[worst])}, so the function "
                    f"may not be differentiable at this point (a kink): check it at other points")
    return message


def _gradcheck_elementwise(fn: Callable[..., Any], inputs: tuple, eps: float, atol: float, rtol: float) -> bool:
    if len(inputs) != 1:
        raise ValueError(f"gradcheck: an elementwise function takes one input, got {len(inputs)}")
    report = check_derivative(fn, inputs[0], eps=eps, atol=atol, rtol=rtol)
    if not report.ok:
        raise GradcheckError(f"gradcheck failed: {report.summary()}\nworst first:\n{report.table()}")
    return True


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, elementwise: bool | None = None) -> bool:
    """``fn(*inputs)`` の勾配を中心差分 (f(x+ε) - f(x-ε)) / 2ε と比べる。

    入力は float64 にコピーしてから使う。一致すれば True、食い違えば ``GradcheckError`` を送出する。

    * 要素ごとの関数 (``fn`` が ``Activation`` のインスタンスのとき、または ``elementwise=True``):
      点ごとに x・解析的な導関数 (``df``)・数値微分を比べ、食い違えば差の大きい点から順の表を
      メッセージに入れる。左右の片側差分が食い違う点 (折れ目) は微分できない点として飛ばす。
    * それ以外: 出力がスカラーでなければ、固定した乱数の重み v で Σ v·fn(x) の勾配を比べ、
      いちばんずれた入力の要素を示す。
    """
    if elementwise is None:
        elementwise = isinstance(fn, Activation)
    if elementwise:
        return _gradcheck_elementwise(fn, inputs, eps, atol, rtol)
    xs = [_as_input(x) for x in inputs]
    checked = [i for i, x in enumerate(xs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check (give Tensors with requires_grad=True)")
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape) if out.size > 1 else np.ones(out.shape)

    def scalar() -> float:
        return float(np.sum(np.asarray(fn(*xs).data, dtype=np.float64) * v))

    if not out.requires_grad:
        analytic = [np.zeros(xs[i].shape) for i in checked]
    else:
        gs = grad(out, [xs[i] for i in checked], grad_outputs=v.astype(out.dtype), allow_unused=True)
        analytic = [np.zeros(xs[i].shape) if g is None else g.data for i, g in zip(checked, gs)]

    for i, ana in zip(checked, analytic):
        num, disagreement = _numerical(scalar, xs[i].data, eps)
        message = _general_failure(i, xs[i].data, ana, num, disagreement, atol, rtol)
        if message is not None:
            raise GradcheckError(message)
    return True
