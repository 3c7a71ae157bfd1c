"""Dropout masks from a counter-based generator: no state, no stored masks.

Whether hidden unit ``j`` of layer ``k`` is dropped for sample ``i`` in epoch
``e`` is a pure function of ``(seed, e, i, k, j)``: a chain of splitmix64
finalizers (Steele, Lea & Flood 2014, the mixer behind Java's SplittableRandom)
over the key.  So the mask does not depend on which thread computes a row, on
how an epoch is split into compiled calls, or on the batch a sample falls in;
the backward pass recomputes the forward pass's mask instead of storing it.

Inverted dropout: a kept unit is scaled by 1 / (1 - p) in training, so the
plain forward pass (no mask) is the prediction.
"""

import numpy as np

from .._config import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO53 = 9007199254740992.0  # 2**53: the top 53 bits of a hash are a uniform in [0, 1)


@jit
def mix64(x):
    """splitmix64: one uint64 -> a well-mixed uint64 (all uint64 arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _MUL1
    x = (x ^ (x >> _S27)) * _MUL2
    return x ^ (x >> _S31)


@jit
def layer_key(seed, epoch, sample, layer):
    """The key of one sample's units in one layer and epoch (int64 inputs)."""
    h = mix64(np.uint64(seed))
    h = mix64(h ^ np.uint64(epoch))
    h = mix64(h ^ np.uint64(sample))
    return mix64(h ^ np.uint64(layer))


@jit
def keep_threshold(rate):
    """Units whose hash's top 53 bits fall below this are dropped: P = rate."""
    return np.uint64(rate * _TWO53)


@jit
def apply_mask(M, rows_idx, dropout_key, layer, rate):
    """M[r, j] <- M[r, j] / (1 - rate) if unit j of sample rows_idx[r] is kept in
    ``layer`` this epoch, else 0.  ``dropout_key`` is int64 (seed, epoch).

    The forward pass applies it to the activations, the backward pass to the
    deltas (the same mask: the same key).  Shapes: M (rows, width).  Mutates M.
    Returns None.
    """
    rows, width = M.shape
    thr = keep_threshold(rate)
    scale = 1.0 / (1.0 - rate)
    for r in range(rows):
        key = layer_key(dropout_key[0], dropout_key[1], rows_idx[r], layer)
        m = M[r]
        for j in range(width):
            h = mix64(key + np.uint64(j))
            m[j] = m[j] * scale if (h >> _S11) >= thr else 0.0
