"""Long runs: memory stays flat over thousands of training steps, and no reference cycle keeps a
computational graph alive (graphs die by reference counting alone, the moment the loss is dropped
or backward has run).
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, nn, optim


def _problem(seed: int = 0, batchnorm: bool = False):
    X, y = tg.data.spiral(32, 3, rng=seed)
    model = nn.Sequential(nn.MLP([2, 16, 16, 3], batchnorm=batchnorm, rng=seed), nn.Dropout(0.1, rng=seed))
    return X, y, model


def _step(model, opt, X, y):
    opt.zero_grad()
    loss = F.softmax_cross_entropy(model(Tensor(X)), y)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.fixture
def no_gc():
    """Only reference counting frees memory while the test body runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_memory_stays_flat_over_thousands_of_steps():
    X, y, model = _problem(batchnorm=True)
    opt = optim.Adam(model.parameters(), lr=0.01)
    tracemalloc.start()
    try:
        # Warm-up under tracing: optimizer state, constant caches and CPython's
        # free lists of small objects fill up here (they stop growing after about 600 steps).
        for _ in range(700):
            _step(model, opt, X, y)
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(1500):
            _step(model, opt, X, y)
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Keeping anything at all per step (one float, one tuple) would add at least 1500 x 24 bytes.
    assert end - start < 8 * 1024, f"grew by {end - start} bytes over 1500 steps"
    assert peak - start < 1024 * 1024, f"a step's peak is {peak - start} bytes"


def test_a_training_step_creates_no_garbage_cycles(no_gc):
    X, y, model = _problem()
    opt = optim.Adam(model.parameters(), lr=0.01)
    _step(model, opt, X, y)  # first step creates the optimizer state
    gc.enable()
    gc.collect()
    gc.disable()
    for _ in range(5):
        _step(model, opt, X, y)
    assert gc.collect() == 0


def test_intermediate_tensors_die_after_backward_without_gc(no_gc):
    X, y, model = _problem()
    h = model[0][0](Tensor(X))
    a = model[0][1](h)
    refs = [weakref.ref(h), weakref.ref(a)]
    loss = F.softmax_cross_entropy(model[0][2:](a), y)
    del h, a
    assert all(r() is not None for r in refs)  # the loss holds the graph
    loss.backward()
    assert all(r() is None for r in refs), "backward left the graph alive"
    assert loss.item() > 0  # the loss itself is still usable


def test_dropping_a_loss_without_backward_frees_its_graph_without_gc(no_gc):
    X, y, model = _problem()
    h = model[0][0](Tensor(X))
    ref = weakref.ref(h)
    loss = F.softmax_cross_entropy(model[0][1:](h), y)
    del h
    assert ref() is not None
    del loss
    assert ref() is None


def test_a_retained_graph_lives_until_the_loss_is_dropped(no_gc):
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    h = (x * 2.0).tanh()
    ref = weakref.ref(h)
    loss = (h * h).sum()
    del h
    loss.backward(retain_graph=True)
    assert ref() is not None
    loss.backward()
    assert ref() is None
    np.testing.assert_allclose(x.grad, 2 * (2 * 2 * np.tanh(2) * (1 - np.tanh(2) ** 2)) * np.ones((4, 3)))


def test_hooks_and_grad_do_not_keep_graphs_alive(no_gc):
    x = Tensor(np.ones(5), requires_grad=True)
    h = x.exp()
    seen = []
    h.register_hook(lambda g: seen.append(g.shape))
    ref = weakref.ref(h)
    loss = (h * 3.0).sum()
    del h
    (g,) = tg.grad(loss, x)
    assert seen == [(5,)]
    del loss
    assert ref() is None
    np.testing.assert_allclose(g.data, 3 * np.e * np.ones(5))


def test_anomaly_mode_keeps_nothing_after_its_block(no_gc):
    """Where each op was applied is kept on the op, so it goes with the graph."""
    X, y, model = _problem()
    with tg.detect_anomaly():
        h = model(Tensor(X))
        assert h.grad_fn._where  # the creation site is recorded in the mode
        ref = weakref.ref(h)
        F.softmax_cross_entropy(h, y).backward()
        del h
    assert ref() is None  # and goes with the tensor and its op, no record kept elsewhere


def test_second_order_graphs_are_freed_too(no_gc):
    x = Tensor(np.linspace(-1, 1, 6), requires_grad=True)
    y = (x.tanh() ** 3).sum()
    (g,) = tg.grad(y, x, create_graph=True)
    ref = weakref.ref(g)
    (gg,) = tg.grad(g.sum(), x)
    del g, y
    assert ref() is None
    assert np.all(np.isfinite(gg.data))
