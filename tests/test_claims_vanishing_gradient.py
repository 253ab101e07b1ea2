"""docs/vanishing_gradient.md and docs/initialization.md: the vanishing-gradient experiment is run here with the
demo's budget, its claims are checked as properties, and every number the pages state about it is one this run
computes (within a tolerance, so that another BLAS does not break the check)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_jp.demos import vanishing_gradient as vg

DOCS = Path(__file__).resolve().parent.parent / "docs"
LN3 = math.log(3)


@pytest.fixture(scope="module")
def results():
    return vg.run_experiment(vg.Budget())


def section(page: str, start: str, end: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    return text[text.index(start):text.index(end)]


# ---------------------------------------------------------------------- the claims, as properties of the run
def test_sigmoid_with_std_1_keeps_the_gradient_size_but_saturates_and_still_learns(results):
    r = results["Sigmoid + N(0, 1)"]
    assert 0.1 < r.ratio < 10
    assert r.saturation[0] == 0 and np.all((r.saturation[1:] > 0.3) & (r.saturation[1:] < 0.6))
    assert r.initial_loss > 3 and r.final_loss < LN3 / 2


def test_sigmoid_with_xavier_vanishes_below_the_quarter_bound_and_does_not_learn(results):
    r = results["Sigmoid + Xavier"]
    assert np.all(r.saturation == 0)
    assert r.ratio < 0.25**9
    assert abs(r.final_loss - LN3) < 0.01


def test_sigmoid_with_tiny_weights_loses_the_signal(results):
    r = results["Sigmoid + N(0, 0.01)"]
    assert r.ratio < 1e-10 and np.all(r.saturation == 0) and abs(r.final_loss - LN3) < 0.01


def test_tanh_with_xavier_keeps_the_gradient_and_learns_slowly(results):
    r = results["tanh + Xavier"]
    assert r.ratio > 1 and np.all(r.saturation == 0)
    assert results["ReLU + He"].final_loss < r.final_loss < LN3


def test_relu_with_he_learns_best_but_has_dead_units(results):
    r = results["ReLU + He"]
    assert 0.1 < r.ratio < 10 and r.saturation[0] == 0 and np.mean(r.saturation) > 0.05
    assert r.final_loss == min(x.final_loss for x in results.values())


def test_batchnorm_keeps_the_gradient_unsaturated_and_learns(results):
    r = results["Sigmoid + Xavier + BatchNorm"]
    assert r.ratio > 1 and np.all(r.saturation == 0) and r.final_loss < 0.5


def test_residual_carries_the_gradient_but_the_sigmoid_stream_grows_and_does_not_learn(results):
    r = results["Sigmoid + Xavier + Residual"]
    assert r.ratio > 1e3 * results["Sigmoid + Xavier"].ratio
    assert np.all(r.saturation[:5] == 0) and r.saturation[5] > 0
    assert r.initial_loss > 10 and r.final_loss > LN3


# ---------------------------------------------------------------------- the numbers on the pages
def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_the_table_on_the_page_is_the_demos_table(results):
    text = (DOCS / "vanishing_gradient.md").read_text(encoding="utf-8")
    block = text[text.index("このデモを実行したときの表です"):]
    block = block[block.index("```text\n") + 8:]
    written = block[:block.index("```")].splitlines()
    computed = vg.results_table(results, vg.Budget()).splitlines()
    assert written[:2] == computed[:2] and len(written) == len(computed)
    for line_written, line_computed in zip(written[2:], computed[2:]):
        got, want = _cells(line_written), _cells(line_computed)
        assert got[0] == want[0]
        for a, b in zip(got[1:], want[1:]):
            x, y = float(a.rstrip("%")), float(b.rstrip("%"))
            tolerance = 2 if a.endswith("%") else 0.1 * abs(y) + 0.005
            assert abs(x - y) <= tolerance, f"{got[0]}: the page says {a}, the run gives {b}"


NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?%?")
# Numbers that describe the setup or the mathematics, not a measurement: removed before the check.
STRUCTURAL_PHRASES = ["3.1.3", "N(0, 1)", "N(0, 0.01)", "√(2/200)", "(1/4)⁹", "1/40", "1/4", "1/3", "ln 3", "√100",
                      "10 層", "100 ユニット", "100 回", "3 クラス", "50 点", "学習率 0.1", "0.01 以内", "7 つ",
                      "2 つ", "3 つ", "2 次元", "9 回", "4 分の 1", "1 層", "1 つ", "σ'(0) = 1/4", "tanh'(0) = 1",
                      "σ(0) = 0.5", "第 2 層"]
STRUCTURAL_NUMBERS = {0.0, 1.0, 10.0, 0.1, 0.01, 33.0, round(LN3, 3)}


def _measured(results) -> dict[str, float]:
    """Every measured number the prose may state, by what it is."""
    values = {"(1/4)^9": 0.25**9}
    for label, r in results.items():
        values[f"{label} ratio"] = r.ratio
        values[f"{label} saturation mean %"] = 100 * float(np.mean(r.saturation))
        values[f"{label} saturation max %"] = 100 * float(np.max(r.saturation))
        values[f"{label} initial loss"] = r.initial_loss
        values[f"{label} final loss"] = r.final_loss
        values[f"{label} accuracy %"] = 100 * r.accuracy
    std1 = results["Sigmoid + N(0, 1)"].saturation[1:]
    values["std 1 layers 2-10 min %"] = 100 * float(std1.min())
    values["std 1 layers 2-10 max %"] = 100 * float(std1.max())
    residual = results["Sigmoid + Xavier + Residual"].saturation
    first_saturated = int(np.argmax(residual > 0)) + 1
    values["residual: last layer without saturation"] = first_saturated - 1
    values["residual: first saturated layer"] = first_saturated
    return values


def _close(token: str, value: float) -> bool:
    x = float(token.rstrip("%"))
    tolerance = 2 if token.endswith("%") else 0.1 * abs(value) + 1e-12
    return abs(x - value) <= tolerance


def _tokens(prose: str) -> list[str]:
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)
    prose = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", prose)
    for phrase in STRUCTURAL_PHRASES:
        prose = prose.replace(phrase, " ")
    return NUMBER.findall(prose)


PROSE = [
    ("vanishing_gradient.md", "## 勾配の大きさ・飽和・学習できるかを、設定ごとに測る", "## 逆伝播をたどる"),
    ("initialization.md", "## なぜ初期値が大事なのか", "## Xavier 初期化"),
    ("initialization.md", "ただし「分布の広がりが保たれる」", "## 関連ページ"),
]


@pytest.mark.parametrize("page, start, end", PROSE, ids=[f"{p}:{s[:12]}" for p, s, _ in PROSE])
def test_every_number_in_the_prose_is_measured_by_this_run_or_describes_the_setup(results, page, start, end):
    measured = _measured(results)
    unknown = [t for t in _tokens(section(page, start, end)) if float(t.rstrip("%")) not in STRUCTURAL_NUMBERS
               and not any(_close(t, v) for v in measured.values())]
    assert not unknown, f"{page}: {unknown} are not numbers this run computes"


def test_the_prose_states_the_measurements_it_explains(results):
    text = section(*PROSE[0])
    tokens = _tokens(text)
    measured = _measured(results)
    for key in ("Sigmoid + N(0, 1) ratio", "Sigmoid + Xavier ratio", "Sigmoid + N(0, 0.01) ratio",
                "tanh + Xavier ratio", "ReLU + He ratio", "Sigmoid + Xavier + BatchNorm ratio",
                "Sigmoid + Xavier + Residual ratio",
                "Sigmoid + N(0, 1) saturation mean %", "ReLU + He saturation mean %", "ReLU + He saturation max %",
                "Sigmoid + Xavier + Residual saturation max %", "Sigmoid + Xavier + Residual initial loss",
                "Sigmoid + Xavier + Residual final loss", "ReLU + He final loss", "(1/4)^9",
                "std 1 layers 2-10 min %", "std 1 layers 2-10 max %"):
        assert any(_close(t, measured[key]) for t in tokens), f"the page does not state {key} = {measured[key]:.3g}"
    assert f"{0.25**9:.2g}" == "3.8e-06" and "3.8e-06" in text
