"""validation_loss_curve_, best_validation_loss_ and validation_metric."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import _reference as ref
from fastbp import BPClassifier, BPRegressor


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def numpy_validation_loss(est, X_val, Y_val, sw_val, loss, out_activation):
    """The validation loss from the equations: weighted data loss over the
    validation set / sum of its weights + alpha/2 ||W||^2 / sum of its weights."""
    coefs = [np.asarray(c, dtype=np.float64) for c in est.coefs_]
    intercepts = [np.asarray(b, dtype=np.float64) for b in est.intercepts_]
    P = ref.forward(coefs, intercepts, X_val, est.activation, out_activation)[-1]
    data = ref.data_loss(Y_val, P, loss, sw_val)
    return data + ref.l2_penalty(coefs, est.alpha, sw_val.sum())


def kept_epoch(est):
    """The epoch whose weights early stopping restored: the first best score."""
    return int(np.argmax(est.validation_scores_))


def split_like_fastbp(est, X, y):
    """The validation rows of an early-stopping fit (same draw: the estimator's
    random state after the weights' draws)."""
    rs = np.random.RandomState(est.random_state)
    for c, b in zip(est.coefs_, est.intercepts_):  # Glorot draws, in order
        rs.uniform(size=c.shape)
        rs.uniform(size=b.shape)
    stratify = y if (isinstance(est, BPClassifier) and np.unique(y).size == 2) else None
    return train_test_split(np.arange(X.shape[0]), random_state=rs,
                            test_size=est.validation_fraction, stratify=stratify)


def test_curve_is_the_validation_loss_of_each_epoch():
    X, y = make_classification(400, 6, n_classes=3, n_informative=4, random_state=0)
    sw = np.random.RandomState(1).uniform(0.5, 2, 400)
    curves, checked = {}, 0
    for max_iter in (1, 3, 6):
        est = BPClassifier(hidden_layer_sizes=(7,), max_iter=max_iter, random_state=0,
                           early_stopping=True, alpha=0.01, learning_rate_init=0.05,
                           batch_size=50).fit(X, y, sample_weight=sw)
        _, idx_val = split_like_fastbp(est, X, y)
        Y_val = np.eye(3)[y[idx_val]]
        expected = numpy_validation_loss(est, X[idx_val], Y_val, sw[idx_val], "log_loss",
                                         "softmax")
        curves[max_iter] = est.validation_loss_curve_
        assert len(est.validation_loss_curve_) == max_iter
        # early stopping restores the best weights only at the end: with a rising
        # score the last epoch's weights are kept, so the last entry is theirs
        assert est.validation_loss_curve_[kept_epoch(est)] == pytest.approx(expected,
                                                                           rel=1e-10)
        checked += kept_epoch(est) > 0
    assert checked >= 1  # not only the first epoch's
    assert curves[6][:3] == curves[3] and curves[3][:1] == curves[1]


def test_regressor_losses_and_huber():
    X, y = make_regression(300, 4, noise=5.0, random_state=0)
    y = y / 10
    checked = 0
    for loss in ("squared_error", "absolute_error", "huber"):
        est = BPRegressor(loss=loss, hidden_layer_sizes=(5,), max_iter=4, random_state=0,
                          early_stopping=True, huber_delta=0.5).fit(X, y)
        curve = est.validation_loss_curve_
        assert len(curve) == est.n_iter_ and all(np.isfinite(curve))
        if True:
            _, idx_val = split_like_fastbp(est, X, y)
            P = ref.forward([np.asarray(c) for c in est.coefs_],
                            [np.asarray(b) for b in est.intercepts_], X[idx_val], "relu",
                            "identity")[-1][:, 0]
            r = P - y[idx_val]
            per = {"squared_error": 0.5 * r ** 2, "absolute_error": np.abs(r),
                   "huber": np.where(np.abs(r) <= 0.5, 0.5 * r ** 2,
                                     0.5 * (np.abs(r) - 0.25))}[loss]
            l2 = 0.5 * est.alpha * sum((c ** 2).sum() for c in est.coefs_) / r.size
            assert curve[kept_epoch(est)] == pytest.approx(per.mean() + l2, rel=1e-10)
            checked += kept_epoch(est) > 0
    assert checked >= 2


def test_none_without_early_stopping():
    X, y = make_classification(100, 4, random_state=0)
    est = BPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    assert est.validation_loss_curve_ is None and est.best_validation_loss_ is None
    es = BPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0,
                      early_stopping=True).fit(X, y)
    assert es.best_validation_loss_ is None  # only set with validation_metric="loss"


def test_score_metric_is_scikit_learns_early_stopping():
    X, y = make_classification(500, 8, n_classes=3, n_informative=5, random_state=0)
    a = BPClassifier(hidden_layer_sizes=(10,), max_iter=60, random_state=0,
                     early_stopping=True).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(10,), max_iter=60, random_state=0,
                      early_stopping=True).fit(X, y)
    assert a.validation_scores_ == b.validation_scores_
    assert a.n_iter_ == b.n_iter_
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


def test_loss_metric_stops_and_restores_by_the_loss():
    X, y = make_classification(500, 8, n_classes=3, n_informative=5, flip_y=0.2,
                               random_state=0)
    est = BPClassifier(hidden_layer_sizes=(30,), max_iter=300, random_state=0,
                       early_stopping=True, validation_metric="loss", n_iter_no_change=5,
                       learning_rate_init=0.01).fit(X, y)
    curve = np.asarray(est.validation_loss_curve_)
    best = int(np.argmin(curve))
    assert est.best_validation_loss_ == curve[best]
    # stopped n_iter_no_change + 1 epochs after the last improvement by more than tol
    assert est.n_iter_ < 300
    improved = [i for i in range(1, curve.size)
                if curve[i] <= np.minimum.accumulate(curve)[i - 1] - est.tol]
    last = improved[-1] if improved else 0
    assert est.n_iter_ == last + est.n_iter_no_change + 2
    # best_validation_score_ is the kept epoch's score
    assert est.best_validation_score_ == est.validation_scores_[best]
    # the kept weights are the best epoch's: refit that many epochs without stopping
    again = BPClassifier(hidden_layer_sizes=(30,), max_iter=best + 1, random_state=0,
                         early_stopping=True, validation_metric="loss", n_iter_no_change=10**6,
                         learning_rate_init=0.01).fit(X, y)
    for p, q in zip(est.coefs_, again.coefs_):
        np.testing.assert_array_equal(p, q)


def test_validation_metric_is_validated():
    X, y = make_classification(50, 4, random_state=0)
    with pytest.raises(ValueError, match="The 'validation_metric' parameter of BPClassifier"):
        BPClassifier(validation_metric="auc").fit(X, y)
