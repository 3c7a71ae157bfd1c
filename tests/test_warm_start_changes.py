"""Parameters changed between warm starts (issue 17, item 3): every change
either works or raises a ValueError that names the parameter, and the records
(curves, best values, stopping count) go on consistently.

scikit-learn's MLP fails on several of these with a TypeError or an
AttributeError on a None (early stopping turned on or off between warm
starts, lbfgs then a stochastic solver); fastbp promises a working fit.
"""

import itertools

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.neural_network import MLPClassifier

from fastbp import BPClassifier, BPRegressor


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(200, 5, noise=1.0, random_state=0)
    return X, (y - y.min()) / (y.max() - y.min())  # in [0, 1]: every loss and output


BASE = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, warm_start=True)

CHANGES = {
    "solver": ["sgd", "adam", "lbfgs", "rmsprop", "adamw"],
    "early_stopping": [False, True],
    "validation_metric": ["score", "loss"],
    "activation": ["relu", "gelu", "logistic"],
    "batch_size": ["auto", 7],
    "learning_rate": ["constant", "adaptive", "invscaling"],
    "n_init": [1, 2],
    "dropout": [0.0, 0.2],
}
CLASSIFIER = dict(CHANGES, loss=["log_loss", "squared_error"], class_weight=[None, "balanced"])
REGRESSOR = dict(CHANGES, loss=["squared_error", "poisson", "absolute_error", "huber"],
                 out_activation=[None, "identity", "logistic"])


def _cases(changes):
    for name, values in changes.items():
        for a, b in itertools.permutations(values, 2):
            yield pytest.param(name, a, b, id=f"{name}-{a}-{b}")


def _refit(Est, X, y, name, a, b):
    first = dict(BASE, early_stopping=name == "validation_metric")
    first[name] = a
    est = Est(**first).fit(X, y)
    est.set_params(**{name: b})
    try:
        est.fit(X, y)
    except ValueError as exc:  # refused: the message names the parameter
        assert name in str(exc), str(exc)
        return None
    assert np.isfinite(est.predict(X)).all()
    return est


def _records_are_aligned(est):
    if est.solver == "lbfgs":
        return
    n = len(est.loss_curve_)
    if est.early_stopping:
        assert len(est.validation_scores_) == n == len(est.validation_loss_curve_)
        assert np.isfinite(est.validation_scores_[-1])
        assert np.isfinite(est.best_validation_score_)
        if est.validation_metric == "loss":
            assert np.isfinite(est.best_validation_loss_)
        else:
            assert est.best_validation_loss_ is None
        assert est.best_loss_ is None
    else:
        assert np.isfinite(est.best_loss_)
        assert est.best_validation_score_ is None and est.best_validation_loss_ is None


@pytest.mark.parametrize("name, a, b", list(_cases(CLASSIFIER)))
def test_classifier_warm_start_after_a_change(digits, name, a, b):
    est = _refit(BPClassifier, *digits, name, a, b)
    if est is not None:
        _records_are_aligned(est)


@pytest.mark.parametrize("name, a, b", list(_cases(REGRESSOR)))
def test_regressor_warm_start_after_a_change(regression, name, a, b):
    est = _refit(BPRegressor, *regression, name, a, b)
    if est is not None:
        _records_are_aligned(est)


def test_turning_early_stopping_on_aligns_the_validation_curves(digits):
    """The epochs before had no validation set: nan, so that validation_scores_[i]
    is still the score of epoch i + 1 of loss_curve_."""
    est = BPClassifier(**BASE).fit(*digits)
    est.set_params(early_stopping=True)
    est.fit(*digits)
    assert len(est.loss_curve_) == 6
    assert np.isnan(est.validation_scores_[:3]).all()
    assert np.isfinite(est.validation_scores_[3:]).all()
    assert np.isnan(est.validation_loss_curve_[:3]).all()
    assert est.best_validation_score_ == max(est.validation_scores_[3:])
    # and off again: the curves stay as a record, the best values go
    est.set_params(early_stopping=False)
    est.fit(*digits)
    assert len(est.loss_curve_) == 9 and len(est.validation_scores_) == 6
    assert est.best_loss_ == min(est.loss_curve_[6:])


def test_score_then_loss_metric_follows_the_validation_loss(digits):
    """best_validation_loss_ was None after a 'score' fit: the TypeError of the
    issue.  The count starts again, since it counted scores."""
    est = BPClassifier(**dict(BASE, early_stopping=True)).fit(*digits)
    est.set_params(validation_metric="loss")
    est.fit(*digits)
    assert est.best_validation_loss_ == min(est.validation_loss_curve_[3:])


def test_warm_start_of_a_converted_model_with_the_loss_metric(digits):
    """from_sklearn sets best_validation_loss_ None (scikit-learn records no
    validation loss): warm-starting it with the loss metric failed the same way."""
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, early_stopping=True,
                        random_state=0).fit(*digits)
    est = BPClassifier.from_sklearn(mlp)
    est.set_params(warm_start=True, validation_metric="loss")
    est.fit(*digits)
    assert len(est.validation_loss_curve_) == len(est.loss_curve_) == 6
    assert np.isnan(est.validation_loss_curve_[:3]).all()
    assert np.isfinite(est.best_validation_loss_)


def test_lbfgs_then_a_stochastic_solver_starts_the_curves(digits):
    est = BPClassifier(**dict(BASE, solver="lbfgs")).fit(*digits)
    est.set_params(solver="adam")
    est.fit(*digits)
    assert len(est.loss_curve_) == 3 and est.n_iter_ == 3


def test_a_changed_output_loss_changes_the_output_layer(regression):
    """A regressor's out_activation_ follows loss and out_activation on a warm
    start (poisson needs the exponential output); it kept the first fit's, so
    the new setting was silently ignored or the fit failed with a KeyError."""
    X, y = regression
    reg = BPRegressor(**BASE).fit(X, y)
    assert reg.out_activation_ == "identity"
    reg.set_params(loss="poisson")
    reg.fit(X, y)
    assert reg.out_activation_ == "exp" and (reg.predict(X) > 0).all()
    reg.set_params(loss="squared_error", out_activation="logistic")
    reg.fit(X, y)
    assert reg.out_activation_ == "logistic"
    assert ((reg.predict(X) > 0) & (reg.predict(X) < 1)).all()
