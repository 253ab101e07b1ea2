"""計測の道具: 反復回数の自動調整つきの中央値計測、常駐メモリ (RSS) の読み取り、共通の初期値とデータ。"""

from __future__ import annotations

import gc
import itertools
import os
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np

SEED = 0


class CheckError(AssertionError):
    """ベンチマークの正しさの検査 (損失の一致・float32) に失敗した。"""


# ---------------------------------------------------------------------- timing
def calibrate(step: Callable[[], object], round_seconds: float, warmup_seconds: float) -> int:
    """ウォームアップとして ``step`` を ``warmup_seconds`` 秒回し、1 ラウンドが ``round_seconds`` 秒に
    なる反復回数を返す (短い処理でも時計の分解能に埋もれない)。
    ``round_seconds`` が 0 なら 1 回 (ウォームアップなし)。"""
    if round_seconds <= 0:
        return 1
    step()
    calls, start = 1, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warmup_seconds:
            break
    per_call = elapsed / (calls - 1)
    return max(1, round(round_seconds / per_call))


def time_round(step: Callable[[], object], iters: int) -> float:
    """``step`` を ``iters`` 回続けて実行し、1 回あたりの秒数を返す (直前にごみを集めておく)。"""
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - t0) / iters


def measure(step: Callable[[], object], rounds: int, round_seconds: float, warmup_seconds: float) -> dict:
    """``step`` 1 回あたりの時間 (秒) を、ウォームアップの後 ``rounds`` 回計り、その中央値を返す。"""
    iters = calibrate(step, round_seconds, warmup_seconds)
    times = [time_round(step, iters) for _ in range(rounds)]
    return {"median_s": statistics.median(times), "min_s": min(times), "iters_per_round": iters, "rounds_s": times}


# ---------------------------------------------------------------------- memory
def rss_bytes() -> int:
    """今の常駐メモリ (VmRSS)。"""
    return _status_field("VmRSS")


def peak_rss_bytes() -> int:
    """常駐メモリの最大値 (VmHWM、``reset_peak_rss`` 以後)。"""
    return _status_field("VmHWM")


def reset_peak_rss() -> bool:
    """VmHWM を今の RSS に戻す (Linux の clear_refs)。できなければ False。"""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _status_field(name: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # Without /proc only the lifetime peak is known (kilobytes on Linux, bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


def minor_faults() -> int:
    """このプロセスのマイナーページフォールトの累計。"""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ---------------------------------------------------------------------- shared initial values and data
def he_params(sizes: list[int], seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """各層の (W, b): W は He の初期値 N(0, 2/n_in) で形 (n_in, n_out)、b は 0。すべて float32。"""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32),
            np.zeros(n_out, dtype=np.float32),
        )
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def xavier_params(sizes: list[int], seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """各層の (W, b): W は Xavier の初期値 N(0, 2/(n_in+n_out))、b は 0 (tanh 向け)。すべて float32。"""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / (n_in + n_out))).astype(np.float32),
            np.zeros(n_out, dtype=np.float32),
        )
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def copy_params(params: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(W.copy(), b.copy()) for W, b in params]


def tinygrad_mlp(sizes: list[int], activation: str, params: list[tuple[np.ndarray, np.ndarray]]):
    """``nn.MLP(sizes, activation)`` を作り、その重みを ``params`` の値で置き換える。"""
    from tinygrad_jp import nn

    model = nn.MLP(sizes, activation=activation)
    values = [a for pair in params for a in pair]
    weights = model.parameters()
    if [w.shape for w in weights] != [v.shape for v in values]:
        raise CheckError(f"nn.MLP{tuple(sizes)} has parameters of shapes {[w.shape for w in weights]}, "
                         f"expected {[v.shape for v in values]}")
    for w, v in zip(weights, values):
        w.data[...] = v
    return model


def torch_mlp(params: list[tuple[np.ndarray, np.ndarray]], activation: str):
    """PyTorch の nn.Sequential で同じ MLP を作る (重みは ``params`` の写し。W は転置して入れる)。"""
    import torch

    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    layers = []
    for k, (W, b) in enumerate(params):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if k < len(params) - 1:
            layers.append(act())
    return torch.nn.Sequential(*layers)
