"""Shared test setup: hypothesis profiles (CI keeps examples bounded) and common fixtures."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _reset_context():
    """Each test starts in PYNATIVE mode with the interpreter as default backend, and the verifier
    runs after every pass (a pass that breaks the graph fails the test that ran it, by name)."""
    import sporeflow as sf
    sf.set_context(mode=sf.PYNATIVE_MODE, device_target="INTERP", backend=None, save_graphs=False, pipeline=None,
                   verify_each_pass=True)
    yield
    sf.set_context(mode=sf.PYNATIVE_MODE, device_target="INTERP", backend=None, save_graphs=False, pipeline=None,
                   verify_each_pass=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
