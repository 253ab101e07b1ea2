"""Hypothesis profiles (the default is fast and deterministic; HYPOTHESIS_PROFILE=thorough runs longer), and a
data cache of each test's own that no real download can fill."""

import dataclasses
import os

import pytest

# The suite multiplies thousands of tiny matrices: BLAS threads only fight each other (and the
# other cores' work) over them, which made steps ten times slower on a busy 2-core machine.
# Set before numpy is imported; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_data_cache(monkeypatch, tmp_path_factory):
    """No test reads the user's data cache or reaches a real mirror: every test gets an empty cache folder,
    and the built-in mirror lists point at a closed port on this machine (a test that needs files serves
    them itself on 127.0.0.1)."""
    from tinygrad_jp import datasets

    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path_factory.mktemp("data_cache")))
    for kind, source in datasets.SOURCES.items():
        monkeypatch.setitem(datasets.SOURCES, kind, dataclasses.replace(source, mirrors=("http://127.0.0.1:9/",)))
