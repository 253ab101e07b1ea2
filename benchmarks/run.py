"""ベンチマークの実行: 正しさの検査、実装ごとに別プロセスでの計測、表と JSON の出力。

``python -m benchmarks [--quick] [--only a,b] [--json PATH]``
(``python benchmarks/run.py`` でも同じ)。

実装ごとに別のプロセスを起こし、計測のラウンドは実装を順に交代しながら行う (あるラウンドで動くのは
1 つのプロセスだけ)。共有の機械では速さが数秒から数分の単位で変わるので、比は同じラウンドの
(時間的に隣り合う) 計測どうしでとり、ラウンドの間の中央値で判断する。
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    # Run as a script: make the package importable the same way `python -m benchmarks` does.
    sys.path.insert(0, str(ROOT))
    __package__ = "benchmarks"

import numpy as np  # noqa: E402

from benchmarks import chain, mlp, tiny, toy  # noqa: E402
from benchmarks.common import (  # noqa: E402
    CheckError,
    calibrate,
    measure,
    minor_faults,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    time_round,
)

WORKLOADS = {"a": tiny, "b": mlp, "c": toy, "d": chain}
MB = 1024 * 1024
# (rounds, seconds per round, seconds of warm-up) in one process, for a full run and for --quick.
TIMING = {
    "a": ((15, 0.2, 0.5), (3, 0.02, 0.02)),
    "b": ((11, 0.3, 0.5), (3, 0.02, 0.02)),
    "c": ((15, 0.2, 0.5), (3, 0.02, 0.02)),
    "d": ((5, 0.0, 0.0), (1, 0.0, 0.0)),
}
MEMORY_STEPS = (2000, 200)
CHECK_STEPS = 5
TARGETS = [
    # (workload, what is compared, numerator impl, denominator impl or None for an absolute bound, bound)
    ("a", "tinygrad_jp / PyTorch", "tinygrad_jp", "torch", 0.50),
    ("b", "tinygrad_jp / numpy tuned", "tinygrad_jp", "numpy_tuned", 1.20),
    ("b", "tinygrad_jp / PyTorch", "tinygrad_jp", "torch", 0.90),
    ("c", "tinygrad_jp / PyTorch", "tinygrad_jp", "torch", 0.30),
    ("d", "tinygrad_jp / PyTorch", "tinygrad_jp", "torch", 0.70),
    ("d", "tinygrad_jp peak memory growth (MB)", "tinygrad_jp", None, 100.0),
    ("b", "tinygrad_jp RSS growth over the memory steps (MB)", "tinygrad_jp", None, 5.0),
]


# ---------------------------------------------------------------------- environment
def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def blas_threads() -> int:
    """numpy の BLAS が使うスレッド数 (PyTorch をこれに合わせる)。"""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return counts[0] if counts else os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """計測した機械の説明: CPU、コア数、Python・numpy・BLAS・PyTorch の版。"""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": blas_threads(),
        "load_average_1min": os.getloadavg()[0],
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
                if k in os.environ},
    }
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0]['internal_api']} {blas[0]['version']} ({blas[0].get('architecture')})"
    except ImportError:
        blas_cfg = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas_cfg.get('name')} {blas_cfg.get('version')}"
    if torch_available():
        import torch

        info["torch"] = torch.__version__
    return info


# ---------------------------------------------------------------------- correctness
def _close(key: str, what: str, got, want, rtol: float, atol: float = 0.0) -> None:
    for i, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if g.shape != w.shape or not np.allclose(g, w, rtol=rtol, atol=atol):
            raise CheckError(f"({key}) {what}, item {i}: got {g}, expected {w} (rtol={rtol}, atol={atol})")


def _values(x) -> np.ndarray:
    """A loss or gradient of any implementation (ndarray, numpy scalar, torch tensor) as float64."""
    if hasattr(x, "detach"):
        x = x.detach().numpy()
    return np.asarray(x, dtype=np.float64)


def check(keys: list[str], impls_ok: dict[str, bool], steps: int = CHECK_STEPS, chain_length: int = 1000) -> list[str]:
    """各実装が numpy の参照実装と同じ値を出すことを確かめ、確かめた項目を返す (違えば CheckError)。

    (a) 損失と勾配、(b)(c) 最初の ``steps`` ステップの損失 (同じ初期値・同じデータ)、
    (d) dy/dx = 1.0001^n、(b) float32 が最後まで保たれること。
    """
    done = []
    for key in keys:
        mod = WORKLOADS[key]
        impls = [i for i in mod.IMPLS if impls_ok.get(i, True)]
        if key == "a":
            want = [_values(v) for v in mod.make("numpy")()]
            for impl in impls:
                _close(key, f"{impl} loss and gradients vs numpy", [_values(v) for v in mod.make(impl)()], want, 1e-6)
        elif key in "bc":
            runs = {impl: [_values(s()) for s in [mod.make(impl)] for _ in range(steps)] for impl in impls}
            for impl in impls:
                _close(key, f"{impl} loss per step vs numpy", runs[impl], runs["numpy"], 1e-4, 1e-6)
            if key == "b":
                mod.check_float32()
                done.append("(b) float32 end to end")
        else:
            want = [float(np.float32(chain.FACTOR)) ** chain_length]
            for impl in impls:
                got = [mod.make(impl, chain_length)()]
                _close(key, f"{impl} dy/dx of a {chain_length}-step chain", got, want, 1e-4)
        done.append(f"({key}) " + ", ".join(impls) + " agree with numpy")
    return done


# ---------------------------------------------------------------------- one measurement, in its own process
def memory_over_steps(step, steps: int, warm: int = 10) -> dict[str, float]:
    """``steps`` ステップ回したときの常駐メモリの増え方と、1 ステップあたりのページフォールト。"""
    for _ in range(warm):
        step()
    gc.collect()
    start, faults, peak = rss_bytes(), minor_faults(), 0
    for i in range(steps - warm):
        step()
        if i % 100 == 0:
            peak = max(peak, rss_bytes())
    end = rss_bytes()
    return {
        "memory_steps": steps,
        "rss_start_mb": start / MB,
        "rss_growth_mb": (end - start) / MB,
        "rss_peak_growth_mb": (max(peak, end) - start) / MB,
        "minor_faults_per_step": (minor_faults() - faults) / (steps - warm),
    }


def peak_memory_of_one_run(step) -> dict[str, float]:
    """1 回の実行で常駐メモリが最大どれだけ増えたか (プロセスで最初の本番の実行で計る)。"""
    gc.collect()
    exact = reset_peak_rss()
    start = rss_bytes()
    step()
    return {"peak_growth_mb": (peak_rss_bytes() - start) / MB, "peak_exact": exact}


def prepare(key: str, impl: str, quick: bool) -> tuple[Any, dict[str, Any]]:
    """計測の準備: 1 ステップを行う関数と、それまでに分かったこと (メモリなど) を返す。

    (d) は短い鎖でウォームアップしてから、プロセスで最初の本番の 1 回でメモリの最大の増え方を計る。
    (b) は 2000 ステップの常駐メモリも計る。PyTorch が入っていなければ関数は None。
    """
    mod = WORKLOADS[key]
    result: dict[str, Any] = {"workload": key, "impl": impl}
    if impl == "torch":
        try:
            import torch
        except ImportError as e:
            return None, {**result, "unavailable": str(e)}
        torch.set_num_threads(blas_threads())
        result["torch_threads"] = torch.get_num_threads()
    if key == "d":
        mod.make(impl, 1000)()  # warm-up on a short chain, so the full one is measured only once
        step = mod.make(impl)
        result.update(peak_memory_of_one_run(step))
    else:
        step = mod.make(impl)
    if key == "b":
        result.update(memory_over_steps(step, MEMORY_STEPS[quick]))
    return step, result


def work(key: str, impl: str, quick: bool) -> dict[str, Any]:
    """1 つの実装の 1 つのワークロードを、このプロセスの中だけで続けて計る (動作確認用)。"""
    step, result = prepare(key, impl, quick)
    if step is not None:
        result.update(measure(step, *TIMING[key][quick]))
    return result


def serve(key: str, impl: str, quick: bool, out=sys.stdout, commands=sys.stdin) -> None:
    """計測用プロセスの本体: 準備とウォームアップの結果を 1 行の JSON で知らせ、``round`` の行を
    受け取るたびに 1 ラウンド計ってその秒数を 1 行で返す。"""
    step, result = prepare(key, impl, quick)
    if step is not None:
        _, round_seconds, warmup_seconds = TIMING[key][quick]
        result["iters_per_round"] = calibrate(step, round_seconds, warmup_seconds)
    print(json.dumps(result), file=out, flush=True)
    if step is None:
        return
    for line in commands:
        if line.strip() != "round":
            break
        print(json.dumps(time_round(step, result["iters_per_round"])), file=out, flush=True)


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class Worker:
    """計測用の Python プロセス 1 つ (1 つのワークロードの 1 つの実装)。"""

    def __init__(self, key: str, impl: str, quick: bool, threads: int | None):
        self.label = f"({key}) {impl}"
        cmd = [sys.executable, "-m", "benchmarks.run", "--worker", f"{key}:{impl}"]
        cmd += ["--quick"] if quick else []
        env = dict(os.environ)
        if threads is not None:
            env.update(dict.fromkeys(THREAD_VARS, str(threads)))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.errors = tempfile.TemporaryFile(mode="w+")  # a pipe could fill up and block the worker
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errors, text=True, bufsize=1)

    def read(self) -> Any:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.errors.seek(0)
            raise RuntimeError(f"benchmark {self.label} failed (exit {self.proc.returncode}):\n{self.errors.read()}")
        return json.loads(line)

    def round(self) -> float:
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.errors.close()


def run_workload(key: str, quick: bool, threads: int | None = None,
                 impls: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """1 つのワークロードの全実装を別々のプロセスで準備し、ラウンドを交代で計る。"""
    impls = list(impls or WORKLOADS[key].IMPLS)
    rounds = TIMING[key][quick][0]
    # Idle BLAS and OpenMP threads keep spinning for a while (OpenBLAS about 0.1 s) after their
    # last call: with more than one thread, let them go to sleep before the next process's round.
    pause = 0.0 if quick or (threads or blas_threads()) == 1 else 0.25
    workers = {impl: Worker(key, impl, quick, threads) for impl in impls}
    try:
        results = {impl: w.read() for impl, w in workers.items()}
        live = [impl for impl in impls if "unavailable" not in results[impl]]
        times: dict[str, list[float]] = {impl: [] for impl in live}
        for r in range(rounds):
            for impl in live[r % len(live):] + live[:r % len(live)]:  # nobody is always first
                time.sleep(pause)
                times[impl].append(workers[impl].round())
    finally:
        for w in workers.values():
            w.close()
    for impl in live:
        results[impl].update(median_s=statistics.median(times[impl]), min_s=min(times[impl]), rounds_s=times[impl])
    return results


# ---------------------------------------------------------------------- report
LABELS = {"numpy": "numpy (textbook)", "numpy_tuned": "numpy (tuned)", "tinygrad_jp": "tinygrad_jp", "torch": "PyTorch"}


def _fmt_time(key: str, seconds: float) -> str:
    if key == "a":
        return f"{seconds * 1e6:.1f} µs"
    if key in "bc":
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.2f} s"


def _cell(key: str, r: dict[str, Any] | None) -> str:
    if r is None:
        return "–"
    if "unavailable" in r:
        return "n/a"
    text = _fmt_time(key, r["median_s"])
    if key == "d":
        text += f", {r['peak_growth_mb']:.0f} MB"
    return text


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [q[0], q[2]]


def evaluate(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """目標ごとに測った値と合否を返す (比べる相手がいない目標は飛ばす)。

    比はラウンドごとに (同じラウンドの 2 つの計測で) とり、その中央値で判定する。``range`` はラウンドの間の
    四分位範囲 (25% と 75% の点)。
    """
    out = []
    for key, what, num, den, bound in TARGETS:
        r = results.get(key, {})
        a = r.get(num)
        if a is None or "unavailable" in a:
            continue
        if den is None:
            field = {"time": "median_s", "peak": "peak_growth_mb", "RSS": "rss_growth_mb"}
            name = next(v for k, v in field.items() if k in what)
            values = a["rounds_s"] if name == "median_s" and "rounds_s" in a else [a[name]]
            value = a[name]
        else:
            b = r.get(den)
            if b is None or "unavailable" in b:
                continue
            values = [x / y for x, y in zip(a.get("rounds_s", [a["median_s"]]), b.get("rounds_s", [b["median_s"]]))]
            value = statistics.median(values)
        out.append({"workload": key, "what": what, "value": value, "range": _quartiles(values),
                    "target": bound, "met": value <= bound})
    return out


def report(results: dict[str, dict[str, Any]], targets: list[dict[str, Any]]) -> str:
    """結果を Markdown の表にする (docs/performance.md にそのまま貼れる)。"""
    lines = ["| workload | numpy (textbook) | numpy (tuned) | PyTorch | tinygrad_jp |", "|---|---|---|---|---|"]
    for key, r in results.items():
        title = WORKLOADS[key].TITLE
        lines.append(f"| {title} | " + " | ".join(_cell(key, r.get(i)) for i in LABELS if i != "tinygrad_jp")
                     + f" | **{_cell(key, r.get('tinygrad_jp'))}** |")
    if "b" in results:
        lines += ["", f"(b) memory over {next(iter(results['b'].values())).get('memory_steps')} steps:", "",
                  "| implementation | RSS at start | RSS growth | page faults per step |", "|---|---|---|---|"]
        for impl, r in results["b"].items():
            if "unavailable" not in r:
                lines.append(f"| {LABELS[impl]} | {r['rss_start_mb']:.0f} MB | {r['rss_growth_mb']:+.2f} MB "
                             f"| {r['minor_faults_per_step']:.1f} |")
    if targets:
        lines += ["", "| target | measured (median over rounds) | quartiles over rounds | bound | met |",
                  "|---|---|---|---|---|"]
        for t in targets:
            low, high = t.get("range", (t["value"], t["value"]))
            lines.append(f"| ({t['workload']}) {t['what']} | {t['value']:.2f} | {low:.2f}–{high:.2f} "
                         f"| ≤ {t['target']:g} | {'yes' if t['met'] else '**no**'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds: a smoke test, not a measurement")
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated workloads to run (default: a,b,c,d)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latest.json"),
                        help="where to write the results as JSON")
    parser.add_argument("--threads", type=int, help="threads for numpy's BLAS and PyTorch (default: BLAS's own)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        key, impl = args.worker.split(":")
        serve(key, impl, args.quick)
        return 0

    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in WORKLOADS]
    if unknown:
        parser.error(f"--only: unknown workload(s) {unknown}; expected some of {sorted(WORKLOADS)}")
    has_torch = torch_available()
    info = machine()
    if args.threads is not None:
        info["blas_threads"] = args.threads
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, numpy {info['numpy']} "
          f"({info.get('blas')}, {info['blas_threads']} threads), PyTorch {info.get('torch', 'not installed')}")
    if info["load_average_1min"] > 0.5:
        print(f"warning: load average {info['load_average_1min']:.2f}: other processes are running, so the "
              "times will be noisy (a busy core slows multithreaded BLAS most)", file=sys.stderr)
    try:
        for line in check(keys, {"torch": has_torch}):
            print(f"check ok: {line}")
    except CheckError as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr)
        return 1
    results: dict[str, dict[str, Any]] = {}
    for key in keys:
        impls = [i for i in WORKLOADS[key].IMPLS if i != "torch" or has_torch]
        print(f"running ({key}): {', '.join(impls)}, taking turns ...", flush=True)
        results[key] = run_workload(key, args.quick, args.threads, impls)
    targets = evaluate(results)
    print()
    print(report(results, targets))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "quick": args.quick, "argv": sys.argv[1:], "results": results,
                               "targets": targets},
                              indent=2, ensure_ascii=False))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
