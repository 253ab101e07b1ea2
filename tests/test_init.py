"""Initialisers: the chapter's distributions within sampling error, seeding, and what they do to a deep ReLU net."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import init

# name -> (std of the distribution, kurtosis, half-width of the support or None)
_SPECS = {
    "xavier_normal": (lambda i, o: math.sqrt(2 / (i + o)), 3.0, None),
    "xavier_init": (lambda i, o: math.sqrt(2 / (i + o)), 3.0, None),
    "xavier_uniform": (lambda i, o: math.sqrt(6 / (i + o)) / math.sqrt(3), 1.8, lambda i, o: math.sqrt(6 / (i + o))),
    "he_normal": (lambda i, o: math.sqrt(2 / i), 3.0, None),
    "he_init": (lambda i, o: math.sqrt(2 / i), 3.0, None),
    "he_uniform": (lambda i, o: math.sqrt(6 / i) / math.sqrt(3), 1.8, lambda i, o: math.sqrt(6 / i)),
    "normal": (lambda i, o: 0.01, 3.0, None),
}

sizes = st.integers(20, 120)
seeds = st.integers(0, 2**32 - 1)


@pytest.mark.parametrize("name", list(_SPECS))
@given(n_in=sizes, n_out=sizes, seed=seeds)
def test_mean_and_std_match_the_formula_within_sampling_error(name, n_in, n_out, seed):
    std_fn, kurtosis, support = _SPECS[name]
    w = getattr(init, name)(n_in, n_out, rng=seed)
    assert w.shape == (n_in, n_out) and w.dtype == np.float32
    n, sigma = w.size, std_fn(n_in, n_out)
    w64 = w.astype(np.float64)
    # 4.5 standard errors: |mean| has s.e. σ/√n; the sample std has s.e. σ √((κ - 1) / 4n).
    assert abs(w64.mean()) < 4.5 * sigma / math.sqrt(n)
    assert abs(w64.std() - sigma) < 4.5 * sigma * math.sqrt((kurtosis - 1) / (4 * n))
    if support is not None:
        assert np.abs(w64).max() <= support(n_in, n_out)


def test_normal_takes_its_std():
    w = init.normal(200, 200, rng=0, std=2.5).astype(np.float64)
    assert abs(w.std() - 2.5) < 4.5 * 2.5 / math.sqrt(2 * w.size)


def test_the_chapter_names_are_the_normal_versions():
    np.testing.assert_array_equal(init.xavier_init(30, 40, rng=3), init.xavier_normal(30, 40, rng=3))
    np.testing.assert_array_equal(init.he_init(30, 40, rng=3), init.he_normal(30, 40, rng=3))


def test_zeros():
    w = init.zeros(3, 4)
    assert w.shape == (3, 4) and w.dtype == np.float32 and not w.any()


@pytest.mark.parametrize("name", ["zeros", *_SPECS])
def test_dtype_is_honoured(name):
    assert getattr(init, name)(5, 6, rng=0, dtype=np.float64).dtype == np.float64
    assert getattr(init, name)(5, 6, rng=0, dtype=np.float16).dtype == np.float16


@pytest.mark.parametrize("name", list(_SPECS))
def test_same_seed_same_weights_and_different_seed_different_weights(name):
    fn = getattr(init, name)
    np.testing.assert_array_equal(fn(7, 9, rng=42), fn(7, 9, rng=42))
    np.testing.assert_array_equal(fn(7, 9, rng=np.random.default_rng(5)), fn(7, 9, rng=np.random.default_rng(5)))
    assert not np.array_equal(fn(7, 9, rng=1), fn(7, 9, rng=2))
    tg.manual_seed(11)
    a = fn(7, 9)
    tg.manual_seed(11)
    np.testing.assert_array_equal(a, fn(7, 9))


def test_get_by_name_and_callable():
    assert init.get("he") is init.he_normal
    assert init.get("Xavier") is init.xavier_normal
    assert init.get("xavier_uniform") is init.xavier_uniform
    custom = lambda n_in, n_out: np.ones((n_in, n_out))  # noqa: E731
    assert init.get(custom) is custom
    with pytest.raises(ValueError, match="unknown initializer 'kaiming_magic'"):
        init.get("kaiming_magic")
    with pytest.raises(TypeError, match="int"):
        init.get(3)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="n_in must be a positive integer"):
        init.he_normal(bad, 3)


def test_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="int32"):
        init.he_normal(3, 3, dtype=np.int32)


def _relu_rms_per_layer(name: str, **kwargs) -> np.ndarray:
    rng = np.random.default_rng(0)
    h = rng.standard_normal((256, 256))
    rms = []
    for _ in range(10):
        h = np.maximum(h @ getattr(init, name)(256, 256, rng=rng, dtype=np.float64, **kwargs), 0)
        rms.append(np.sqrt(np.mean(h * h)))
    return np.array(rms)


def test_he_keeps_relu_activations_at_the_same_scale_over_ten_layers():
    rms = _relu_rms_per_layer("he_normal")
    assert 0.5 <= rms[-1] / rms[0] <= 2


def test_small_normal_init_makes_relu_activations_collapse():
    # Each layer scales the RMS by about 0.01·√(256/2) ≈ 0.11, so ten layers lose nine orders of magnitude.
    rms = _relu_rms_per_layer("normal")
    assert rms[-1] / rms[0] < 1e-6
