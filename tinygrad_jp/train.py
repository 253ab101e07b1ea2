"""学習ループ ``fit``: ミニバッチで順伝播 → 損失 → 逆伝播 → 更新 を繰り返し、エポックごとの記録を返す。

    model = nn.MLP([2, 64, 64, 3])
    opt = optim.Adam(model.parameters(), lr=0.001)
    history = train.fit(model, F.softmax_cross_entropy, opt, DataLoader(X, y, 32), epochs=100)
    history.loss[-1], history.accuracy[-1]
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._jupyter import kernel_shell
from .autograd import no_grad
from .optim.lr_scheduler import ReduceLROnPlateau
from .tensor import Tensor

__all__ = ["History", "NonFiniteLossError", "evaluate", "fit"]


@dataclass
class History:
    """``fit`` の記録。リストの i 番目がエポック i の値。

    * ``loss``, ``accuracy``: 学習データでのバッチ平均 (サンプル数で重み付け)。``accuracy`` は
      ラベルがクラス番号 (整数) で出力が (N, C) のときだけ記録する (それ以外は空のリスト)。
    * ``lr``: そのエポックで使った学習率。
    * ``grad_norms``: パラメータ名 ("0.W" など) → そのエポックの各バッチでの勾配の L2 ノルムの平均。
    * ``val_loss``, ``val_accuracy``: ``val_loader`` を渡したときの評価データでの値。
    * ``epoch_time``: 各エポックにかかった秒数。
    * ``interrupted``: Ctrl-C で止めたら True (最後の要素は途中までのエポックの値)。
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        """記録したエポックの数。"""
        return len(self.loss)

    def __len__(self) -> int:
        return self.epochs


class _Running:
    """Sample-weighted sums of loss and correct predictions over one pass of a loader."""

    def __init__(self) -> None:
        self.n = 0
        self.loss = 0.0
        self.correct = 0
        self.n_labelled = 0
        self.batches = 0

    def add(self, loss: float, out: Tensor, y: Any) -> None:
        n = out.shape[0] if out.ndim else 1
        self.n += n
        self.loss += loss * n
        self.batches += 1
        correct = _n_correct(out, y)
        if correct is not None:
            self.correct += correct
            self.n_labelled += n

    @property
    def mean_loss(self) -> float:
        return self.loss / self.n if self.n else math.nan

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n_labelled if self.n_labelled else None


def _n_correct(out: Tensor, y: Any) -> int | None:
    """How many rows' argmax equals the class-index label, or None when y is not class indices."""
    labels = y.data if isinstance(y, Tensor) else y
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.ndim != 1:
        return None
    if out.ndim != 2 or out.shape[1] < 2 or out.shape[0] != labels.shape[0]:
        return None
    return int(np.count_nonzero(out.data.argmax(axis=1) == labels))


def _loss_value(loss: Any) -> float:
    if not isinstance(loss, Tensor) or loss.size != 1:
        got = f"a Tensor of shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise TypeError(f"loss_fn must return a scalar Tensor (one element), got {got}")
    return loss.item()


def _named_parameters(model: Any, optimizer: Any) -> list[tuple[str, Tensor]]:
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    params = getattr(optimizer, "params", None) or []
    return [(str(i), p) for i, p in enumerate(params)]


def _set_mode(model: Any, training: bool) -> None:
    if hasattr(model, "train"):
        model.train(training)


def evaluate(model: Any, loss_fn: Callable[[Tensor, Any], Tensor], loader: Iterable) -> tuple[float, float | None]:
    """評価モード・勾配なしで ``loader`` 全体の (平均損失, 正解率) を返す (正解率はクラス番号ラベルのときだけ)。

    終わるとモデルを呼ばれたときのモード (``model.training``) に戻すので、エポックの合間に呼んでも
    そのあとの学習で Dropout や BatchNorm が止まったままにならない。
    """
    was_training = getattr(model, "training", True)
    _set_mode(model, False)
    running = _Running()
    try:
        with no_grad():
            for xb, yb in loader:
                out = model(xb)
                running.add(_loss_value(loss_fn(out, yb)), out, yb)
    finally:
        _set_mode(model, was_training)
    return running.mean_loss, running.accuracy


class _StopOnSigint:
    """While active, the first Ctrl-C only asks the loop to stop after the current batch; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopOnSigint:
        # Signal handlers can only be installed from the main thread; elsewhere Ctrl-C raises as usual.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)


def _progress_bar(total: int | None, enabled: bool) -> Any:
    """One bar over all batches of all epochs (a bar per epoch would fill the screen in a 300-epoch run).

    A notebook gets tqdm.auto's bar (a widget where ipywidgets is installed, text otherwise), a terminal
    tqdm's text bar, and anything else (a log file, a pipe) one plain line per epoch instead of a bar
    redrawn with carriage returns.
    """
    if not enabled:
        return contextlib.nullcontext(None)
    if kernel_shell() is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm's advice to install ipywidgets: its text bar works too
            from tqdm.auto import tqdm as notebook_tqdm
        return notebook_tqdm(total=total, file=sys.stdout)
    if not sys.stdout.isatty():
        return _EpochLines()
    from tqdm import tqdm  # only needed when a bar is shown

    return tqdm(total=total, file=sys.stdout, dynamic_ncols=True)


class _EpochLines:
    """The part of tqdm's interface that fit uses, printing "epoch 3/10: loss=0.4211, acc=0.850" once per epoch.

    An epoch's line is printed when the next epoch begins or training ends, so it carries the
    validation loss too.
    """

    def __init__(self) -> None:
        self._description: str | None = None
        self._postfix: dict[str, Any] = {}

    def __enter__(self) -> _EpochLines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._print_epoch()

    def set_description(self, description: str, refresh: bool = True) -> None:
        self._print_epoch()
        self._description = description

    def set_postfix(self, postfix: dict[str, Any], refresh: bool = True) -> None:
        self._postfix = dict(postfix)

    def update(self, n: int = 1) -> None:
        pass

    def write(self, text: str) -> None:
        self._print_epoch()
        print(text, flush=True)

    def _print_epoch(self) -> None:
        if self._description is not None:
            values = ", ".join(f"{key}={value}" for key, value in self._postfix.items())
            print(f"{self._description}: {values}" if values else self._description, flush=True)
        self._description, self._postfix = None, {}


def _batches(loader: Iterable) -> Iterator[tuple[Any, Any]]:
    for item in loader:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"the loader must yield (X, y) pairs, got {type(item).__name__}")
        yield item[0], item[1]


def fit(model: Any, loss_fn: Callable[[Tensor, Any], Tensor], optimizer: Any, loader: Iterable, epochs: int,
        val_loader: Iterable | None = None, scheduler: Any = None, progress: bool = True) -> History:
    """``model`` を ``epochs`` エポック学習し、``History`` を返す。

    各バッチで ``out = model(X)``, ``loss = loss_fn(out, y)``, ``optimizer.zero_grad()``,
    ``loss.backward()``, ``optimizer.step()``。学習中は ``model.train()``、``val_loader`` での評価中は
    ``model.eval()`` (終わったら呼ばれたときのモードに戻す)。``scheduler`` はエポックごとに 1 回
    ``step()`` する (``ReduceLROnPlateau`` には評価データの損失、なければ学習データの損失を渡す)。

    ``progress=True`` なら進捗バー (損失と正解率つき) を出す: 端末では tqdm のバー、Jupyter・Colab では
    tqdm.auto のバー (ipywidgets があればウィジェット)。ファイルやパイプへの出力ではエポックごとに 1 行。
    Ctrl-C を押すと今のバッチを終えてから止まり、それまでの記録を返す
    (``history.interrupted`` が True)。もう一度押すとすぐに KeyboardInterrupt になる。

    損失が NaN か ±inf になったら (発散)、そのバッチでは更新せずに ``NonFiniteLossError`` を送出する。
    メッセージにエポックとバッチの番号 (1 から数える)、``err.history`` に終わったエポックまでの記録が入る。
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got epochs={epochs!r}")
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
        raise TypeError(f"optimizer must have step() and zero_grad(), got {type(optimizer).__name__}")
    show = bool(progress)
    named = _named_parameters(model, optimizer)
    history = History(grad_norms={name: [] for name, _ in named})
    was_training = getattr(model, "training", True)
    total = _batches_per_epoch(loader)
    try:
        with _StopOnSigint() as sigint, _progress_bar(None if total is None else total * epochs, show) as bar:
            run = _Run(model, loss_fn, optimizer, loader, epochs, named, history, bar, sigint)
            for epoch in range(epochs):
                if not run.epoch(epoch, val_loader, scheduler):
                    break
    finally:
        _set_mode(model, was_training)
    return history


class NonFiniteLossError(FloatingPointError):
    """``fit`` の損失が NaN か ±inf になった (学習が発散した)。

    ``epoch`` と ``batch`` はそのバッチの番号 (1 から数える)、``loss`` はその値。``history`` は
    それまでに終わったエポックの記録 (``fit`` が返すはずだったもの)。そのバッチの更新はしていない。
    """

    def __init__(self, message: str, history: History, epoch: int, batch: int, loss: float):
        super().__init__(message)
        self.history, self.epoch, self.batch, self.loss = history, epoch, batch, loss


def _batches_per_epoch(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Run:
    """One call of fit: what it trains with, and the History it fills in."""

    def __init__(self, model: Any, loss_fn: Callable, optimizer: Any, loader: Iterable, epochs: int,
                 named: list[tuple[str, Tensor]], history: History, bar: Any, sigint: _StopOnSigint) -> None:
        self.model, self.loss_fn, self.optimizer, self.loader = model, loss_fn, optimizer, loader
        self.epochs, self.named, self.history, self.bar, self.sigint = epochs, named, history, bar, sigint

    def epoch(self, epoch: int, val_loader: Iterable | None, scheduler: Any) -> bool:
        """Train one epoch, validate and step the scheduler; False when training must stop (Ctrl-C)."""
        start = time.perf_counter()
        lr = float(self.optimizer.lr) if hasattr(self.optimizer, "lr") else math.nan
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}", refresh=False)
        running, norms, interrupted = self.train_epoch(epoch)
        self.history.interrupted = interrupted
        if running.batches == 0:
            if interrupted:
                return False
            raise ValueError("the loader yielded no batches (with drop_last=True, is batch_size "
                             "larger than the data set?)")
        self._record(running, norms, lr)
        if interrupted:
            self.history.epoch_time.append(time.perf_counter() - start)
            if self.bar is not None:
                self.bar.write("interrupted: stopped after the current batch")
            return False
        monitor = running.mean_loss if val_loader is None else self._validate(val_loader, running)
        _step_scheduler(scheduler, monitor)
        self.history.epoch_time.append(time.perf_counter() - start)
        return True

    def _record(self, running: _Running, norms: dict[str, float], lr: float) -> None:
        self.history.loss.append(running.mean_loss)
        if running.accuracy is not None:
            self.history.accuracy.append(running.accuracy)
        self.history.lr.append(lr)
        for name, value in norms.items():
            self.history.grad_norms[name].append(value)

    def _validate(self, val_loader: Iterable, running: _Running) -> float:
        val_loss, val_acc = evaluate(self.model, self.loss_fn, val_loader)
        self.history.val_loss.append(val_loss)
        if val_acc is not None:
            self.history.val_accuracy.append(val_acc)
        if self.bar is not None:
            self.bar.set_postfix({**_postfix(running), "val_loss": f"{val_loss:.4f}"}, refresh=False)
        return val_loss

    def train_epoch(self, epoch: int) -> tuple[_Running, dict[str, float], bool]:
        """One pass over the loader: (running sums, mean gradient norm per parameter, whether it was interrupted)."""
        _set_mode(self.model, True)
        running = _Running()
        norms = _GradNorms(self.named)
        interrupted = False
        try:
            for batch, (xb, yb) in enumerate(_batches(self.loader), 1):
                out = self.model(xb)
                loss = self.loss_fn(out, yb)
                value = _loss_value(loss)
                if not math.isfinite(value):
                    raise self._diverged(epoch, batch, value)
                self.optimizer.zero_grad()
                loss.backward()
                norms.add()
                self.optimizer.step()
                running.add(value, out, yb)
                if self.bar is not None:
                    self.bar.update(1)
                    self.bar.set_postfix(_postfix(running), refresh=False)
                if self.sigint.requested:
                    break
        except KeyboardInterrupt:
            interrupted = True
        return running, norms.means(), interrupted or self.sigint.requested

    def _diverged(self, epoch: int, batch: int, value: float) -> NonFiniteLossError:
        done = self.history.epochs
        return NonFiniteLossError(
            f"fit: the loss is {value} at epoch {epoch + 1}/{self.epochs}, batch {batch}: training diverged "
            f"(is the learning rate too large?) and stopped before this batch's update; the history of the "
            f"{done} finished epoch{'s' if done != 1 else ''} is in this error's .history",
            self.history, epoch + 1, batch, value,
        )


class _GradNorms:
    """The L2 norm of each parameter's gradient, averaged over the batches of one epoch that gave it a gradient."""

    def __init__(self, named: list[tuple[str, Tensor]]) -> None:
        self.named = named
        self.sums = {name: 0.0 for name, _ in named}
        self.counts = {name: 0 for name, _ in named}

    def add(self) -> None:
        for name, p in self.named:
            if p.grad is not None:
                g = p.grad.ravel()
                self.sums[name] += math.sqrt(float(np.dot(g, g)))
                self.counts[name] += 1

    def means(self) -> dict[str, float]:
        return {name: self.sums[name] / self.counts[name] if self.counts[name] else math.nan for name in self.sums}


def _step_scheduler(scheduler: Any, monitor: float) -> None:
    """ReduceLROnPlateau needs the value it watches (the validation loss, or else the training loss)."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(monitor)
    elif scheduler is not None:
        scheduler.step()


def _postfix(running: _Running) -> dict[str, str]:
    out = {"loss": f"{running.mean_loss:.4f}"}
    if running.accuracy is not None:
        out["acc"] = f"{running.accuracy:.3f}"
    return out
