"""Matrix products: BLAS (``np.dot`` into ``out``) unless the product is tiny.

OpenBLAS costs about a microsecond per call before it does any arithmetic, which
dominates products like (rows x 64) @ (64 x 1) -- the output layer of a binary
classifier -- or the outer product of the delta recursion through it.  Below
``SMALL_MACS`` multiply-adds a plain loop is faster.  The choice depends only on
the shapes, so it is the same for every thread count.

Pure multiply-add loops: compiled with ``FASTMATH_SAFE`` (no nnan/ninf).
"""

import numpy as np

from .._config import FASTMATH_SAFE, jit

SMALL_MACS = 16384


@jit(fastmath=FASTMATH_SAFE)
def gemm_nn(A, B, C):
    """C <- A @ B.  Shapes: A (m, k), B (k, n), C (m, n).  Mutates C."""
    m, k = A.shape
    n = B.shape[1]
    if m * n * k >= SMALL_MACS:
        np.dot(A, B, C)
    elif n >= 8:  # vectorize along rows of B
        for i in range(m):
            for j in range(n):
                C[i, j] = 0.0
            for p in range(k):
                a = A[i, p]
                for j in range(n):
                    C[i, j] += a * B[p, j]
    else:  # few outputs: dot products, accumulated in a register
        for i in range(m):
            for j in range(n):
                s = 0.0
                for p in range(k):
                    s += A[i, p] * B[p, j]
                C[i, j] = s


@jit(fastmath=FASTMATH_SAFE)
def gemm_nt(A, B, C):
    """C <- A @ B.T.  Shapes: A (m, k), B (n, k), C (m, n).  Mutates C."""
    m, k = A.shape
    n = B.shape[0]
    if m * n * k >= SMALL_MACS:
        np.dot(A, B.T, C)
    elif k >= 8:  # contiguous dot products
        for i in range(m):
            for j in range(n):
                s = 0.0
                for p in range(k):
                    s += A[i, p] * B[j, p]
                C[i, j] = s
    else:  # short k (e.g. the delta through a 1-unit output): outer products
        for i in range(m):
            for j in range(n):
                C[i, j] = A[i, 0] * B[j, 0]
            for p in range(1, k):
                a = A[i, p]
                for j in range(n):
                    C[i, j] += a * B[j, p]


@jit(fastmath=FASTMATH_SAFE)
def gemm_tn_cols(A, c0, c1, B, C, scratch):
    """C <- A[:, c0:c1].T @ B.  Shapes: A (r, *), B (r, n), C (c1-c0, n).

    Large products copy the column block into ``scratch`` (>= r*(c1-c0)
    elements) so BLAS gets a contiguous operand.  Mutates C and scratch.
    """
    r = A.shape[0]
    w = c1 - c0
    n = B.shape[1]
    if w * n * r >= SMALL_MACS:
        if w == A.shape[1]:
            np.dot(A.T, B, C)
        else:
            blk = scratch[:r * w].reshape((r, w))
            for q in range(r):
                src = A[q, c0:c1]
                dst = blk[q]
                for i in range(w):
                    dst[i] = src[i]
            np.dot(blk.T, B, C)
    elif n >= 8:
        for i in range(w):
            for j in range(n):
                C[i, j] = 0.0
        for q in range(r):
            for i in range(w):
                a = A[q, c0 + i]
                for j in range(n):
                    C[i, j] += a * B[q, j]
    else:
        for i in range(w):
            for j in range(n):
                s = 0.0
                for q in range(r):
                    s += A[q, c0 + i] * B[q, j]
                C[i, j] = s


@jit
def column_sums(D, c0, c1, out):
    """out[c] <- sum_r D[r, c0 + c], rows in order.  Shapes: D (r, *), out (c1-c0,).

    Written over row slices: indexing D[r, c] and out[c] with offsets kept LLVM
    from vectorizing (8x slower).  Mutates out.
    """
    for c in range(out.shape[0]):
        out[c] = 0.0
    for r in range(D.shape[0]):
        row = D[r, c0:c1]
        for c in range(out.shape[0]):
            out[c] += row[c]
