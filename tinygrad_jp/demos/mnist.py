"""本物の手書き数字 (MNIST) で章の実験: 最適化手法の比較、重みの初期化の比較、バッチ正規化あり・なし。

どの実験も 5 層 × 100 ユニットの全結合ネットワーク ([784, 100, 100, 100, 100, 100, 10]) を、学習データから
選んだ 10000 枚で数エポック学習し、エポックごとの学習データの損失とテストデータ (10000 枚) の正解率を記録する。
データはキャッシュにあるときだけ使う (``tinygrad-jp download mnist`` で一度だけダウンロードする)。
なければダウンロードの方法を表示して、何もせずに終わる。
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data, datasets, nn, optim, train
from .. import functional as F
from ..viz._figure import finish, new_figure

HIDDEN = [100] * 5
N_TRAIN = 10_000
EPOCHS = 10
BATCH_SIZE = 100

# Learning rates: the chapter recommends 0.001 for Adam; RMSprop takes the same, the others 0.01.
OPTIMIZERS: dict[str, float] = {"SGD": 0.01, "Momentum": 0.01, "AdaGrad": 0.01, "RMSprop": 0.001, "Adam": 0.001}
# The chapter's table of initialisations, with ReLU and SGD (lr 0.01) so that only the start differs.
INITS: dict[str, str] = {"ゼロ": "zeros", "N(0, 0.01²)": "normal", "Xavier": "xavier", "He": "he"}
# With and without BatchNorm: the recommended ReLU + He, and Sigmoid + Xavier whose gradient fades with depth.
BATCHNORM_SETUPS: dict[str, tuple[str, str]] = {"ReLU + He": ("relu", "he"), "Sigmoid + Xavier": ("sigmoid", "xavier")}


@dataclass
class Run:
    """1 回の学習の記録: エポックごとの学習データの損失とテストデータの正解率、かかった秒数。"""

    loss: list[float]
    test_accuracy: list[float]
    seconds: float


def train_run(split: tuple[np.ndarray, ...], *, activation: str = "relu", init: str = "he", optimizer: str = "SGD",
              lr: float = 0.01, batchnorm: bool = False, epochs: int = EPOCHS, seed: int = 0) -> Run:
    """``split = (X_train, y_train, X_test, y_test)`` で 5 層 × 100 ユニットの MLP を学習する。"""
    X, y, X_test, y_test = split
    model = nn.MLP([X.shape[1], *HIDDEN, 10], activation=activation, init=init, batchnorm=batchnorm, rng=seed)
    opt = getattr(optim, optimizer)(model.parameters(), lr=lr)
    start = time.perf_counter()
    history = train.fit(model, F.softmax_cross_entropy, opt, data.DataLoader(X, y, BATCH_SIZE, rng=seed), epochs,
                        val_loader=data.DataLoader(X_test, y_test, 1000, shuffle=False), progress=False)
    return Run(history.loss, history.val_accuracy, time.perf_counter() - start)


def compare_optimizers(split: tuple[np.ndarray, ...], epochs: int = EPOCHS) -> dict[str, Run]:
    """SGD・Momentum・AdaGrad・RMSprop・Adam (ReLU, He, 同じ初期値とミニバッチの順)。"""
    return {f"{name} (lr={lr:g})": train_run(split, optimizer=name, lr=lr, epochs=epochs)
            for name, lr in OPTIMIZERS.items()}


def compare_inits(split: tuple[np.ndarray, ...], epochs: int = EPOCHS) -> dict[str, Run]:
    """ゼロ・N(0, 0.01²)・Xavier・He (ReLU、SGD lr=0.01)。"""
    return {name: train_run(split, init=init, epochs=epochs) for name, init in INITS.items()}


def compare_batchnorm(split: tuple[np.ndarray, ...], epochs: int = EPOCHS) -> dict[str, Run]:
    """バッチ正規化なし・ありを、ReLU + He と Sigmoid + Xavier で (SGD lr=0.01)。"""
    runs = {}
    for setup, (activation, init) in BATCHNORM_SETUPS.items():
        for batchnorm, label in ((False, "なし"), (True, "BatchNorm")):
            runs[f"{setup}、{label}"] = train_run(split, activation=activation, init=init, batchnorm=batchnorm,
                                                 epochs=epochs)
    return runs


def load_split(n_train: int = N_TRAIN, n_test: int | None = None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """キャッシュの MNIST から、学習データを ``n_train`` 枚 (無作為に選ぶ)、テストデータを ``n_test`` 枚 (先頭から)。"""
    (X, y), (X_test, y_test) = data.mnist(download=False, progress=False)
    pick = np.random.default_rng(seed).permutation(len(X))[:n_train]
    return X[pick], y[pick], X_test[:n_test], y_test[:n_test]


def _pad(text: str, width: int, right: bool = False) -> str:
    """Pad to a width in terminal columns: a full-width (Japanese) character takes two."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    space = " " * max(width - columns, 0)
    return space + text if right else text + space


def _print_table(title: str, runs: dict[str, Run]) -> None:
    print(f"=== {title} ===")
    print(_pad("設定", 30) + _pad("学習データの損失", 18, True) + _pad("テスト正解率", 14, True)
          + _pad("時間", 10, True))
    for name, r in runs.items():
        print(_pad(name, 30) + _pad(f"{r.loss[-1]:.4f}", 18, True) + _pad(f"{r.test_accuracy[-1]:.2%}", 14, True)
              + _pad(f"{r.seconds:.1f} 秒", 10, True))
    print()


def _plot(runs: dict[str, Run], title: str, path: Path, show: bool) -> Path:
    fig = new_figure((12, 4.5), show)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, r in runs.items():
        epochs = np.arange(1, len(r.loss) + 1)
        loss_ax.plot(epochs, r.loss, marker="o", markersize=3, linewidth=2, label=name)
        acc_ax.plot(epochs, r.test_accuracy, marker="o", markersize=3, linewidth=2, label=name)
    loss_ax.set_yscale("log")
    for ax, label in ((loss_ax, "学習データの損失"), (acc_ax, "テストデータの正解率")):
        ax.set_xlabel("エポック")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    acc_ax.legend(fontsize=9)
    fig.suptitle(title)
    finish(fig, path, show)
    return path


def _how_to_download() -> None:
    folder = datasets.cache_dir() / "mnist"
    print(f"MNIST のファイルがキャッシュ ({folder}) にないので、このデモは何もせずに終わります。")
    print("次のコマンドで一度だけダウンロードしてから、もう一度実行してください:")
    print()
    print("    tinygrad-jp download mnist")
    print()
    print(f"インターネットにつながらないときは、次の 4 つのファイルを gzip のまま {folder} に置きます:")
    for name in datasets.SOURCES["mnist"].files:
        print(f"    {name}")


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """3 つの比較を学習して表を表示し、図を 3 枚書き出す。データがなければ方法を表示して何も書かない。

    ``small=True`` なら学習データ 500 枚・テストデータ 500 枚・2 エポックで (テスト用)。
    """
    if not datasets.is_cached("mnist"):
        _how_to_download()
        return []
    out_dir = Path(out_dir)
    start = time.perf_counter()
    split = load_split(500, 500) if small else load_split()
    epochs = 2 if small else EPOCHS
    n_train, n_test = len(split[0]), len(split[2])
    sizes = ", ".join(map(str, [784, *HIDDEN, 10]))
    print(f"MNIST: 学習データ {n_train} 枚、テストデータ {n_test} 枚、ネットワーク [{sizes}]、"
          f"{epochs} エポック、ミニバッチ {BATCH_SIZE}\n")
    experiments = [
        ("最適化手法の比較 (ReLU, He)", compare_optimizers, "mnist_optimizers.png"),
        ("重みの初期化の比較 (ReLU, SGD lr=0.01)", compare_inits, "mnist_init.png"),
        ("バッチ正規化あり・なし (SGD lr=0.01)", compare_batchnorm, "mnist_batchnorm.png"),
    ]
    paths = []
    for title, compare, filename in experiments:
        runs = compare(split, epochs)
        _print_table(title, runs)
        paths.append(_plot(runs, f"MNIST: {title}", out_dir / filename, show))
    print(f"(全体で {time.perf_counter() - start:.1f} 秒)")
    return paths
