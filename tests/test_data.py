"""Toy data sets (shapes, dtypes, seeding, geometry) and the DataLoader (batches, shuffling, errors)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Tensor, data

DATASETS = {
    "spiral": lambda rng, **kw: data.spiral(rng=rng, **kw),
    "moons": lambda rng, **kw: data.moons(rng=rng, **kw),
    "circles": lambda rng, **kw: data.circles(rng=rng, **kw),
    "xor": lambda rng, **kw: data.xor(rng=rng, noise=0.1, **kw),
}


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_float32_points_with_int64_labels_and_reproducible(name):
    X, y = DATASETS[name](0)
    assert X.dtype == np.float32 and X.ndim == 2 and X.shape[1] == 2
    assert y.dtype == np.int64 and y.shape == (len(X),)
    assert np.all(np.isfinite(X))
    X2, y2 = DATASETS[name](0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = DATASETS[name](1)
    assert not np.array_equal(X, X3)


@pytest.mark.parametrize("name", DATASETS)
def test_the_global_seed_reproduces_a_dataset(name):
    tg.manual_seed(5)
    X1, _ = DATASETS[name](None)
    tg.manual_seed(5)
    X2, _ = DATASETS[name](None)
    np.testing.assert_array_equal(X1, X2)


@given(st.integers(1, 60), st.integers(1, 6))
def test_spiral_has_n_per_class_points_of_each_class(n_per_class, n_classes):
    X, y = data.spiral(n_per_class, n_classes, rng=0)
    assert X.shape == (n_per_class * n_classes, 2)
    np.testing.assert_array_equal(np.bincount(y, minlength=n_classes), [n_per_class] * n_classes)


def test_noiseless_spiral_turns_four_radians_per_class_with_growing_radius():
    X, y = data.spiral(50, 3, noise=0.0, rng=0)
    r = np.hypot(X[:, 0], X[:, 1])
    for k in range(3):
        rk = r[y == k]
        np.testing.assert_allclose(rk, np.linspace(0, 1, 50), atol=1e-6)
        theta = np.unwrap(np.arctan2(X[y == k, 0], X[y == k, 1])[1:])
        np.testing.assert_allclose(theta[-1] - theta[0], 4.0 * (1 - 1 / 49), atol=1e-4)


def test_spiral_noise_is_the_angle_standard_deviation():
    clean, _ = data.spiral(2000, 1, noise=0.0, rng=0)
    noisy, _ = data.spiral(2000, 1, noise=0.3, rng=0)
    keep = np.hypot(clean[:, 0], clean[:, 1]) > 0.05
    d = np.angle(np.exp(1j * (np.arctan2(noisy[:, 0], noisy[:, 1]) - np.arctan2(clean[:, 0], clean[:, 1]))))[keep]
    # The sample std of ~1900 normal draws is within a few percent of 0.3 (its standard error is 0.3/√(2n)).
    assert d.std() == pytest.approx(0.3, rel=5 * 1 / math.sqrt(2 * keep.sum()))


@given(st.integers(2, 301))
def test_moons_and_circles_split_n_between_the_two_classes(n):
    for make in (data.moons, data.circles):
        X, y = make(n, rng=0)
        assert X.shape == (n, 2)
        assert np.bincount(y).tolist() == [n - n // 2, n // 2]


def test_noiseless_moons_are_two_half_circles():
    X, y = data.moons(400, noise=0.0, rng=0)
    top, bottom = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(top[:, 0], top[:, 1]), 1, atol=1e-6)
    np.testing.assert_allclose(np.hypot(bottom[:, 0] - 1, bottom[:, 1] - 0.5), 1, atol=1e-6)
    assert top[:, 1].min() >= -1e-6 and bottom[:, 1].max() <= 0.5 + 1e-6


def test_noiseless_circles_have_radii_one_and_factor():
    X, y = data.circles(300, noise=0.0, factor=0.3, rng=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1, atol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.3, atol=1e-6)


def test_noise_is_the_coordinate_standard_deviation():
    clean, _ = data.circles(4000, noise=0.0, rng=0)
    noisy, _ = data.circles(4000, noise=0.2, rng=0)
    d = (noisy - clean).ravel()
    assert abs(d.mean()) < 5 * 0.2 / math.sqrt(d.size)
    assert d.std() == pytest.approx(0.2, rel=5 / math.sqrt(2 * d.size))


def test_noiseless_xor_labels_points_by_the_sign_of_the_product():
    X, y = data.xor(500, rng=0)
    assert np.all(np.abs(X) <= 1)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    # Uniform points: each class holds about half (binomial, 5 standard errors).
    assert abs(y.mean() - 0.5) < 5 * 0.5 / math.sqrt(500)


@pytest.mark.parametrize("call, match", [
    (lambda: data.spiral(0), "n_per_class"),
    (lambda: data.spiral(10, n_classes=0), "n_classes"),
    (lambda: data.moons(50, noise=-0.1), "noise"),
    (lambda: data.circles(50, factor=1.5), "factor"),
    (lambda: data.xor(0), "n"),
])
def test_bad_dataset_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------- DataLoader
@given(st.integers(1, 50), st.integers(1, 20), st.booleans(), st.booleans())
def test_loader_covers_every_sample_once_per_epoch_in_len_batches(n, batch_size, shuffle, drop_last):
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    loader = data.DataLoader(X, y, batch_size, shuffle=shuffle, rng=0, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader) == (n // batch_size if drop_last else math.ceil(n / batch_size))
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], dtype=int)
    for xb, yb in batches:
        assert isinstance(xb, Tensor) and not xb.requires_grad and isinstance(yb, np.ndarray)
        assert xb.dtype == np.float32
        np.testing.assert_array_equal(xb.data[:, 0], 2 * yb)
        assert len(yb) == batch_size or (not drop_last and yb is batches[-1][1])
    assert len(np.unique(seen)) == len(seen)
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_loader_reshuffles_each_epoch_and_a_seed_reproduces_the_order():
    X, y = np.zeros((100, 2), dtype=np.float32), np.arange(100)
    a = data.DataLoader(X, y, 10, rng=3)
    b = data.DataLoader(X, y, 10, rng=3)
    epoch1 = np.concatenate([yb for _, yb in a])
    epoch2 = np.concatenate([yb for _, yb in a])
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(epoch1, np.concatenate([yb for _, yb in b]))
    np.testing.assert_array_equal(epoch2, np.concatenate([yb for _, yb in b]))


def test_loader_without_rng_follows_the_global_seed():
    X, y = np.zeros((30, 2), dtype=np.float32), np.arange(30)
    loader = data.DataLoader(X, y, 7)
    tg.manual_seed(11)
    first = np.concatenate([yb for _, yb in loader])
    tg.manual_seed(11)
    np.testing.assert_array_equal(first, np.concatenate([yb for _, yb in loader]))


def test_loader_errors_name_what_was_given():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"len\(X\)=10.*len\(y\)=9"):
        data.DataLoader(X, np.zeros(9), 4)
    with pytest.raises(ValueError, match="batch_size=0"):
        data.DataLoader(X, np.zeros(10), 0)
    with pytest.raises(TypeError, match="batch_size"):
        data.DataLoader(X, np.zeros(10), 2.5)


def test_loader_accepts_tensors():
    X, y = data.moons(20, rng=0)
    loader = data.DataLoader(Tensor(X), y, 8, shuffle=False)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.data, X[:8])
    np.testing.assert_array_equal(yb, y[:8])
