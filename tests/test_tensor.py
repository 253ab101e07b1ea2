"""The Tensor as a user meets it: construction, dtype rules, operators with numbers and arrays."""

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Tensor

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


def test_attributes():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.dtype == np.float64 and t.is_leaf and t.grad_fn is None and t.name == "W"
    assert t.T.shape == (3, 2)
    assert Tensor([[1.5]]).item() == 1.5
    assert isinstance(t.numpy(), np.ndarray)
    d = t.detach()
    assert not d.requires_grad and d.data is t.data


def test_dtype_rules():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype  # ndarrays keep their dtype
    assert Tensor(np.ones(2, dtype=np.float64)).dtype == np.float64
    assert Tensor([1, 2], dtype=np.int32).dtype == np.int32
    t = Tensor([1.0, 2.0])
    assert (t * 2.5).dtype == np.float32 and (2.5 * t).dtype == np.float32 and (t**2).dtype == np.float32
    assert (Tensor(np.arange(3)) * 2.5).dtype == np.float32  # an int tensor times a float: the default float


def test_set_default_dtype():
    try:
        tg.set_default_dtype(np.float64)
        assert Tensor([1.0]).dtype == np.float64
    finally:
        tg.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="floating"):
        tg.set_default_dtype(np.int32)


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match=r"floating-point.*int"):
        Tensor(np.arange(3), requires_grad=True)


def test_a_parameter_owns_its_memory():
    w = np.ones(3)
    t = Tensor(w, requires_grad=True)
    t.data -= 1.0
    np.testing.assert_array_equal(w, np.ones(3))


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
@given(st.floats(0.5, 3.0))
def test_numbers_and_arrays_on_either_side_give_tensors(op, s):
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    arr = np.array([0.5, 1.5])
    for result, expected in [
        (op(t, s), op(t.data, s)),
        (op(s, t), op(s, t.data)),
        (op(t, arr), op(t.data, arr)),
        (op(arr, t), op(arr, t.data)),
    ]:
        assert isinstance(result, Tensor)
        np.testing.assert_allclose(result.data, expected)
        assert result.requires_grad


def test_ndarray_matmul_tensor_is_a_tensor():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    out = np.ones((4, 3)) @ w
    assert isinstance(out, Tensor) and out.shape == (4, 2)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 4.0))


def test_comparisons_and_argmax_are_plain_arrays():
    t = Tensor([1.0, 3.0, 2.0], requires_grad=True)
    for result in (t > 1.5, t >= 2, t < t, t <= 2, t == 3.0, t != 1.0):
        assert isinstance(result, np.ndarray) and result.dtype == bool
    assert t.argmax() == 1 and t.argmin() == 0
    assert isinstance(t.argmax(), (np.integer, np.ndarray))


def test_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0, 0.0])
    y = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y[[1, 1], [0, 0]].sum().backward()
    np.testing.assert_array_equal(y.grad, [[0, 0], [2, 0], [0, 0]])


def test_repr_is_readable():
    t = Tensor([1.0, 2.0], requires_grad=True, name="w")
    assert repr(t) == "Tensor([1., 2.], requires_grad=True, name='w')"
    assert "grad_fn=<Mul>" in repr(t * 2)
    assert "dtype=float64" in repr(Tensor(np.zeros(1)))


def test_iteration_yields_rows():
    rows = list(Tensor(np.arange(6.0).reshape(3, 2)))
    assert len(rows) == 3 and all(r.shape == (2,) for r in rows)
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\).*6 elements.*\(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)
    with pytest.raises(IndexError, match=r"out of range.*\(3,\)"):
        Tensor(np.ones(3))[5]


def test_unsupported_operand_is_a_type_error():
    with pytest.raises(TypeError, match="str"):
        Tensor([1.0]) + "a"


def test_item_needs_one_element():
    with pytest.raises(ValueError, match=r"\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_grad_dtype_follows_the_parameter():
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (w * np.ones(3)).sum().backward()  # a float64 array makes the product float64
    assert w.grad.dtype == np.float32


def test_zero_grad_clears():
    w = Tensor([1.0], requires_grad=True)
    (w * 2.0).sum().backward()
    w.zero_grad()
    assert w.grad is None
