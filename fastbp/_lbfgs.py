"""L-BFGS (``solver='lbfgs'``): scipy's L-BFGS-B on the compiled full-batch
loss and gradient, evaluated in one compiled call or, on large data, in row
chunks whose raw sums Python adds (``loss_and_gradient``).

The same kernels as the stochastic solvers' epochs (``_training._run_batches``,
called through the module so that the interrupt tests' spy sees every call),
with the optimizer code ``NONE`` (the gradient left in the workspace) or
``SUMS`` (a chunk's raw sums).
"""

import time
import warnings

import numpy as np
import scipy.optimize

from . import _threads, _training
from ._callbacks import end_cut_short
from ._kernels import kernels_for
from ._kernels.network import sum_rowsq
from ._kernels import state as kernel_state
from ._kernels.optimizers import NONE, SUMS
from ._network import Workspace
from ._validation import _check_optimize_result, lbfgs_iprint_options

__all__ = ["LBFGS_CALL_FLOPS", "fit_lbfgs", "lbfgs_workspace", "loss_and_gradient"]

# Work per compiled call of an L-BFGS evaluation (see ``lbfgs_workspace``):
# larger than an epoch's calls, since each chunk's sums cross into Python
# (smaller chunks made an evaluation measurably slower than one call; chunks
# this size cost nothing, and on large data were faster, the activations
# staying in cache), yet a chunk still ends well within the second Ctrl-C may
# wait, even in float64 on one older core (README, Guarantees).
LBFGS_CALL_FLOPS = 1e10


def _diverged_lbfgs(est):
    return _training.Diverged(
        "Solver produced non-finite parameter weights. The input data may"
        " contain large values and need to be preprocessed. L-BFGS reached a"
        f" non-finite loss or weights after {est.n_iter_} iteration(s);"
        f" {_training._scale_hint(est)}, or increase alpha.")


def lbfgs_workspace(est, net, n, sparse):
    """L-BFGS's workspace: for all ``n`` rows when a full-batch evaluation is
    at most ``LBFGS_CALL_FLOPS`` of work (one compiled call, as scikit-learn's
    one product per layer), else for row chunks of that much work.  Ctrl-C waits
    for the compiled call it lands in: a 10^6-row evaluation in one call ran
    for seconds, and its workspace held every row's activations (the README's
    Guarantees give the measurements).  The chunk is a function of the shapes
    only, so the sums' order, and the fit, stay independent of the thread count.
    """
    flops_per_row = 6.0 * max(net.n_coef, 1)
    rows = n
    if n * flops_per_row > LBFGS_CALL_FLOPS:
        rows = max(1, int(LBFGS_CALL_FLOPS // flops_per_row))
    return Workspace(net.sizes, net.dtype, rows, _threads.n_blocks(rows),
                     keep_pre=est.activation == "gelu", sparse=sparse)


def loss_and_gradient(net, inputs, Y, sw, act_code, out_code, alpha, ws, n_threads,
                      huber_delta=1.0, evaluations=None):
    """Full-batch loss and gradient (float64) at ``net.params``: one compiled
    call when ``ws`` holds every row, else one per chunk of ``ws.cap`` rows
    (see ``lbfgs_workspace``).

    ``evaluations``: for L-BFGS, a dict ``{"done": int, "to_come": int}`` of
    this minimization's calls, which lets the parallel kernel be compiled only
    when the minimization can pay the time back (``_threads.CompileGate``).
    """
    pair = kernels_for("train", act_code, out_code)
    kernel, n_threads = _threads.choose(pair, n_threads)
    n = Y.shape[0]
    rows = min(n, ws.cap)
    # (no optimizer step: NONE leaves the gradient, SUMS a chunk's raw sums)
    args = _training.train_args(
        inputs, Y, sw, net, ws, act_code, kernel_state.optimizer(NONE if rows == n else SUMS),
        kernel_state.optimizer_state(0, net.n_params, net.dtype),
        kernel_state.loss(out_code, alpha, net.dtype, huber_delta))
    order = np.arange(n, dtype=np.int64)
    kernel, gate = _threads.gated(pair, kernel, "train", _training.for_batches(args, order, 0, 1))
    start = time.perf_counter()
    with _threads.thread_limits(n_threads):
        if rows == n:
            loss_sum = _training._run_batches(kernel, _training.for_batches(args, order, 0, 1))
            loss = loss_sum / n
            grad = ws.buffers.grad_sums.astype(np.float64) if np.isfinite(loss_sum) else None
        else:
            loss, grad = _summed_over_chunks(kernel, args, order, net, alpha)
    if gate is not None and evaluations is not None:
        seconds = time.perf_counter() - start
        evaluations["done"] += 1
        gate.serial_ran(seconds, seconds * max(0, evaluations["to_come"] - evaluations["done"]))
    if grad is None:
        # The kernel stops before the gradient when the loss is not finite, so
        # ws.buffers.grad_sums holds whatever the workspace held: L-BFGS then wandered on
        # garbage (a different fit each time).  The gradient is undefined: nan.
        return loss, np.full(net.n_params, np.nan)
    return loss, grad


def _summed_over_chunks(kernel, args, order, net, alpha):
    """``loss_and_gradient`` over row chunks of ``args.batches.size`` rows: each call
    leaves its chunk's raw sums (``SUMS``); they are added in chunk order in
    float64, then the L2 term, then divided by the total weight, as the
    one-call kernel does per batch: (sum a^T delta + alpha W) / sum(sw), and
    (sum losses + alpha / 2 ||W||^2) / sum(sw).  Returns ``(loss, grad)``, grad
    None when the loss is not finite.
    """
    sw, work = args.batches.sw, args.work
    n, rows = sw.shape[0], args.batches.size
    grad = np.zeros(net.n_params)
    data_loss = 0.0
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        if not sw[lo:hi].any():
            continue  # (the kernel skips a batch of zero weight, writing no sums)
        data_loss = _training._run_batches(
            kernel, _training.for_batches(args, order[lo:hi], 0, 1, data_loss))
        if not np.isfinite(data_loss):
            return data_loss, None
        grad += work.grad_sums
    # ||W||^2 as the kernel summed it for its L2 term (each call refreshes the
    # rows' squared norms from net.params, which it leaves unchanged)
    sumsq = sum_rowsq(work.rowsq, work.rowsq.shape[0])
    sw_sum = float(np.sum(sw, dtype=np.float64))
    grad[:net.n_coef] += alpha * net.params[:net.n_coef].astype(np.float64)
    grad /= sw_sum
    return (data_loss + 0.5 * alpha * sumsq) / sw_sum, grad


def fit_lbfgs(est, net, inputs, Y, sw, n_threads, tasks=None):
    """L-BFGS-B (scipy) on the compiled full-batch loss and gradient.

    BLAS stays pinned to one thread for the whole minimization, not only inside
    the compiled calls: scipy's L-BFGS-B calls BLAS on the parameter vector too,
    and OpenBLAS splits long vectors by thread count, which rounds differently
    in a process pool's worker than in the parent.

    Ctrl-C keeps the weights of the last completed iteration (as sgd/adam keep
    those of the last complete mini-batch), with ``n_iter_`` and ``loss_`` of
    that iterate; so does a callback that asks to stop (``tasks``: the
    callbacks' task the iterations are subtasks of).
    """
    n = Y.shape[0]
    eff = _threads.effective_threads(n_threads)
    ws = lbfgs_workspace(est, net, n, _training.is_sparse(inputs))
    x0 = net.params.astype(np.float64)
    last = {"x": x0, "fun": None, "n_iter": 0}
    # about one evaluation per iteration (the line search seldom needs more)
    evaluations = {"done": 0, "to_come": min(est.max_iter, est.max_fun)}

    iteration = {"task": None, "stopped": False}  # the callbacks' open iteration

    def fun(x):
        if tasks is not None and iteration["task"] is None and last["n_iter"] < est.max_iter:
            iteration["task"] = tasks.subtask("lbfgs-iter")  # its first evaluation
        net.params[...] = x
        loss, grad = loss_and_gradient(net, inputs, Y, sw, est._act_code, est._out_code,
                                       est.alpha, ws, eff, est._huber_delta, evaluations)
        if last["fun"] is None:  # the loss at x0
            last["fun"] = loss
        return loss, grad

    def callback(intermediate_result):  # after each completed iteration
        last["x"] = intermediate_result.x.copy()
        last["fun"] = float(intermediate_result.fun)
        last["n_iter"] += 1
        if tasks is not None:
            task, iteration["task"] = iteration["task"], None
            if task.end(params=last["x"],
                        attrs={"n_iter_": last["n_iter"], "loss_": last["fun"]}):
                iteration["stopped"] = True
                raise StopIteration  # (scipy >= 1.11 ends the minimization)

    with _threads.thread_limits(eff, blas="all"):  # scipy's BLAS and numpy's
        try:
            opt_res = scipy.optimize.minimize(
                fun, x0, method="L-BFGS-B", jac=True, callback=callback,
                options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol,
                         **lbfgs_iprint_options(est.verbose)})
        except KeyboardInterrupt:
            end_cut_short(iteration["task"])
            if last["fun"] is None:  # not even the first loss: nothing to keep
                raise
            stop = getattr(est, "_stop_requested", None)  # set by fastbp._restarts
            if stop is None:
                warnings.warn("Training interrupted by user.")
            else:
                stop.set()
            x, est.n_iter_, est.loss_ = last["x"], last["n_iter"], last["fun"]
        else:
            end_cut_short(iteration["task"])  # the evaluations after the last iterate
            if iteration["stopped"]:
                x, est.n_iter_, est.loss_ = last["x"], last["n_iter"], last["fun"]
            else:
                est.n_iter_ = _check_optimize_result("lbfgs", opt_res, est.max_iter)
                x, est.loss_ = opt_res.x, float(opt_res.fun)
    net.params[...] = x
    if not (np.isfinite(est.loss_) and np.isfinite(net.params).all()):
        raise _diverged_lbfgs(est)
