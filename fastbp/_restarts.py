"""Restarts (``n_init``): train several networks from different initial weights
and keep the best one.

Start 0 is exactly the ``n_init=1`` fit: the estimator's own random state,
already used for its initial weights, then (with early stopping) the
validation split, then the mini-batch shuffles.  Start s >= 1 draws its
weights and shuffles from its own ``RandomState``, seeded from a hash of that
random state (``start_seeds``), and reuses start 0's validation split, so
that the validation scores the starts are compared by come from the same
held-out samples.

Small networks leave threads idle (a parallel region per mini-batch costs more
than it gains), so their starts run concurrently, one thread each; larger ones
run one after another with every thread.  Either way each start computes
exactly what it would alone (the kernels are bitwise independent of the
thread count), so the kept model is the same.
"""

import copy
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _callbacks, _lbfgs, _training

__all__ = ["fit_with_restarts", "start_seeds", "starts_run_concurrently"]

# Work per mini-batch (multiply-adds of forward and backward passes) under
# which one start runs on one thread and starts share the cores instead.
CONCURRENT_FLOPS_PER_BATCH = 20e6
# What the fit in progress keeps on the estimator, never on a start.
_FIT_STATE = ("_fit_in_progress",)


def start_seeds(random_state, n_init):
    """Seeds of starts 1..n_init-1: a hash of ``random_state``'s current state
    and the start's index (the state is read, not advanced)."""
    base = _training.state_hash(random_state)
    return [np.random.SeedSequence([base, s]).generate_state(4) for s in range(1, n_init)]


def starts_run_concurrently(est, net, n_threads, n_samples):
    """Whether the starts share the threads (one each) rather than run in turn."""
    if n_threads < 2 or est.solver == "lbfgs":
        return False
    batch = min(200, n_samples) if est.batch_size == "auto" else int(est.batch_size)
    return 6.0 * net.n_coef * min(batch, n_samples) < CONCURRENT_FLOPS_PER_BATCH


def _score_of(start, early_stopping):
    """What the starts are compared by (lower is better), nan-safe."""
    if early_stopping:
        value = _training.best_validation_value(start)
    else:
        value = getattr(start, "loss_", np.inf)  # none: interrupted before an epoch ended
    return value if np.isfinite(value) else np.inf


def _new_start(est, seed, Y, layer_units, dtype):
    """A copy of ``est`` that has drawn its own initial weights from ``seed``."""
    start = copy.copy(est)  # (without _net and _workspace: see __getstate__)
    for key in ("_optimizer", "_best_params"):
        start.__dict__.pop(key, None)
    start._random_state = np.random.RandomState(seed)
    start._initialize(Y, layer_units, dtype)
    return start


def fit_with_restarts(est, inputs, X, Y, sw, y_labels, n_threads, layer_units, tasks=None):
    """Fit ``est`` (initialized: start 0) ``n_init`` times and keep the best.

    Sets ``init_losses_``, ``best_init_`` and ``init_validation_scores_``;
    the kept start's fitted attributes become ``est``'s.  ``tasks``: the
    callbacks' fit task; each start is its subtask ``init`` #s (numbered, as
    concurrent starts begin together), and a callback asking to stop at a
    start's end skips the starts not begun.
    """
    n_init = est.n_init
    stochastic = est.solver != "lbfgs"
    early_stopping = stochastic and est.early_stopping
    seeds = start_seeds(est._random_state, n_init)
    split = _training.validation_split(est, Y) if early_stopping else None
    dtype = est._net.dtype
    starts = [est] + [_new_start(est, seed, Y, layer_units, dtype) for seed in seeds]
    stop = threading.Event()  # a Ctrl-C in the main thread ends every start
    for start in starts:
        start._stop_requested = stop

    def begin(i):  # in the calling thread: the fit task's children are added here
        if tasks is None:
            return None
        return tasks.subtask("init", max_subtasks=est.max_iter, task_id=i, model=starts[i])

    stop_asked = []  # by a callback, at a start's end

    def run(start, threads, task):
        try:
            if stochastic:
                _training.fit_stochastic(start, start._net, inputs, X, Y, sw, y_labels, False,
                                         threads, split=split, tasks=task)
            else:
                _lbfgs.fit_lbfgs(start, start._net, inputs, Y, sw, threads, task)
        except _training.Diverged as exc:
            _callbacks.end_cut_short(task)
            return exc
        if task is not None and task.end():
            stop_asked.append(True)
        return None

    errors = [None] * n_init
    concurrent = starts_run_concurrently(est, est._net, n_threads, Y.shape[0])
    try:
        if concurrent:
            with ThreadPoolExecutor(max_workers=min(n_threads, n_init)) as pool:
                init_tasks = [begin(i) for i in range(n_init)]  # they begin together
                futures = [pool.submit(run, start, 1, task)
                           for start, task in zip(starts, init_tasks)]
                try:
                    errors = [f.result() for f in futures]
                except KeyboardInterrupt:  # Ctrl-C reaches the main thread, waiting here
                    stop.set()
                    errors = [f.result() for f in futures]
            if stop.is_set():  # each start kept its last complete mini-batch
                warnings.warn("Training interrupted by user.")
        else:
            for i, start in enumerate(starts):
                errors[i] = run(start, n_threads, begin(i))
                if stop.is_set() or stop_asked:  # the starts not run are skipped
                    errors[i + 1:] = [KeyboardInterrupt()] * (n_init - i - 1)
                    if stop.is_set():
                        warnings.warn("Training interrupted by user.")
                    break
    finally:
        for start in starts:
            start.__dict__.pop("_stop_requested", None)

    finished = [i for i, err in enumerate(errors) if err is None]
    if not finished:
        raise errors[0]
    best = min(finished, key=lambda i: (_score_of(starts[i], early_stopping), i))
    init_losses = np.full(n_init, np.nan)
    init_scores = np.full(n_init, np.nan) if early_stopping else None
    for i in finished:
        init_losses[i] = getattr(starts[i], "loss_", np.nan)
        if early_stopping:
            init_scores[i] = starts[i].best_validation_score_
    if best != 0:
        kept = starts[best]
        for key in list(est.__dict__):
            # (the fit's guard against a concurrent fit or predict stays until
            # the fit ends: the starts are copies made without it)
            if key not in kept.__dict__ and key not in _FIT_STATE:
                del est.__dict__[key]
        est.__dict__.update(kept.__dict__)
    est.init_losses_ = init_losses
    est.init_validation_scores_ = init_scores
    est.best_init_ = int(best)
