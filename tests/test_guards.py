"""Guards for behaviour the property harness does not reach: exact ties in maximum/minimum and in
max/min reductions, grad mode after every way of leaving a block, and each activation's gradient
at 0 and ±1e-30 against its own derivative."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import Tensor, activations
from tinygrad_jp.activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Swish, Tanh

# Values from a tiny set, so that equal values (ties) are the rule rather than the exception.
TIED_VALUES = st.sampled_from([-1.0, 0.0, 1.0])


# ---------------------------------------------------------------------- ties in maximum / minimum
@st.composite
def tied_pairs(draw):
    """Two arrays of mutually broadcastable shapes, with values in {-1, 0, 1}."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    a, b = (draw(hnp.arrays(np.float64, shape, elements=TIED_VALUES)) for shape in shapes.input_shapes)
    return a, b


# For each op, where the output gradient must go: to `a` where this holds (ties included), else to `b`.
ELEMENTWISE_TIE_RULES = {
    "maximum": (tg.maximum, np.greater_equal),
    "minimum": (tg.minimum, np.less_equal),
}


@pytest.mark.parametrize("name", ELEMENTWISE_TIE_RULES)
@given(pair=tied_pairs())
@example(pair=(np.array([0.0, 1.0, -1.0]), np.array(0.0)))
@example(pair=(np.array([[1.0], [0.0]]), np.array([1.0, 0.0, 0.0])))
def test_each_output_gradient_of_maximum_minimum_goes_to_exactly_one_input_and_to_a_on_ties(name, pair):
    op, goes_to_a = ELEMENTWISE_TIE_RULES[name]
    a_arr, b_arr = pair
    out_shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
    a_full, b_full = np.broadcast_to(a_arr, out_shape), np.broadcast_to(b_arr, out_shape)
    # One output element at a time (a one-hot output gradient): a row of the Jacobian.
    for index in np.ndindex(out_shape):
        a, b = Tensor(a_arr, requires_grad=True), Tensor(b_arr, requires_grad=True)
        seed = np.zeros(out_shape)
        seed[index] = 1.0
        op(a, b).backward(seed)
        to_a, to_b = a.grad.sum(), b.grad.sum()
        assert to_a + to_b == 1.0, f"{name}: output {index} sends {to_a} to a and {to_b} to b"
        expected_to_a = 1.0 if goes_to_a(a_full[index], b_full[index]) else 0.0
        assert to_a == expected_to_a, (
            f"{name}({a_full[index]}, {b_full[index]}) at {index}: a got {to_a}, expected {expected_to_a}"
        )


@pytest.mark.parametrize("name", ELEMENTWISE_TIE_RULES)
@given(pair=tied_pairs())
@example(pair=(np.array([0.0, 1.0, -1.0]), np.array([0.0, 1.0, -1.0])))
def test_maximum_minimum_gradients_of_a_and_b_add_up_to_one_per_broadcast_element(name, pair):
    op, _ = ELEMENTWISE_TIE_RULES[name]
    a_arr, b_arr = pair
    out_shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
    # Differentiate with respect to the operands broadcast to the output's shape, so that each
    # broadcast element has its own gradient slot in a and in b.
    a_full = Tensor(np.broadcast_to(a_arr, out_shape).copy(), requires_grad=True)
    b_full = Tensor(np.broadcast_to(b_arr, out_shape).copy(), requires_grad=True)
    op(a_full, b_full).sum().backward()
    np.testing.assert_array_equal(a_full.grad + b_full.grad, np.ones(out_shape))
    # And with broadcasting inside the op, the gradient summed over both operands is conserved.
    a, b = Tensor(a_arr, requires_grad=True), Tensor(b_arr, requires_grad=True)
    op(a, b).sum().backward()
    assert a.grad.sum() + b.grad.sum() == np.prod(out_shape)


# ---------------------------------------------------------------------- ties in max / min reductions
@st.composite
def tied_reductions(draw):
    """An array with values in {-1, 0, 1}, an axis (None or an int, possibly negative) and keepdims."""
    x = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=TIED_VALUES))
    axis = draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    return x, axis, draw(st.booleans())


def _slices(arr: np.ndarray, axis) -> np.ndarray:
    """The reduced slices of arr as the rows of a 2-D array (axis None: the whole array is one slice)."""
    if axis is None:
        return arr.reshape(1, -1)
    return np.moveaxis(arr, axis, -1).reshape(-1, arr.shape[axis])


@pytest.mark.parametrize("reduction", ["max", "min"])
@given(case=tied_reductions())
@example(case=(np.array([[1.0, 1.0, 0.0], [-1.0, -1.0, -1.0]]), 1, False))
@example(case=(np.array([0.0, 1.0, 1.0, 1.0]), None, False))
def test_max_min_reduction_splits_each_slice_gradient_equally_among_its_tied_extremes(reduction, case):
    x_arr, axis, keepdims = case
    x = Tensor(x_arr, requires_grad=True)
    out = getattr(x, reduction)(axis=axis, keepdims=keepdims)
    # Distinct upstream gradients (1, 2, 3, ...) so that each slice's share is told apart.
    upstream = np.arange(1.0, out.data.size + 1).reshape(out.data.shape)
    out.backward(upstream)
    extreme = getattr(np, reduction)
    rows_x, rows_grad = _slices(x_arr, axis), _slices(x.grad, axis)
    for row_x, row_grad, g in zip(rows_x, rows_grad, upstream.reshape(-1)):
        tied = row_x == extreme(row_x)
        np.testing.assert_allclose(row_grad.sum(), g, rtol=1e-12, err_msg=f"{reduction} of {row_x}")
        np.testing.assert_allclose(row_grad[tied], g / tied.sum(), rtol=1e-12, err_msg=f"{reduction} of {row_x}")
        assert np.all(row_grad[~tied] == 0), f"{reduction} of {row_x} sent {row_grad} to non-extremes"


# ---------------------------------------------------------------------- grad mode on every exit
class _Raised(Exception):
    """Raised on purpose inside a block, to leave it by an exception."""


# A nesting of grad-mode blocks: a list of (mode, used as "with" or as a decorator, raises on the
# way out, the blocks nested inside it).
BLOCKS = st.recursive(
    st.just([]),
    lambda inner: st.lists(
        st.tuples(st.sampled_from(["no_grad", "enable_grad"]), st.sampled_from(["with", "decorator"]),
                  st.booleans(), inner),
        min_size=1, max_size=3,
    ),
    max_leaves=10,
)


def _records_graph() -> bool:
    return (Tensor([1.0], requires_grad=True) * 2.0).requires_grad


def _assert_mode(expected: bool, where: str):
    assert tg.is_grad_enabled() is expected, f"{where}: is_grad_enabled() is {tg.is_grad_enabled()}"
    assert _records_graph() is expected, f"{where}: graph recording is {_records_graph()}"


def _run(blocks, path="top"):
    for i, (mode, usage, raises, inner) in enumerate(blocks):
        here = f"{path} > {mode} {usage} #{i}" + (" (raising)" if raises else "")
        before = tg.is_grad_enabled()

        def body(inner=inner, here=here, enabled=(mode == "enable_grad"), raises=raises):
            _assert_mode(enabled, f"inside {here}")
            _run(inner, here)
            _assert_mode(enabled, f"inside {here}, after its inner blocks")
            if raises:
                raise _Raised(here)

        try:
            if usage == "with":
                with getattr(tg, mode)():
                    body()
            else:
                getattr(tg, mode)()(body)()
        except _Raised:
            pass
        _assert_mode(before, f"after leaving {here}")


@given(blocks=BLOCKS, start_enabled=st.booleans())
@example(blocks=[("no_grad", "with", False, [("no_grad", "with", False, [])])], start_enabled=True)
@example(blocks=[("no_grad", "decorator", True, [])], start_enabled=True)
@example(blocks=[("enable_grad", "decorator", True, [])], start_enabled=False)
def test_grad_mode_and_graph_recording_are_restored_after_every_block_and_decorated_call(blocks, start_enabled):
    if start_enabled:
        _run(blocks)
    else:
        with tg.no_grad():
            _run(blocks, "no_grad")
    _assert_mode(True, "after the whole nesting")


def test_one_no_grad_object_entered_twice_restores_each_level():
    block = tg.no_grad()
    with block:
        with tg.enable_grad():
            with block:
                _assert_mode(False, "inner no_grad")
            _assert_mode(True, "after the inner no_grad")
        _assert_mode(False, "after enable_grad")
    _assert_mode(True, "after the outer no_grad")


# ---------------------------------------------------------------------- activations at 0 and ±1e-30
ACTIVATIONS = [Sigmoid(), Tanh(), ReLU(), LeakyReLU(), LeakyReLU(0.3), ELU(), ELU(0.5), Swish(), Swish(10.0),
               GELU(), Softplus(), Identity()]


def test_the_activation_list_covers_every_builtin_activation():
    builtins = {c for c in vars(activations).values()
                if isinstance(c, type) and issubclass(c, activations.Activation) and c is not activations.Activation}
    assert builtins == {type(act) for act in ACTIVATIONS}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
def test_activation_gradient_at_zero_and_tiny_inputs_equals_its_derivative(act, dtype):
    x_arr = np.array([0.0, 1e-30, -1e-30, -0.0], dtype=dtype)
    x = Tensor(x_arr, requires_grad=True)
    y = act(x)
    y.sum().backward()
    derivative = act.derivative(x_arr)
    for what, arr in [("value", y.data), ("gradient", x.grad), ("derivative", derivative)]:
        assert arr.dtype == dtype, f"{act}: {what} is {arr.dtype}, input is {np.dtype(dtype)}"
        assert np.all(np.isfinite(arr)), f"{act}: {what} {arr} at {x_arr}"
    np.testing.assert_array_equal(x.grad, derivative, err_msg=f"{act}: backward() and derivative() disagree")
