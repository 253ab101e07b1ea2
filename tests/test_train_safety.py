"""Training that notices: evaluate() leaves the model in the mode it found it, and fit stops at the first
non-finite loss, naming the epoch and the batch, with the History up to there kept on the error."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import F, data, nn, optim, train


def _modes(model):
    return [m.training for m in model.modules()]


# ---------------------------------------------------------------------- evaluate
@pytest.mark.parametrize("training", [True, False])
def test_evaluate_leaves_every_layer_in_the_mode_it_found(training):
    X, y = data.spiral(10, 3, rng=0)
    model = nn.Sequential(nn.Linear(2, 8, rng=0), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5, rng=0),
                          nn.Linear(8, 3, rng=0))
    model.train(training)
    train.evaluate(model, F.softmax_cross_entropy, data.DataLoader(X, y, 10, shuffle=False))
    assert _modes(model) == [training] * len(_modes(model))


def test_a_hand_written_loop_that_evaluates_between_epochs_keeps_dropout_on():
    X, y = data.spiral(10, 3, rng=0)
    loader = data.DataLoader(X, y, 10, rng=0)
    model = nn.Sequential(nn.Linear(2, 8, rng=0), nn.Dropout(0.5, rng=0), nn.Linear(8, 3, rng=0))
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(2):
        for xb, yb in loader:
            out = model(xb)
            assert model[1].training  # Dropout is active in every training batch, also after an evaluation
            opt.zero_grad()
            F.softmax_cross_entropy(out, yb).backward()
            opt.step()
        train.evaluate(model, F.softmax_cross_entropy, loader)


def test_evaluate_restores_the_mode_even_when_the_loss_fails():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Dropout(0.5))
    with pytest.raises(TypeError, match="scalar Tensor"):
        train.evaluate(model, lambda out, yb: out, [(np.ones((4, 2)), np.zeros(4, np.int64))])
    assert all(_modes(model))


# ---------------------------------------------------------------------- fit and a diverging loss
class _Counting:
    """An optimizer that counts its steps (fit needs only step and zero_grad)."""

    def __init__(self, inner):
        self.inner, self.steps = inner, 0
        self.lr = inner.lr

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        self.steps += 1
        self.inner.step()


def _recording(loss_fn):
    values = []

    def wrapped(out, yb):
        loss = loss_fn(out, yb)
        values.append(loss.item())
        return loss

    return wrapped, values


def test_a_diverging_fit_stops_at_the_first_nonfinite_loss_and_keeps_the_history():
    X, y = data.spiral(40, 3, rng=0)
    batches = 4
    model = nn.MLP([2, 32, 32, 3], rng=0)
    opt = _Counting(optim.SGD(model.parameters(), lr=1e6))  # diverges within a few steps
    loss_fn, values = _recording(F.softmax_cross_entropy)
    # numpy warns of the overflow on the way; the point is that fit stops.
    with pytest.raises(train.NonFiniteLossError) as info, np.errstate(over="ignore", invalid="ignore"):
        train.fit(model, loss_fn, opt, data.DataLoader(X, y, 30, rng=0), 50, progress=False)
    err = info.value
    first_bad = next(i for i, v in enumerate(values) if not math.isfinite(v))
    assert len(values) == first_bad + 1  # no batch after it
    assert (err.epoch, err.batch) == (first_bad // batches + 1, first_bad % batches + 1)
    assert f"epoch {err.epoch}/50, batch {err.batch}" in str(err) and str(values[-1]) in str(err)
    assert opt.steps == first_bad  # the batch with the bad loss was not applied
    assert err.history.epochs == err.epoch - 1
    assert all(math.isfinite(v) for v in err.history.loss) and all(math.isfinite(v) for v in err.history.accuracy)
    assert model.training  # the mode fit found


@given(bad_at=st.integers(1, 9), value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_fit_names_the_epoch_and_batch_of_any_nonfinite_loss(bad_at, value):
    X, y = data.moons(12, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    calls = {"n": 0}

    def loss_fn(out, yb):
        if tg.is_grad_enabled():  # training batches only, not the validation ones (under no_grad)
            calls["n"] += 1
        loss = F.softmax_cross_entropy(out, yb)
        return loss * value if calls["n"] == bad_at else loss

    model.eval()
    with pytest.raises(train.NonFiniteLossError) as info:
        train.fit(model, loss_fn, optim.SGD(model.parameters(), lr=0.1), data.DataLoader(X, y, 4, rng=0), 5,
                  val_loader=data.DataLoader(X, y, 12), progress=False)
    err = info.value  # 3 batches per epoch
    assert (err.epoch, err.batch) == ((bad_at - 1) // 3 + 1, (bad_at - 1) % 3 + 1)
    assert err.history.epochs == len(err.history.val_loss) == err.epoch - 1
    assert not model.training
    assert isinstance(err, FloatingPointError)


def test_every_function_of_the_training_loop_is_small():
    pytest.importorskip("ruff")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "C90", "tinygrad_jp/train.py"],
                            cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
