import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, deterministically seeded NumPy Generator for each test."""
    return np.random.default_rng(0)
