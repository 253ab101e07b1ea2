"""The engine's contract: a node per call, checked backward results, saved-tensor versions, per-thread
grad mode, hooks that keep the shape, integer results without gradients, and one readable loop."""

from __future__ import annotations

import inspect
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Tensor, autograd, nn, optim

ROOT = Path(__file__).resolve().parent.parent


class Hypot(tg.Function):
    def forward(self, a, b):
        return np.hypot(a, b)

    def backward(self, g, y, a, b):
        return g * a / y, g * b / y


def _leaf(values, name=None):
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=True, name=name)


# ---------------------------------------------------------------------- a graph node per call
@given(st.lists(st.floats(0.5, 3.0), min_size=4, max_size=4))
def test_one_function_instance_applied_twice_differentiates_both_calls(v):
    a, b, c, d = (_leaf([x]) for x in v)
    h = Hypot()
    y1 = h(a, b)
    y2 = h(c, d)
    y1.sum().backward()
    np.testing.assert_allclose(a.grad, a.data / y1.data)
    np.testing.assert_allclose(b.grad, b.data / y1.data)
    assert c.grad is None and d.grad is None
    y2.sum().backward()
    np.testing.assert_allclose(c.grad, c.data / y2.data)
    assert y1.grad_fn is not y2.grad_fn


def test_an_op_that_keeps_state_from_its_forward_keeps_each_calls_state():
    class Scale(tg.Function):  # remembers the factor of each call in forward
        def forward(self, a, k):
            self.k = float(k)
            return a * self.k

        def backward(self, g, y, a, k):
            return g * self.k, None

    op = Scale()
    x = _leaf([1.0, 2.0])
    y1 = op(x, Tensor(3.0))
    y2 = op(x, Tensor(5.0))
    (y1.sum() + y2.sum()).backward()
    np.testing.assert_allclose(x.grad, [8.0, 8.0])


# ---------------------------------------------------------------------- backward results are checked
def _backward_returning(result):
    class Bad(tg.Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g, y, a, b):
            return result(g)

    return Bad


@pytest.mark.parametrize("result, fragment", [
    (lambda g: g, "a tuple of 2 gradients"),                 # one array for two inputs
    (lambda g: [g, g], "list"),                              # a list instead of a tuple
    (lambda g: (g,), "a tuple of 2 gradients"),              # fewer gradients than inputs
    (lambda g: (g, g, g), "a tuple of 2 gradients"),         # more gradients than inputs
])
def test_a_backward_that_returns_the_wrong_number_or_kind_of_gradients_is_an_error_naming_the_op(result, fragment):
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = _backward_returning(result)()(a, b)
    with pytest.raises(TypeError, match=rf"Bad\.backward.*{fragment}"):
        y.sum().backward()


def test_a_gradient_of_a_shape_that_cannot_be_summed_back_is_an_error_naming_the_op_and_input():
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = _backward_returning(lambda g: (g, np.ones(3)))()(a, b)
    with pytest.raises(ValueError, match=r"Bad\.backward.*shape \(3,\) for input 1.*\(2,\)"):
        y.sum().backward()


def test_a_gradient_that_is_not_an_array_is_an_error():
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = _backward_returning(lambda g: (g, "oops"))()(a, b)
    with pytest.raises(TypeError, match=r"Bad\.backward returned str 'oops' for input 1"):
        y.sum().backward()


def test_a_broadcast_gradient_and_none_for_an_input_are_accepted():
    a, b = _leaf([[1.0], [2.0]]), _leaf([3.0, 4.0, 5.0])
    y = _backward_returning(lambda g: (g, None))()(a, b)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, [[3.0], [3.0]])
    assert b.grad is None


# ---------------------------------------------------------------------- saved-tensor versions
def _trained_once():
    rng = np.random.default_rng(0)
    model = nn.Linear(3, 2, rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = (model(rng.standard_normal((4, 3))) ** 2).mean()
    loss.backward(retain_graph=True)
    return model, opt, loss


def test_backward_after_an_optimizer_step_on_a_saved_weight_raises_naming_the_tensor_and_op():
    _, opt, loss = _trained_once()
    opt.step()
    with pytest.raises(tg.BackwardError, match=r"LinearFunction.*modified by an in-place operation.*'W'"):
        loss.backward()


def test_an_in_place_update_under_no_grad_changes_the_same_array_and_is_detected():
    model, _, loss = _trained_once()
    w = model.W
    before = w.data
    with tg.no_grad():
        w -= 0.1 * w.grad
    assert w is model.W and w.data is before  # in place: the model sees the new weights
    with pytest.raises(tg.BackwardError, match="in-place"):
        loss.backward()


def test_item_assignment_bumps_the_version_too():
    x = Tensor(np.arange(3.0))
    w = _leaf([1.0, 1.0, 1.0])
    y = (x * w).sum()
    x[1] = 10.0
    assert x.data[1] == 10.0
    with pytest.raises(tg.BackwardError, match=r"Mul\.backward.*input 0 \(a leaf, shape \(3,\)\)"):
        y.backward()


def test_a_changed_output_is_detected_as_well():
    x = _leaf([0.5, 1.0])
    y = x.exp()  # Exp's backward reads y
    with tg.no_grad():
        y *= 2.0
    with pytest.raises(tg.BackwardError, match=r"its output.*Exp"):
        y.sum().backward()


def test_changing_a_tensor_after_backward_is_fine():
    model, opt, loss = _trained_once()
    loss.backward()  # the second, last backward: before the step
    before = model.W.data.copy()
    opt.step()
    assert not np.array_equal(model.W.data, before)
    model.zero_grad()
    (model(np.ones((2, 3))) ** 2).mean().backward()  # a graph made after the change runs as usual
    assert model.W.grad is not None


def test_a_change_before_the_forward_is_fine_and_one_after_it_is_not():
    w = _leaf([1.0, 2.0])
    with tg.no_grad():
        w *= 3.0  # before the forward: the graph below is made from the new values
    y = (w * w).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad, [6.0, 12.0])
    with tg.no_grad():
        w -= 1.0
    with pytest.raises(tg.BackwardError, match=r"Mul\.backward.*input 0"):
        y.backward()


def test_in_place_change_of_a_leaf_that_requires_grad_while_recording_is_refused():
    w = _leaf([1.0, 2.0], name="w")
    with pytest.raises(RuntimeError, match=r"'w'.*no_grad"):
        w += 1.0
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 3.0
    np.testing.assert_array_equal(w.data, [1.0, 2.0])  # nothing changed


def test_in_place_operators_inside_the_graph_give_a_new_differentiable_tensor():
    x = _leaf([1.0, 2.0])
    h = x * 3.0
    h += x  # recorded: h = h + x
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


# ---------------------------------------------------------------------- grad mode per thread
def test_no_grad_in_one_thread_leaves_the_other_threads_recording():
    inside, outside_seen = threading.Event(), []
    release = threading.Event()

    def worker():
        with tg.no_grad():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    outside_seen.append(tg.is_grad_enabled())
    outside_seen.append((_leaf([1.0]) * 2).requires_grad)
    release.set()
    t.join()
    assert outside_seen == [True, True]


def test_overlapping_no_grad_blocks_in_two_threads_leave_recording_on_in_both():
    barrier = threading.Barrier(2)
    after = []

    def worker(first: bool):
        if first:
            with tg.no_grad():
                barrier.wait(10)  # both inside
                barrier.wait(10)  # the other has left first
        else:
            with tg.no_grad():
                barrier.wait(10)
            barrier.wait(10)
        after.append(tg.is_grad_enabled())

    threads = [threading.Thread(target=worker, args=(f,)) for f in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == [True, True] and tg.is_grad_enabled()


# ---------------------------------------------------------------------- hooks and dtypes
def test_a_hook_that_changes_the_shape_of_a_leafs_gradient_is_an_error():
    x = _leaf([1.0, 2.0], name="x")
    x.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match=r"hook on 'x'.*shape \(\).*\(2,\)"):
        (x * 2).sum().backward()


@pytest.mark.parametrize("make", [
    lambda x: x.astype(np.int64),
    lambda x: x.astype(bool),
    lambda x: (x * 2).astype(np.int32) + 1,
])
def test_integer_and_boolean_results_never_require_grad(make):
    x = _leaf([1.5, -2.5])
    y = make(x)
    assert not y.requires_grad and y.grad_fn is None


def test_a_leaf_frozen_after_the_forward_gets_no_gradient():
    x, w = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = (x * w).sum()
    w.requires_grad_(False)
    y.backward()
    assert w.grad is None
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


# ---------------------------------------------------------------------- one readable loop
def test_docs_engine_quotes_the_engine_loop_exactly():
    text = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    quotes = re.findall(r"^```py\n(.*?)^```", text, re.M | re.S)
    assert quotes, "docs/engine.md quotes no source"
    assert quotes[0] == inspect.getsource(autograd.backward_steps)


def test_the_engine_loop_fits_on_one_screen():
    assert len(inspect.getsource(autograd.backward_steps).splitlines()) <= 50
    assert len(inspect.getsource(tg.Function.__call__).splitlines()) <= 20


def test_refusing_array_conversion_in_one_thread_leaves_the_others_converting():
    from tinygrad_jp.tensor import array_conversion_forbidden

    inside, release, seen = threading.Event(), threading.Event(), []

    def worker():
        with array_conversion_forbidden():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    seen.append(np.asarray(Tensor([1.0, 2.0])).tolist())
    release.set()
    t.join()
    assert seen == [[1.0, 2.0]]
    with array_conversion_forbidden(), pytest.raises(TypeError, match="cut the graph"):
        np.asarray(Tensor([1.0]))
