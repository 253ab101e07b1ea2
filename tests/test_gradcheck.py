"""gradcheck and check_derivative: a wrong derivative is caught, a correct one passes, kinks are skipped and
said so, and every number is printed as a learner writes it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Activation, Tensor
from tinygrad_jp import activations as A

GRID = np.linspace(-4, 4, 9)  # the grid docs/custom.md uses


class ChapterLeakyReLU(Activation):
    """The chapter's leaky_relu and leaky_relu_derivative, as an Activation."""

    def __init__(self, alpha=0.01):
        self.alpha = alpha

    def f(self, x):
        return np.where(x > 0, x, self.alpha * x)

    def df(self, x, y):
        return np.where(x > 0, 1.0, self.alpha)


class MishWithoutSecondTerm(Activation):
    """Mish(x) = x tanh(softplus(x)), whose df forgot the term x · sech²(softplus(x)) · σ(x)."""

    def f(self, x):
        return x * np.tanh(np.logaddexp(0, x))

    def df(self, x, y):
        return np.tanh(np.logaddexp(0, x))


class SwishMissingATerm(Activation):
    """Swish(x) = x σ(x), whose df is σ(x) alone (the x σ(x)(1 − σ(x)) term is missing)."""

    def f(self, x):
        return x * A.sigmoid(x)

    def df(self, x, y):
        return A.sigmoid(x)


WRONG = [MishWithoutSecondTerm(), SwishMissingATerm()]
BUILT_IN = [A.Sigmoid(), A.Tanh(), A.ReLU(), A.LeakyReLU(0.01), A.LeakyReLU(0.2), A.ELU(1.0), A.ELU(0.5),
            A.Swish(1.0), A.Swish(2.0), A.GELU(), A.Softplus(), A.Identity()]
KINKED = (A.ReLU, A.LeakyReLU, A.ELU)  # ELU(1.0) is the exception: its slopes agree at 0


def _ids(acts):
    return [f"{type(a).__name__}{a.extra_repr() and '(' + a.extra_repr() + ')'}" for a in acts]


# ---------------------------------------------------------------------- the chapter's Leaky ReLU
def test_the_chapters_leaky_relu_passes_on_the_docs_grid_with_zero_reported_as_a_kink():
    assert tg.gradcheck(ChapterLeakyReLU(), GRID) is True
    assert tg.gradcheck(ChapterLeakyReLU(), Tensor(GRID, requires_grad=True)) is True
    check = tg.check_derivative(ChapterLeakyReLU(), GRID)
    assert check.x[check.kink].tolist() == [0.0]
    i = int(np.flatnonzero(check.kink)[0])
    assert check.left[i] == pytest.approx(0.01) and check.right[i] == pytest.approx(1.0)
    text = str(check)
    assert "not differentiable (left 0.01, right 1): skipped" in text
    # The kink is listed after every compared point.
    assert text.splitlines()[-1].lstrip().startswith("0 ")


# ---------------------------------------------------------------------- wrong derivatives are seen
@pytest.mark.parametrize("act", WRONG, ids=_ids(WRONG))
def test_a_wrong_df_fails_with_a_table_of_x_df_and_numerical_worst_first(act):
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(act, GRID)
    message = str(caught.value)
    assert type(act).__name__ in message and "np.float64" not in message
    lines = message.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["x", "df(x)", "numerical", "difference"])
    rows = [line.split() for line in lines[header + 1:] if line.split() and line.split()[-1] in ("FAIL", "ok")]
    check = tg.check_derivative(act, GRID)
    for x, df, numerical, _difference, _status in rows:
        i = int(np.flatnonzero(check.x == float(x))[0])
        # Each printed value is the plain number (6 significant digits) of the point it names.
        assert (df, numerical) == (f"{check.analytic[i]:.6g}", f"{check.numerical[i]:.6g}")
        assert float(df) == pytest.approx(act.derivative(np.array([float(x)]))[0], rel=1e-5, abs=1e-6)
    differences = [float(r[3]) for r in rows]
    assert differences == sorted(differences, reverse=True) and differences[0] == pytest.approx(check.gap, rel=1e-5)


@pytest.mark.parametrize("act", WRONG, ids=_ids(WRONG))
def test_the_gap_of_a_wrong_df_is_large(act):
    assert tg.check_derivative(act, np.linspace(-5, 5, 401)).gap > 0.1


@pytest.mark.parametrize("act", BUILT_IN, ids=_ids(BUILT_IN))
def test_every_built_in_df_agrees_with_the_numerical_derivative_off_its_kinks(act):
    check = tg.check_derivative(act, np.linspace(-5, 5, 401))
    assert check.ok and check.gap < 1e-6
    kinks = check.x[check.kink].tolist()
    has_kink = isinstance(act, KINKED) and not (isinstance(act, A.ELU) and act.alpha == 1.0)
    assert kinks == ([0.0] if has_kink else [])
    assert tg.gradcheck(act, np.linspace(-5, 5, 401))


@settings(max_examples=40, deadline=None)
@given(x=st.lists(st.floats(-8, 8).filter(lambda v: abs(v) > 1e-4), min_size=1, max_size=20),
       index=st.integers(0, len(BUILT_IN) - 1))
def test_away_from_zero_no_built_in_has_a_kink_and_all_pass(x, index):
    check = tg.check_derivative(BUILT_IN[index], np.array(x))
    assert not check.kink.any() and check.ok


def test_the_numerical_derivative_uses_f_only_not_df():
    class SameFWrongDf(A.Sigmoid):
        def df(self, x, y):
            return 2 * y * (1 - y)

    right, wrong = tg.check_derivative(A.Sigmoid(), GRID), tg.check_derivative(SameFWrongDf(), GRID)
    np.testing.assert_array_equal(right.numerical, wrong.numerical)
    np.testing.assert_allclose(wrong.analytic, 2 * right.analytic)
    assert not wrong.ok and right.ok


# ---------------------------------------------------------------------- elementwise functions that are not Activations
def test_an_elementwise_tensor_function_is_checked_pointwise_when_asked():
    assert tg.gradcheck(lambda t: t.sin() * 2, GRID, elementwise=True)
    check = tg.check_derivative(lambda t: abs(t), GRID)
    assert check.label == "backward" and check.x[check.kink].tolist() == [0.0]
    with pytest.raises(tg.GradcheckError, match="backward"):
        tg.gradcheck(lambda t: tg.Tensor(t.data ** 2) + t, GRID, elementwise=True)


def test_elementwise_mode_refuses_what_is_not_elementwise():
    with pytest.raises(ValueError, match=r"elementwise.*shape \(9,\).*\(\)"):
        tg.gradcheck(lambda t: t.sum(), GRID, elementwise=True)
    with pytest.raises(ValueError, match="one input, got 2"):
        tg.gradcheck(A.Sigmoid(), GRID, GRID)


# ---------------------------------------------------------------------- general gradcheck
def test_general_gradcheck_still_catches_a_wrong_backward_and_prints_plain_numbers():
    class WrongSquare(tg.Function):
        def forward(self, x):
            return x * x

        def backward(self, g, y, x):
            return g * x  # forgot the 2

    x = Tensor(np.array([[1.0, -2.0], [0.5, 3.0]]), requires_grad=True)
    assert tg.gradcheck(lambda t: (t * t).sum(axis=0), x)
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(lambda t: WrongSquare()(t), x)
    message = str(caught.value)
    assert "np.float64" not in message and "index (1, 1)" in message
    assert re.search(r"analytic gradient -?[\d.]+(e-?\d+)? but numerical -?[\d.]+(e-?\d+)? ", message)


def test_general_gradcheck_at_a_kink_says_the_point_may_not_be_differentiable():
    with pytest.raises(tg.GradcheckError, match="may not be differentiable at this point"):
        tg.gradcheck(lambda t: t.relu() * 3, Tensor([0.0, 1.0], requires_grad=True))
