"""Numbers the docs state in prose, computed: each test reads the sentence or table and recomputes what it says.

(Numbers inside code blocks are checked by the blocks' own asserts and by the commented-output check of
test_docs.py; the formulas of the initialisers' table by test_init.py; the schedules' closed forms by
test_demos.py.)
"""

from __future__ import annotations

import ast
import configparser
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_jp import activations, init, nn, optim
from tinygrad_jp.demos import weight_init as wi_demo
from tinygrad_jp.optim import lr_scheduler

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def page(name: str) -> str:
    path = ROOT / name if name == "README.md" else DOCS / name
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- installation
def test_the_python_version_the_docs_ask_for_is_the_packages_requirement():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    required = re.fullmatch(r">=\s*(\d+\.\d+)", config["options"]["python_requires"].strip()).group(1)
    assert f"Python {required} 以上" in page("getting_started.md")
    assert f"Python {required} 以上" in page("README.md")
    for text in (page("getting_started.md"), page("README.md")):
        assert set(re.findall(r"Python (\d+\.\d+)", text)) == {required}


# ---------------------------------------------------------------------- defaults the docs state
def stated_defaults(text: str, module) -> list[tuple[str, str, object]]:
    """(callable, parameter, value) for every `Name(..., p=value)` the text writes with a name of `module`."""
    found = []
    for name, args in re.findall(r"`(\w+)\(([^`]*)\)`", text):
        if not hasattr(module, name):
            continue
        call = ast.parse(f"f({args})", mode="eval").body
        found += [(name, kw.arg, ast.literal_eval(kw.value)) for kw in call.keywords]
    return found


def test_the_scheduler_tables_defaults_are_the_codes():
    defaults = stated_defaults(page("lr_scheduling.md"), lr_scheduler)
    assert len(defaults) >= 5
    for name, param, value in defaults:
        assert inspect.signature(getattr(lr_scheduler, name)).parameters[param].default == value, (name, param)


def test_defaults_named_in_the_chapter_map_and_the_initialisation_page_are_the_codes():
    text = page("chapter_map.md")
    decay = float(re.search(r"`optim\.RMSprop` \(`decay_rate=([\d.]+)`\)", text).group(1))
    assert inspect.signature(optim.RMSprop).parameters["decay_rate"].default == decay
    assert '`nn.Linear(..., init="he")` (既定)' in text
    assert '既定は `"he"` です' in page("initialization.md")
    assert inspect.signature(nn.Linear).parameters["init"].default == "he"


# ---------------------------------------------------------------------- initialisation: why and how much
def test_a_weighted_sum_of_n_inputs_has_n_times_the_variance_of_one_term():
    assert "Var(z) = n_in · Var(w) · Var(x)" in page("initialization.md")
    rng = np.random.default_rng(0)
    n_in, var_w, var_x = 100, 0.02**2, 3.0**2
    # Weights and inputs independent with mean 0, drawn afresh for each of 20000 sums.
    x = rng.normal(0, np.sqrt(var_x), (20000, n_in))
    w = rng.normal(0, np.sqrt(var_w), (20000, n_in))
    assert abs((x * w).sum(axis=1).var() / (n_in * var_w * var_x) - 1) < 0.05


def test_relu_halves_the_mean_square_of_a_symmetric_input():
    assert "出力の 2 乗の平均は入力の半分" in page("initialization.md")
    z = np.random.default_rng(1).standard_normal(200_000)
    assert abs(np.mean(activations.relu(z) ** 2) / np.mean(z**2) - 0.5) < 0.01


def test_sigmoid_has_slope_one_quarter_at_the_origin():
    assert "Sigmoid は原点でも傾きが 1/4" in page("initialization.md")
    assert activations.sigmoid_derivative(np.array([0.0]))[0] == 0.25


def test_the_weight_init_demo_runs_the_setting_the_docs_describe():
    text = page("initialization.md")
    assert "5 層 × 100 ユニット・1000 サンプルで、std 1・std 0.01・\nXavier・He の 4 通り" in text
    params = inspect.signature(wi_demo.layer_activations).parameters
    assert (params["n_layers"].default, params["width"].default, params["n_samples"].default) == (5, 100, 1000)
    assert list(wi_demo.INITS) == ["std = 1", "std = 0.01", "Xavier", "He"]


ACTIVATION_OF = {"Sigmoid": "sigmoid", "tanh": "tanh", "ReLU": "relu"}


def saturated(activation: str, a: np.ndarray) -> float:
    """The share of outputs pressed against a bound: Sigmoid within 0.01 of 0 or 1, tanh within 0.01 of ±1."""
    if activation == "sigmoid":
        return float(np.mean((a < 0.01) | (a > 0.99)))
    return float(np.mean(np.abs(a) > 0.99))


@pytest.fixture(scope="module")
def layer_table():
    """The table of initialization.md: (activation, init) → the cells as written."""
    rows = re.findall(r"^\| (Sigmoid|tanh|ReLU) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$",
                      page("initialization.md"), re.M)
    assert len(rows) >= 8
    return {(act, setting.strip()): [c.strip() for c in cells] for act, setting, *cells in rows}


@pytest.fixture(scope="module")
def measured(layer_table):
    """The demo's outputs per layer (seed 0, 1000 samples) for every row of the table."""
    return {key: wi_demo.layer_activations(ACTIVATION_OF[key[0]], key[1]) for key in layer_table}


def test_the_table_of_layer_statistics_is_what_the_demo_measures(layer_table, measured):
    for (act, setting), (first, last, share) in layer_table.items():
        layers = measured[act, setting]
        assert (first, last) == (f"{layers[0].std():.2g}", f"{layers[-1].std():.2g}"), (act, setting)
        if act == "ReLU":
            assert share == "—"
        else:
            assert share == f"{saturated(ACTIVATION_OF[act], layers[-1]):.0%}", (act, setting)


def per_layer_factor(layers: list[np.ndarray]) -> np.ndarray:
    stds = np.array([a.std() for a in layers], dtype=np.float64)
    return stds[1:] / stds[:-1]


def test_the_per_layer_factors_the_text_quotes(measured):
    text = page("initialization.md")
    assert "層を通るたびに信号が 0.01 × √(ユニット数) 倍ほどに縮み" in text
    # std 0.01: tanh (slope 1 near 0) shrinks by 0.01·√100, ReLU (which keeps half the square) by 0.01·√50.
    assert "tanh は層ごとに約 0.1 倍 (= 0.01 × √100)" in text
    np.testing.assert_allclose(per_layer_factor(measured["tanh", "std = 0.01"]), 0.01 * np.sqrt(100), rtol=0.05)
    assert "ReLU は約 0.07 倍 (= 0.01 × √(100/2))" in text
    np.testing.assert_allclose(per_layer_factor(measured["ReLU", "std = 0.01"]), 0.01 * np.sqrt(50), rtol=0.1)
    # std 1 and ReLU: the same factor without the 0.01.
    assert "層ごとに約 7 倍 (= 1 × √(100/2))" in text
    np.testing.assert_allclose(per_layer_factor(measured["ReLU", "std = 1"]), np.sqrt(50), rtol=0.1)


def test_the_sentences_quote_the_tables_numbers(layer_table):
    text = page("initialization.md")
    cells = {key: row for key, row in layer_table.items()}
    assert f"tanh では第5層の出力の {cells['tanh', 'std = 1'][2]} が |a| > 0.99" in text
    assert f"(std {cells['Sigmoid', 'std = 0.01'][1]})" in text
    for act, setting in (("tanh", "Xavier"), ("Sigmoid", "Xavier"), ("ReLU", "He")):
        first, last, _ = cells[act, setting]
        assert f"{first} から {last}" in text, (act, setting)


def test_sigmoid_with_tiny_weights_stops_shrinking_after_the_second_layer(measured):
    # "縮み続けはしませんが、第2層から全ユニットがほぼ 0.5 を出します"
    assert "Sigmoid は縮み続けはしませんが、第2層から全ユニットがほぼ 0.5 を出します" in page("initialization.md")
    layers = measured["Sigmoid", "std = 0.01"]
    np.testing.assert_allclose(per_layer_factor(layers)[1:], 1.0, rtol=0.15)
    assert all(abs(a.mean() - 0.5) < 0.01 and a.std() < 0.02 for a in layers[1:])


def test_he_keeps_the_relu_spread_while_xavier_shrinks_tanh_and_sigmoid(measured):
    he = [a.std() for a in measured["ReLU", "He"]]
    assert he[-1] / he[0] > 0.8  # "ほぼ保ちます"
    for key in (("tanh", "Xavier"), ("Sigmoid", "Xavier")):
        stds = [a.std() for a in measured[key]]
        assert stds[-1] / stds[0] < 0.6, key  # "縮みます"


def test_the_initialisers_default_std_is_what_the_table_says():
    assert "| ランダム初期化 | 0.01 |" in page("initialization.md")
    assert inspect.signature(init.normal).parameters["std"].default == 0.01
