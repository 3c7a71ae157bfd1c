"""n_init: several starts, the best kept; start 0 is the n_init=1 fit."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPClassifier, BPRegressor, _restarts, _training


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


def test_the_best_start_is_kept(data):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=0, n_init=5).fit(X, y)
    assert est.best_init_ == int(np.argmin(est.init_losses_))
    assert est.loss_ == est.init_losses_.min()
    assert est.loss_curve_[-1] == est.loss_
    # the kept model is consistent: its reported loss is its weights' loss
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

    def spy(est, net, inputs, X_src, Y, sw, y_orig, incremental, n_threads, split=None,
            tasks=None):
        seen.append(None if split is None else (split[0].copy(), split[1].copy()))
        return real(est, net, inputs, X_src, Y, sw, y_orig, incremental, n_threads,
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


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_same_result_concurrent_or_in_turn(data, solver, monkeypatch):
    X, y = data
    params = dict(hidden_layer_sizes=(8,), max_iter=8, random_state=0, n_init=3,
                  solver=solver, n_jobs=2)
    a = BPClassifier(**params).fit(X, y)
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *args: False)
    b = BPClassifier(**params).fit(X, y)
    c = BPClassifier(**{**params, "n_jobs": 1}).fit(X, y)
    for other in (b, c):
        assert same_model(a, other)
        np.testing.assert_array_equal(a.init_losses_, other.init_losses_)
        assert a.best_init_ == other.best_init_


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


@pytest.mark.parametrize("concurrent", [False, True])
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
