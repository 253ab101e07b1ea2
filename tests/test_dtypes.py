"""dtypes: float16 reductions and losses are right for any size, mixed float/integer arithmetic keeps the float's
dtype (PyTorch's rule), a layer computes in its own dtype, and the default dtype is float32 or float64."""

import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, nn

HALF = np.float16
# float16 keeps 11 significant bits; below 2**-14 it is subnormal, with steps of 2**-24.
HALF_RTOL, HALF_ATOL = 2.0**-11, 2.0**-24


def _close_in_half(got, exact):
    """got is `exact` (a float64 value) rounded to float16: within half a step of float16."""
    got = np.asarray(got, dtype=np.float64)
    assert np.all(np.abs(got - exact) <= HALF_RTOL * np.abs(exact) + HALF_ATOL), (got, exact)


# ---------------------------------------------------------------------- float16 reductions and losses
sizes = st.sampled_from([1, 3, 1000, 2048, 65_504, 65_536, 70_000, 1024 * 64 * 3])


@given(n=sizes, value=st.sampled_from([0.5, 1.0, 0.1, 3.0]))
def test_the_mean_of_a_constant_float16_tensor_is_that_constant_for_any_size(n, value):
    x = Tensor(np.full(n, value, HALF), requires_grad=True)
    m = x.mean()
    m.backward()
    assert m.dtype == HALF and x.grad.dtype == HALF
    _close_in_half(m.item(), float(HALF(value)))
    _close_in_half(x.grad, 1 / n)


def test_the_mean_of_1024_by_64_halves_is_a_half_with_gradient_one_over_n():
    x = Tensor(np.full((1024, 64), 0.5, HALF), requires_grad=True)
    m = x.mean()
    m.backward()
    assert m.item() == 0.5
    _close_in_half(x.grad, 1 / (1024 * 64))


@given(rows=st.sampled_from([1, 7, 4096, 70_000]), seed=st.integers(0, 2**16))
def test_float16_sums_and_means_along_an_axis_match_float64_rounded_to_float16(rows, seed):
    data = np.random.default_rng(seed).uniform(0, 1, (rows, 3)).astype(HALF)
    exact = data.astype(np.float64)
    x = Tensor(data)
    _close_in_half(x.mean(axis=0).data, exact.mean(axis=0))
    total = exact.sum(axis=0)
    got = x.sum(axis=0).data
    assert got.dtype == HALF
    finite = total < 65_504  # beyond it the float16 answer is inf, as in PyTorch
    _close_in_half(got[finite], total[finite])
    assert np.all(np.isinf(got[~finite]))


def test_float16_variance_does_not_overflow_in_its_squares():
    x = Tensor(np.array([200, -200, 200, -200], HALF), requires_grad=True)  # 4 · 200² = 160,000 > 65,504
    v = x.var()
    v.backward()
    assert v.dtype == HALF and v.item() == 40_000.0
    _close_in_half(x.grad, 2 * np.array([200, -200, 200, -200]) / 4)


@pytest.mark.parametrize("shape", [(3, 2), (1024, 64), (300, 300)])
def test_mse_of_ones_against_zeros_is_one_in_float16(shape):
    pred = Tensor(np.ones(shape, HALF), requires_grad=True)
    loss = F.mse_loss(pred, np.zeros(shape, HALF))
    loss.backward()
    assert loss.dtype == HALF and loss.item() == 1.0
    _close_in_half(pred.grad, 2 / np.prod(shape))


@pytest.mark.parametrize("n", [4, 65_536, 100_000])
def test_classification_losses_are_right_in_float16_for_any_batch(n):
    logits = Tensor(np.zeros((n, 2), HALF), requires_grad=True)
    loss = F.softmax_cross_entropy(logits, np.zeros(n, np.int64))
    loss.backward()
    assert loss.dtype == HALF and logits.grad.dtype == HALF
    _close_in_half(loss.item(), np.log(2))
    _close_in_half(logits.grad[0], [-0.5 / n, 0.5 / n])
    z = Tensor(np.zeros(n, HALF), requires_grad=True)
    bce = F.binary_cross_entropy_with_logits(z, np.zeros(n, HALF))
    bce.backward()
    _close_in_half(bce.item(), np.log(2))
    _close_in_half(z.grad, 0.5 / n)


def test_float16_is_refused_as_the_default_dtype_and_the_default_is_kept():
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        tg.set_default_dtype(np.float16)
    assert tg.get_default_dtype() == np.float32
    assert Tensor([1.0]).dtype == np.float32


# ---------------------------------------------------------------------- mixed float and integer operands
BINARY = [(operator.add, np.add), (operator.sub, np.subtract), (operator.mul, np.multiply),
          (operator.truediv, np.divide), (operator.pow, np.power), (tg.maximum, np.maximum), (tg.minimum, np.minimum)]
INTEGERS = [np.int8, np.int16, np.int32, np.int64, np.uint8]


@given(ops=st.sampled_from(BINARY), float_dtype=st.sampled_from([np.float32, np.float64]),
       int_dtype=st.sampled_from(INTEGERS), int_is_tensor=st.booleans(), int_on_left=st.booleans())
def test_a_float_with_an_integer_operand_keeps_the_floats_dtype(ops, float_dtype, int_dtype, int_is_tensor,
                                                                  int_on_left):
    op, reference = ops
    f = Tensor(np.array([0.5, 1.5, 2.0], float_dtype), requires_grad=True)
    i = np.array([1, 2, 3], int_dtype)
    other = Tensor(i) if int_is_tensor else i
    out = op(other, f) if int_on_left else op(f, other)
    assert out.dtype == float_dtype
    as_float = i.astype(float_dtype)
    np.testing.assert_allclose(out.data, reference(as_float, f.data) if int_on_left else reference(f.data, as_float),
                               rtol=1e-6)
    out.sum().backward()
    assert f.grad.dtype == float_dtype


def test_the_issues_examples_float32_with_int64_tensor_and_matmul_stay_float32():
    x = Tensor(np.ones((2, 3), np.float32))
    assert (x + Tensor(np.arange(3))).dtype == np.float32
    assert (x @ np.ones((3, 2), np.int64)).dtype == np.float32
    assert tg.where(np.array([True, False, True]), x, np.arange(3)).dtype == np.float32


def test_floats_of_two_widths_give_the_wider_and_integers_with_a_python_float_the_default():
    assert (Tensor(np.ones(2, np.float32)) + np.ones(2)).dtype == np.float64  # numpy and PyTorch agree
    assert (Tensor(np.arange(3)) * 0.5).dtype == np.float32
    assert (Tensor(np.arange(3)) + 1).dtype == np.int64
    try:
        tg.set_default_dtype(np.float64)
        assert (Tensor(np.arange(3)) * 0.5).dtype == np.float64
    finally:
        tg.set_default_dtype(np.float32)
    assert (Tensor(np.arange(3)) * 0.5).dtype == np.float32


# ---------------------------------------------------------------------- layers compute in their own dtype
def test_a_float64_batch_into_a_float32_linear_is_computed_in_float32():
    layer = nn.Linear(3, 2, rng=0)
    x64 = np.random.default_rng(0).standard_normal((5, 3))
    out = layer(x64)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, layer(x64.astype(np.float32)).data)


def test_a_float64_tensor_gets_a_float64_gradient_through_a_float32_layer():
    layer = nn.Linear(3, 2, rng=0)
    x = Tensor(np.random.default_rng(1).standard_normal((5, 3)), requires_grad=True)
    x32 = Tensor(x.data.astype(np.float32), requires_grad=True)
    layer(x).sum().backward()
    w_grad = layer.W.grad.copy()
    layer.zero_grad()
    layer(x32).sum().backward()
    assert x.grad.dtype == np.float64 and layer.W.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, x32.grad.astype(np.float64))
    np.testing.assert_array_equal(w_grad, layer.W.grad)


@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
def test_a_whole_mlp_stays_in_its_dtype_whatever_the_batch(model_dtype):
    try:
        tg.set_default_dtype(model_dtype)
        model = nn.MLP([3, 8, 8, 2], batchnorm=True, rng=0)
    finally:
        tg.set_default_dtype(np.float32)
    for batch_dtype in (np.float32, np.float64, np.int64):
        out = model(np.ones((4, 3), batch_dtype))
        assert out.dtype == model_dtype
        F.softmax_cross_entropy(out, np.array([0, 1, 0, 1])).backward()
        assert {p.grad.dtype for p in model.parameters()} == {np.dtype(model_dtype)}
        model.zero_grad()
