"""fastbp <-> scikit-learn MLPs (fastbp.interop): the same predictions both
ways, training that continues where it left off, and clear refusals."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fastbp import BPClassifier, BPRegressor

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=1e-6)}


def _data(kind, dtype, n=120):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 5)).astype(dtype)
    if kind == "binary":
        y = (X[:, 0] > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(X[:, 0], [-0.5, 0.5])
    elif kind == "multilabel":
        y = np.c_[X[:, 0] > 0, X[:, 1] > 0.3].astype(int)
    elif kind == "poisson":
        y = np.exp(0.3 * X[:, 0])
    else:
        y = X @ rng.normal(size=5)
    return X, y


def _quiet(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


CASES = {
    "binary": (BPClassifier, MLPClassifier, {}),
    "multiclass": (BPClassifier, MLPClassifier, dict(activation="tanh")),
    "multilabel": (BPClassifier, MLPClassifier, dict(activation="logistic", solver="sgd")),
    "regression": (BPRegressor, MLPRegressor, dict(activation="identity")),
    "poisson": (BPRegressor, MLPRegressor, dict(loss="poisson", solver="lbfgs")),
}


def _assert_same_predictions(a, b, X, dtype):
    np.testing.assert_allclose(a.predict(X), b.predict(X), **TOL[dtype])
    if hasattr(a, "predict_proba"):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), **TOL[dtype])
        np.testing.assert_array_equal(a.classes_, b.classes_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_keeps_predictions_and_fitted_attributes(case, dtype):
    bp_cls, sk_cls, params = CASES[case]
    X, y = _data(case, dtype)
    bp = _quiet(bp_cls(hidden_layer_sizes=(7, 4), max_iter=30, random_state=0, **params).fit,
                X, y)
    sk = bp.to_sklearn()
    assert type(sk) is sk_cls and sk.get_params()["activation"] == bp.activation
    _assert_same_predictions(bp, sk, X, dtype)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_", "loss_",
                 "n_features_in_"):
        assert getattr(sk, name) == getattr(bp, name), name
    if bp.solver != "lbfgs":  # (L-BFGS keeps no curve, in either library)
        assert sk.loss_curve_ == bp.loss_curve_
    for a, b in zip(sk.coefs_ + sk.intercepts_, bp.coefs_ + bp.intercepts_):
        assert a.dtype == dtype and np.array_equal(a, b) and a is not b
    back = bp_cls.from_sklearn(sk)
    _assert_same_predictions(back, bp, X, dtype)
    for a, b in zip(back.coefs_ + back.intercepts_, bp.coefs_ + bp.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", list(CASES))
def test_from_sklearn_predicts_as_scikit_learn(case):
    bp_cls, sk_cls, params = CASES[case]
    X, y = _data(case, np.float64)
    sk = _quiet(sk_cls(hidden_layer_sizes=(6,), max_iter=40, random_state=0, **params).fit,
                X, y)
    bp = bp_cls.from_sklearn(sk)
    _assert_same_predictions(bp, sk, X, np.float64)
    assert bp.get_params()["hidden_layer_sizes"] == (6,)
    assert bp.init_losses_[0] == sk.loss_ and bp.best_init_ == 0


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("direction", ["sklearn-to-fastbp", "fastbp-to-sklearn"])
def test_partial_fit_continues_with_the_optimizer_state(solver, direction):
    """Train 3 chunks in one library, convert, train 3 more in the other: the
    weights equal 6 chunks in the first library (float64, to rounding), since the
    velocities / Adam moments, step count and learning rate came along."""
    X, y = _data("multiclass", np.float64, n=600)
    classes = np.unique(y)
    chunks = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 600, 100)]
    params = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0,
                  learning_rate_init=0.01)
    first, second = ((MLPClassifier, BPClassifier) if direction == "sklearn-to-fastbp"
                     else (BPClassifier, MLPClassifier))
    ref = first(**params)
    for Xc, yc in chunks:
        ref.partial_fit(Xc, yc, classes=classes)
    model = first(**params)
    for Xc, yc in chunks[:3]:
        model.partial_fit(Xc, yc, classes=classes)
    model = (BPClassifier.from_sklearn(model) if second is BPClassifier
             else model.to_sklearn())
    for Xc, yc in chunks[3:]:
        model.partial_fit(Xc, yc)
    for a, b in zip(model.coefs_ + model.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert model.t_ == ref.t_ == 600


def test_early_stopping_state_comes_along():
    X, y = _data("multiclass", np.float64, n=300)
    sk = _quiet(MLPClassifier(hidden_layer_sizes=(6,), early_stopping=True, max_iter=15,
                              n_iter_no_change=100, random_state=0).fit, X, y)
    bp = BPClassifier.from_sklearn(sk)
    assert bp.validation_scores_ == sk.validation_scores_
    assert bp.best_validation_score_ == sk.best_validation_score_
    assert len(bp.validation_loss_curve_) == len(sk.validation_scores_) == 15
    assert np.isnan(bp.validation_loss_curve_).all()  # scikit-learn keeps none
    assert bp.init_validation_scores_[0] == sk.best_validation_score_
    assert bp.to_sklearn().validation_scores_ == sk.validation_scores_


def test_training_only_options_are_dropped_with_a_warning():
    X, y = _data("binary", np.float64)
    bp = BPClassifier(solver="rmsprop", dropout=0.2, n_jobs=2, max_iter=5,
                      random_state=0)
    _quiet(bp.fit, X, y)
    with pytest.warns(UserWarning, match=r"MLPClassifier has no .*dropout=0\.2.*solver='rmsprop'"):
        sk = bp.to_sklearn()
    assert sk.solver == "adam" and not hasattr(sk, "_optimizer")
    _assert_same_predictions(bp, sk, X, np.float64)
    plain = _quiet(BPClassifier(n_jobs=2, max_iter=5, random_state=0).fit, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n_jobs changes no result: nothing to say
        plain.to_sklearn()


@pytest.mark.parametrize("params, message", [
    (dict(activation="gelu"), "scikit-learn's MLPs have no activation='gelu'"),
    (dict(loss="squared_error"), "MLPClassifier has no loss='squared_error'"),
])
def test_what_scikit_learn_cannot_express_is_refused(params, message):
    X, y = _data("binary", np.float64)
    bp = _quiet(BPClassifier(max_iter=3, random_state=0, **params).fit, X, y)
    with pytest.raises(ValueError, match=message):
        bp.to_sklearn()


def test_regressor_loss_refused_and_kind_checked():
    X, y = _data("regression", np.float64)
    reg = _quiet(BPRegressor(loss="huber", max_iter=3, random_state=0).fit, X, y)
    with pytest.raises(ValueError, match="MLPRegressor has no loss='huber'"):
        reg.to_sklearn()
    sk = _quiet(MLPRegressor(max_iter=3, random_state=0).fit, X, y)
    with pytest.raises(TypeError, match="BPClassifier.from_sklearn needs a scikit-learn MLP "
                                        "of its kind; got a regressor, MLPRegressor"):
        BPClassifier.from_sklearn(sk)
    with pytest.raises(NotFittedError):
        BPRegressor().to_sklearn()
    with pytest.raises(NotFittedError):
        BPRegressor.from_sklearn(MLPRegressor())
