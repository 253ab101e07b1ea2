"""Every op of the table goes through every check of the harness, for any shapes hypothesis draws."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Tensor

from harness import OpSpec, check_backward, check_forward, check_second_order, property_tests, unary
from op_specs import NO_NUMPY_FUNCTION, NUMPY_SPECS, NUMPY_SPELLINGS, SPECS

test_op_property = property_tests(SPECS)

# The chapter's spelling of the same ops (np.exp(t), np.sum(t), np.maximum(0, t), ...) passes the same checks.
test_numpy_spelling_property = property_tests(NUMPY_SPECS)


def test_every_op_of_the_table_has_its_numpy_spelling_checked():
    names = {spec.name for spec in SPECS}
    assert names - NO_NUMPY_FUNCTION == set(NUMPY_SPELLINGS)


class _WrongSquare(tg.Function):
    def forward(self, x):
        return x * x

    def backward(self, g, y, x):
        return g * x  # should be 2 * g * x


class _WrongBroadcast(tg.Function):
    """Right values, but forgets that the engine already summed over broadcast axes."""

    def forward(self, a, b):
        return a * b

    def backward(self, g, y, a, b):
        return g * b * 2, g * a


WRONG = [
    OpSpec("wrong_square", lambda x: _WrongSquare()(x), lambda x: x * x, unary()),
    OpSpec("wrong_mul", lambda a, b: _WrongBroadcast()(a, b), np.multiply, SPECS[2].inputs),
]


@pytest.mark.parametrize("spec", WRONG, ids=[s.name for s in WRONG])
def test_harness_catches_a_wrong_backward(spec):
    @given(data=st.data())
    def run(data):
        arrays, kwargs = spec.inputs(data)
        check_backward(spec, arrays, kwargs)

    with pytest.raises(AssertionError):
        run()


def test_harness_catches_a_wrong_second_derivative():
    class ConstGradSquare(tg.Function):
        def forward(self, x):
            return x * x

        def backward(self, g, y, x):
            return g * 2 * (x.detach() if isinstance(x, Tensor) else x)  # first order right, second order lost

    spec = OpSpec("lost_second_order", lambda x: ConstGradSquare()(x), lambda x: x * x, unary())

    @given(data=st.data())
    def run(data):
        arrays, kwargs = spec.inputs(data)
        check_second_order(spec, arrays, kwargs)

    with pytest.raises(AssertionError):
        run()


def test_harness_catches_a_numpy_spelling_that_returns_a_constant():
    spec = OpSpec("constant_exp", lambda x: np.exp(np.asarray(x)), np.exp, unary())

    @given(data=st.data())
    def run(data):
        arrays, kwargs = spec.inputs(data)
        check_forward(spec, arrays, kwargs)

    with pytest.raises(AssertionError, match=r"constant_exp: returned (ndarray|float64)"):
        run()
