"""docs/optimizers.md: what the prose says about the 30-step trajectories is what the demo's setup computes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_jp.demos import optimizers as opt_demo

PAGE = Path(__file__).resolve().parent.parent / "docs" / "optimizers.md"


@pytest.fixture(scope="module")
def summary():
    return opt_demo.final_summary(opt_demo.trajectories())


def bullet(name: str) -> str:
    """The text of the list item that starts with **name** (up to the next item or blank line)."""
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^- \*\*{re.escape(name)}\*\*(.*?)(?=^- |^\s*$)", text, re.M | re.S)
    assert match, f"optimizers.md has no list item for {name}"
    return " ".join(match.group(1).split())


def number(value: float, digits: int = 3) -> str:
    """A value as the prose writes it: `digits` significant figures, a minus sign as −."""
    return f"{value:.{digits}g}".replace("-", "−")


def test_momentum_is_nearest_to_the_origin_by_distance_and_the_prose_gives_its_numbers(summary):
    distances = {name: s[2] for name, s in summary.items()}
    assert min(distances, key=distances.get) == "Momentum"
    x, y, distance, f = summary["Momentum"]
    text = bullet("Momentum")
    assert f"({number(x)}, {number(y)})" in text
    assert f"距離 {number(distance)}" in text and "いちばん原点の近く" in text
    assert f"f(x, y) = {number(f)}" in text


def test_rmsprop_has_the_lowest_f_though_it_is_farther_than_momentum(summary):
    values = {name: s[3] for name, s in summary.items()}
    assert min(values, key=values.get) == "RMSprop"
    x, y, distance, f = summary["RMSprop"]
    assert distance > summary["Momentum"][2]
    text = bullet("RMSprop")
    assert f"({number(x)}, {abs(y):.3f})" in text and abs(y) < 5e-4
    assert f"距離 {number(distance)}" in text and f"f = {number(f)}" in text
    assert "いちばん f が小さく" in text
    assert f"y が {number(summary['Momentum'][1])} 残っている Momentum" in text


def test_sgd_bounces_between_plus_and_minus_two_in_y(summary):
    t = opt_demo.trajectories()["SGD"]
    np.testing.assert_allclose(np.abs(t[:, 1]), 2.0)
    np.testing.assert_allclose(t[1:, 0] / t[:-1, 0], 0.8)
    text = bullet("SGD")
    assert "0.8 倍" in text and f"y = {summary['SGD'][1]:.3f}" in text and f"f = {summary['SGD'][3]:.3g}" in text


def test_adagrad_and_adam_are_still_far_after_30_steps(summary):
    text = bullet("AdaGrad・RMSprop・Adam")
    _, _, distance, f = summary["AdaGrad"]
    assert f"距離 {number(distance)} (f = {number(f)})" in text
    x, _, _, f = summary["Adam"]
    assert abs(x - (-7.0)) <= 30 * 0.1  # Adam's step is at most about lr per coordinate
    assert f"−7 から {number(x)}" in text and f"f = {number(f)}" in text
