"""The CSR leaf kernels (``fastbp._kernels.sparse``) against dense NumPy/scipy.

References come from the definitions, in float64 on the very values the kernel
saw: ``X[rows] @ W`` and ``X[rows][:, f0:f1].T @ D`` with X densified by scipy
(which sums repeated entries).  The test matrices have empty rows (first,
middle, last), unsorted indices and repeated entries within a row, and are
built without ``sum_duplicates``.  Outputs are pre-filled with NaN (every
element must be overwritten) and passed as a row slice of a larger buffer
whose other rows must stay untouched.

A result may differ from the reference by at most ``RTOL[dtype]`` times the
sum of the absolute values of its terms (``|X| @ |W|``): a relative bound that
still holds where terms cancel, and that requires exact zeros where there is
no term (empty rows, features no batch row uses).
"""

import numpy as np
import pytest
import scipy.sparse as sp

from fastbp._kernels import sparse as KS

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["f64", "f32"]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
SENTINEL = 12345.0
N_OUTS = [1, 7, 64]  # one column, a vector remainder only, whole vectors
SHAPES = [(40, 30), (25, 500)]  # (rows, features): many repeats / a wide layer


def random_csr(seed, n_rows, n_features, dtype, max_nnz=12):
    """``(X64, Xdata, Xindices, Xindptr)``: a CSR matrix with empty rows (first,
    middle, last), unsorted and repeated indices (row 1 holds feature 0 three
    times and the last feature twice), and its kernel arrays: data in
    ``dtype``, int64 indices.  ``X64`` is the scipy matrix of the same values
    in float64 (densifying it sums the repeats exactly as the kernels should)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_nnz + 1, n_rows)
    counts[[0, n_rows // 2, n_rows - 1]] = 0
    counts[1] = 6
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = rng.integers(0, n_features, indptr[-1]).astype(np.int64)
    last = n_features - 1
    indices[indptr[1]:indptr[2]] = [last, 0, n_features // 2, 0, last, 0]
    data = rng.standard_normal(indptr[-1]).astype(dtype)
    X64 = sp.csr_matrix((data.astype(np.float64), indices, indptr),
                        shape=(n_rows, n_features))
    assert not X64.has_canonical_format  # scipy kept the repeats and the order
    return X64, data, indices, indptr


def unsorted_and_repeated(indices, indptr):
    """(some row has unsorted indices, some row repeats an index)."""
    unsorted = repeated = False
    for i in range(indptr.shape[0] - 1):
        row = indices[indptr[i]:indptr[i + 1]]
        unsorted |= bool(np.any(np.diff(row) < 0))
        repeated |= np.unique(row).shape[0] < row.shape[0]
    return unsorted, repeated


def assert_within(got, want, scale, dtype):
    """|got - want| <= RTOL * scale elementwise (scale = the sum of |terms|)."""
    assert got.shape == want.shape
    assert np.all(np.isfinite(got)), "an output element was not written"
    err = np.abs(got.astype(np.float64) - want)
    bound = RTOL[dtype] * scale
    bad = err > bound
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} elements off; worst error {err[bad].max():.3g} "
        f"where the bound is {bound[bad][np.argmax(err[bad])]:.3g}")


def padded(rows, cols, dtype, before=2, after=3):
    """``(buf, view)``: a NaN-filled (rows, cols) row slice of a SENTINEL buffer."""
    buf = np.full((before + rows + after, cols), SENTINEL, dtype=dtype)
    view = buf[before:before + rows]
    view[:] = np.nan
    assert view.flags.c_contiguous
    return buf, view


def assert_padding_intact(buf, rows, before=2):
    assert np.all(buf[:before] == SENTINEL)
    assert np.all(buf[before + rows:] == SENTINEL)


def test_matrices_have_the_hard_cases():
    for n_rows, n_features in SHAPES:
        X64, data, indices, indptr = random_csr(0, n_rows, n_features, np.float64)
        assert unsorted_and_repeated(indices, indptr) == (True, True)
        assert np.all(np.diff(indptr)[[0, n_rows // 2, n_rows - 1]] == 0)
        # the repeats sum in the dense reference
        row1 = X64[1].toarray()[0]
        d = data[indptr[1]:indptr[2]]
        assert row1[0] == pytest.approx(d[1] + d[3] + d[5])
        assert row1[n_features - 1] == pytest.approx(d[0] + d[4])


def rows_cases(n_rows):
    rng = np.random.default_rng(1)
    return {
        "all": np.arange(n_rows),
        "permuted": rng.permutation(n_rows),
        "subset": rng.permutation(n_rows)[: n_rows // 3],
        "single": np.array([1]),  # the row with repeats
        "single-empty": np.array([n_rows // 2]),
        "last": np.array([n_rows - 1, 0, 1]),
        "none": np.array([], dtype=np.int64),
    }


ROWS_IDS = list(rows_cases(10))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
@pytest.mark.parametrize("n_out", N_OUTS)
@pytest.mark.parametrize("case", ROWS_IDS)
def test_csr_rows_dot(dtype, shape, n_out, case):
    n_rows, n_features = shape
    X64, Xdata, Xindices, Xindptr = random_csr(2, n_rows, n_features, dtype)
    W = np.random.default_rng(3).standard_normal((n_features, n_out)).astype(dtype)
    rows_idx = rows_cases(n_rows)[case].astype(np.int64)
    buf, out = padded(rows_idx.shape[0], n_out, dtype)
    KS.csr_rows_dot(Xdata, Xindices, Xindptr, rows_idx, W, out)
    Xb = X64[rows_idx].toarray()
    W64 = W.astype(np.float64)
    want = Xb @ W64
    scale = abs(X64)[rows_idx].toarray() @ np.abs(W64)
    assert_within(out, want, scale, dtype)
    assert_padding_intact(buf, rows_idx.shape[0])
    for r, i in enumerate(rows_idx):
        if Xindptr[i] == Xindptr[i + 1]:
            assert np.all(out[r] == 0.0)  # an empty row gives exact zeros


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_out", N_OUTS)
@pytest.mark.parametrize("r0,r1", [(0, 40), (0, 1), (3, 17), (20, 21), (39, 40), (7, 7)])
def test_csr_range_dot(dtype, n_out, r0, r1):
    X64, Xdata, Xindices, Xindptr = random_csr(4, 40, 30, dtype)
    W = np.random.default_rng(5).standard_normal((30, n_out)).astype(dtype)
    buf, out = padded(r1 - r0, n_out, dtype)
    KS.csr_range_dot(Xdata, Xindices, Xindptr, np.int64(r0), np.int64(r1), W, out)
    W64 = W.astype(np.float64)
    assert_within(out, X64[r0:r1].toarray() @ W64, abs(X64)[r0:r1].toarray() @ np.abs(W64),
                  dtype)
    assert_padding_intact(buf, r1 - r0)
    # the shared row body: bitwise what csr_rows_dot gives for the same rows
    same = np.full_like(out, np.nan)
    KS.csr_rows_dot(Xdata, Xindices, Xindptr, np.arange(r0, r1, dtype=np.int64), W, same)
    np.testing.assert_array_equal(out, same)


def tdot_ranges(n_features):
    nf = n_features
    return [(0, nf), (0, 1), (nf - 1, nf), (nf // 2, nf // 2 + 1), (3, nf // 2 + 4),
            (nf // 3, nf), (0, 0), (nf // 2, nf // 2), (nf, nf)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
@pytest.mark.parametrize("n_out", N_OUTS)
@pytest.mark.parametrize("case", ["all", "permuted", "subset", "single", "single-empty",
                                  "none"])
def test_csr_rows_tdot_range(dtype, shape, n_out, case):
    n_rows, n_features = shape
    X64, Xdata, Xindices, Xindptr = random_csr(6, n_rows, n_features, dtype)
    rows_idx = rows_cases(n_rows)[case].astype(np.int64)
    D = np.random.default_rng(7).standard_normal((rows_idx.shape[0], n_out)).astype(dtype)
    D64 = D.astype(np.float64)
    Xb = X64[rows_idx].toarray()
    absXb = abs(X64)[rows_idx].toarray()
    for f0, f1 in tdot_ranges(n_features):
        # G as the kernels see it: a reshaped block of a flat gradient buffer
        flat = np.full((f1 - f0 + 5) * n_out, SENTINEL, dtype=dtype)
        G = flat[2 * n_out:(2 + f1 - f0) * n_out].reshape(f1 - f0, n_out)
        G[:] = np.nan
        KS.csr_rows_tdot_range(Xdata, Xindices, Xindptr, rows_idx, D, np.int64(f0),
                               np.int64(f1), G)
        want = Xb[:, f0:f1].T @ D64
        assert_within(G, want, absXb[:, f0:f1].T @ np.abs(D64), dtype)
        assert np.all(flat[:2 * n_out] == SENTINEL)
        assert np.all(flat[(2 + f1 - f0) * n_out:] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_tdot_blocks_are_bitwise_the_full_range(dtype):
    """Each row of G sums over the batch in the same order whatever block owns
    it, so splitting the features among blocks (threads) changes no bit."""
    X64, Xdata, Xindices, Xindptr = random_csr(8, 40, 30, dtype)
    rows_idx = np.random.default_rng(9).permutation(40).astype(np.int64)
    D = np.random.default_rng(10).standard_normal((40, 9)).astype(dtype)
    full = np.empty((30, 9), dtype=dtype)
    KS.csr_rows_tdot_range(Xdata, Xindices, Xindptr, rows_idx, D, np.int64(0), np.int64(30),
                           full)
    for n_blocks in (2, 3, 7, 31):
        pieces = []
        for j in range(n_blocks):
            f0, f1 = j * 30 // n_blocks, (j + 1) * 30 // n_blocks
            G = np.empty((f1 - f0, 9), dtype=dtype)
            KS.csr_rows_tdot_range(Xdata, Xindices, Xindptr, rows_idx, D, np.int64(f0),
                                   np.int64(f1), G)
            pieces.append(G)
        np.testing.assert_array_equal(np.concatenate(pieces), full)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_repeated_entries_sum(dtype):
    """A row made only of one feature, repeated: the products equal the summed
    value times that row of W (exact here: small integers)."""
    Xdata = np.array([1.0, 2.0, 4.0, 3.0], dtype=dtype)
    Xindices = np.array([2, 2, 0, 2], dtype=np.int64)
    Xindptr = np.array([0, 0, 4], dtype=np.int64)
    W = np.arange(12, dtype=dtype).reshape(3, 4)
    out = np.full((2, 4), np.nan, dtype=dtype)
    KS.csr_rows_dot(Xdata, Xindices, Xindptr, np.array([1, 0], dtype=np.int64), W, out)
    np.testing.assert_array_equal(out, [6 * W[2] + 4 * W[0], np.zeros(4)])
    G = np.full((3, 4), np.nan, dtype=dtype)
    D = np.array([[1, -1, 2, 0], [5, 5, 5, 5]], dtype=dtype)
    KS.csr_rows_tdot_range(Xdata, Xindices, Xindptr, np.array([1, 0], dtype=np.int64), D,
                           np.int64(0), np.int64(3), G)
    np.testing.assert_array_equal(G, [4 * D[0], np.zeros(4), 6 * D[0]])


def test_at_most_two_specializations():
    """float32 and float64 only: int64 indices and scalars, C-contiguous arrays,
    and the helper called with one index type from both callers."""
    for dtype in DTYPES:  # make sure both dtypes have run, even alone
        _, Xdata, Xindices, Xindptr = random_csr(11, 10, 8, dtype)
        rows = np.arange(10, dtype=np.int64)
        W = np.ones((8, 3), dtype=dtype)
        out = np.empty((10, 3), dtype=dtype)
        KS.csr_rows_dot(Xdata, Xindices, Xindptr, rows, W, out)
        KS.csr_range_dot(Xdata, Xindices, Xindptr, np.int64(0), np.int64(10), W, out)
        KS.csr_rows_tdot_range(Xdata, Xindices, Xindptr, rows, out, np.int64(0), np.int64(8),
                               np.empty((8, 3), dtype=dtype))
    for kernel in (KS.csr_row_dot, KS.csr_rows_dot, KS.csr_range_dot, KS.csr_rows_tdot_range):
        sigs = kernel.signatures
        # (the helper compiles only when a caller is not loaded from the disk cache)
        low = 0 if kernel is KS.csr_row_dot else 1
        assert low <= len(sigs) <= 2, (kernel.__name__, sigs)
        assert {str(sig[0].dtype) for sig in sigs} <= {"float32", "float64"}
