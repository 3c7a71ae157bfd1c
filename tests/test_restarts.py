"""n_init: several starts, the best kept; start 0 is the n_init=1 fit."""

import inspect
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from _fit_digest import fitted_state
from conftest import needs_two_threads
from fastbp import BPClassifier, BPRegressor, _lbfgs, _restarts, _training
from fastbp import _kernels as K


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(600, 10, n_informative=6, n_classes=3, random_state=0)
    return X, y


def same_model(a, b):
    return (all(np.array_equal(p, q) for p, q in zip(a.coefs_, b.coefs_))
            and all(np.array_equal(p, q) for p, q in zip(a.intercepts_, b.intercepts_)))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_start_zero_is_the_n_init_1_fit(data, early_stopping):
    X, y = data
    one = BPClassifier(hidden_layer_sizes=(8,), max_iter=15, random_state=3,
                       early_stopping=early_stopping).fit(X, y)
    many = BPClassifier(hidden_layer_sizes=(8,), max_iter=15, random_state=3, n_init=4,
                        early_stopping=early_stopping).fit(X, y)
    assert many.init_losses_.shape == (4,)
    assert many.init_losses_[0] == one.loss_
    if early_stopping:
        assert many.init_validation_scores_[0] == one.best_validation_score_
    else:
        assert many.init_validation_scores_ is None
    # the starts differ (different initial weights)
    assert len(set(many.init_losses_.tolist())) == 4


def test_the_best_start_is_kept(data, monkeypatch):
    X, y = data
    trained = []  # each start's weights as its training left them, in start order
    real = _training.fit_stochastic

    def spy(start, *args, **kwargs):
        real(start, *args, **kwargs)
        trained.append([p.copy() for p in start.coefs_ + start.intercepts_])

    monkeypatch.setattr(_training, "fit_stochastic", spy)
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *args: False)
    est = BPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0, n_init=5).fit(X, y)
    assert est.best_init_ == int(np.argmin(est.init_losses_))
    assert est.best_init_ != 0  # (so the kept start's attributes were copied over)
    assert est.loss_ == est.init_losses_.min()
    assert est.loss_curve_[-1] == est.loss_
    # the kept weights are the best start's, not start 0's (the estimator's own)
    kept = est.coefs_ + est.intercepts_
    assert len(trained) == 5
    assert all(np.array_equal(p, q) for p, q in zip(kept, trained[est.best_init_]))
    assert not all(np.array_equal(p, q) for p, q in zip(kept, trained[0]))
    assert est.predict(X).shape == (X.shape[0],)


def test_early_stopping_keeps_the_best_validation_score(data, monkeypatch):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=1, n_init=4,
                       early_stopping=True).fit(X, y)
    scores = est.init_validation_scores_
    assert est.best_init_ == int(np.argmax(scores))  # ties: the first
    assert est.best_validation_score_ == scores.max()
    # validation_metric="loss": the start with the lowest best validation loss
    losses = []
    real = _training.fit_stochastic

    def spy(est, *args, **kwargs):
        real(est, *args, **kwargs)
        losses.append(est.best_validation_loss_)

    monkeypatch.setattr(_training, "fit_stochastic", spy)
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *args: False)
    by_loss = BPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=1, n_init=4,
                           early_stopping=True, validation_metric="loss").fit(X, y)
    assert len(losses) == 4 and len(set(losses)) == 4
    assert by_loss.best_init_ == int(np.argmin(losses))
    assert by_loss.best_validation_loss_ == min(losses) == min(by_loss.validation_loss_curve_)


def test_starts_share_start_zeros_validation_split(data, monkeypatch):
    X, y = data
    seen = []
    real = _training.fit_stochastic

    def spy(est, net, inputs, X_src, Y, sw, y_labels, incremental, n_threads, split=None,
            tasks=None):
        seen.append(None if split is None else (split[0].copy(), split[1].copy()))
        return real(est, net, inputs, X_src, Y, sw, y_labels, incremental, n_threads,
                    split=split, tasks=tasks)

    monkeypatch.setattr(_training, "fit_stochastic", spy)
    BPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, n_init=3,
                 early_stopping=True).fit(X, y)
    assert len(seen) == 3
    for train, val in seen[1:]:
        np.testing.assert_array_equal(train, seen[0][0])
        np.testing.assert_array_equal(val, seen[0][1])
    # and it is the split an n_init=1 fit draws
    est = BPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, early_stopping=True)
    seen.clear()
    monkeypatch.setattr(_training, "fit_stochastic", real)
    one = est.fit(X, y)
    many = BPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, n_init=3,
                        early_stopping=True).fit(X, y)
    assert many.init_validation_scores_[0] == one.best_validation_score_


def _spy_restarts(monkeypatch, fit_name, barrier=None):
    """Record what ``fit_with_restarts`` did: ``decided`` gets each return value
    of ``starts_run_concurrently`` (True: concurrent), ``runs`` a dict per call
    of ``<fit_name>`` (``_training.fit_stochastic`` or ``_lbfgs.fit_lbfgs``; one
    per start: its Python thread, its
    ``n_threads``, when it began and ended).  With ``barrier``, the first
    ``barrier.parties`` starts wait there before they train, so that they all
    have begun before any trains: it passes only if they run at the same time
    (it times out otherwise, and ``runs`` says ``met=False``)."""
    decided, runs = [], []
    lock = threading.Lock()
    # (a second spy in the same test replaces the first, not wraps it)
    real_decide = getattr(_restarts.starts_run_concurrently, "spied",
                          _restarts.starts_run_concurrently)
    module = _lbfgs if fit_name == "fit_lbfgs" else _training
    real_fit = getattr(getattr(module, fit_name), "spied", getattr(module, fit_name))
    signature = inspect.signature(real_fit)

    def decide(*args):
        decided.append(real_decide(*args))
        return decided[-1]

    def fit(*args, **kwargs):
        n_threads = signature.bind(*args, **kwargs).arguments["n_threads"]
        run = dict(thread=threading.get_ident(), n_threads=n_threads, met=None)
        with lock:
            runs.append(run)
            waits = barrier is not None and len(runs) <= barrier.parties
        run["begin"] = time.perf_counter()
        if waits:
            try:
                barrier.wait()
                run["met"] = True
            except threading.BrokenBarrierError:
                run["met"] = False
        try:
            return real_fit(*args, **kwargs)
        finally:
            run["end"] = time.perf_counter()

    decide.spied, fit.spied = real_decide, real_fit
    monkeypatch.setattr(_restarts, "starts_run_concurrently", decide)
    monkeypatch.setattr(module, fit_name, fit)
    return decided, runs


def _spy_kernels(monkeypatch):
    """The epoch kernel of each compiled call (from any thread), in a list."""
    kernels = []
    real_run = _training._run_batches

    def spy(kernel, *args, **kwargs):
        kernels.append(kernel)
        return real_run(kernel, *args, **kwargs)

    monkeypatch.setattr(_training, "_run_batches", spy)
    return kernels


# lbfgs has one path (its starts always run in turn): see the next test.
@needs_two_threads
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_result_concurrent_or_in_turn(data, solver, early_stopping, monkeypatch):
    """The starts of a small network run concurrently (one thread each) when
    two threads are asked for, and in turn (two threads each) when the network
    is taken for a large one; either way every fitted attribute of the kept
    model -- and of an n_jobs=1 fit -- is bitwise the same."""
    X, y = data
    n_init = 3
    params = dict(hidden_layer_sizes=(8,), max_iter=8, random_state=0, n_init=n_init,
                  solver=solver, early_stopping=early_stopping, n_jobs=2)
    main = threading.get_ident()

    # concurrent: the size rule's own choice for this network
    barrier = threading.Barrier(2, timeout=20)  # two workers: min(n_jobs, n_init)
    decided, runs = _spy_restarts(monkeypatch, "fit_stochastic", barrier)
    kernels = _spy_kernels(monkeypatch)
    a = BPClassifier(**params).fit(X, y)
    assert decided == [True]
    assert len(runs) == n_init and all(r["n_threads"] == 1 for r in runs)
    assert kernels and K.TRAIN.parallel not in kernels  # one thread each: serial
    assert [r["met"] for r in runs[:2]] == [True, True], \
        "the first two starts did not run at the same time"
    assert main not in {r["thread"] for r in runs}
    assert len({r["thread"] for r in runs}) == 2  # the pool's two workers
    assert runs[1]["begin"] < runs[0]["end"] and runs[0]["begin"] < runs[1]["end"]

    # in turn: every network counts as large
    monkeypatch.setattr(_restarts, "CONCURRENT_FLOPS_PER_BATCH", 0.0)
    decided, runs = _spy_restarts(monkeypatch, "fit_stochastic")
    kernels.clear()
    b = BPClassifier(**params).fit(X, y)
    assert decided == [False]
    assert len(runs) == n_init
    assert K.TRAIN.parallel in kernels  # every thread for each start
    assert all(r["thread"] == main and r["n_threads"] == 2 for r in runs)
    assert all(p["end"] <= q["begin"] for p, q in zip(runs, runs[1:]))  # one at a time

    # n_jobs=1: in turn, one thread (the real rule again)
    monkeypatch.undo()
    decided, runs = _spy_restarts(monkeypatch, "fit_stochastic")
    c = BPClassifier(**{**params, "n_jobs": 1}).fit(X, y)
    assert decided == [False] and all(r["n_threads"] == 1 for r in runs)

    assert np.isfinite(a.init_losses_).all() and len(set(a.init_losses_.tolist())) == n_init
    if early_stopping:
        assert np.isfinite(a.init_validation_scores_).all()
    ref = fitted_state(a, X)
    assert {"init_losses_", "best_init_", "init_validation_scores_", "coefs_",
            "loss_curve_", "_optimizer.moments"} <= ref.keys()
    assert fitted_state(b, X) == ref
    assert fitted_state(c, X) == ref


@needs_two_threads
def test_lbfgs_starts_run_in_turn_with_every_thread(monkeypatch):
    """L-BFGS has no concurrent path: its starts run one after another in the
    calling thread, each with every thread asked for (the parallel kernel),
    and give bitwise the n_jobs=1 model."""
    X, y = make_regression(200, 5, noise=1.0, random_state=0)
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, random_state=0,
                  n_init=3)
    kernels = _spy_kernels(monkeypatch)
    # even a network the size rule would run concurrently
    monkeypatch.setattr(_restarts, "CONCURRENT_FLOPS_PER_BATCH", float("inf"))
    decided, runs = _spy_restarts(monkeypatch, "fit_lbfgs")
    two = BPRegressor(**params, n_jobs=2).fit(X, y)
    assert decided == [False] and len(runs) == 3
    assert all(r["thread"] == threading.get_ident() and r["n_threads"] == 2 for r in runs)
    assert all(p["end"] <= q["begin"] for p, q in zip(runs, runs[1:]))
    assert K.TRAIN.parallel in kernels
    kernels.clear()
    decided, runs = _spy_restarts(monkeypatch, "fit_lbfgs")
    one = BPRegressor(**params, n_jobs=1).fit(X, y)
    assert decided == [False] and all(r["n_threads"] == 1 for r in runs)
    assert kernels and K.TRAIN.parallel not in kernels
    assert np.isfinite(one.init_losses_).all()
    assert fitted_state(two, X) == fitted_state(one, X)


def test_small_networks_run_starts_concurrently(data):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(8,))
    net = est.fit(X[:50], y[:50])._net
    assert _restarts.starts_run_concurrently(est, net, 2, 600)
    assert not _restarts.starts_run_concurrently(est, net, 1, 600)
    big = BPClassifier(hidden_layer_sizes=(1000, 1000)).set_params(max_iter=1)
    big._net = type(net)([10, 1000, 1000, 3], np.float64)
    assert not _restarts.starts_run_concurrently(big, big._net, 2, 600)


def test_seeds_are_deterministic_and_do_not_advance_the_state():
    rs = np.random.RandomState(5)
    before = rs.get_state()[1].copy()
    s1 = _restarts.start_seeds(rs, 4)
    np.testing.assert_array_equal(rs.get_state()[1], before)
    s2 = _restarts.start_seeds(np.random.RandomState(5), 4)
    assert len(s1) == 3
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)
    assert len({tuple(s) for s in s1}) == 3


def test_repeatable_and_refit_is_the_same(data):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=7, n_init=3)
    first = [c.copy() for c in est.fit(X, y).coefs_]
    again = est.fit(X, y)
    assert all(np.array_equal(p, q) for p, q in zip(first, again.coefs_))


def test_regressor_and_lbfgs(data):
    X, y = make_regression(200, 5, noise=1.0, random_state=0)
    est = BPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30, random_state=0,
                      n_init=3).fit(X, y)
    assert est.best_init_ == int(np.argmin(est.init_losses_))
    assert est.loss_ == est.init_losses_.min()
    one = BPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=30,
                      random_state=0).fit(X, y)
    assert est.init_losses_[0] == one.loss_


def test_warm_start_and_partial_fit_ignore_n_init(data):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, n_init=3,
                       warm_start=True).fit(X, y)
    kept = [c.copy() for c in est.coefs_]
    ref = BPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, n_init=3,
                       warm_start=True).fit(X, y)
    ref.set_params(n_init=1).fit(X, y)  # continue the kept model once
    est.fit(X, y)  # n_init=3 again: still one continued run
    assert est.init_losses_.shape == (1,) and est.best_init_ == 0
    assert same_model(est, ref)
    assert not all(np.array_equal(p, q) for p, q in zip(kept, est.coefs_))
    pf = BPClassifier(hidden_layer_sizes=(5,), random_state=0, n_init=4)
    pf.partial_fit(X, y, classes=np.unique(y))
    one = BPClassifier(hidden_layer_sizes=(5,), random_state=0).partial_fit(
        X, y, classes=np.unique(y))
    assert same_model(pf, one)


def test_a_diverging_start_is_skipped(data, monkeypatch):
    X, y = data
    real = _training.fit_stochastic
    calls = []

    def flaky(est, *args, **kwargs):
        calls.append(est)
        if len(calls) == 2:
            raise _training.Diverged("start 1 diverged")
        return real(est, *args, **kwargs)

    monkeypatch.setattr(_training, "fit_stochastic", flaky)
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *args: False)
    est = BPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, n_init=3).fit(X, y)
    assert np.isnan(est.init_losses_[1])
    assert est.best_init_ in (0, 2)

    def always(est, *args, **kwargs):
        raise _training.Diverged("diverged")

    monkeypatch.setattr(_training, "fit_stochastic", always)
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="diverged The estimator was left as it was"):
        est.fit(X, y)
    assert all(np.array_equal(p, q) for p, q in zip(before, est.coefs_))


def test_n_init_is_validated(data):
    X, y = data
    with pytest.raises(ValueError, match="The 'n_init' parameter of BPClassifier must be"):
        BPClassifier(n_init=0).fit(X, y)


@pytest.mark.parametrize("concurrent", [False, pytest.param(True, marks=needs_two_threads)])
def test_ctrl_c_ends_every_start_and_warns_once(data, monkeypatch, concurrent):
    """A KeyboardInterrupt in one start's compiled call ends that start (keeping
    its last complete mini-batch), stops the others at their next call, skips
    the starts not begun, warns once, and keeps the best of what ran."""
    X, y = data
    real = _training._run_batches
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_training, "_run_batches", interrupting)
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *args: concurrent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = BPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0, n_init=4,
                           n_jobs=2 if concurrent else 1).fit(X, y)
    messages = [str(w.message) for w in caught if "interrupted" in str(w.message)]
    assert messages == ["Training interrupted by user."]
    assert est.n_iter_ < 20
    assert est.best_init_ == int(np.nanargmin(est.init_losses_))
    if not concurrent:  # the starts after the interrupted one never ran
        assert np.isnan(est.init_losses_[-1])
    assert "_stop_requested" not in est.__dict__
    est.predict(X)
