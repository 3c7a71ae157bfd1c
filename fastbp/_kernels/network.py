"""The compiled epoch: every mini-batch of (a bounded part of) an epoch in one call.

Data layout (see ``fastbp/_network.py``):

* ``sizes`` int64 (L+1,): units per layer, input first.  Layer l (0..L-1) maps
  units l -> l+1 with W_l (sizes[l], sizes[l+1]) and b_l (sizes[l+1],).
* ``params`` (n_params,): all W_l raveled (C order), then all b_l -- the order of
  scikit-learn's ``_pack``.  ``coefs_``/``intercepts_`` are views of it.
* ``acts`` holds a (cap, sizes[k]) block per unit layer k = 0..L (block 0 is the
  gathered input batch); ``deltas`` a (cap, sizes[k]) block per k = 1..L.
* The input is ``X`` dense (n, n_features) *or* CSR ``(Xdata, Xindices,
  Xindptr)``: the other is empty.  One compiled specialization per float dtype
  serves both; a CSR batch is densified row by row into block 0.

A mini-batch is split into ``n_blocks`` (J) work blocks.  J depends on the
machine, never on ``n_jobs`` (see ``fastbp._threads.n_blocks``), so every BLAS
call has the same shape for any thread count and the weights come out bitwise
identical whatever the number of threads (OpenBLAS's sgemm rounds row blocks of
different sizes differently, so splitting by thread would not be):

1. rows (a parallel region): block j holds batch rows [j*b/J, (j+1)*b/J).  Its
   thread gathers them, runs the forward pass (``np.dot`` into its row slice,
   bias, activation), the output loss and delta, and the delta recursion
   delta_k = (delta_{k+1} W_k^T) * f'(a_k) back to the first hidden layer.
2. gradients and the step, on one of two schedules (``partials`` has J rows or
   none; ``fastbp._network.uses_partials`` picks the one that moves fewer
   values between cores, which is a function of the shapes and J only):

   * parameter-owned (a second parallel region; larger networks): block j holds
     rows [j*fan_in/J, (j+1)*fan_in/J) of every W_l and the matching slice of
     every b_l.  Its thread computes those rows of a_l^T delta_{l+1} over the
     whole batch (BLAS on the column block in place, so the sum over batch
     rows is never split), then applies the optimizer step to exactly them.
   * per-block partials (small networks): still in region 1, block j computes
     a_l^T delta_{l+1} over its own rows into ``partials[j]`` while they are
     in its cache; then, serially, the partials are summed in block order and
     one optimizer step covers all parameters.  One parallel region per
     mini-batch instead of two, and no activations cross cores.

No atomics, nothing allocated per batch.  BLAS runs single-threaded inside the
regions (``fastbp._threads`` pins it for the call), so threads are never
oversubscribed.
"""

import numpy as np
from numba import prange

from .._config import FASTMATH_SAFE, jit, jit_variants
from .activations import bias_activate, mul_derivative
from .linalg import column_sums, gemm_nn, gemm_nt, gemm_tn_cols
from .losses import loss_and_delta, output_activate
from .optimizers import ADAM, HP_ALPHA, HP_BETA1, HP_BETA2, HP_CLIP_EPS, HP_LR
from .optimizers import HP_LR_INIT, adam_rate, step_range


@jit
def layer_offsets(sizes, cap):
    """Offsets of W_l, b_l in params and of the per-layer blocks in acts/deltas.

    Returns int64 array (5, L+1): rows w_off, b_off, a_off, d_off, r_off
    (r_off: first row of W_l in the per-row squared-norm vector; r_off[L] is the total).
    """
    n_layers = sizes.shape[0] - 1
    off = np.zeros((5, n_layers + 1), dtype=np.int64)
    n_coef = 0
    for l in range(n_layers):
        n_coef += sizes[l] * sizes[l + 1]
    w = 0
    b = n_coef
    a = 0
    d = 0
    r = 0
    for k in range(n_layers + 1):
        off[2, k] = a
        a += cap * sizes[k]
        if k >= 1:
            off[3, k] = d
            d += cap * sizes[k]
        if k < n_layers:
            off[0, k] = w
            off[1, k] = b
            off[4, k] = r
            w += sizes[k] * sizes[k + 1]
            b += sizes[k + 1]
            r += sizes[k]
    off[4, n_layers] = r
    return off


@jit
def densify_csr_row(Xdata, Xindices, Xindptr, i, dst):
    """dst <- dense CSR row i (duplicates sum, as in scipy).  Mutates dst."""
    for j in range(dst.shape[0]):
        dst[j] = 0.0
    for k in range(Xindptr[i], Xindptr[i + 1]):
        dst[Xindices[k]] += Xdata[k]


@jit
def gather_rows(X, Xdata, Xindices, Xindptr, rows_idx, A0):
    """A0[r] <- X[rows_idx[r]] (dense) or the densified CSR row.  Mutates A0."""
    n_feat = A0.shape[1]
    if Xindptr.shape[0] > 0:
        for r in range(rows_idx.shape[0]):
            densify_csr_row(Xdata, Xindices, Xindptr, rows_idx[r], A0[r])
    else:
        for r in range(rows_idx.shape[0]):
            src = X[rows_idx[r]]  # row views: the copy vectorizes
            dst = A0[r]
            for j in range(n_feat):
                dst[j] = src[j]


@jit(fastmath=FASTMATH_SAFE)
def sum_squares_rows(params, w0, n_rows, width, rowsq, r0):
    """rowsq[r0 + i] = sum_j W[i, j]^2 for rows i of the W block at params[w0:].

    A pure multiply-add reduction: FASTMATH_SAFE lets it vectorize (a serial
    chain cost ~1 ns per weight per mini-batch); the order is still fixed by the
    code, so results stay reproducible and independent of the thread count.
    """
    for i in range(n_rows):
        s = 0.0
        row = params[w0 + i * width:w0 + (i + 1) * width]
        for j in range(width):
            s += row[j] * row[j]
        rowsq[r0 + i] = s


def _train_batches(X, Xdata, Xindices, Xindptr, Y, sw, order, sizes, params,
                   moments, acts, deltas, raw, partials, rowsq, rowloss,
                   act_code, out_code, opt_code, hp, adam_t, loss_sum,
                   batch_size, batch_lo, batch_hi, n_blocks):
    """Run mini-batches [batch_lo, batch_hi) of an epoch; return
    ``loss_sum + sum(batch_loss * batch_len)``, added batch by batch.

    ``loss_sum`` is the running sum of the epoch's earlier calls: continuing it
    here (rather than adding per-call sums in Python) makes the epoch's loss the
    same left-to-right sum however the epoch was split into calls, so
    ``loss_curve_`` is bitwise independent of the Pacer and the thread count.

    Shapes: Y (n_samples, n_out), sw (n_samples,), order (m,) sample indices of
    this epoch (mini-batch b is order[b*batch_size : (b+1)*batch_size]);
    moments (n_moments, n_params); acts/deltas/raw/rowsq/rowloss as in the module
    docstring; partials (J or 0, n_params) per-block gradients (J rows select
    that schedule); hp float64 (N_HP,); adam_t int64 (1,) Adam's step counter.
    Mutates params, moments, adam_t, hp[HP_LR] (adam: the rate of the last
    step, the only place it is computed) and the workspaces; with opt_code NONE it
    leaves the gradient of the (single) batch in ``raw`` instead of stepping.
    Stops early (returning a non-finite sum) if a batch loss is not finite.
    """
    n_layers = sizes.shape[0] - 1
    cap = batch_size
    off = layer_offsets(sizes, cap)
    m = order.shape[0]
    alpha = hp[HP_ALPHA]
    clip_eps = hp[HP_CLIP_EPS]
    J = n_blocks
    n_rowsq = off[4, n_layers]
    n_coef = off[1, 0]
    n_params = raw.shape[0]
    by_partials = partials.shape[0] > 0
    # A typed zero for offsets: a literal 0 in a call would compile another
    # specialization of the callee (numba types it Literal[int](0)).
    zero = np.int64(0)

    # ||W||^2 of the current weights, for the L2 term of the first batch.
    for l in range(n_layers):
        sum_squares_rows(params, off[0, l], sizes[l], sizes[l + 1], rowsq, off[4, l])
    sumsq = 0.0
    for i in range(n_rowsq):
        sumsq += rowsq[i]

    for b in range(batch_lo, batch_hi):
        start = b * batch_size
        bsz = min(batch_size, m - start)
        sw_sum = 0.0
        for r in range(bsz):
            sw_sum += sw[order[start + r]]

        # Region 1: block j owns a block of batch rows.
        for j in prange(J):
            r0 = j * bsz // J
            r1 = (j + 1) * bsz // J
            if r1 > r0:
                rows_idx = order[start + r0:start + r1]
                A = acts[off[2, 0]:off[2, 0] + bsz * sizes[0]].reshape((bsz, sizes[0]))
                gather_rows(X, Xdata, Xindices, Xindptr, rows_idx, A[r0:r1])
                for l in range(n_layers):
                    fi = sizes[l]
                    fo = sizes[l + 1]
                    Ain = acts[off[2, l]:off[2, l] + bsz * fi].reshape((bsz, fi))
                    Aout = acts[off[2, l + 1]:off[2, l + 1] + bsz * fo].reshape((bsz, fo))
                    W = params[off[0, l]:off[0, l] + fi * fo].reshape((fi, fo))
                    bias = params[off[1, l]:off[1, l] + fo]
                    gemm_nn(Ain[r0:r1], W, Aout[r0:r1])
                    if l < n_layers - 1:
                        bias_activate(Aout[r0:r1], bias, act_code)
                    else:
                        output_activate(Aout[r0:r1], bias, out_code)
                        D = deltas[off[3, l + 1]:off[3, l + 1] + bsz * fo].reshape((bsz, fo))
                        loss_and_delta(Aout[r0:r1], Y, sw, rows_idx, D[r0:r1],
                                       rowloss[r0:r1], out_code, clip_eps)
                for k in range(n_layers - 1, 0, -1):
                    fk = sizes[k]
                    fn = sizes[k + 1]
                    Dn = deltas[off[3, k + 1]:off[3, k + 1] + bsz * fn].reshape((bsz, fn))
                    Dk = deltas[off[3, k]:off[3, k] + bsz * fk].reshape((bsz, fk))
                    Ak = acts[off[2, k]:off[2, k] + bsz * fk].reshape((bsz, fk))
                    W = params[off[0, k]:off[0, k] + fk * fn].reshape((fk, fn))
                    gemm_nt(Dn[r0:r1], W, Dk[r0:r1])
                    mul_derivative(Ak[r0:r1], Dk[r0:r1], act_code)
            if by_partials:  # this block's share of every gradient, while hot in cache
                for l in range(n_layers):
                    fi = sizes[l]
                    fo = sizes[l + 1]
                    A = acts[off[2, l]:off[2, l] + bsz * fi].reshape((bsz, fi))
                    D = deltas[off[3, l + 1]:off[3, l + 1] + bsz * fo].reshape((bsz, fo))
                    G = partials[j, off[0, l]:off[0, l] + fi * fo].reshape((fi, fo))
                    gemm_tn_cols(A[r0:r1], zero, fi, D[r0:r1], G)  # zeroes G if no rows
                    column_sums(D[r0:r1], zero, fo, partials[j, off[1, l]:off[1, l] + fo])

        data_loss = 0.0
        for r in range(bsz):
            data_loss += rowloss[r]
        batch_loss = data_loss / sw_sum + 0.5 * alpha * sumsq / sw_sum
        loss_sum += batch_loss * bsz
        if not np.isfinite(batch_loss):
            return loss_sum

        lr_t = hp[HP_LR]
        if opt_code == ADAM:
            adam_t[0] += 1
            lr_t = adam_rate(hp[HP_LR_INIT], hp[HP_BETA1], hp[HP_BETA2], adam_t[0])
            hp[HP_LR] = lr_t

        if by_partials:
            # Serial: the sum of the blocks' partials in block order, then one
            # step over all parameters (a few thousand: less than a region costs).
            # (Loops, not ``total[:] = partials[0]``: numba's slice assignment
            # compiles a shape-error message builder that took 3 s.)
            total = raw[:n_params]
            first = partials[0]
            for p in range(n_params):
                total[p] = first[p]
            for jj in range(1, J):
                part = partials[jj]
                for p in range(n_params):
                    total[p] += part[p]
            step_range(params, raw, moments, zero, n_coef, alpha, sw_sum, opt_code, hp, lr_t)
            step_range(params, raw, moments, n_coef, n_params, 0.0, sw_sum, opt_code, hp,
                       lr_t)
            for l in range(n_layers):
                sum_squares_rows(params, off[0, l], sizes[l], sizes[l + 1], rowsq, off[4, l])
        else:
            # Region 2: block j owns rows of every W_l and a slice of every b_l.
            for j in prange(J):
                for l in range(n_layers):
                    fi = sizes[l]
                    fo = sizes[l + 1]
                    i0 = j * fi // J
                    i1 = (j + 1) * fi // J
                    D = deltas[off[3, l + 1]:off[3, l + 1] + bsz * fo].reshape((bsz, fo))
                    if i1 > i0:
                        w = i1 - i0
                        A = acts[off[2, l]:off[2, l] + bsz * fi].reshape((bsz, fi))
                        G = raw[off[0, l] + i0 * fo:off[0, l] + i1 * fo].reshape((w, fo))
                        gemm_tn_cols(A, i0, i1, D, G)
                        p0 = off[0, l] + i0 * fo
                        step_range(params, raw, moments, p0, p0 + w * fo, alpha, sw_sum,
                                   opt_code, hp, lr_t)
                        sum_squares_rows(params, p0, w, fo, rowsq, off[4, l] + i0)
                    c0 = j * fo // J
                    c1 = (j + 1) * fo // J
                    if c1 > c0:
                        q0 = off[1, l]
                        column_sums(D, c0, c1, raw[q0 + c0:q0 + c1])
                        step_range(params, raw, moments, q0 + c0, q0 + c1, 0.0, sw_sum,
                                   opt_code, hp, lr_t)

        sumsq = 0.0
        for i in range(n_rowsq):
            sumsq += rowsq[i]
    return loss_sum


def _predict(X, Xdata, Xindices, Xindptr, sizes, params, out, ws,
             act_code, out_code, block, n_threads):
    """Forward pass of every row into ``out`` (n_samples, n_out), in row blocks.

    ws (n_threads, 3, block * max_width) per-thread ping-pong buffers (slot 2 is
    the densified input for CSR).  Thread t takes blocks t, t+T, ...
    Mutates out and ws.  Returns None.
    """
    n_layers = sizes.shape[0] - 1
    n = out.shape[0]
    off = layer_offsets(sizes, 1)
    n_blocks = (n + block - 1) // block
    T = n_threads
    sparse = Xindptr.shape[0] > 0
    for t in prange(T):
        for blk_id in range(t, n_blocks, T):
            r0 = blk_id * block
            r1 = min(r0 + block, n)
            rows = r1 - r0
            if sparse:
                Xin = ws[t, 2, :rows * sizes[0]].reshape((rows, sizes[0]))
                for r in range(rows):
                    densify_csr_row(Xdata, Xindices, Xindptr, r0 + r, Xin[r])
            else:
                Xin = X[r0:r1]
            for l in range(n_layers):
                fi = sizes[l]
                fo = sizes[l + 1]
                W = params[off[0, l]:off[0, l] + fi * fo].reshape((fi, fo))
                bias = params[off[1, l]:off[1, l] + fo]
                if l == n_layers - 1:
                    Aout = out[r0:r1]
                else:
                    Aout = ws[t, l % 2, :rows * fo].reshape((rows, fo))
                if l == 0:
                    gemm_nn(Xin, W, Aout)
                else:
                    Ain = ws[t, (l - 1) % 2, :rows * fi].reshape((rows, fi))
                    gemm_nn(Ain, W, Aout)
                if l < n_layers - 1:
                    bias_activate(Aout, bias, act_code)
                else:
                    output_activate(Aout, bias, out_code)


train_batches_serial, train_batches_parallel = jit_variants(_train_batches)
predict_serial, predict_parallel = jit_variants(_predict)
