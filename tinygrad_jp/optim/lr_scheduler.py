"""学習率スケジューラ (PyTorch の ``torch.optim.lr_scheduler`` と同じ使い方)。

スケジューラは作った時点で ``optimizer.lr`` をエポック 0 の値に設定し、``step()`` のたびに
次のエポックの値に設定する。η₀ は最初のスケジューラを作ったときの ``optimizer.lr``
(``optimizer.initial_lr`` に記録され、後から作るスケジューラも同じ η₀ を使う)。
``get_last_lr()`` は PyTorch と同じく、最後に設定した学習率を 1 要素のリストで返す。

各スケジューラはエポック e の学習率を閉じた式で計算する::

    opt = optim.Adam(model.parameters(), lr=0.001)
    sched = optim.lr_scheduler.WarmupCosine(opt, warmup_steps=5, total_steps=100)
    for epoch in range(100):
        train_one_epoch()
        sched.step()
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from .optimizer import check_nonnegative, check_positive, check_unit

__all__ = [
    "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "LinearWarmup", "ReduceLROnPlateau",
    "SequentialLR", "StepLR", "WarmupCosine",
]


def _check_optimizer(optimizer: Any) -> None:
    if not hasattr(optimizer, "lr"):
        raise TypeError(f"optimizer must have a settable lr attribute, got {type(optimizer).__name__}")


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return value


class LRScheduler:
    """エポック e の学習率 ``lr_at(e)`` を与えるスケジューラの基底クラス。

    サブクラスは ``lr_at(epoch)`` を書く (``self.base_lr`` が η₀)。
    """

    def __init__(self, optimizer: Any) -> None:
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if getattr(optimizer, "initial_lr", None) is None:
            optimizer.initial_lr = float(optimizer.lr)
        self.base_lr: float = float(optimizer.initial_lr)
        self.last_epoch = -1
        self._last_lr: float = float(optimizer.lr)
        self.step()

    def lr_at(self, epoch: int) -> float:
        """エポック ``epoch`` (0 始まり) の学習率。"""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(epoch)")

    def step(self) -> None:
        """エポックを 1 つ進め、``optimizer.lr`` をそのエポックの学習率にする。"""
        self.last_epoch += 1
        self._set(self.lr_at(self.last_epoch))

    def _set(self, lr: float) -> None:
        self.optimizer.lr = lr
        self._last_lr = lr

    def get_last_lr(self) -> list[float]:
        """最後に設定した学習率 (PyTorch と同じく 1 要素のリスト)。"""
        return [self._last_lr]

    def state_dict(self) -> dict[str, Any]:
        """再開に必要な状態 (数値だけ。関数や optimizer は含まない)。"""
        return {"last_epoch": self.last_epoch, "base_lr": self.base_lr, "last_lr": self._last_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``state_dict`` を読み込む (optimizer.lr は変えない: それは optimizer の状態に入っている)。"""
        for key in ("last_epoch", "base_lr", "last_lr"):
            if key not in state:
                raise ValueError(f"load_state_dict: missing entry {key!r} for {type(self).__name__}")
        last_epoch = float(state["last_epoch"])
        if last_epoch != int(last_epoch) or last_epoch < -1:
            raise ValueError(f"load_state_dict: last_epoch must be an integer >= -1, got {state['last_epoch']!r}")
        self.last_epoch = int(last_epoch)
        self.base_lr = float(state["base_lr"])
        self._last_lr = float(state["last_lr"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr:g})"


class StepLR(LRScheduler):
    """``step_size`` エポックごとに学習率を ``gamma`` 倍する。 η_e = η₀ γ^⌊e / step_size⌋"""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check_count("step_size", step_size, 1)
        self.gamma = check_nonnegative("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """毎エポック学習率を ``gamma`` 倍する。 η_e = η₀ γ^e"""

    def __init__(self, optimizer: Any, gamma: float) -> None:
        self.gamma = check_nonnegative("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """余弦カーブで η₀ から η_min へ下げる。 η_e = η_min + (η₀ − η_min)(1 + cos(π e / T_max)) / 2"""

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _check_count("T_max", T_max, 1)
        self.eta_min = check_nonnegative("eta_min", eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """学習率を η₀ · ``lr_lambda(e)`` にする。"""

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float]) -> None:
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the epoch, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * float(self.lr_lambda(epoch))


class LinearWarmup(LRScheduler):
    """ウォームアップ: 倍率を ``start_factor`` から 1 まで ``warmup_steps`` エポックかけて直線的に上げ、以後は η₀。

    η_e = η₀ (s + (1 − s) · min(e, W) / W)  (s = start_factor, W = warmup_steps)
    """

    def __init__(self, optimizer: Any, warmup_steps: int, start_factor: float = 0.1) -> None:
        self.warmup_steps = _check_count("warmup_steps", warmup_steps, 1)
        self.start_factor = check_unit("start_factor", start_factor, closed=True)
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        s = self.start_factor
        return self.base_lr * (s + (1 - s) * min(epoch, self.warmup_steps) / self.warmup_steps)


class SequentialLR(LRScheduler):
    """スケジューラを順につなぐ (PyTorch の SequentialLR)。

    エポック e が ``milestones[k-1]`` 以上 ``milestones[k]`` 未満なら、``schedulers[k]`` の
    エポック e − milestones[k-1] の学習率を使う。
    """

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler], milestones: Sequence[int]) -> None:
        schedulers = list(schedulers)
        milestones = [int(m) for m in milestones]
        if not schedulers:
            raise ValueError("SequentialLR needs at least one scheduler, got none")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs len(schedulers) - 1 milestones: got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        if any(b <= a for a, b in itertools.pairwise(milestones)) or any(m < 1 for m in milestones):
            raise ValueError(f"milestones must be positive and strictly increasing, got {milestones}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"schedulers[{i}] must be an LRScheduler with a closed form, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] drives a different optimizer than the one given to SequentialLR")
        self.schedulers = schedulers
        self.milestones = milestones
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        k = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[k - 1] if k > 0 else 0
        return self.schedulers[k].lr_at(epoch - start)


class WarmupCosine(SequentialLR):
    """ウォームアップのあと余弦カーブで下げる: ``LinearWarmup`` を ``warmup_steps`` エポック、
    続いて残り ``total_steps − warmup_steps`` エポックで η_min まで ``CosineAnnealingLR``。
    """

    def __init__(self, optimizer: Any, warmup_steps: int, total_steps: int, start_factor: float = 0.1,
                 eta_min: float = 0.0) -> None:
        _check_count("warmup_steps", warmup_steps, 1)
        _check_count("total_steps", total_steps, 2)
        if total_steps <= warmup_steps:
            raise ValueError(f"total_steps must exceed warmup_steps, got total_steps={total_steps}, "
                             f"warmup_steps={warmup_steps}")
        warmup = LinearWarmup(optimizer, warmup_steps, start_factor)
        cosine = CosineAnnealingLR(optimizer, total_steps - warmup_steps, eta_min)
        super().__init__(optimizer, [warmup, cosine], [warmup_steps])


class ReduceLROnPlateau:
    """評価値 (損失など) が ``patience`` エポックより長く改善しなければ学習率を ``factor`` 倍する。

    ``step(metric)`` に毎エポックの評価値を渡す。``mode="min"`` なら小さいほど良い
    (``"max"`` なら大きいほど良い)。改善とみなすのは、``threshold_mode="rel"`` なら
    best·(1 ∓ threshold) を、``"abs"`` なら best ∓ threshold を越えたとき。
    下げた後 ``cooldown`` エポックは様子を見る。学習率は ``min_lr`` より下げない。
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8) -> None:
        _check_optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.factor = check_unit("factor", factor)
        self.optimizer = optimizer
        self.mode = mode
        self.patience = _check_count("patience", patience, 0)
        self.threshold = check_nonnegative("threshold", threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = _check_count("cooldown", cooldown, 0)
        self.min_lr = check_nonnegative("min_lr", min_lr)
        self.eps = check_positive("eps", eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = float(optimizer.lr)

    def _is_better(self, value: float) -> bool:
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return value < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return value > bound

    def step(self, metric: float) -> None:
        """1 エポック分の評価値 ``metric`` を受け取り、必要なら学習率を下げる。"""
        value = float(metric)
        self.last_epoch += 1
        if self._is_better(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            # Changes smaller than eps are not worth a step (PyTorch's rule).
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = float(self.optimizer.lr)

    def get_last_lr(self) -> list[float]:
        """最後の ``step`` の後の学習率 (1 要素のリスト)。"""
        return [self._last_lr]

    def state_dict(self) -> dict[str, Any]:
        """再開に必要なカウンタと最良値。"""
        return {"best": self.best, "num_bad_epochs": self.num_bad_epochs, "cooldown_counter": self.cooldown_counter,
                "last_epoch": self.last_epoch, "last_lr": self._last_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """``state_dict`` を読み込む。欠けた項目があれば何も変えずに ValueError。"""
        for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "last_lr"):
            if key not in state:
                raise ValueError(f"load_state_dict: missing entry {key!r} for ReduceLROnPlateau")
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.last_epoch = int(state["last_epoch"])
        self._last_lr = float(state["last_lr"])

    def __repr__(self) -> str:
        return f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor:g}, patience={self.patience})"
