"""The stochastic solvers' training loop: epochs, shuffling, early stopping and
schedules in Python; all the mini-batches of an epoch in compiled calls.  (L-BFGS,
which evaluates the same kernels full-batch: ``fastbp._lbfgs``.)

The loop mirrors scikit-learn's ``_fit_stochastic`` line by line (same random
draws in the same order, same bookkeeping), so that with the same
``random_state`` a BP estimator and an MLP estimator start from the same
weights, see the same mini-batches and stop at the same epoch.
"""

import time
import warnings
from collections import namedtuple

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from . import _threads
from ._blas_pin import pinned
from ._callbacks import batches_per_report, end_cut_short
from ._kernels import kernels_for
from ._kernels import state as kernel_state
from ._kernels.activations import GELU
from ._kernels.state import Batches, Dropout, Model, TrainArgs, no_dropout
from ._network import Workspace, forward_pass
from ._optim import make_optimizer
from ._validation import dropout_rates

# Work per compiled call, in floating-point operations (a small fraction of a
# second on current cores; the README's Guarantees give the measured Ctrl-C
# latencies): epochs larger than this run in several calls, so Ctrl-C (checked
# between calls) is honoured at once, the Pacer can react to a busy machine,
# and per-call hooks have a place.
CALL_FLOPS = 1e9


class Pacer:
    """Chooses, per compiled call, between the parallel and the serial kernel.

    Both give bitwise the same result (the work is split in the same blocks), so
    the choice only affects speed.  A parallel region per mini-batch stalls when
    another process holds one of the cores (each region waits for its slowest
    thread); measured here, that made a fit 10-100x slower than one thread.
    The pacer keeps the seconds per mini-batch of each kernel (a moving
    average), runs the faster one, and re-measures the other now and then, less
    often each time the choice is confirmed.

    The first call of each kernel is not timed (it may load the kernel from the
    disk cache or start the thread pool; the gate leaves out its own first call
    for the same reason).  Serial measurements use short calls
    (``batches``): their per-batch cost does not depend on the call length.
    Parallel ones use full calls, which amortize waking the thread pool.

    While ``gate`` (a ``_threads.CompileGate``) is closed, the parallel kernel
    would have to be compiled first: the serial one runs, and ``record`` tells
    the gate its time and the time still to come (``batches_to_come``).
    """

    def __init__(self, n_threads, gate=None, probe_every=4, max_probe_every=64):
        self.enabled = n_threads > 1
        self.gate = gate if self.enabled else None
        self.cost = {True: None, False: None}  # parallel? -> seconds per batch
        self.seen = {True: 0, False: 0}
        self.calls = 0
        self.probe_every = probe_every
        self.max_probe_every = max_probe_every
        self._next_probe = None
        self._last = True

    def use_parallel(self):
        if not self.enabled:
            return False
        if self.gate is not None and not self.gate.open:
            self._last = False
            return False
        self.calls += 1
        par, ser = self.cost[True], self.cost[False]
        if par is None:
            choice = True
        elif ser is None:
            choice = False
        else:
            choice = par <= ser
            if self._next_probe is None:  # both measured: start the schedule
                self._next_probe = self.calls + self.probe_every
            elif self.calls >= self._next_probe:
                choice = not choice
                self.probe_every = min(2 * self.probe_every, self.max_probe_every)
                self._next_probe = self.calls + self.probe_every
        self._last = choice
        return choice

    def batches(self, per_call):
        """How many of the ``per_call`` mini-batches due next the next call runs
        (ask after use_parallel): all of them, but an eighth for a serial probe,
        so probing costs little even when a whole epoch is one call."""
        if self.enabled and not self._last and (self.gate is None or self.gate.open):
            par, ser = self.cost[True], self.cost[False]
            if ser is None or (par is not None and par <= ser):  # a serial probe
                return max(1, per_call // 8)
        return per_call

    def record(self, seconds, n_batches, batches_to_come=0):
        if not self.enabled or n_batches <= 0:
            return
        self.seen[self._last] += 1
        per_batch = seconds / n_batches
        if self.seen[self._last] > 1:  # (not the warm-up call)
            old = self.cost[self._last]
            self.cost[self._last] = per_batch if old is None else 0.5 * (old + per_batch)
        if self.gate is not None and not self._last:
            estimate = per_batch if self.cost[False] is None else self.cost[False]
            self.gate.serial_ran(seconds, estimate * batches_to_come)


def shuffled(sample_idx, random_state):
    """``sklearn.utils.shuffle(sample_idx, random_state=random_state)``, same draw.

    scikit-learn's shuffle goes through ``resample``, whose generic validation
    was a noticeable share of a small fit's epochs; its draw is exactly
    ``RandomState.shuffle(arange(n))`` applied to the array, done here directly
    (``test_training.py`` checks they agree).
    """
    perm = np.arange(sample_idx.shape[0])
    random_state.shuffle(perm)
    return sample_idx[perm]


class Diverged(ArithmeticError):
    """The fit produced a non-finite loss or weights; ``str(exc)`` says what to change."""


def _scale_hint(est):
    """What to scale: X, and a regressor's targets (a loss of y ~ 1e155 is
    already inf in float64, however small the learning rate)."""
    if is_classifier(est):
        return "scale X (e.g. with StandardScaler)"
    return "scale X (e.g. with StandardScaler) or y (e.g. with TransformedTargetRegressor)"


def _diverged_sgd(est, epoch, what="loss"):
    return Diverged(
        "Solver produced non-finite parameter weights. The input data may"
        f" contain large values and need to be preprocessed. The {what} became"
        f" non-finite in epoch {epoch}; lower learning_rate_init (it is"
        f" {est.learning_rate_init!r}) or {_scale_hint(est)}.")


def _workspace(est, net, cap, keep_pre, sparse):
    """The training workspace, kept on ``est`` between partial_fit calls."""
    n_blocks = _threads.n_blocks(cap)
    ws = getattr(est, "_workspace", None)
    if ws is None or not ws.matches(net.sizes, net.dtype, cap, n_blocks, keep_pre, sparse):
        ws = Workspace(net.sizes, net.dtype, cap, n_blocks, keep_pre, sparse)
        est._workspace = ws
    return ws


def state_hash(random_state):
    """A non-negative int64 hash of a ``RandomState``'s current state; reading
    the state does not advance it."""
    _, key, pos = random_state.get_state()[:3]
    entropy = [int(pos)] + key.tolist()
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def is_sparse(inputs):
    """Whether a ``KernelInput`` holds CSR input."""
    return inputs.csr is not None


def kernel_loss(est, net):
    """The ``Loss`` the estimator's fit minimizes (``fastbp._kernels.state``)."""
    return kernel_state.loss(est._out_code, est.alpha, net.dtype, est._huber_delta)


def needs_pre(est, rates):
    """Whether the training workspace keeps ``pre`` (f'(z) for gelu or a layer
    with dropout): see ``hidden_forward_extended``."""
    return est.activation == "gelu" or bool(np.any(rates > 0))


def _run_batches(kernel, args):
    """The compiled call of mini-batches [lo, hi) of an epoch: ``kernel(*args)``
    for ``args`` a ``TrainArgs`` (``for_batches`` sets the range); returns
    ``args.batches.loss_sum`` plus their losses.  (The one Python line that enters the
    epoch kernel: tests wrap it.)"""
    return kernel(*args)


def train_args(inputs, Y, sw, net, ws, act_code, optimizer, state, loss, dropout=None):
    """The epoch kernel's arguments (``fastbp._kernels.state.TrainArgs``) for
    training ``net`` with ``ws``'s buffers on ``inputs`` (a ``KernelInput``),
    targets ``Y`` and weights ``sw``: ``optimizer`` and ``state`` an
    ``Optimizer`` and its ``OptimizerState``, ``loss`` a ``Loss``, ``dropout``
    a ``Dropout`` (None: none).  Mini-batches of ``ws.cap`` rows; they cover
    nothing until ``for_batches`` gives the epoch's order and a range."""
    dropout = no_dropout(net.sizes.shape[0] - 2) if dropout is None else dropout
    if ws.buffers.pre.shape[0] == 0 and (act_code == GELU or dropout.rates.any()):
        # the kernel would compute f' from the wrong values, silently
        raise ValueError("gelu and dropout need a Workspace with keep_pre=True")
    batches = Batches(inputs.dense, Y, sw, np.zeros(0, dtype=np.int64), int(ws.cap), 0, 0, 0.0)
    return TrainArgs(batches, inputs.csr, Model(net.sizes, net.params, int(act_code)),
                     ws.layout, ws.buffers, ws.partials, optimizer, state, loss, dropout)


def for_batches(args, order, lo, hi, loss_sum=0.0):
    """``args`` for mini-batches [lo, hi) of ``order`` (the epoch's sample
    indices), continuing the epoch's running ``loss_sum``."""
    return args._replace(batches=args.batches._replace(
        order=order, lo=int(lo), hi=int(hi), loss_sum=float(loss_sum)))


# The held-out part of the data for early stopping: X and labels for the
# score (sw_score None when the user gave no weights, as scikit-learn scores),
# kernel targets and weights for the loss.
ValidationSet = namedtuple("ValidationSet", ["X", "y", "Y", "sw_score", "sw"])


def validation_split(est, Y):
    """scikit-learn's early-stopping split (train_test_split with the
    estimator's random state, stratified for single-output classifiers), as
    int64 index arrays ``(idx_train, idx_val)``."""
    n_samples = Y.shape[0]
    should_stratify = is_classifier(est) and est.n_outputs_ == 1
    stratify = _stratify_codes(Y) if should_stratify else None
    try:
        idx_train, idx_val = train_test_split(
            np.arange(n_samples), random_state=est._random_state,
            test_size=est.validation_fraction, stratify=stratify)
    except ValueError as exc:
        if "test_size" in str(exc):  # train_test_split's name for it
            raise ValueError(
                f"validation_fraction={est.validation_fraction!r} leaves the "
                f"early-stopping split of {n_samples} samples without "
                + ("validation" if "'test_size' parameter" in str(exc) else "training")
                + " samples; use a fraction in (0, 1) that leaves both, or "
                "early_stopping=False.") from None
        raise _name_user_labels(exc, est.__dict__.get("classes_"), stratify) from None
    if idx_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset.")
    return idx_train.astype(np.int64), idx_val


class EpochLoop:
    """What the epochs of one ``fit_stochastic`` call share: the estimator and
    its network and optimizer, the data the kernel reads (``inputs``, ``Y``,
    ``sw``; ``val`` the held-out part, with early stopping), how an epoch is
    cut (``batch_size``, ``n_batches``, ``per_call`` mini-batches per compiled
    call, ``per_report`` per progress report), the kernel pair and the ``pacer``
    that picks one per call, the workspace ``ws``, the kernel's arguments
    ``args`` (``train_args``: the dropout masks' epoch is set per epoch, the
    mini-batches per call) and the callbacks' open tasks.
    """

    def __init__(self, est, net, inputs, Y, sw, val, idx_train, incremental, n_threads,
                 tasks):
        self.est, self.net, self.opt = est, net, est._optimizer
        self.inputs, self.Y, self.sw, self.val = inputs, Y, sw, val
        self.idx_train, self.incremental, self.tasks = idx_train, incremental, tasks
        n_train = Y.shape[0] if idx_train is None else idx_train.shape[0]
        self.n_train = n_train
        self.sample_idx = np.arange(n_train, dtype=np.int64)
        self.batch_size = _batch_size(est, n_train)
        rates = dropout_rates(est.dropout, net.sizes.shape[0] - 2)
        self.pair = kernels_for("train", est._act_code, est._out_code, rates.any())
        _, self.n_threads = _threads.choose(self.pair, n_threads)
        # (the masks' seed is read from the random state, not drawn from it, so a
        # fit with dropout draws the same weights, split and mini-batches as without)
        dropout = Dropout(rates, np.array(
            [state_hash(est._random_state) if rates.any() else 0, 0], dtype=np.int64))
        self.ws = _workspace(est, net, self.batch_size, needs_pre(est, rates),
                             is_sparse(inputs))
        self.args = train_args(inputs, Y, sw, net, self.ws, est._act_code, self.opt.kernel,
                               self.opt.state, kernel_loss(est, net), dropout)
        self.pacer = Pacer(self.n_threads, self._gate())
        self.n_batches = -(-n_train // self.batch_size)
        flops_per_batch = 6.0 * max(net.n_coef, 1) * self.batch_size
        self.per_call = max(1, int(CALL_FLOPS // flops_per_batch))
        # batches per progress report within an epoch (0: the epoch is one report)
        self.per_report = (0 if tasks is None
                           else batches_per_report(self.n_batches, flops_per_batch))
        self.epoch_task = self.report_task = None
        self.stop = getattr(est, "_stop_requested", None)  # set by fastbp._restarts

    def _gate(self):
        """The parallel kernel's compile gate (None with one thread)."""
        if self.n_threads <= 1:
            return None
        # (the arguments' types decide which specialization runs; a workspace
        # that partial_fit reuses keeps its gate: typing the kernel's arguments
        # again was a noticeable share of a streaming call)
        parallel = self.pair.parallel
        kept_for, gate = self.ws.train_gate
        if kept_for is not parallel:
            gate = _threads.gate(parallel, "train", for_batches(self.args, self.sample_idx, 0, 1))
            self.ws.train_gate = (parallel, gate)
        gate.update()
        return gate

    def open_epoch_task(self):
        if self.tasks is not None:
            per_report, n_batches = self.per_report, self.n_batches
            self.epoch_task = self.tasks.subtask(
                "epoch", max_subtasks=-(-n_batches // per_report) if per_report else 0)
            self.report_task = self.epoch_task.subtask("batches") if per_report else None

    def end_cut_short(self):
        end_cut_short(self.report_task, self.epoch_task)


def _batch_size(est, n_train):
    """scikit-learn's mini-batch size: 'auto' is min(200, n), a given size is
    clipped to [1, n] with its warning."""
    if est.batch_size == "auto":
        return min(200, n_train)
    if est.batch_size > n_train:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than "
            "sample size. It is going to be clipped")
    return int(np.clip(est.batch_size, 1, n_train))


def _run_epoch(loop, epochs_to_come):
    """One epoch's mini-batches, in compiled calls (the Pacer picks each call's
    kernel); returns the epoch's summed loss (non-finite: it diverged, and the
    calls stopped there)."""
    est, pacer = loop.est, loop.pacer
    if est.shuffle:
        loop.sample_idx = shuffled(loop.sample_idx, est._random_state)
    order = loop.sample_idx if loop.idx_train is None else loop.idx_train[loop.sample_idx]
    loop.opt.start_batches()
    loop.args.dropout.key[1] = len(est.loss_curve_)  # epochs so far, across warm starts
    loop.open_epoch_task()
    n_batches, per_report = loop.n_batches, loop.per_report
    loss_sum = 0.0
    lo = 0
    while lo < n_batches:
        if loop.stop is not None and loop.stop.is_set():  # another start was interrupted
            raise KeyboardInterrupt
        kernel = loop.pair.parallel if pacer.use_parallel() else loop.pair.serial
        todo = min(loop.per_call, n_batches - lo)
        if per_report:  # a call ends where a report does (any chunking trains alike)
            todo = min(todo, per_report - lo % per_report)
        hi = lo + pacer.batches(todo)
        start = time.perf_counter()
        loss_sum = _run_batches(kernel, for_batches(loop.args, order, lo, hi, loss_sum))
        pacer.record(time.perf_counter() - start, hi - lo,
                     max(0, epochs_to_come - 1) * n_batches + n_batches - hi)
        if not np.isfinite(loss_sum):
            break
        lo = hi
        if per_report and (lo % per_report == 0 or lo == n_batches):
            loop.epoch_task.stop_requested |= loop.report_task.end()
            loop.report_task = loop.epoch_task.subtask("batches") if lo < n_batches else None
    return loss_sum


def _end_epoch(loop, loss_sum):
    """After an epoch's mini-batches, scikit-learn's bookkeeping in its order:
    record the epoch (divergence included), the schedule's step, the callbacks'
    epoch end, the no-improvement stop.  Returns True when training stops here."""
    est, opt = loop.est, loop.opt
    if not np.isfinite(loss_sum) and loop.val is None:
        raise _diverged_sgd(est, est.n_iter_ + 1)
    if not _record_epoch(est, opt, loop.net, loop.val, loss_sum, loop.n_train,
                         loop.n_threads):
        loop.end_cut_short()  # diverged: the best epoch is kept
        return True
    opt.iteration_ends(est.t_)
    if loop.epoch_task is not None:
        stop_asked = loop.epoch_task.end() or loop.epoch_task.stop_requested
        loop.epoch_task = None
        if stop_asked:  # a callback ends training after this epoch
            return True
    if est._no_improvement_count > est.n_iter_no_change:
        if loop.val is not None:
            msg = ("Validation %s did not improve more than "
                   "tol=%f for %d consecutive epochs." % (
                       est.validation_metric, est.tol, est.n_iter_no_change))
        else:
            msg = ("Training loss did not improve more than tol=%f"
                   " for %d consecutive epochs." % (est.tol, est.n_iter_no_change))
        if opt.trigger_stopping(msg, est.verbose):
            return True
        est._no_improvement_count = 0
    return False


def _run_epochs(loop):
    """The epochs, up to ``max_iter`` (one for partial_fit); a Ctrl-C keeps the
    last complete mini-batch's weights and the records of whole epochs."""
    est = loop.est
    records = None
    try:
        est.n_iter_ = 0
        for epoch in range(est.max_iter):
            records = EpochRecords(est, loop.opt)  # put back if Ctrl-C cuts the epoch
            loss_sum = _run_epoch(loop, 0 if loop.incremental else est.max_iter - epoch)
            stop = _end_epoch(loop, loss_sum)
            records = None  # the epoch is recorded whole
            if stop or loop.incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) "
                    "reached and the optimization hasn't converged yet." % est.max_iter,
                    ConvergenceWarning)
    except KeyboardInterrupt:
        if records is not None:
            records.undo(est, loop.opt)
        loop.end_cut_short()
        if loop.stop is None:
            warnings.warn("Training interrupted by user.")
        else:  # a restart: fastbp._restarts ends the others and warns once
            loop.stop.set()


def fit_stochastic(est, net, inputs, X_valid_source, Y, sw, y_labels, incremental, n_threads,
                   split=None, tasks=None):
    """Stochastic training (sgd, adam, rmsprop, adamw); mutates ``est`` (fitted
    attributes) and ``net.params``.  ``Y`` the targets as the network outputs
    them (kernel dtype), ``y_labels`` as the user gave them (what the
    validation score compares predictions with).

    ``split``: the early-stopping split to use instead of drawing one (the
    restarts share start 0's, so their validation scores compare).  ``tasks``:
    the callbacks' task (``fastbp._callbacks``) the epochs are subtasks of.
    """
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = make_optimizer(est, net.n_params, net.dtype)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    resume_records(est)
    idx_train, val = None, None
    if est.early_stopping:
        idx_train, idx_val = validation_split(est, Y) if split is None else split
        val = ValidationSet(
            X_valid_source[idx_val], y_labels[idx_val], Y[idx_val],
            None if est._sample_weight_given is False else sw[idx_val], sw[idx_val])
        est._best_params = net.params.copy()
    loop = EpochLoop(est, net, inputs, Y, sw, val, idx_train, incremental, n_threads, tasks)
    with _threads.thread_limits(loop.n_threads):  # once per fit, restored on any exit
        _run_epochs(loop)
    if val is not None:
        net.params[...] = est._best_params
    est.__dict__.pop("_best_params", None)
    if not incremental:
        # Only partial_fit reuses the workspace (the next call's mini-batches
        # fit in it); after fit() it would only hold memory.
        est.__dict__.pop("_workspace", None)
    if not np.isfinite(net.params).all():  # the last step overflowed
        raise _diverged_sgd(est, est.n_iter_)


def _stratify_codes(Y):
    """The binary labels as 0/1 ints, for the stratified early-stopping split.

    Only single-output classifiers stratify, and (as in scikit-learn, whose
    ``n_outputs_`` counts indicator columns) that means binary ones: ``Y`` is
    one 0/1 column.  scikit-learn stratifies on the column turned into strings
    per row; those sort as the ints do, so the split is the same draw, and an
    error can name the user's label (``classes_[code]``) instead of "1.0".
    """
    return (Y[:, 0] != 0).astype(np.int64)


def _name_user_labels(exc, classes, codes):
    """``exc`` with the user's class labels where scikit-learn named our codes."""
    marker = "Classes with too few members are:"
    text = str(exc)
    if codes is None or marker not in text:
        return exc
    counts = np.bincount(codes, minlength=2)
    labels = np.asarray(classes)[counts == 1].tolist()
    return ValueError(text[:text.index(marker)] + f"{marker} {labels}")


def validation_value(est, score, loss):
    """What early stopping follows, as one number where lower is better: the
    validation loss (``validation_metric='loss'``) or minus the validation
    score.  One comparison then serves both: scikit-learn's ``score < best +
    tol`` is exactly ``-score > -best - tol`` (negation rounds nothing)."""
    return loss if est.validation_metric == "loss" else -score


def best_validation_value(est):
    """``validation_value`` of the weights early stopping keeps (inf before any)."""
    if est.validation_metric == "loss":
        return est.best_validation_loss_
    return -est.best_validation_score_


def _stop_diverged_with_early_stopping(est, what):
    """Epoch ``n_iter_`` (just recorded) diverged -- ``what`` became non-finite --
    and training stops there; the caller restores the best weights.

    scikit-learn (since its #29504) keeps training a diverged model to the end,
    recording ``nan`` scores.  Stopping at the first non-finite training loss,
    validation score or validation loss keeps the same best weights and says
    so.  With no finite validation score to fall back on (the first epoch of
    a fresh fit diverged) there is nothing worth keeping: raise, as without
    early stopping.
    """
    epoch = est.n_iter_
    best_value = best_validation_value(est)
    if not np.isfinite(best_value):
        raise _diverged_sgd(est, epoch, what)
    # the curves run on across warm-started fits; n_iter_ counts this one
    values = validation_value(est, np.asarray(est.validation_scores_, dtype=np.float64),
                              np.asarray(est.validation_loss_curve_, dtype=np.float64))
    values = np.where(np.isfinite(values), values, np.inf)
    first_of_fit = values.shape[0] - est.n_iter_
    best = int(np.argmin(values))
    if best >= first_of_fit and values[best] == best_value:
        kept = f"the weights of epoch {best - first_of_fit + 1}"
    else:
        kept = "the weights this fit started from"
    shown = best_value if est.validation_metric == "loss" else -best_value
    warnings.warn(
        f"The {what} became non-finite in epoch {epoch}: training stopped "
        f"there and {kept} (the best validation {est.validation_metric}, "
        f"{shown:.6g}) were restored. Lower learning_rate_init "
        f"(it is {est.learning_rate_init!r}) or {_scale_hint(est)}.",
        ConvergenceWarning)


def start_records(est):
    """The stochastic solvers' records of a fresh fit: empty curves, a stopping
    count of 0, and the best values early stopping (or not) follows, set up
    as for a fit that resumes them (``_follow``)."""
    est.loss_curve_ = []
    est._no_improvement_count = 0
    est.best_loss_ = est.validation_scores_ = est.validation_loss_curve_ = None
    est.best_validation_score_ = est.best_validation_loss_ = None
    _follow(est)


def _followed(est):
    """What the stopping count of the fits so far followed: the training loss
    (``best_loss_`` is kept), or the validation 'score' or 'loss'."""
    if est.__dict__.get("best_loss_") is not None:
        return "training loss"
    return "loss" if est.__dict__.get("best_validation_loss_") is not None else "score"


def _follow(est):
    """The records this fit's stopping follows, set up from the fits' before.

    - Early stopping: the validation curves (``nan`` for epochs that had no
      validation set, so that they stay aligned with ``loss_curve_``), and the
      best validation values it compares with (-inf / inf when none yet).
    - Without: ``best_loss_`` (inf when none yet); the best validation values
      go to None (they described weights this fit does not restore); the
      validation curves stay, a record of the epochs that had one.
    """
    if est.early_stopping:
        n = len(est.loss_curve_)
        for name in ("validation_scores_", "validation_loss_curve_"):
            curve = est.__dict__.get(name)
            curve = [] if curve is None else curve
            est.__dict__[name] = curve + [float("nan")] * (n - len(curve))
        if est.best_validation_score_ is None:
            est.best_validation_score_ = -np.inf
        if est.validation_metric == "loss":
            if est.best_validation_loss_ is None:
                est.best_validation_loss_ = np.inf
        else:
            est.best_validation_loss_ = None
        est.best_loss_ = None
    else:
        if est.best_loss_ is None:
            est.best_loss_ = np.inf
        est.best_validation_score_ = None
        est.best_validation_loss_ = None


def resume_records(est):
    """A warm start (or a later partial_fit) goes on with the records of the
    fits before, under this fit's ``early_stopping`` and ``validation_metric``,
    which may have changed since (scikit-learn fails there on a None): a model
    whose fits so far were L-BFGS's has no records, and they start here;
    otherwise ``_follow`` sets them up, and when the stopping count followed
    something else, it starts again from 0.
    """
    if est.__dict__.get("loss_curve_") is None:
        start_records(est)
        return
    followed = _followed(est)
    _follow(est)
    if _followed(est) != followed:
        est._no_improvement_count = 0


class EpochRecords:
    """What recording an epoch changes, as it was before the epoch, so that a
    Ctrl-C in the middle of the recording puts all of it back: the curves,
    counters and best values then describe whole epochs only (the weights are
    those of the last complete mini-batch, as for a Ctrl-C between
    mini-batches).  The lists are only appended to, so their lengths suffice;
    the other values are replaced, never mutated, so references suffice.
    """

    _ATTRS = ("n_iter_", "t_", "loss_", "best_loss_", "best_validation_score_",
              "best_validation_loss_", "_no_improvement_count", "_best_params")
    _CURVES = ("loss_curve_", "validation_scores_", "validation_loss_curve_")

    def __init__(self, est, opt):
        missing = object()
        self._missing = missing
        self.attrs = {k: est.__dict__.get(k, missing) for k in self._ATTRS}
        self.lengths = {k: len(est.__dict__[k]) for k in self._CURVES
                        if est.__dict__.get(k) is not None}
        self.learning_rate = opt.learning_rate

    def undo(self, est, opt):
        for k, v in self.attrs.items():
            if v is self._missing:
                est.__dict__.pop(k, None)
            else:
                est.__dict__[k] = v
        for k, n in self.lengths.items():
            del est.__dict__[k][n:]
        opt.learning_rate = self.learning_rate


def _record_epoch(est, opt, net, val, loss_sum, n_train, n_threads):
    """Record the epoch whose mini-batches just ran (loss ``loss_sum`` summed
    over its ``n_train`` samples): counters, curves, the validation score and
    loss, the best weights.  Returns False when the epoch diverged (with
    early stopping: a non-finite training loss, validation score or validation
    loss), after recording it and warning which weights are kept."""
    opt.after_batches()
    est.n_iter_ += 1
    est.loss_ = loss_sum / n_train
    est.t_ += n_train
    est.loss_curve_.append(est.loss_)
    if not np.isfinite(loss_sum):  # (early stopping: without it, fit raised)
        est.validation_scores_.append(float("nan"))
        est.validation_loss_curve_.append(float("nan"))
        _stop_diverged_with_early_stopping(est, "training loss")
        return False
    if est.verbose:
        print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
    if val is None:
        _count_training_loss(est)
        return True
    val_score, val_loss = validation_score_and_loss(est, net, val, n_threads)
    est.validation_scores_.append(val_score)
    est.validation_loss_curve_.append(val_loss)
    if est.verbose:
        print("Validation score: %f" % est.validation_scores_[-1])
    if not np.isfinite(val_score) or not np.isfinite(val_loss):
        _stop_diverged_with_early_stopping(
            est, "validation score" if not np.isfinite(val_score) else "validation loss")
        return False
    _count_validation(est, net, val_score, val_loss)
    return True


def validation_score_and_loss(est, net, val, n_threads):
    """The validation score and loss of the current weights, from one forward
    pass: the loss is the training loss's formula (weighted data loss and
    L2 term over the validation weights' sum), with the user's sample weights."""
    output = forward_pass(net, val.X, est._act_code, est._out_code, n_threads)
    with pinned("all"):  # scikit-learn's scorers call numpy's BLAS (a weighted dot)
        score = est._score_output(output, val.y, val.sw_score)
    # (the loss depends on the output code only: a fit with one of fastbp's
    # activations but a canonical loss needs no extended loss code)
    dataset_loss = kernels_for("dataset_loss", 0, est._out_code)
    loss = dataset_loss(output, val.Y, val.sw, net.sizes, net.params, kernel_loss(est, net))
    return score, float(loss)


def _count_validation(est, net, val_score, val_loss):
    """scikit-learn's stopping count and best values after the epoch's
    validation score and loss (early stopping)."""
    value, best = validation_value(est, val_score, val_loss), best_validation_value(est)
    if value > best - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if value < best:
        # (with the loss metric, best_validation_score_ is the kept epoch's score)
        est.best_validation_score_ = val_score
        if est.validation_metric == "loss":
            est.best_validation_loss_ = val_loss
        est._best_params = net.params.copy()


def _count_training_loss(est):
    """scikit-learn's stopping count and ``best_loss_`` after the epoch's
    training loss (no early stopping)."""
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if est.loss_curve_[-1] < est.best_loss_:
        est.best_loss_ = est.loss_curve_[-1]
