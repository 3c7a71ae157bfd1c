"""The compiled epoch: every mini-batch of (a bounded part of) an epoch in one call.

Data layout (see ``fastbp/_network.py``):

* ``sizes`` int64 (L+1,): units per layer, input first.  Layer l (0..L-1) maps
  units l -> l+1 with W_l (sizes[l], sizes[l+1]) and b_l (sizes[l+1],).
* ``params`` (n_params,): all W_l raveled (C order), then all b_l -- the order of
  scikit-learn's ``_pack``.  ``coefs_``/``intercepts_`` are views of it.
* ``acts`` holds a (cap, sizes[k]) block per unit layer k = 0..L (block 0 is the
  gathered input batch); ``deltas`` a (cap, sizes[k]) block per k = 1..L;
  ``grad_sums`` (n_params,) the batch sums a_l^T delta_{l+1} and of delta_{l+1},
  laid out like ``params``.  ``layer_offsets`` says where each block starts and
  ``block`` views one; nothing else computes an offset.
* The input is ``X`` dense (n, n_features) *or* CSR ``(Xdata, Xindices,
  Xindptr)``: the other is empty.  A dense batch is gathered into block 0; a CSR batch is never
  densified: the first layer's product and weight gradient run over its
  non-zeros (``fastbp._kernels.sparse``), block 0 is empty and the gradient
  takes the parameter-owned schedule.

A mini-batch is split into ``n_blocks`` (J) work blocks.  J depends on the
machine's CPU count, never on ``n_jobs`` (see ``fastbp._threads.n_blocks``), so every BLAS
call has the same shape for any thread count and the weights come out bitwise
identical whatever the number of threads (OpenBLAS's sgemm rounds row blocks of
different sizes differently, so splitting by thread would not be):

1. rows (a parallel region): block j holds batch rows [j*b/J, (j+1)*b/J).  Its
   thread gathers them, runs the forward pass (``gemm_nn`` into its row slice,
   bias, activation), the output loss and delta, and the delta recursion
   delta_k = (delta_{k+1} W_k^T) * f'(a_k) back to the first hidden layer
   (``forward_backward_rows``).
2. gradients and the step, on one of two schedules (``partials`` is (J,
   n_params) or empty 1-D; ``fastbp._network.uses_partials`` picks the one
   that moves fewer values between cores, a function of the shapes and J only):

   * parameter-owned (a second parallel region; larger networks): block j holds
     rows [j*fan_in/J, (j+1)*fan_in/J) of every W_l and the matching slice of
     every b_l.  Its thread computes those rows of a_l^T delta_{l+1} over the
     whole batch (BLAS on the column block in place, so the sum over batch
     rows is never split), then applies the optimizer step to exactly them
     (``owned_gradient_and_step``).
   * per-block partials (small networks): still in region 1, block j computes
     a_l^T delta_{l+1} over its own rows into ``partials[j]`` while they are
     in its cache (``rows_gradient``); then, serially, the partials are summed
     in block order and one optimizer step covers all parameters
     (``sum_partials_and_step``).  One parallel region per mini-batch instead
     of two, and no activations cross cores.

What a fit does not use is not compiled.  numba drops a branch before typing
the body when its test is known from the argument types alone: ``x is None``
on an argument typed None, or ``x.ndim == 2`` on an array argument (its dead
branch pruning; a test on anything else, or on an array's value, is not).
So Python passes ``None`` for the CSR arrays of dense input, and ``partials``
is 2-D on its schedule and an empty 1-D array on the parameter-owned one: the
dense specialization never types the CSR products, nor one schedule the
other's (less to compile for every fit).  Empty CSR arrays are still
accepted (the branches then test the length at run time).  So a build has a
specialization per dtype and per (input kind, schedule) it has run.

No atomics, nothing allocated per batch.  BLAS runs single-threaded inside the
regions (``fastbp._threads`` pins it for the call), so threads are never
oversubscribed.
"""

import numpy as np
from numba import prange

from .._config import FASTMATH_SAFE, jit, jit_build, jit_variants
from .activations import GELU, bias_activate, bias_activate_any, bias_activate_with_derivative
from .activations import mul_derivative, mul_derivative_any, mul_rows
from .dropout import apply_mask
from .linalg import column_sums, gemm_few_rows, gemm_nn, gemm_nt, gemm_tn_cols
from .losses import loss_and_delta, loss_and_delta_any, output_activate
from .sparse import csr_range_dot, csr_rows_dot, csr_rows_tdot_range
from .optimizers import ADAM, ADAMW, HYPER_ALPHA, HYPER_BETA1, HYPER_BETA2, HYPER_CLIP_EPS
from .optimizers import HYPER_HUBER_DELTA, HYPER_LR, HYPER_LR_INIT, HYPER_WEIGHT_DECAY
from .optimizers import SUMS, adam_rate, step_range


# Parameters per optimizer-step chunk in the parameter-owned schedule: the
# chunk's weights, gradient and moments (4-5 arrays) stay in a core's L2.
STEP_CHUNK = 8192


@jit
def layer_offsets(sizes, cap, input_cap):
    """Where each layer's blocks start in the flat buffers: the one place this is
    computed (``fastbp._network`` calls it too).  ``cap`` rows per activation
    and delta block, ``input_cap`` for the input block (the gathered dense
    batch; 0 for CSR input, which the first layer reads in place).

    Returns five int64 arrays ``(w_off, b_off, a_off, d_off, sq_off)``:

    * ``w_off[l]``, ``b_off[l]`` (l = 0..L-1): W_l and b_l in ``params`` (and in
      the gradient sums); ``w_off[L]`` = number of weights, ``b_off[L]`` = of
      parameters.
    * ``a_off[k]`` (k = 0..L): the (cap, sizes[k]) block of unit layer k in
      ``acts``; ``d_off[k]`` (k = 1..L) its delta block in ``deltas``;
      ``a_off[L+1]``, ``d_off[L+1]`` are the buffers' lengths.
    * ``sq_off[l]``: first row of W_l in the per-row squared-norm vector;
      ``sq_off[L]`` its length.
    """
    n_layers = sizes.shape[0] - 1
    w_off = np.zeros(n_layers + 1, dtype=np.int64)
    b_off = np.zeros(n_layers + 1, dtype=np.int64)
    sq_off = np.zeros(n_layers + 1, dtype=np.int64)
    a_off = np.zeros(n_layers + 2, dtype=np.int64)
    d_off = np.zeros(n_layers + 2, dtype=np.int64)
    n_coef = 0
    for l in range(n_layers):
        n_coef += sizes[l] * sizes[l + 1]
    b_off[0] = n_coef
    for l in range(n_layers):
        w_off[l + 1] = w_off[l] + sizes[l] * sizes[l + 1]
        b_off[l + 1] = b_off[l] + sizes[l + 1]
        sq_off[l + 1] = sq_off[l] + sizes[l]
    a_off[1] = input_cap * sizes[0]
    for k in range(1, n_layers + 1):
        a_off[k + 1] = a_off[k] + cap * sizes[k]
    for k in range(1, n_layers + 1):  # d_off[1] = 0: deltas start at layer 1
        d_off[k + 1] = d_off[k] + cap * sizes[k]
    return w_off, b_off, a_off, d_off, sq_off


@jit
def block(buf, start, rows, cols):
    """The (rows, cols) C-ordered matrix stored at ``buf[start:]``, as a view.

    Every layer's weights, activations, deltas and gradients live in flat
    buffers at the offsets of ``layer_offsets``; this is how kernels see one.
    """
    return buf[start:start + rows * cols].reshape((rows, cols))


@jit
def gather_rows(X, rows_idx, A0):
    """A0[r] <- X[rows_idx[r]] (dense input).  Mutates A0."""
    n_feat = A0.shape[1]
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


@jit
def refresh_rowsq(params, sizes, w_off, sq_off, rowsq):
    """rowsq <- the squared norm of every row of every W_l.  Returns None."""
    for l in range(sizes.shape[0] - 1):
        sum_squares_rows(params, w_off[l], sizes[l], sizes[l + 1], rowsq, sq_off[l])


@jit
def squared_norm(params, sizes, w_off, sq_off, rowsq):
    """||W||^2 over every layer's weights (not the biases), row sums in order.

    Refreshes ``rowsq`` from ``params`` first.  Returns a float.
    """
    refresh_rowsq(params, sizes, w_off, sq_off, rowsq)
    return sum_rowsq(rowsq, sq_off[sizes.shape[0] - 1])


@jit
def sum_rowsq(rowsq, n):
    """sum(rowsq[:n]) left to right: ||W||^2 from the per-row sums."""
    total = 0.0
    for i in range(n):
        total += rowsq[i]
    return total


# --- Where the core and the extended kernels differ --------------------------
# The core kernels (the default path: scikit-learn's activations and losses, no
# dropout) link only the ``*_core`` leaves below; the extended kernels link the
# ``*_extended`` ones, which handle every code.  Both are built from the same
# bodies (``jit_build`` / ``jit_variants`` with other callees): numba optimizes
# every linked function again inside each kernel, so the options the default
# path never uses would otherwise add their compile time to every cold start.
# Python picks the build (``fastbp._kernels.uses_extended``).

@jit
def hidden_forward_core(A_out, bias, pre, pre_start, rows_idx, dropout_key, act_code, rate,
                        layer, bsz, r0, r1):
    """A_out <- f(A_out + bias) for a hidden layer.  Returns None."""
    bias_activate(A_out, bias, act_code)


@jit
def hidden_forward_extended(A_out, bias, pre, pre_start, rows_idx, dropout_key, act_code,
                            rate, layer, bsz, r0, r1):
    """``hidden_forward_core`` for every activation.  Where the backward pass
    cannot compute f' from the activations (gelu; a layer with dropout, whose
    mask then changes them), f'(z) goes into ``pre`` (its (bsz, width) block
    at ``pre_start``, rows r0:r1); then dropout's mask at ``rate``.  Returns None."""
    if act_code == GELU or rate > 0:
        P = block(pre, pre_start, bsz, A_out.shape[1])[r0:r1]
        bias_activate_with_derivative(A_out, bias, act_code, P)
    else:
        bias_activate_any(A_out, bias, act_code)
    if rate > 0:
        apply_mask(A_out, rows_idx, dropout_key, layer, rate)


@jit
def hidden_backward_core(D_k, A_k, pre, pre_start, rows_idx, dropout_key, act_code, rate,
                         layer, bsz, r0, r1):
    """D_k <- D_k * f'(z_k), f' from the activations A_k.  Returns None."""
    mul_derivative(A_k, D_k, act_code)


@jit
def hidden_backward_extended(D_k, A_k, pre, pre_start, rows_idx, dropout_key, act_code,
                             rate, layer, bsz, r0, r1):
    """``hidden_backward_core`` for every activation: the forward pass's mask
    (the same key), then f' from ``pre`` where the forward pass kept it."""
    if rate > 0:
        apply_mask(D_k, rows_idx, dropout_key, layer, rate)
    if act_code == GELU or rate > 0:
        mul_rows(block(pre, pre_start, bsz, D_k.shape[1])[r0:r1], D_k)
    else:
        mul_derivative_any(A_k, D_k, act_code)


@jit
def output_loss_core(A, Y, sw, rows_idx, D, rowloss, code, clip_eps, huber_delta):
    """The output layer's loss and delta for the canonical codes."""
    loss_and_delta(A, Y, sw, rows_idx, D, rowloss, code, clip_eps)


# The bodies below call these names; the extended builds replace them.
hidden_forward = hidden_forward_core
hidden_backward = hidden_backward_core
output_loss = output_loss_core
activate = bias_activate
EXTENDED_LEAVES = {"hidden_forward": hidden_forward_extended,
                   "hidden_backward": hidden_backward_extended,
                   "output_loss": loss_and_delta_any,
                   "activate": bias_activate_any}


def _forward_backward_rows(X, Xdata, Xindices, Xindptr, Y, sw, rows_idx, sizes, params,
                           w_off, b_off, a_off, d_off, acts, deltas, pre, rowloss,
                           act_code, out_code, dropout, dropout_key, clip_eps, huber_delta,
                           bsz, r0, r1):
    """Rows [r0, r1) of a mini-batch of ``bsz`` rows: gather, forward pass, output
    loss and delta, and the delta recursion back to the first hidden layer.

    ``rows_idx`` are the sample indices of these rows.  Writes those rows of
    every activation and delta block, and ``rowloss[r0:r1]`` (the weighted
    per-row loss).  Reads ``params`` only.  Returns None.

    ``pre`` (laid out like ``deltas``, or empty) keeps, per hidden layer, f'(z)
    where the activations cannot give it in the backward pass: for gelu, and
    where the layer has dropout (``dropout[l]`` > 0, the rate of hidden layer
    l + 1).  A dropped unit is 0 in the activations and its
    delta is 0: the same mask multiplies both (``fastbp._kernels.dropout``).
    """
    n_layers = sizes.shape[0] - 1
    if Xindptr is None or Xindptr.shape[0] == 0:  # dense (None: see the module docstring)
        gather_rows(X, rows_idx, block(acts, a_off[0], bsz, sizes[0])[r0:r1])
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        A_out = block(acts, a_off[l + 1], bsz, fo)[r0:r1]
        # the CSR rows times W_0, no dense copy of them
        if l == 0 and Xindptr is not None and Xindptr.shape[0] > 0:
            csr_rows_dot(Xdata, Xindices, Xindptr, rows_idx, block(params, w_off[0], fi, fo),
                         A_out)
        else:
            gemm_nn(block(acts, a_off[l], bsz, fi)[r0:r1], block(params, w_off[l], fi, fo),
                    A_out)
        bias = params[b_off[l]:b_off[l] + fo]
        if l < n_layers - 1:
            hidden_forward(A_out, bias, pre, d_off[l + 1], rows_idx, dropout_key, act_code,
                           dropout[l], l + 1, bsz, r0, r1)
        else:
            output_activate(A_out, bias, out_code)
            output_loss(A_out, Y, sw, rows_idx, block(deltas, d_off[l + 1], bsz, fo)[r0:r1],
                        rowloss[r0:r1], out_code, clip_eps, huber_delta)
    for k in range(n_layers - 1, 0, -1):  # delta_k = (delta_{k+1} W_k^T) * f'(z_k)
        fk = sizes[k]
        fn = sizes[k + 1]
        D_k = block(deltas, d_off[k], bsz, fk)[r0:r1]
        gemm_nt(block(deltas, d_off[k + 1], bsz, fn)[r0:r1], block(params, w_off[k], fk, fn),
                D_k)
        hidden_backward(D_k, block(acts, a_off[k], bsz, fk)[r0:r1], pre, d_off[k], rows_idx,
                        dropout_key, act_code, dropout[k - 1], k, bsz, r0, r1)


forward_backward_rows = jit_build(_forward_backward_rows, None, "")
forward_backward_rows_extended = jit_build(_forward_backward_rows, EXTENDED_LEAVES,
                                           "_extended")


@jit
def rows_gradient(sizes, w_off, b_off, a_off, d_off, acts, deltas, grads, bsz, r0, r1):
    """The per-block-partials schedule, in the row region: the gradient sums
    a_l^T delta_{l+1} and column sums of delta_{l+1} over rows [r0, r1) only,
    into ``grads`` (one row of ``partials``), while those rows are in cache.
    Zeroes ``grads`` when the block has no rows.  Returns None.
    """
    n_layers = sizes.shape[0] - 1
    zero = np.int64(0)  # a literal 0 would compile another specialization of the callee
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        D = block(deltas, d_off[l + 1], bsz, fo)[r0:r1]
        gemm_tn_cols(block(acts, a_off[l], bsz, fi)[r0:r1], zero, fi, D,
                     block(grads, w_off[l], fi, fo))
        column_sums(D, zero, fo, grads[b_off[l]:b_off[l] + fo])


@jit
def sum_partials_and_step(partials, grad_sums, params, moments, rowsq, sizes, w_off,
                          sq_off, alpha, sw_sum, opt_code, hyper, lr_t):
    """The per-block-partials schedule, after the row region (serial): the
    blocks' partial gradients summed in block order into ``grad_sums``, one
    optimizer step over all parameters (a few thousand: less than a parallel
    region costs), and the rows' squared norms of the new weights.  Returns None.
    """
    n_layers = sizes.shape[0] - 1
    n_coef = w_off[n_layers]
    n_params = grad_sums.shape[0]
    # Loops, not ``grad_sums[:] = partials[0]``: numba's slice assignment
    # compiles a shape-error message builder, slow to compile.
    first = partials[0]
    for p in range(n_params):
        grad_sums[p] = first[p]
    for j in range(1, partials.shape[0]):
        part = partials[j]
        for p in range(n_params):
            grad_sums[p] += part[p]
    step_range(params, grad_sums, moments, np.int64(0), n_coef, alpha,
               hyper[HYPER_WEIGHT_DECAY], sw_sum, opt_code, hyper, lr_t)
    step_range(params, grad_sums, moments, n_coef, n_params, 0.0, 0.0, sw_sum, opt_code, hyper,
               lr_t)
    refresh_rowsq(params, sizes, w_off, sq_off, rowsq)


@jit
def owned_gradient_and_step(Xdata, Xindices, Xindptr, batch_idx, sizes, w_off, b_off, a_off,
                            d_off, sq_off, acts, deltas, grad_sums, params, moments, rowsq,
                            alpha, sw_sum, opt_code, hyper, lr_t, bsz, j, n_blocks):
    """The parameter-owned schedule, one block of the second region: block ``j``
    of ``n_blocks`` owns rows [j*fan_in/J, (j+1)*fan_in/J) of every W_l and the
    matching slice of every b_l.  It computes their gradient sums over the whole
    batch (BLAS on the column block of a_l in place, so the sum over the batch
    is never split), steps exactly those parameters and refreshes their rows'
    squared norms.  With CSR input (``Xindptr`` not empty) the first layer's
    rows are X_batch^T delta over the non-zeros in the block's feature range
    (``batch_idx``: the batch's sample indices).  Returns None.
    """
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        D = block(deltas, d_off[l + 1], bsz, fo)
        i0 = j * fi // n_blocks
        i1 = (j + 1) * fi // n_blocks
        if i1 > i0:
            p0 = w_off[l] + i0 * fo
            if l == 0 and Xindptr is not None and Xindptr.shape[0] > 0:
                csr_rows_tdot_range(Xdata, Xindices, Xindptr, batch_idx, D, i0, i1,
                                    block(grad_sums, p0, i1 - i0, fo))
            else:
                gemm_tn_cols(block(acts, a_off[l], bsz, fi), i0, i1, D,
                             block(grad_sums, p0, i1 - i0, fo))
            # The step, then the new rows' squared norms, a chunk of rows at a
            # time, so the norms read weights still in cache (one pass over a
            # wide W instead of two; the results are the same either way).
            chunk = max(1, STEP_CHUNK // fo)
            for c0 in range(i0, i1, chunk):
                c1 = min(c0 + chunk, i1)
                q0 = w_off[l] + c0 * fo
                step_range(params, grad_sums, moments, q0, q0 + (c1 - c0) * fo, alpha,
                           hyper[HYPER_WEIGHT_DECAY], sw_sum, opt_code, hyper, lr_t)
                sum_squares_rows(params, q0, c1 - c0, fo, rowsq, sq_off[l] + c0)
        c0 = j * fo // n_blocks
        c1 = (j + 1) * fo // n_blocks
        if c1 > c0:
            q0 = b_off[l]
            column_sums(D, c0, c1, grad_sums[q0 + c0:q0 + c1])
            step_range(params, grad_sums, moments, q0 + c0, q0 + c1, 0.0, 0.0, sw_sum, opt_code,
                       hyper, lr_t)


def _train_batches(X, Xdata, Xindices, Xindptr, Y, sw, order, sizes, params,
                   moments, acts, deltas, grad_sums, partials, rowsq, rowloss, pre,
                   act_code, out_code, opt_code, hyper, adam_t, dropout, dropout_key,
                   loss_sum, batch_size, batch_lo, batch_hi, n_blocks):
    """Run mini-batches [batch_lo, batch_hi) of an epoch; return
    ``loss_sum + sum(batch_loss * batch_len)``, added batch by batch.

    ``loss_sum`` is the running sum of the epoch's earlier calls: continuing it
    here (rather than adding per-call sums in Python) makes the epoch's loss the
    same left-to-right sum however the epoch was split into calls, so
    ``loss_curve_`` is bitwise independent of the Pacer and the thread count.

    Shapes: Y (n_samples, n_out), sw (n_samples,), order (m,) sample indices of
    this epoch (mini-batch b is order[b*batch_size : (b+1)*batch_size]);
    moments (n_moments, n_params); acts/deltas/grad_sums/rowsq/rowloss as in the
    module docstring; partials (J, n_params) per-block gradients, or (0,) for
    the other schedule; pre (like deltas, or empty: see
    ``forward_backward_rows``); hyper float64 (N_HYPER,); adam_t int64 (1,)
    Adam's step counter; dropout float64 (L-1,) the rate of each hidden layer
    (zeros: no dropout); dropout_key int64 (2,) the mask generator's seed and
    this epoch's number (``fastbp._kernels.dropout``).
    Mutates params, moments, adam_t, hyper[HYPER_LR] (adam: the rate of the last
    step, the only place it is computed) and the workspaces; with opt_code NONE
    it leaves the gradient of the (single) batch in ``grad_sums`` instead of
    stepping; with SUMS, the batch's raw sums (no L2 term, not divided by the
    weight sum), and it returns ``loss_sum`` plus the raw data loss.  Stops
    early (returning a non-finite sum) if a batch loss is not finite, before
    that batch's step.
    """
    input_cap = batch_size
    if Xindptr is not None and Xindptr.shape[0] > 0:  # CSR: no gathered input block
        input_cap = 0
    w_off, b_off, a_off, d_off, sq_off = layer_offsets(sizes, batch_size, input_cap)
    m = order.shape[0]
    alpha = hyper[HYPER_ALPHA]
    clip_eps = hyper[HYPER_CLIP_EPS]
    huber_delta = hyper[HYPER_HUBER_DELTA]

    # ||W||^2 of the current weights, for the L2 term of the first batch.
    sumsq = squared_norm(params, sizes, w_off, sq_off, rowsq)
    for b in range(batch_lo, batch_hi):
        start = b * batch_size
        bsz = min(batch_size, m - start)
        sw_sum = 0.0
        for r in range(bsz):
            sw_sum += sw[order[start + r]]
        if sw_sum == 0.0:
            # all its sample weights are zero: the batch carries nothing to
            # learn (its loss and gradient would be 0/0), so no step is taken
            # and it adds 0 to the epoch's loss
            continue

        # Region 1: block j owns rows [j*bsz/J, (j+1)*bsz/J) of the batch.
        for j in prange(n_blocks):
            r0 = j * bsz // n_blocks
            r1 = (j + 1) * bsz // n_blocks
            if r1 > r0:
                forward_backward_rows(X, Xdata, Xindices, Xindptr, Y, sw,
                                      order[start + r0:start + r1], sizes, params, w_off,
                                      b_off, a_off, d_off, acts, deltas, pre, rowloss,
                                      act_code, out_code, dropout, dropout_key, clip_eps,
                                      huber_delta, bsz, r0, r1)
            # (never for CSR: the partials would need a dense input block)
            if partials.ndim == 2 and (Xindptr is None or Xindptr.shape[0] == 0):
                rows_gradient(sizes, w_off, b_off, a_off, d_off, acts, deltas, partials[j],
                              bsz, r0, r1)

        data_loss = 0.0
        for r in range(bsz):
            data_loss += rowloss[r]
        if opt_code == SUMS:
            # a row chunk of a full-batch evaluation: the caller adds the
            # chunks' raw losses, then the L2 term, and divides by the weight sum
            batch_loss = data_loss
            loss_sum += data_loss
        else:
            batch_loss = data_loss / sw_sum + 0.5 * alpha * sumsq / sw_sum
            loss_sum += batch_loss * bsz
        if not np.isfinite(batch_loss):
            return loss_sum

        lr_t = hyper[HYPER_LR]
        if opt_code == ADAM or opt_code == ADAMW:
            adam_t[0] += 1
            lr_t = adam_rate(hyper[HYPER_LR_INIT], hyper[HYPER_BETA1], hyper[HYPER_BETA2],
                             adam_t[0])
            hyper[HYPER_LR] = lr_t

        if partials.ndim == 2 and (Xindptr is None or Xindptr.shape[0] == 0):
            sum_partials_and_step(partials, grad_sums, params, moments, rowsq, sizes, w_off,
                                  sq_off, alpha, sw_sum, opt_code, hyper, lr_t)
        else:
            # Region 2: block j owns rows of every W_l and a slice of every b_l.
            for j in prange(n_blocks):
                # (int64: a prange index is unsigned in the parallel build, which
                # would compile the callee a second time)
                owned_gradient_and_step(Xdata, Xindices, Xindptr, order[start:start + bsz],
                                        sizes, w_off, b_off, a_off, d_off, sq_off, acts,
                                        deltas, grad_sums, params, moments, rowsq, alpha,
                                        sw_sum, opt_code, hyper, lr_t, bsz, np.int64(j),
                                        n_blocks)
        sumsq = sum_rowsq(rowsq, sq_off[sizes.shape[0] - 1])
    return loss_sum


@jit
def count_nonfinite(A):
    """Number of inf/nan entries of the 2-D array A."""
    count = 0
    for r in range(A.shape[0]):
        row = A[r]
        for j in range(row.shape[0]):
            if not np.isfinite(row[j]):
                count += 1
    return count


@jit
def count_nan(A):
    """Number of nan entries of the 2-D array A (an output that overflowed)."""
    count = 0
    for r in range(A.shape[0]):
        row = A[r]
        for j in range(row.shape[0]):
            if np.isnan(row[j]):
                count += 1
    return count


def _predict(X, Xdata, Xindices, Xindptr, sizes, params, out, ws,
             act_code, out_code, block_rows, n_threads):
    """Forward pass of every row into ``out`` (n_samples, n_out), in row blocks.

    ws (n_threads, 2, block * max_hidden_width) per-thread ping-pong buffers.
    CSR input goes straight into the first layer's product (``csr_range_dot``).
    Thread t takes blocks t, t+T, ...  Mutates out and ws.

    Returns the number of inf/nan entries of the first layer's products X W_0,
    counted while they are in cache: a non-finite input value makes its row's
    products non-finite (inf or nan times any weight, zero included, is not
    finite), so 0 proves X finite without a pass over X.  (Not the converse: a
    finite X can overflow.)
    """
    n_layers = sizes.shape[0] - 1
    n = out.shape[0]
    w_off, b_off, _, _, _ = layer_offsets(sizes, np.int64(1), np.int64(1))
    n_blocks = (n + block_rows - 1) // block_rows
    T = n_threads
    zero = np.int64(0)  # a literal 0 would compile another specialization of block
    nonfinite = 0
    for t in prange(T):
        for blk_id in range(t, n_blocks, T):
            r0 = blk_id * block_rows
            r1 = min(r0 + block_rows, n)
            rows = r1 - r0
            for l in range(n_layers):
                fi = sizes[l]
                fo = sizes[l + 1]
                W = block(params, w_off[l], fi, fo)
                bias = params[b_off[l]:b_off[l] + fo]
                if l == n_layers - 1:
                    Aout = out[r0:r1]
                else:
                    Aout = block(ws[t, l % 2], zero, rows, fo)
                if l > 0:
                    gemm_nn(block(ws[t, (l - 1) % 2], zero, rows, fi), W, Aout)
                elif Xindptr is not None and Xindptr.shape[0] > 0:
                    csr_range_dot(Xdata, Xindices, Xindptr, r0, r1, W, Aout)
                else:
                    gemm_nn(X[r0:r1], W, Aout)
                if l == 0:
                    nonfinite += count_nonfinite(Aout)
                if l < n_layers - 1:
                    activate(Aout, bias, act_code)
                else:
                    output_activate(Aout, bias, out_code)
                    # (a finite X can still overflow into NaN: inf - inf deeper in)
                    nonfinite += count_nan(Aout)
    return nonfinite


def _predict_rows(X, sizes, params, out, ws, act_code, out_code):
    """Forward pass of a few dense rows into ``out`` with plain loops: no BLAS
    call, no thread, nothing to pin (the latency of predicting one row is
    Python's and BLAS's fixed costs, not arithmetic).  Every output is summed
    over the inputs in one fixed order (``gemm_few_rows``), so it depends on
    nothing but its row.

    ws (2, rows * max_hidden_width) ping-pong blocks.  Mutates out and ws.
    Returns the number of NaN outputs (a finite X whose products overflowed).
    """
    n_layers = sizes.shape[0] - 1
    rows = out.shape[0]
    w_off, b_off, _, _, _ = layer_offsets(sizes, np.int64(1), np.int64(1))
    zero = np.int64(0)
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        W = block(params, w_off[l], fi, fo)
        src = X if l == 0 else block(ws[(l - 1) % 2], zero, rows, fi)
        dst = out if l == n_layers - 1 else block(ws[l % 2], zero, rows, fo)
        gemm_few_rows(src, W, dst)
        if l < n_layers - 1:
            activate(dst, params[b_off[l]:b_off[l] + fo], act_code)
        else:
            output_activate(dst, params[b_off[l]:b_off[l] + fo], out_code)
    return count_nan(out)


def _dataset_loss(A, Y, sw, sizes, params, out_code, alpha, clip_eps, huber_delta):
    """The loss of the outputs ``A`` (n, n_out) against ``Y`` with weights ``sw``,
    as a mini-batch's loss is computed in training: sum of the weighted row
    losses / sum(sw) + alpha / 2 * ||W||^2 / sum(sw).  For the validation loss
    (called from Python once per epoch, so it may allocate).  Returns a float.
    Two builds, like the epoch kernel's: ``dataset_loss`` for the canonical
    output codes, ``dataset_loss_extended`` for every code (the extended
    losses' code is compiled only when a fit uses one).
    """
    n = A.shape[0]
    rows_idx = np.arange(n)
    D = np.empty_like(A)
    rowloss = np.empty(n, dtype=np.float64)
    output_loss(A, Y, sw, rows_idx, D, rowloss, out_code, clip_eps, huber_delta)
    data_loss = 0.0
    sw_sum = 0.0
    for r in range(n):
        data_loss += rowloss[r]
        sw_sum += sw[r]
    w_off, _, _, _, sq_off = layer_offsets(sizes, np.int64(1), np.int64(1))
    rowsq = np.empty(sq_off[sizes.shape[0] - 1], dtype=np.float64)
    sumsq = squared_norm(params, sizes, w_off, sq_off, rowsq)
    return data_loss / sw_sum + 0.5 * alpha * sumsq / sw_sum


train_batches_serial, train_batches_parallel = jit_variants(_train_batches)
predict_serial, predict_parallel = jit_variants(_predict)
# Every option (fastbp._kernels.uses_extended says which need these).
train_batches_extended_serial, train_batches_extended_parallel = jit_variants(
    _train_batches, {"forward_backward_rows": forward_backward_rows_extended}, "_extended")
predict_extended_serial, predict_extended_parallel = jit_variants(
    _predict, EXTENDED_LEAVES, "_extended")
predict_rows = jit_build(_predict_rows, None, "")
dataset_loss = jit_build(_dataset_loss, None, "")
dataset_loss_extended = jit_build(_dataset_loss, EXTENDED_LEAVES, "_extended")
predict_rows_extended = jit_build(_predict_rows, EXTENDED_LEAVES, "_extended")
