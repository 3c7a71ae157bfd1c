"""The first layer's products on a CSR batch, without densifying it.

With CSR input only the first layer sees X, through two products per
mini-batch: the forward pass X_batch @ W_0 and the weight gradient
X_batch^T delta_1.  Densifying the batch first (a (rows, n_features) block,
then a dense GEMM) costs O(rows * n_features) memory traffic and multiply-adds
even when X has a few non-zeros per row: for 50000 features at density 0.002
that is 500x the work of the non-zeros.  The kernels here touch only the
non-zeros:

* ``csr_rows_dot`` / ``csr_range_dot``: out[r] = sum_k Xdata[k] W[Xindices[k]]
  over the non-zeros k of a sample (gathered rows of a mini-batch, or a
  contiguous block of rows for predict); ``csr_row_dot`` is the shared
  per-row body.
* ``csr_rows_tdot_range``: rows [f0, f1) of X_batch^T D, the block of weight
  rows one thread owns in the parameter-owned gradient schedule (every thread
  scans the whole batch and keeps the non-zeros in its feature range, so the
  sum over batch rows is never split and the result does not depend on the
  number of blocks).

CSR arrays: ``Xdata`` (nnz,) float, ``Xindices`` (nnz,) int64, ``Xindptr``
(n_rows + 1,) int64.  Indices may be unsorted and repeated; repeated entries
sum, as in scipy.  Sums run in the order of the non-zeros (and of the batch
rows), so results do not depend on threads.  The inner loops run over the
n_out contiguous elements of one row of W, D, out or G (row views, no offset
arithmetic in the loop) and vectorize; nothing is allocated.  Pure
multiply-add loops: compiled with ``FASTMATH_SAFE`` (no nnan/ninf), like
``linalg``.
"""

from .._config import FASTMATH_SAFE, jit


@jit(fastmath=FASTMATH_SAFE)
def csr_row_dot(Xdata, Xindices, Xindptr, i, W, dst):
    """dst <- CSR row i @ W, non-zeros in order.  Shapes: W (n_features, n),
    dst (n,) contiguous.  Mutates dst."""
    n = dst.shape[0]
    for j in range(n):
        dst[j] = 0.0
    for k in range(Xindptr[i], Xindptr[i + 1]):
        x = Xdata[k]
        w = W[Xindices[k]]
        for j in range(n):
            dst[j] += x * w[j]


@jit(fastmath=FASTMATH_SAFE)
def csr_rows_dot(Xdata, Xindices, Xindptr, rows_idx, W, out):
    """out[r] <- CSR row rows_idx[r] @ W for r < rows_idx.shape[0] (a gathered
    mini-batch).  Shapes: W (n_features, n_out), out (rows, n_out), both
    C-contiguous (out may be a row slice of a larger block).  Mutates out."""
    for r in range(rows_idx.shape[0]):
        csr_row_dot(Xdata, Xindices, Xindptr, rows_idx[r], W, out[r])


@jit(fastmath=FASTMATH_SAFE)
def csr_range_dot(Xdata, Xindices, Xindptr, r0, r1, W, out):
    """out[r - r0] <- CSR row r @ W for r in [r0, r1) (a block of rows for
    predict).  Shapes: W (n_features, n_out), out (r1 - r0, n_out), both
    C-contiguous.  Mutates out."""
    for r in range(r1 - r0):
        csr_row_dot(Xdata, Xindices, Xindptr, r0 + r, W, out[r])


@jit(fastmath=FASTMATH_SAFE)
def csr_rows_tdot_range(Xdata, Xindices, Xindptr, rows_idx, D, f0, f1, G):
    """G <- rows [f0, f1) of X_batch^T @ D, X_batch the CSR rows ``rows_idx``.

    G[f - f0] accumulates Xdata[k] * D[r] over the batch rows r in order and
    their non-zeros k in order with f0 <= f = Xindices[k] < f1.  Shapes:
    D (rows, n_out), G (f1 - f0, n_out), both C-contiguous; f0 == f1 is an
    empty range.  Mutates G.
    """
    n = G.shape[1]
    for p in range(G.shape[0]):
        g = G[p]
        for j in range(n):
            g[j] = 0.0
    for r in range(rows_idx.shape[0]):
        i = rows_idx[r]
        d = D[r]
        for k in range(Xindptr[i], Xindptr[i + 1]):
            f = Xindices[k]
            if f >= f0 and f < f1:
                x = Xdata[k]
                g = G[f - f0]
                for j in range(n):
                    g[j] += x * d[j]
