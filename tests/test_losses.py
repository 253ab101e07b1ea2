"""Losses: harness checks, agreement with float64 numpy formulas, the fused cross-entropy gradient,
stability at extreme logits, label validation and accuracy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
import tinygrad_jp.functional as F
from tinygrad_jp import Tensor, losses

from harness import OpSpec, distinct_values, property_tests, values


# ---------------------------------------------------------------------- reference formulas (float64 numpy)
def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def _cross_entropy(x, labels):
    return -np.mean(_log_softmax(x)[np.arange(len(labels)), labels])


def _naive_bce(x, t):
    s = 1 / (1 + np.exp(-x))
    return -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))


def _onehot(labels, c):
    return np.eye(c)[labels]


# ---------------------------------------------------------------------- input strategies
def _classification(data, lo=-3.0, hi=3.0):
    n = data.draw(st.integers(1, 5), label="N")
    c = data.draw(st.integers(1, 5), label="C")
    logits = data.draw(values((n, c), lo, hi), label="logits")
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)), label="labels")
    return logits, labels


def _ce_inputs(onehot: bool):
    def draw(data):
        logits, labels = _classification(data)
        return [logits], {"labels": _onehot(labels, logits.shape[1]) if onehot else labels}

    return draw


def _same_shape_pair(lo_t=-3.0, hi_t=3.0):
    def draw(data):
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
        return [data.draw(values(shape), label="x"), data.draw(values(shape, lo_t, hi_t), label="t")], {}

    return draw


def _bce_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), label="shape")
    return [data.draw(values(shape), label="x")], {"targets": data.draw(values(shape, 0.0, 1.0), label="t")}


SPECS = [
    OpSpec("softmax_cross_entropy(int labels)", lambda x, labels: F.softmax_cross_entropy(x, labels),
           _cross_entropy, _ce_inputs(onehot=False)),
    OpSpec("softmax_cross_entropy(one-hot)", lambda x, labels: F.softmax_cross_entropy(x, labels),
           lambda x, labels: -np.mean(np.sum(labels * _log_softmax(x), axis=1)), _ce_inputs(onehot=True)),
    OpSpec("mse_loss", F.mse_loss, lambda p, t: np.mean((p - t) ** 2), _same_shape_pair()),
    OpSpec("binary_cross_entropy_with_logits", lambda x, targets: F.binary_cross_entropy_with_logits(x, targets),
           lambda x, targets: _naive_bce(x, targets), _bce_inputs),
]


test_loss_property = property_tests(SPECS)


# ---------------------------------------------------------------------- softmax cross entropy
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_cross_entropy_is_minus_mean_log_softmax_of_the_label(dtype, data):
    logits, labels = _classification(data, -30.0, 30.0)
    loss = F.softmax_cross_entropy(Tensor(logits.astype(dtype)), labels)
    assert loss.dtype == dtype and loss.shape == ()
    expected = _cross_entropy(logits.astype(dtype), labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.item(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_cross_entropy_gradient_is_exactly_softmax_minus_onehot_over_n(dtype, data):
    logits, labels = _classification(data, -30.0, 30.0)
    x = logits.astype(dtype)
    t = Tensor(x, requires_grad=True)
    F.softmax_cross_entropy(t, labels).backward()
    n, c = x.shape
    expected = (F.softmax(x) - _onehot(labels, c).astype(dtype)) / n
    assert t.grad.dtype == dtype
    np.testing.assert_array_equal(t.grad, expected)


@given(data=st.data())
def test_integer_and_onehot_labels_agree(data):
    logits, labels = _classification(data, -30.0, 30.0)
    a, b = Tensor(logits, requires_grad=True), Tensor(logits, requires_grad=True)
    la = F.softmax_cross_entropy(a, labels)
    lb = F.softmax_cross_entropy(b, _onehot(labels, logits.shape[1]))
    la.backward()
    lb.backward()
    np.testing.assert_allclose(la.item(), lb.item(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a.grad, b.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e4, 1e30])
def test_cross_entropy_is_finite_and_exact_for_extreme_logits(dtype, big):
    x = np.array([[big, -big], [big, -big], [-big, -big]], dtype=dtype)
    t = Tensor(x, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.softmax_cross_entropy(t, [0, 1, 1])
        loss.backward()
    # Per row: 0 (right with certainty), 2·big (wrong with certainty), log 2 (a tie).
    np.testing.assert_allclose(loss.item(), (2 * big + np.log(2)) / 3, rtol=1e-6)
    np.testing.assert_allclose(t.grad, [[0, 0], [1 / 3, -1 / 3], [1 / 6, -1 / 6]], rtol=1e-6)


def test_cross_entropy_has_second_derivatives():
    x = Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    (g,) = tg.grad(F.softmax_cross_entropy(x, [1]), x, create_graph=True)
    v = np.array([[1.0, 2.0, -1.0]])
    (hv,) = tg.grad((g * v).sum(), x)
    p = F.softmax(x.data)[0]
    hessian = np.diag(p) - np.outer(p, p)  # ∂²L/∂x² of softmax cross entropy
    np.testing.assert_allclose(hv.data[0], hessian @ v[0], rtol=1e-12)


LABEL_ERRORS = [
    ([0, 1, 5], r"labels must be integers in \[0, 3\), got 5 at position 2"),
    ([0, -1, 2], r"labels must be integers in \[0, 3\), got -1 at position 1"),
    ([0, 1], r"shape \(3,\) or one-hot rows of shape \(3, 3\).*got shape \(2,\)"),
    (np.array([0.0, 1.0, 2.0]), r"labels must be integers .*got dtype float64"),
    (np.eye(4)[:3], r"one-hot labels must have the logits' shape \(3, 3\), got shape \(3, 4\)"),
    (np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]]), r"row 1 sums to 2"),
    (np.array([[1, 0, 0], [0, 2, -1], [0, 0, 1]]), r"must lie in \[0, 1\], got 2 at position \(1, 1\)"),
]


@pytest.mark.parametrize(("labels", "message"), LABEL_ERRORS, ids=[m[:30] for _, m in LABEL_ERRORS])
def test_bad_labels_raise_naming_what_was_given(labels, message):
    with pytest.raises(ValueError, match=message):
        F.softmax_cross_entropy(Tensor(np.zeros((3, 3))), labels)


def test_logits_must_be_a_matrix():
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\).*got shape \(3,\)"):
        F.softmax_cross_entropy(Tensor(np.zeros(3)), [0, 1, 2])


# ---------------------------------------------------------------------- binary cross entropy, mse
@given(data=st.data())
def test_bce_with_logits_equals_the_naive_formula_for_moderate_values(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), label="shape")
    x = data.draw(values(shape, -20.0, 20.0), label="x")
    t = data.draw(values(shape, 0.0, 1.0), label="t")
    logits = Tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, t)
    loss.backward()
    np.testing.assert_allclose(loss.item(), _naive_bce(x, t), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(logits.grad, (1 / (1 + np.exp(-x)) - t) / x.size, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_extremes(dtype):
    big = np.array([1e4, -1e4, 1e30, -1e30, np.finfo(dtype).max, -np.finfo(dtype).max], dtype=dtype)
    x = np.concatenate([big, big, big])
    t = np.repeat(np.array([1.0, 0.0, 0.5], dtype=dtype), big.size)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        per_element = [F.binary_cross_entropy_with_logits(Tensor(x[i:i + 1]), t[i:i + 1]).item()
                       for i in range(x.size)]
        # (A batch mean of losses near the top of the range would overflow in the sum itself.)
        moderate = np.abs(x) <= 1e30
        logits = Tensor(x[moderate], requires_grad=True)
        F.binary_cross_entropy_with_logits(logits, t[moderate]).backward()
    # max(x, 0) - x t: the correct class costs 0, the wrong one costs |x|, t = 1/2 costs |x|/2.
    expected = np.where(t == 0.5, np.abs(x) / 2, np.where((x > 0) == (t == 1), 0.0, np.abs(x)))
    np.testing.assert_allclose(per_element, expected, rtol=1e-6)
    xm, tm = x[moderate], t[moderate]
    np.testing.assert_allclose(logits.grad, ((xm > 0) - tm) / xm.size, rtol=1e-6)
    assert logits.grad.dtype == dtype


def test_bce_and_mse_reject_shapes_that_would_broadcast():
    with pytest.raises(ValueError, match=r"same shape, got \(4, 1\) and \(4,\)"):
        F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ValueError, match=r"same shape, got \(4,\) and \(4, 1\)"):
        F.binary_cross_entropy_with_logits(Tensor(np.zeros(4)), np.zeros((4, 1)))


@given(data=st.data())
def test_mse_is_the_mean_squared_difference_and_keeps_float32(data):
    (p, t), _ = _same_shape_pair()(data)
    pred = Tensor(p.astype(np.float32), requires_grad=True)
    loss = F.mse_loss(pred, t)  # a float64 target must not turn the loss into float64
    assert loss.dtype == np.float32
    loss.backward()
    np.testing.assert_allclose(loss.item(), np.mean((p - t) ** 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.grad, 2 * (p - t) / max(p.size, 1), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------- softmax, log_softmax
def test_softmax_and_log_softmax_follow_their_input_type():
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    assert type(F.softmax(x)) is np.ndarray and F.softmax(x).dtype == np.float32
    assert isinstance(F.log_softmax(Tensor(x)), Tensor)
    assert losses.softmax is F.softmax and losses.log_softmax is F.log_softmax
    np.testing.assert_allclose(np.exp(F.log_softmax(x)), F.softmax(x), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_gradient_is_finite_for_extreme_logits(dtype):
    x = Tensor(np.array([[1e30, -1e30, 0.0], [1e4, 1e4, -1e4]], dtype=dtype), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        F.log_softmax(x)[:, 1].sum().backward()
    np.testing.assert_allclose(x.grad, [[-1, 1, 0], [-0.5, 0.5, 0]], atol=1e-7)


# ---------------------------------------------------------------------- accuracy
@given(data=st.data())
def test_accuracy_is_the_fraction_of_rows_whose_argmax_is_the_label(data):
    n = data.draw(st.integers(1, 5), label="N")
    c = data.draw(st.integers(2, 5), label="C")  # one column would mean a binary output
    logits = data.draw(distinct_values((n, c)), label="logits")  # no ties for argmax
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)), label="labels")
    expected = np.mean([np.argmax(row) == lab for row, lab in zip(logits, labels)])
    acc = F.accuracy(logits, labels)
    assert isinstance(acc, float) and acc == expected
    assert F.accuracy(Tensor(F.softmax(logits)), labels) == expected  # probabilities rank the same
    assert F.accuracy(logits, _onehot(labels, logits.shape[1])) == expected


def test_accuracy_of_binary_outputs_uses_the_threshold():
    logits = np.array([2.0, -1.0, 0.5, -3.0])
    assert F.accuracy(logits, np.array([1, 0, 0, 0])) == 0.75
    assert F.accuracy(logits.reshape(4, 1), np.array([[1.0], [0.0], [0.0], [0.0]])) == 0.75
    probs = 1 / (1 + np.exp(-logits))
    assert F.accuracy(probs, [True, False, False, False], threshold=0.5) == 0.75
    with pytest.raises(ValueError, match=r"must be 0 or 1, got 2 at position 1"):
        F.accuracy(logits, [1, 2, 0, 0])


def test_accuracy_validates_labels():
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\), got 7 at position 0"):
        F.accuracy(np.zeros((2, 2)), [7, 0])
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        F.accuracy(np.zeros((2, 2)), [0, 1, 1])


def test_functional_namespace_re_exports_the_losses():
    for name in ["mse_loss", "softmax_cross_entropy", "binary_cross_entropy_with_logits", "accuracy"]:
        assert getattr(F, name) is getattr(losses, name)
    assert tg.F is tg.functional is F
    assert all(callable(getattr(F, name)) for name in F.__all__)
