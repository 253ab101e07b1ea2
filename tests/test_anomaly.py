"""detect_anomaly: the first op whose forward output or backward gradient holds NaN/inf raises, naming
that op (and, in backward, the line of user code whose forward created it); off by default, with no
check at all when off.

numpy's own RuntimeWarnings (which pytest turns into errors) are silenced with np.errstate here, so
that what is tested is the anomaly check itself, as a learner without -W error would see it.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_jp as tg
from tinygrad_jp import Tensor, nn


def quiet():
    return np.errstate(all="ignore")


def test_forward_names_the_first_op_whose_output_is_nan_not_its_inputs_or_consumers():
    x = Tensor([-1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly(), quiet():
        h = (x * 3.0).exp()  # finite: no complaint
        with pytest.raises(FloatingPointError, match=r"forward output of Log contains NaN"):
            (h - 10.0).log().sum()
    assert np.all(np.isfinite(h.data))


def test_forward_reports_inf_as_inf():
    x = Tensor([1.0, 800.0])
    with tg.detect_anomaly(), quiet(), pytest.raises(FloatingPointError, match=r"forward output of Exp contains inf"):
        x.exp()


def test_forward_check_also_runs_under_no_grad():
    x = Tensor([0.0, 1.0])
    with tg.detect_anomaly(), tg.no_grad(), quiet(), pytest.raises(FloatingPointError, match="Div"):
        1.0 / x


def test_forward_names_an_activation_by_its_class():
    class Broken(tg.Activation):
        def f(self, x):
            return x * np.nan

        def df(self, x, y):
            return np.ones_like(x)

    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match=r"forward output of Broken contains NaN"):
        Broken()(Tensor([1.0]))


def _sqrt_at_zero_model(x):
    h = x * 2.0
    r = h.sqrt()  # finite forward, but d sqrt(h)/dh = 1/(2 sqrt h) is inf at h = 0
    return (r * 3.0 + h).sum()


def test_backward_names_the_op_whose_gradient_is_inf_and_the_line_that_created_it():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly(), quiet():
        loss = _sqrt_at_zero_model(x)
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    msg = str(info.value)
    assert "the gradient computed by Sqrt.backward contains inf" in msg
    assert "r = h.sqrt()" in msg and "_sqrt_at_zero_model" in msg
    assert "Mul.backward" not in msg and "Add.backward" not in msg
    assert x.grad is None  # it stopped at Sqrt, before anything reached the leaf


def test_backward_nan_from_zero_times_inf_is_blamed_on_the_op_that_divides():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with tg.detect_anomaly(), quiet():
        loss = (x.sqrt() * 0.0).sum()  # upstream 0, then 0 / (2 sqrt 0) = NaN
        with pytest.raises(FloatingPointError, match=r"Sqrt\.backward contains NaN"):
            loss.backward()


def test_backward_names_a_user_activation_whose_derivative_blows_up():
    class Cube(tg.Activation):
        def f(self, x):
            return np.cbrt(x)

        def df(self, x, y):
            return 1 / (3 * y * y)

    x = Tensor([0.0, 8.0], requires_grad=True)
    with tg.detect_anomaly(), quiet():
        y = nn.Sequential(Cube())(x)
        where = r"(?s)Cube\.backward contains inf.*y = nn\.Sequential\(Cube\(\)\)"
        with pytest.raises(FloatingPointError, match=where):
            y.sum().backward()


def test_without_anomaly_mode_the_same_graph_gives_inf_silently():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with quiet():
        _sqrt_at_zero_model(x).backward()
    assert np.isinf(x.grad[0]) and np.isfinite(x.grad[1])


def test_mode_is_restored_after_an_error_and_nests():
    assert not tg.is_anomaly_enabled()
    with pytest.raises(FloatingPointError), tg.detect_anomaly(), quiet():
        with tg.detect_anomaly():
            assert tg.is_anomaly_enabled()
        assert tg.is_anomaly_enabled()
        Tensor([-1.0]).log()
    assert not tg.is_anomaly_enabled()


def test_off_by_default_nothing_is_checked_and_numpys_error_state_is_left_alone():
    before = np.geterr()
    assert not tg.is_anomaly_enabled()
    x = Tensor([-1.0, 1.0], requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = x.log()  # NaN in the forward pass: no error outside detect_anomaly
        y.sum().backward()
    assert np.isnan(y.data[0]) and np.isfinite(x.grad[1])
    with tg.detect_anomaly():
        assert np.geterr()["invalid"] == "ignore"  # numpy's warning would come first and name no op
    assert np.geterr() == before


def test_a_hook_that_returns_inf_is_named_instead_of_the_next_op():
    x = Tensor([1.0, 1.0], requires_grad=True)
    y = x * 2.0
    y.register_hook(lambda g: g * np.inf)
    with tg.detect_anomaly(), quiet(), pytest.raises(FloatingPointError, match="hook"):
        y.sum().backward()


def test_a_nan_in_the_gradient_passed_to_backward_is_named_as_such():
    x = Tensor([1.0, 1.0], requires_grad=True)
    with tg.detect_anomaly(), quiet(), pytest.raises(FloatingPointError, match="grad passed to backward"):
        (x * 2.0).backward(np.array([np.nan, 1.0], dtype=np.float32))


def test_create_graph_names_the_op_whose_backward_failed():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly(), quiet(), pytest.raises(FloatingPointError, match=r"Sqrt\.backward"):
        tg.grad(x.sqrt().sum(), x, create_graph=True)
