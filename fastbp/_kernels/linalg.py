"""Matrix products: BLAS unless the shape is one OpenBLAS handles badly.

OpenBLAS costs about a microsecond per call before it does any arithmetic, which
dominates products like (rows x 64) @ (64 x 1) -- the output layer of a binary
classifier -- or the outer product of the delta recursion through it.  Below
``SMALL_MACS`` multiply-adds a plain loop is faster.  Weight gradients of a
block of rows of W (``gemm_tn_cols``) call ?gemm directly on the column block
in place (``gemm_rm``), or loops for shapes where that is slow.  The choice
depends only on the shapes, so it is the same for every thread count.

Every BLAS call goes through the symbol ``fastbp._blas`` binds (``_xgemm``)
but one: on OpenBLAS, ``gemm_nn`` leaves single-column products to numba's
``np.dot`` (``?gemv``, ``?dot``), which numba always sends to scipy's OpenBLAS;
with MKL bound, the flag ``_vectors_by_gemm`` sends them to ``_xgemm`` too.

Pure multiply-add loops: compiled with ``FASTMATH_SAFE`` (no nnan/ninf).
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas

from .. import _blas
from .._config import FASTMATH_SAFE, jit

ensure_blas()  # numba's BLAS bridge (scipy.linalg.cython_blas), as np.dot needs
_blas.install()  # binds the symbol every product below calls (before any kernel loads)

_NO, _TR = ord("N"), ord("T")
SMALL_MACS = 16384
FEW_ROWS = 32  # gemm_tn_cols: loops up to this many rows of C, BLAS above


@intrinsic
def _xgemm(typingctx, ta, tb, m, n, k, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """Column-major BLAS ?gemm on raw buffers (``fastbp._blas.GEMM_SYMBOL``: numba's
    own ``numba_xxgemm`` bridge, the one ``np.dot`` calls, or MKL's through an
    adapter of the same signature): C = op(A) @ op(B) + beta C with the operands starting
    at element offsets ``*_off`` of the arrays A, B, C (any layout, one dtype) and
    leading dimensions ``ld*``.  ``ta``/``tb`` are ord("N") or ord("T")."""
    if not (isinstance(A, types.Array) and A.dtype in (types.float32, types.float64)
            and B.dtype == A.dtype and C.dtype == A.dtype and C.mutable):
        return None
    dtype = A.dtype
    sig = types.void(ta, tb, m, n, k, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc)

    def codegen(context, builder, sig, args):
        (ta_, tb_, m_, n_, k_, A_, ao_, lda_, B_, bo_, ldb_, beta_, C_, co_, ldc_) = args
        tys = sig.args
        char = ir.IntType(8)
        voidp = char.as_pointer()
        intp = cgutils.intp_t
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp,
                                                voidp, voidp, intp, voidp, intp,
                                                voidp, voidp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _blas.GEMM_SYMBOL)

        def as_intp(val, ty):
            return context.cast(builder, val, ty, types.intp)

        def ptr(arr, arrty, offset, offty):
            data = context.make_array(arrty)(context, builder, arr).data
            data = builder.gep(data, [as_intp(offset, offty)])
            return builder.bitcast(data, voidp)

        def scalar_slot(val, ty):
            return builder.bitcast(
                cgutils.alloca_once_value(builder, context.cast(builder, val, ty, dtype)),
                voidp)

        def as_char(val, ty):
            return builder.trunc(as_intp(val, ty), char)

        kind = ir.Constant(char, ord("s" if dtype == types.float32 else "d"))
        alpha = builder.bitcast(
            cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0)), voidp)
        res = builder.call(fn, (
            kind, as_char(ta_, tys[0]), as_char(tb_, tys[1]),
            as_intp(m_, tys[2]), as_intp(n_, tys[3]), as_intp(k_, tys[4]),
            alpha, ptr(A_, tys[5], ao_, tys[6]), as_intp(lda_, tys[7]),
            ptr(B_, tys[8], bo_, tys[9]), as_intp(ldb_, tys[10]),
            scalar_slot(beta_, tys[11]),
            ptr(C_, tys[12], co_, tys[13]), as_intp(ldc_, tys[14])))
        # numba_xxgemm only fails for an unknown kind or a missing BLAS, both
        # excluded above (typing and ensure_blas at import).
        del res
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _vectors_by_gemm(typingctx):
    """Whether single-column products go through ``_xgemm`` too: the flag
    ``fastbp._blas.GEMM_VECTORS_SYMBOL`` (set with MKL), read at run time so
    that one compiled, cached kernel serves both backends."""
    def codegen(context, builder, sig, args):
        int32 = ir.IntType(32)
        flag = builder.load(context.get_c_value(builder, int32, _blas.GEMM_VECTORS_SYMBOL))
        return builder.icmp_signed("!=", flag, ir.Constant(int32, 0))

    return types.boolean(), codegen


@jit
def gemm_rm(trans_a, trans_b, m, n, k, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    """Row-major strided GEMM on flat buffers, without copies.

    C[m x n] (starting at element ``c_off`` of C, row stride ``ldc``) <-
    op(A) @ op(B) + beta * C, where op(A) is (m x k): the matrix stored row-major
    at A[a_off:] with row stride ``lda`` -- (m x k) if ``trans_a`` is False, or
    (k x m) and transposed if True; likewise op(B) (k x n).  Sub-blocks of a
    larger matrix (a block of columns) are passed by offset and the parent's
    row stride.  Mutates C.
    """
    if m == 0 or n == 0:
        return
    # Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T.
    _xgemm(_TR if trans_b else _NO, _TR if trans_a else _NO, n, m, k,
           B, b_off, max(ldb, 1), A, a_off, max(lda, 1), beta, C, c_off, max(ldc, 1))

@jit
def _row_stride(A):
    """Elements between the rows of the 2-D array A, at least 1 (BLAS's leading
    dimension); its rows must be contiguous, as every block the kernels pass is."""
    return max(A.strides[0] // A.itemsize, 1)


@jit(fastmath=FASTMATH_SAFE)
def gemm_nn(A, B, C):
    """C <- A @ B.  Shapes: A (m, k), B (k, n), C (m, n).  Mutates C."""
    m, k = A.shape
    n = B.shape[1]
    if n == 1 and not _vectors_by_gemm():
        # one column on OpenBLAS: numba's np.dot calls ?gemv (?dot for one row),
        # 1.0-2.5x faster than the loop (>= 64x16)
        np.dot(A, B, C)
    elif n == 1 or m * n * k >= SMALL_MACS:
        # np.dot's ?gemm call, through the bound BLAS; with MKL the single
        # columns too, which np.dot would send to OpenBLAS whatever is bound
        if m > 0:
            _xgemm(_NO, _NO, n, m, k, B, 0, _row_stride(B), A, 0, _row_stride(A), 0.0, C, 0,
                   _row_stride(C))
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
def gemm_few_rows(A, B, C):
    """C <- A @ B for a few rows of A, with loops (no BLAS call: for a handful
    of rows OpenBLAS's fixed cost, packing all of B, is most of the time).
    Shapes: A (m, k), B (k, n), C (m, n).  Mutates C.

    Four rows of B at a time, applied to every row of C: B is read once for
    all the rows (row by row it came from L2 for each), and C is loaded and
    stored once per four multiply-adds (one at a time, the stores bound the
    loop).  Measured 3x faster than either, for 10 rows x 784 x 128.
    """
    m, k = A.shape
    n = B.shape[1]
    k4 = k - k % 4
    for i in range(m):
        c = C[i]
        for j in range(n):
            c[j] = 0.0
    for p in range(0, k4, 4):
        b0 = B[p]
        b1 = B[p + 1]
        b2 = B[p + 2]
        b3 = B[p + 3]
        for i in range(m):
            a0 = A[i, p]
            a1 = A[i, p + 1]
            a2 = A[i, p + 2]
            a3 = A[i, p + 3]
            c = C[i]
            for j in range(n):
                c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
    for p in range(k4, k):
        bp = B[p]
        for i in range(m):
            ap = A[i, p]
            c = C[i]
            for j in range(n):
                c[j] += ap * bp[j]


@jit(fastmath=FASTMATH_SAFE)
def gemm_nt(A, B, C):
    """C <- A @ B.T.  Shapes: A (m, k), B (n, k), C (m, n).  Mutates C."""
    m, k = A.shape
    n = B.shape[0]
    if m * n * k >= SMALL_MACS:  # np.dot(A, B.T, C)'s call, through the bound BLAS
        _xgemm(_TR, _NO, n, m, k, B, 0, _row_stride(B), A, 0, _row_stride(A), 0.0, C, 0,
               _row_stride(C))
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
def gemm_tn_cols(A, c0, c1, B, C):
    """C <- A[:, c0:c1].T @ B.  Shapes: A (r, *), B (r, n), C (c1-c0, n), all C-contiguous.

    BLAS reads the column block in place (``gemm_rm`` with A's row stride): no
    copy.  For a few rows of C (a narrow input layer, or its share of one work
    block) OpenBLAS runs at a quarter of its speed; there, sums of outer products
    four batch rows at a time (one load and store of C per four multiply-adds)
    are up to 2.7x faster; a single column of C is a loop of row-vector
    updates (``gemm_rm`` would call ?gemm where np.dot calls ?gemv, 7x slower).
    The choice depends on the shapes only.  Mutates C.
    """
    r = A.shape[0]
    w = c1 - c0
    n = B.shape[1]
    if n == 1:  # a matrix-vector product (the output layer of a binary model)
        c = C.reshape(w)  # a contiguous view (C[:, 0] would not vectorize)
        for i in range(w):
            c[i] = 0.0
        for q in range(r):
            a = A[q, c0:c1]
            bq = B[q, 0]
            for i in range(w):
                c[i] += a[i] * bq
        return
    if w > FEW_ROWS or n < 8:
        gemm_rm(True, False, w, n, r, A, c0, A.shape[1], B, 0, n, 0.0, C, 0, n)
        return
    for i in range(w):
        for j in range(n):
            C[i, j] = 0.0
    q = 0
    while q + 4 <= r:
        b0 = B[q]
        b1 = B[q + 1]
        b2 = B[q + 2]
        b3 = B[q + 3]
        for i in range(w):
            a0 = A[q, c0 + i]
            a1 = A[q + 1, c0 + i]
            a2 = A[q + 2, c0 + i]
            a3 = A[q + 3, c0 + i]
            c = C[i]
            for j in range(n):
                c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        q += 4
    while q < r:
        b0 = B[q]
        for i in range(w):
            a0 = A[q, c0 + i]
            c = C[i]
            for j in range(n):
                c[j] += a0 * b0[j]
        q += 1


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
