"""The Python training loop's helpers."""

import numpy as np
import pytest
from sklearn.utils import shuffle as sk_shuffle

from fastbp._training import shuffled


@pytest.mark.parametrize("n", [1, 2, 17, 1000])
def test_shuffled_is_sklearns_shuffle(n):
    a, b = np.random.RandomState(3), np.random.RandomState(3)
    idx_a = idx_b = np.arange(n, dtype=np.int64)
    for _ in range(5):  # compounding epochs, as in the loop
        idx_a = shuffled(idx_a, a)
        idx_b = sk_shuffle(idx_b, random_state=b)
        np.testing.assert_array_equal(idx_a, idx_b)
    assert a.randint(1 << 30) == b.randint(1 << 30)  # same generator state after
