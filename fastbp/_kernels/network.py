"""The compiled epoch: every mini-batch of (a bounded part of) an epoch in one call.

One mini-batch, from ``fastbp._training`` to the optimizer step::

    _train_batches(batches, csr, model, work, partials, optimizer, state, loss,
                   dropout, loss_sum)                     (the arguments: state.py)
      per mini-batch b of batches:
        region 1, per row block (Rows):  _forward_backward_rows
            gather -> gemm_nn, hidden_forward ... -> output_loss -> delta
            -> gemm_nt, hidden_backward ... back to the first hidden layer
        gradient and step:  owned_gradient_and_step (region 2, per parameter block)
                        or  rows_gradient (in region 1) + sum_partials_and_step
            -> step_range (fastbp._kernels.optimizers) on model.params, state

Data layout (the buffers of ``fastbp._network``; named in ``state.py``):

* ``model.sizes`` int64 (L+1,): units per layer, input first.  Layer l
  (0..L-1) maps units l -> l+1 with W_l (sizes[l], sizes[l+1]) and b_l
  (sizes[l+1],).
* ``model.params`` (n_params,): all W_l raveled (C order), then all b_l -- the
  order of scikit-learn's ``_pack``.  ``coefs_``/``intercepts_`` are views of it.
* ``work.acts`` holds a (cap, sizes[k]) matrix per unit layer k = 0..L (0 is
  the gathered input batch); ``work.deltas`` a (cap, sizes[k]) matrix per
  k = 1..L; ``work.grad_sums`` (n_params,) the batch sums a_l^T delta_{l+1}
  and of delta_{l+1}, laid out like ``params``.  ``network_layout`` says where
  each matrix starts and ``matrix_at`` views one; nothing else computes an
  offset.
* The input is ``batches.X`` dense (n, n_features) *or* ``csr``: for CSR input
  ``X`` is empty, for dense input ``csr`` is None.  A dense batch is gathered
  into matrix 0; a CSR batch is never densified: the first layer's product and
  weight gradient run over its non-zeros (``fastbp._kernels.sparse``), matrix
  0 is empty and the gradient takes the parameter-owned schedule.

A mini-batch is split into ``work.n_blocks`` (J) work blocks.  J depends on the
machine's CPU count, never on ``n_jobs`` (see ``fastbp._threads.n_blocks``), so
every BLAS call has the same shape for any thread count and the weights come
out bitwise identical whatever the number of threads (OpenBLAS's sgemm rounds
row blocks of different sizes differently, so splitting by thread would not be):

1. rows (a parallel region): work block j holds batch rows [j*b/J, (j+1)*b/J)
   (its ``Rows``).  Its thread gathers them, runs the forward pass (``gemm_nn``
   into its row slice, bias, activation), the output loss and delta, and the
   delta recursion delta_k = (delta_{k+1} W_k^T) * f'(a_k) back to the first
   hidden layer (``forward_backward_rows``).
2. gradients and the step, on one of two schedules (``partials`` is (J,
   n_params) or empty 1-D; ``fastbp._network.uses_partials`` picks the one that
   moves fewer values between cores, a function of the shapes and J only):

   * parameter-owned (a second parallel region; larger networks): work block
     j holds rows [j*fan_in/J, (j+1)*fan_in/J) of every W_l and the matching
     slice of every b_l.  Its thread computes those rows of a_l^T delta_{l+1}
     over the whole batch (BLAS on the column block in place, so the sum over
     batch rows is never split), then applies the optimizer step to exactly
     them (``owned_gradient_and_step``).
   * per-block partials (small networks): still in region 1, work block j
     computes a_l^T delta_{l+1} over its own rows into ``partials[j]`` while
     they are in its cache (``rows_gradient``); then, serially, the partials
     are summed in block order and one optimizer step covers all parameters
     (``sum_partials_and_step``).  One parallel region per mini-batch instead
     of two, and no activations cross cores.

What a fit does not use is not compiled: ``csr`` is None for dense input and
``partials`` 1-D on the parameter-owned schedule, and numba drops the branches
they guard before typing (see ``state.py``), so the dense specialization never types the CSR products,
nor one schedule the other's.  A build has a specialization per dtype and per
(input kind, schedule) it has run.

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
from .optimizers import ADAM, ADAMW, SUMS, adam_rate, step_range
from .sparse import csr_range_dot, csr_rows_dot, csr_rows_tdot_range
from .state import HiddenRows, Layout, Rows, Step


# Parameters per optimizer-step chunk in the parameter-owned schedule: the
# chunk's weights, gradient and moments (4-5 arrays) stay in a core's L2.
STEP_CHUNK = 8192


@jit
def network_layout(sizes, cap, input_cap):
    """The ``Layout`` of a network of widths ``sizes`` in buffers of ``cap`` rows
    per activation and delta block and ``input_cap`` for the input block (the
    gathered dense batch; 0 for CSR input, which the first layer reads in
    place): the one place an offset is computed (``fastbp._network`` calls it
    too).

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
    return Layout(sizes, w_off, b_off, a_off, d_off, sq_off, n_layers)


@jit
def matrix_at(buf, start, rows, cols):
    """The (rows, cols) C-ordered matrix stored at ``buf[start:]``, as a view.

    Every layer's weights, activations, deltas and gradients live in flat
    buffers at the offsets of ``network_layout``; this is how kernels see one.
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
def refresh_rowsq(params, layout, rowsq):
    """rowsq <- the squared norm of every row of every W_l.  Returns None."""
    sizes = layout.sizes
    for l in range(sizes.shape[0] - 1):
        sum_squares_rows(params, layout.w_off[l], sizes[l], sizes[l + 1], rowsq,
                         layout.sq_off[l])


@jit
def squared_norm(params, layout, rowsq):
    """||W||^2 over every layer's weights (not the biases), row sums in order.

    Refreshes ``rowsq`` from ``params`` first.  Returns a float.
    """
    refresh_rowsq(params, layout, rowsq)
    return sum_rowsq(rowsq, layout.sq_off[layout.sizes.shape[0] - 1])


@jit
def sum_rowsq(rowsq, n):
    """sum(rowsq[:n]) left to right: ||W||^2 from the per-row sums."""
    total = 0.0
    for i in range(n):
        total += rowsq[i]
    return total


# --- The leaves: where the core and the extended builds differ ---------------
# The bodies further down call four leaves by these names; a build links its
# own (``CORE_LEAVES`` and ``EXTENDED_LEAVES`` at the end of this module, and
# ``build``).  The core build (the default path: scikit-learn's activations and
# losses, no dropout) links the ``*_core`` leaves; the extended build links
# the ``*_extended`` ones, which handle every code.  numba optimizes every
# linked function again inside each kernel, so the options the default path
# never uses would otherwise add their compile time to every cold start.
# Python picks the build (``fastbp._kernels.uses_extended``).  The names below
# only declare each leaf's job: a body built without its leaf fails to compile.

def hidden_forward(A_out, bias, act_code, hidden):
    """A_out <- f(A_out + bias) for the rows of a hidden layer (``HiddenRows``)."""
    raise NotImplementedError("a leaf of the compiled builds (see CORE_LEAVES)")


def hidden_backward(D_k, A_k, act_code, hidden):
    """D_k <- D_k * f'(z_k) for the rows of a hidden layer (``HiddenRows``)."""
    raise NotImplementedError("a leaf of the compiled builds (see CORE_LEAVES)")


def output_loss(A, Y, sw, rows_idx, D, rowloss, loss):
    """The output layer's per-row weighted loss and delta for ``loss``."""
    raise NotImplementedError("a leaf of the compiled builds (see CORE_LEAVES)")


def activate(Z, bias, act_code):
    """Z <- f(Z + bias) for prediction (no derivative, no dropout)."""
    raise NotImplementedError("a leaf of the compiled builds (see CORE_LEAVES)")


def forward_backward_rows(batches, csr, model, layout, work, loss, dropout, rows):
    """``_forward_backward_rows`` compiled against the build's leaves (``Build``)."""
    raise NotImplementedError("compiled per build (see Build)")


@jit
def hidden_forward_core(A_out, bias, act_code, hidden):
    """A_out <- f(A_out + bias), scikit-learn's activations (``hidden`` unread)."""
    bias_activate(A_out, bias, act_code)


@jit
def hidden_forward_extended(A_out, bias, act_code, hidden):
    """``hidden_forward_core`` for every activation.  Where the backward pass
    cannot compute f' from the activations (gelu; a layer with dropout, whose
    mask then changes them), f'(z) goes into ``hidden.pre`` (the layer's
    (n, width) block at ``hidden.pre_start``, these rows); then dropout's
    mask at the layer's rate.  Returns None."""
    rows = hidden.rows
    rate = hidden.dropout.rates[hidden.layer - 1]
    if act_code == GELU or rate > 0:
        P = matrix_at(hidden.pre, hidden.pre_start, rows.n, A_out.shape[1])[rows.r0:rows.r1]
        bias_activate_with_derivative(A_out, bias, act_code, P)
    else:
        bias_activate_any(A_out, bias, act_code)
    if rate > 0:
        apply_mask(A_out, rows.idx, hidden.dropout.key, hidden.layer, rate)


@jit
def hidden_backward_core(D_k, A_k, act_code, hidden):
    """D_k <- D_k * f'(z_k), f' from the activations A_k (``hidden`` unread)."""
    mul_derivative(A_k, D_k, act_code)


@jit
def hidden_backward_extended(D_k, A_k, act_code, hidden):
    """``hidden_backward_core`` for every activation: the forward pass's mask
    (the same key), then f' from ``hidden.pre`` where the forward pass kept it."""
    rows = hidden.rows
    rate = hidden.dropout.rates[hidden.layer - 1]
    if rate > 0:
        apply_mask(D_k, rows.idx, hidden.dropout.key, hidden.layer, rate)
    if act_code == GELU or rate > 0:
        mul_rows(matrix_at(hidden.pre, hidden.pre_start, rows.n, D_k.shape[1])[rows.r0:rows.r1],
                 D_k)
    else:
        mul_derivative_any(A_k, D_k, act_code)


@jit
def output_loss_core(A, Y, sw, rows_idx, D, rowloss, loss):
    """The output layer's loss and delta for the canonical codes."""
    loss_and_delta(A, Y, sw, rows_idx, D, rowloss, loss.code, loss.clip_eps)


@jit
def output_loss_extended(A, Y, sw, rows_idx, D, rowloss, loss):
    """The output layer's loss and delta for every code."""
    loss_and_delta_any(A, Y, sw, rows_idx, D, rowloss, loss.code, loss.clip_eps,
                       loss.huber_delta)


def _forward_backward_rows(batches, csr, model, layout, work, loss, dropout, rows):
    """``rows`` of a mini-batch: gather, forward pass, output loss and delta,
    and the delta recursion back to the first hidden layer.

    Writes those rows of every activation and delta block of ``work``, and
    ``work.rowloss[r0:r1]`` (the weighted per-row loss).  Reads ``model.params``
    only.  Returns None.

    ``work.pre`` (laid out like the deltas, or empty) keeps, per hidden layer,
    f'(z) where the activations cannot give it in the backward pass: for gelu,
    and where the layer has dropout (``dropout.rates[l]`` > 0, the rate of
    hidden layer l + 1).  A dropped unit is 0 in the activations and its delta
    is 0: the same mask multiplies both (``fastbp._kernels.dropout``).
    """
    sizes, params, act_code = model.sizes, model.params, model.act_code
    acts, deltas = work.acts, work.deltas
    n_layers = sizes.shape[0] - 1
    n, r0, r1 = rows.n, rows.r0, rows.r1
    if csr is None:  # dense (None: see fastbp._kernels.state)
        gather_rows(batches.X, rows.idx, matrix_at(acts, layout.a_off[0], n, sizes[0])[r0:r1])
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        A_out = matrix_at(acts, layout.a_off[l + 1], n, fo)[r0:r1]
        W = matrix_at(params, layout.w_off[l], fi, fo)
        if l == 0 and csr is not None:  # the CSR rows times W_0, no dense copy of them
            csr_rows_dot(csr.data, csr.indices, csr.indptr, rows.idx, W, A_out)
        else:
            gemm_nn(matrix_at(acts, layout.a_off[l], n, fi)[r0:r1], W, A_out)
        bias = params[layout.b_off[l]:layout.b_off[l] + fo]
        if l < n_layers - 1:
            hidden_forward(A_out, bias, act_code,
                           HiddenRows(l + 1, rows, work.pre, layout.d_off[l + 1], dropout))
        else:
            output_activate(A_out, bias, loss.code)
            output_loss(A_out, batches.Y, batches.sw, rows.idx,
                        matrix_at(deltas, layout.d_off[l + 1], n, fo)[r0:r1],
                        work.rowloss[r0:r1], loss)
    for k in range(n_layers - 1, 0, -1):  # delta_k = (delta_{k+1} W_k^T) * f'(z_k)
        fk = sizes[k]
        fn = sizes[k + 1]
        D_k = matrix_at(deltas, layout.d_off[k], n, fk)[r0:r1]
        gemm_nt(matrix_at(deltas, layout.d_off[k + 1], n, fn)[r0:r1],
                matrix_at(params, layout.w_off[k], fk, fn), D_k)
        hidden_backward(D_k, matrix_at(acts, layout.a_off[k], n, fk)[r0:r1], act_code,
                        HiddenRows(k, rows, work.pre, layout.d_off[k], dropout))


@jit
def rows_gradient(layout, work, grads, rows):
    """The per-block-partials schedule, in the row region: the gradient sums
    a_l^T delta_{l+1} and column sums of delta_{l+1} over ``rows`` only, into
    ``grads`` (one row of ``partials``), while those rows are in cache.
    Zeroes ``grads`` when the block has no rows.  Returns None.
    """
    sizes = layout.sizes
    n_layers = sizes.shape[0] - 1
    n, r0, r1 = rows.n, rows.r0, rows.r1
    zero = np.int64(0)  # a literal 0 would compile another specialization of the callee
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        D = matrix_at(work.deltas, layout.d_off[l + 1], n, fo)[r0:r1]
        gemm_tn_cols(matrix_at(work.acts, layout.a_off[l], n, fi)[r0:r1], zero, fi, D,
                     matrix_at(grads, layout.w_off[l], fi, fo))
        column_sums(D, zero, fo, grads[layout.b_off[l]:layout.b_off[l] + fo])


@jit
def sum_partials_and_step(partials, params, layout, work, optimizer, state, alpha, step):
    """The per-block-partials schedule, after the row region (serial): the
    blocks' partial gradients summed in block order into ``work.grad_sums``,
    one optimizer step over all parameters (a few thousand: less than a
    parallel region costs), and the rows' squared norms of the new weights.
    Returns None.
    """
    grad_sums = work.grad_sums
    n_coef = layout.w_off[layout.sizes.shape[0] - 1]
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
    step_range(params, grad_sums, state.moments, np.int64(0), n_coef, alpha,
               optimizer.weight_decay, step.sw_sum, optimizer, step.lr)
    step_range(params, grad_sums, state.moments, n_coef, n_params, 0.0, 0.0, step.sw_sum,
               optimizer, step.lr)
    refresh_rowsq(params, layout, work.rowsq)


@jit
def owned_gradient_and_step(csr, params, layout, work, optimizer, state, alpha, step, j):
    """The parameter-owned schedule, one block of the second region: block ``j``
    of ``work.n_blocks`` owns rows [j*fan_in/J, (j+1)*fan_in/J) of every W_l
    and the matching slice of every b_l.  It computes their gradient sums over
    the whole batch (BLAS on the column block of a_l in place, so the sum over
    the batch is never split), steps exactly those parameters and refreshes
    their rows' squared norms.  With CSR input the first layer's rows are
    X_batch^T delta over the non-zeros in the block's feature range
    (``step.idx``: the batch's sample indices).  Returns None.
    """
    sizes, grad_sums, n_blocks = layout.sizes, work.grad_sums, work.n_blocks
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        D = matrix_at(work.deltas, layout.d_off[l + 1], step.n, fo)
        i0 = j * fi // n_blocks
        i1 = (j + 1) * fi // n_blocks
        if i1 > i0:
            p0 = layout.w_off[l] + i0 * fo
            if l == 0 and csr is not None:
                csr_rows_tdot_range(csr.data, csr.indices, csr.indptr, step.idx, D, i0, i1,
                                    matrix_at(grad_sums, p0, i1 - i0, fo))
            else:
                gemm_tn_cols(matrix_at(work.acts, layout.a_off[l], step.n, fi), i0, i1, D,
                             matrix_at(grad_sums, p0, i1 - i0, fo))
            # The step, then the new rows' squared norms, a chunk of rows at a
            # time, so the norms read weights still in cache (one pass over a
            # wide W instead of two; the results are the same either way).
            chunk = max(1, STEP_CHUNK // fo)
            for c0 in range(i0, i1, chunk):
                c1 = min(c0 + chunk, i1)
                q0 = layout.w_off[l] + c0 * fo
                step_range(params, grad_sums, state.moments, q0, q0 + (c1 - c0) * fo, alpha,
                           optimizer.weight_decay, step.sw_sum, optimizer, step.lr)
                sum_squares_rows(params, q0, c1 - c0, fo, work.rowsq, layout.sq_off[l] + c0)
        c0 = j * fo // n_blocks
        c1 = (j + 1) * fo // n_blocks
        if c1 > c0:
            q0 = layout.b_off[l]
            column_sums(D, c0, c1, grad_sums[q0 + c0:q0 + c1])
            step_range(params, grad_sums, state.moments, q0 + c0, q0 + c1, 0.0, 0.0,
                       step.sw_sum, optimizer, step.lr)


def _train_batches(batches, csr, model, layout, work, partials, optimizer, state, loss,
                   dropout):
    """Run the mini-batches [batches.lo, batches.hi) of an epoch; return
    ``batches.loss_sum + sum(batch_loss * batch_len)``, added batch by batch.

    ``batches.loss_sum`` is the running sum of the epoch's earlier calls: continuing it
    here (rather than adding per-call sums in Python) makes the epoch's loss the
    same left-to-right sum however the epoch was split into calls, so
    ``loss_curve_`` is bitwise independent of the Pacer and the thread count.

    The arguments are ``fastbp._kernels.state``'s structures, in the order of
    its ``TrainArgs``; ``csr`` is None for dense input, ``partials`` (J,
    n_params) per-block gradients or empty 1-D for the parameter-owned schedule.
    Mutates ``model.params``, ``state`` (moments, step; Adam leaves the rate of
    its last step in ``state.rate``) and ``work``; with optimizer code NONE it
    leaves the gradient of the (single) batch in ``work.grad_sums`` instead of
    stepping; with SUMS, the batch's raw sums (no L2 term, not divided by the
    weight sum), and it returns ``batches.loss_sum`` plus the raw data loss.  Stops
    early (returning a non-finite sum) if a batch loss is not finite, before
    that batch's step.
    """
    params = model.params
    order, size, n_blocks = batches.order, batches.size, work.n_blocks
    n_rows = layout.sq_off[layout.n_layers]
    loss_sum = batches.loss_sum
    m = order.shape[0]

    # ||W||^2 of the current weights, for the L2 term of the first batch.
    sumsq = squared_norm(params, layout, work.rowsq)
    for b in range(batches.lo, batches.hi):
        start = b * size
        bsz = min(size, m - start)
        sw_sum = 0.0
        for r in range(bsz):
            sw_sum += batches.sw[order[start + r]]
        if sw_sum == 0.0:
            # all its sample weights are zero: the batch carries nothing to
            # learn (its loss and gradient would be 0/0), so no step is taken
            # and it adds 0 to the epoch's loss
            continue

        # Region 1: block j owns rows [j*bsz/J, (j+1)*bsz/J) of the batch.
        for j in prange(n_blocks):
            r0 = j * bsz // n_blocks
            r1 = (j + 1) * bsz // n_blocks
            rows = Rows(order[start + r0:start + r1], r0, r1, bsz)
            if r1 > r0:
                forward_backward_rows(batches, csr, model, layout, work, loss, dropout, rows)
            # (never for CSR: the partials would need a dense input block)
            if partials.ndim == 2 and csr is None:
                rows_gradient(layout, work, partials[j], rows)

        data_loss = 0.0
        for r in range(bsz):
            data_loss += work.rowloss[r]
        if optimizer.code == SUMS:
            # a row chunk of a full-batch evaluation: the caller adds the
            # chunks' raw losses, then the L2 term, and divides by the weight sum
            batch_loss = data_loss
            loss_sum += data_loss
        else:
            batch_loss = data_loss / sw_sum + 0.5 * loss.alpha * sumsq / sw_sum
            loss_sum += batch_loss * bsz
        if not np.isfinite(batch_loss):
            return loss_sum

        lr_t = state.rate[0]
        if optimizer.code == ADAM or optimizer.code == ADAMW:
            state.step[0] += 1
            lr_t = adam_rate(optimizer.lr_init, optimizer.beta_1, optimizer.beta_2,
                             state.step[0])
            state.rate[0] = lr_t
        if partials.ndim == 2 and csr is None:
            sum_partials_and_step(partials, params, layout, work, optimizer, state, loss.alpha,
                                  Step(order[start:start + bsz], bsz, sw_sum, lr_t))
        else:
            # Region 2: block j owns rows of every W_l and a slice of every b_l.
            for j in prange(n_blocks):
                # (int64: a prange index is unsigned in the parallel build, which
                # would compile the callee a second time)
                owned_gradient_and_step(csr, params, layout, work, optimizer, state,
                                        loss.alpha,
                                        Step(order[start:start + bsz], bsz, sw_sum, lr_t),
                                        np.int64(j))
        sumsq = sum_rowsq(work.rowsq, n_rows)
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


def _predict(X, csr, sizes, params, act_code, out_code, out, buffers, block_rows, n_threads):
    """Forward pass of every row into ``out`` (n_samples, n_out), in row blocks
    of ``block_rows``.  (The network as three arguments, not a ``Model``: a
    namedtuple argument costs numba's dispatcher a few microseconds to type on
    every call, a visible share of predicting one row.)

    ``buffers`` (n_threads, 2, block_rows * max_hidden_width) per-thread
    ping-pong buffers.  CSR input (``csr`` not None; ``X`` is then empty) goes
    straight into the first layer's product (``csr_range_dot``).  Thread t
    takes blocks t, t+T, ...  Mutates out and buffers.

    Returns the number of inf/nan entries of the first layer's products X W_0,
    counted while they are in cache: a non-finite input value makes its row's
    products non-finite (inf or nan times any weight, zero included, is not
    finite), so 0 proves X finite without a pass over X.  (Not the converse: a
    finite X can overflow.)
    """
    n_layers = sizes.shape[0] - 1
    n = out.shape[0]
    lay = network_layout(sizes, np.int64(1), np.int64(1))
    w_off, b_off = lay.w_off, lay.b_off  # (arrays: a prange body cannot read ``lay``)
    n_row_blocks = (n + block_rows - 1) // block_rows
    T = n_threads
    zero = np.int64(0)  # a literal 0 would compile another specialization of matrix_at
    nonfinite = 0
    for t in prange(T):
        for row_block in range(t, n_row_blocks, T):
            r0 = row_block * block_rows
            r1 = min(r0 + block_rows, n)
            n_block = r1 - r0
            for l in range(n_layers):
                fi = sizes[l]
                fo = sizes[l + 1]
                W = matrix_at(params, w_off[l], fi, fo)
                bias = params[b_off[l]:b_off[l] + fo]
                if l == n_layers - 1:
                    Aout = out[r0:r1]
                else:
                    Aout = matrix_at(buffers[t, l % 2], zero, n_block, fo)
                if l > 0:
                    gemm_nn(matrix_at(buffers[t, (l - 1) % 2], zero, n_block, fi), W, Aout)
                elif csr is not None:
                    csr_range_dot(csr.data, csr.indices, csr.indptr, r0, r1, W, Aout)
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


def _predict_rows(X, sizes, params, act_code, out_code, out, buffers):
    """Forward pass of a few dense rows into ``out`` with plain loops: no BLAS
    call, no thread, nothing to pin (the latency of predicting one row is
    Python's and BLAS's fixed costs, not arithmetic).  Every output is summed
    over the inputs in one fixed order (``gemm_few_rows``), so it depends on
    nothing but its row.

    ``buffers`` (2, rows * max_hidden_width) ping-pong buffers.  Mutates out
    and buffers.  Returns the number of NaN outputs (a finite X whose products
    overflowed).
    """
    n_layers = sizes.shape[0] - 1
    n = out.shape[0]
    lay = network_layout(sizes, np.int64(1), np.int64(1))
    zero = np.int64(0)
    for l in range(n_layers):
        fi = sizes[l]
        fo = sizes[l + 1]
        W = matrix_at(params, lay.w_off[l], fi, fo)
        src = X if l == 0 else matrix_at(buffers[(l - 1) % 2], zero, n, fi)
        dst = out if l == n_layers - 1 else matrix_at(buffers[l % 2], zero, n, fo)
        gemm_few_rows(src, W, dst)
        if l < n_layers - 1:
            activate(dst, params[lay.b_off[l]:lay.b_off[l] + fo], act_code)
        else:
            output_activate(dst, params[lay.b_off[l]:lay.b_off[l] + fo], out_code)
    return count_nan(out)


def _dataset_loss(A, Y, sw, sizes, params, loss):
    """The loss of the outputs ``A`` (n, n_out) against ``Y`` with weights ``sw``,
    as a mini-batch's loss is computed in training: sum of the weighted row
    losses / sum(sw) + alpha / 2 * ||W||^2 / sum(sw).  For the validation loss
    (called from Python once per epoch, so it may allocate).  Returns a float.
    """
    n = A.shape[0]
    rows_idx = np.arange(n)
    D = np.empty_like(A)
    rowloss = np.empty(n, dtype=np.float64)
    output_loss(A, Y, sw, rows_idx, D, rowloss, loss)
    data_loss = 0.0
    sw_sum = 0.0
    for r in range(n):
        data_loss += rowloss[r]
        sw_sum += sw[r]
    lay = network_layout(sizes, np.int64(1), np.int64(1))
    rowsq = np.empty(lay.sq_off[sizes.shape[0] - 1], dtype=np.float64)
    sumsq = squared_norm(params, lay, rowsq)
    return data_loss / sw_sum + 0.5 * loss.alpha * sumsq / sw_sum


# --- The builds ---------------------------------------------------------------
CORE_LEAVES = {"hidden_forward": hidden_forward_core,
               "hidden_backward": hidden_backward_core,
               "output_loss": output_loss_core,
               "activate": bias_activate}
EXTENDED_LEAVES = {"hidden_forward": hidden_forward_extended,
                   "hidden_backward": hidden_backward_extended,
                   "output_loss": output_loss_extended,
                   "activate": bias_activate_any}


class Build:
    """The entry points of one build: every body above compiled against
    ``leaves`` (a dict of the leaf names to the compiled leaves), its
    dispatchers named with ``suffix`` (which also names their disk cache).
    ``train`` and ``predict`` are (serial, parallel) pairs; ``predict_rows``,
    ``dataset_loss`` and ``forward_backward_rows`` (what ``train`` links)
    serial only."""

    def __init__(self, leaves, suffix):
        self.forward_backward_rows = jit_build(_forward_backward_rows, leaves, suffix)
        self.train = jit_variants(
            _train_batches, {"forward_backward_rows": self.forward_backward_rows}, suffix)
        self.predict = jit_variants(_predict, leaves, suffix)
        self.predict_rows = jit_build(_predict_rows, leaves, suffix)
        self.dataset_loss = jit_build(_dataset_loss, leaves, suffix)


CORE = Build(CORE_LEAVES, "")
EXTENDED = Build(EXTENDED_LEAVES, "_extended")
