"""BPRegressor(out_activation=...): a logistic output for targets in [0, 1].

The engine's (logistic, squared_error) pair is the classifier's
loss="squared_error" code; these tests check the regressor's use of it against
the NumPy reference written from the equations, and its refusals.
"""

import numpy as np
import pytest

import _reference as ref
from fastbp import BPRegressor


def _data(n=40, n_out=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    Y = 1.0 / (1.0 + np.exp(-(X @ rng.normal(size=(3, n_out)))))
    return X, Y


@pytest.mark.parametrize("n_out", [1, 2])
def test_one_full_batch_sgd_step_is_the_reference_step(n_out):
    X, Y = _data(n_out=n_out)
    sizes = [3, 4, n_out]
    alpha, lr = 1e-3, 0.5
    est = BPRegressor(hidden_layer_sizes=(4,), activation="tanh", out_activation="logistic",
                      solver="sgd", momentum=0.0, learning_rate_init=lr, batch_size=X.shape[0],
                      shuffle=False, alpha=alpha, random_state=3)
    est.partial_fit(X, Y if n_out > 1 else Y.ravel())
    assert est.out_activation_ == "logistic"

    coefs, intercepts = ref.init_params(sizes, "tanh", 3)
    loss, cg, ig = ref.backprop_general(coefs, intercepts, X, Y, np.ones(len(X)), "tanh",
                                        "logistic", "squared_error", alpha)
    want = ref.pack(coefs, intercepts) - lr * ref.pack(cg, ig)
    np.testing.assert_allclose(ref.pack(est.coefs_, est.intercepts_), want, rtol=0, atol=1e-12)
    assert est.loss_curve_[0] == pytest.approx(loss, rel=1e-12)
    # and the output delta carries the sigmoid's derivative: without it the
    # step would differ
    P = ref.forward(coefs, intercepts, X, "tanh", "logistic")[-1]
    delta = ref.output_delta(Y, P, "logistic", "squared_error", np.ones(len(X)))
    np.testing.assert_allclose(delta, (P - Y) * P * (1 - P), rtol=1e-12)


def test_predictions_are_the_reference_forward_pass_and_within_0_1():
    X, Y = _data(n=200)
    est = BPRegressor(hidden_layer_sizes=(5,), activation="logistic", out_activation="logistic",
                      solver="lbfgs", max_iter=300, random_state=0).fit(X, Y.ravel())
    P = ref.forward(est.coefs_, est.intercepts_, X, "logistic", "logistic")[-1].ravel()
    np.testing.assert_allclose(est.predict(X), P, rtol=1e-12, atol=0)
    assert 0 < P.min() and P.max() < 1
    assert est.score(X, Y.ravel()) > 0.99


def test_explicit_identity_is_the_default_model():
    X, Y = _data()
    kw = dict(hidden_layer_sizes=(4,), max_iter=20, random_state=0, tol=0)
    with pytest.warns(Warning):  # max_iter reached
        a = BPRegressor(**kw).fit(X, Y.ravel())
    with pytest.warns(Warning):
        b = BPRegressor(out_activation="identity", **kw).fit(X, Y.ravel())
    assert a.out_activation_ == b.out_activation_ == "identity"
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)
    p = BPRegressor(loss="poisson", max_iter=2, hidden_layer_sizes=(3,))
    with pytest.warns(Warning):
        assert p.fit(X, Y.ravel()).out_activation_ == "exp"


@pytest.mark.parametrize("kw, message", [
    (dict(out_activation="logistic", loss="huber"),
     "out_activation='logistic' does not go with loss='huber'"),
    (dict(out_activation="logistic", loss="absolute_error"),
     "a logistic output is trained with loss='squared_error' only"),
    (dict(out_activation="identity", loss="poisson"),
     "loss='poisson' needs the exponential output"),
    (dict(out_activation="softmax"), "The 'out_activation' parameter of BPRegressor must be"),
])
def test_pairs_the_engine_has_no_delta_for_are_refused(kw, message):
    X, Y = _data()
    with pytest.raises(ValueError, match=message):
        BPRegressor(**kw).fit(X, Y.ravel())


def test_targets_outside_0_1_are_refused_and_the_model_is_kept():
    X, Y = _data()
    est = BPRegressor(hidden_layer_sizes=(3,), out_activation="logistic", solver="lbfgs",
                      max_iter=50, random_state=0).fit(X, Y.ravel())
    before = [w.copy() for w in est.coefs_]
    with pytest.raises(ValueError, match=r"y has values in \[-1, 0\.8"):
        est.fit(X, np.r_[-1.0, Y.ravel()[1:] * 0.9])
    with pytest.raises(ValueError, match="Scale y into"):
        est.fit(X, Y.ravel() + 1)
    for w, w0 in zip(est.coefs_, before):
        np.testing.assert_array_equal(w, w0)


def test_to_sklearn_refuses_a_logistic_output():
    X, Y = _data()
    est = BPRegressor(hidden_layer_sizes=(3,), out_activation="logistic", solver="lbfgs",
                      max_iter=50, random_state=0).fit(X, Y.ravel())
    with pytest.raises(ValueError, match="MLPRegressor has no out_activation='logistic'"):
        est.to_sklearn()


def test_the_textbook_2_2_1_network_learns_one_sample():
    """2 -> 2 (sigmoid) -> 1 (sigmoid), squared error, x = (0.5, 0.1), t = 0.6."""
    X, y = np.array([[0.5, 0.1]]), np.array([0.6])
    est = BPRegressor(hidden_layer_sizes=(2,), activation="logistic", out_activation="logistic",
                      solver="sgd", momentum=0.0, learning_rate_init=1.0, alpha=0.0,
                      batch_size=1, max_iter=200, tol=0, n_iter_no_change=200, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    curve = np.array(est.loss_curve_)
    assert np.all(np.diff(curve) < 0)  # every plain gradient step lowers this loss
    assert est.predict(X)[0] == pytest.approx(0.6, abs=1e-3)
