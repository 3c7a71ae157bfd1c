"""CSR input end to end: the first layer reads the non-zeros in place (no dense
copy of a batch), with the dense path's weights to rounding."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from fastbp import BPClassifier, BPRegressor, _lbfgs, _network

RTOL = {np.float64: 1e-10, np.float32: 1e-5}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def sparse_problem(dtype, n=300, d=400, density=0.03, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=dtype)
    X.data = X.data.astype(dtype)
    y = rng.randint(0, 3, n)
    return X, y


def assert_close_models(a, b, rtol):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol * np.abs(q).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("hidden", [(16,), (20, 6)])
def test_same_weights_as_the_dense_path(dtype, solver, hidden):
    X, y = sparse_problem(dtype)
    params = dict(hidden_layer_sizes=hidden, solver=solver, max_iter=4, random_state=0,
                  batch_size=64)
    a = BPClassifier(**params).fit(X, y)
    b = BPClassifier(**params).fit(X.toarray(), y)
    assert a.coefs_[0].dtype == dtype
    assert_close_models(a, b, RTOL[dtype])
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL[dtype])
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X.toarray()),
                               rtol=RTOL[dtype], atol=RTOL[dtype])


def test_lbfgs_gradient_and_one_iteration_match_dense():
    X, y = sparse_problem(np.float64)
    a = BPClassifier((8,), solver="lbfgs", max_iter=1, random_state=0).fit(X, y)
    b = BPClassifier((8,), solver="lbfgs", max_iter=1, random_state=0).fit(X.toarray(), y)
    assert_close_models(a, b, 1e-10)


def test_matches_scikit_learn_on_csr():
    X, y = sparse_problem(np.float64, n=200, d=150)
    a = BPClassifier((10,), max_iter=5, random_state=0).fit(X, y)
    b = MLPClassifier((10,), max_iter=5, random_state=0).fit(X, y)
    assert_close_models(a, b, 1e-9)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def test_csc_duplicates_and_unsorted_indices():
    X, y = sparse_problem(np.float64, n=120, d=60, density=0.1)
    dense = X.toarray()
    # every entry split in two (duplicates), and the row's order reversed
    indptr = X.indptr * 2
    indices = np.concatenate([np.repeat(X.indices[X.indptr[i]:X.indptr[i + 1]][::-1], 2)
                              for i in range(X.shape[0])])
    data = np.concatenate([np.repeat(X.data[X.indptr[i]:X.indptr[i + 1]][::-1], 2) / 2
                           for i in range(X.shape[0])])
    messy = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not messy.has_canonical_format
    ref = BPClassifier((6,), max_iter=3, random_state=0).fit(dense, y)
    for Xs in (messy, X.tocsc()):
        est = BPClassifier((6,), max_iter=3, random_state=0).fit(Xs, y)
        assert_close_models(est, ref, 1e-10)
        np.testing.assert_allclose(est.predict_proba(Xs), ref.predict_proba(dense),
                                   rtol=1e-10, atol=1e-12)


def test_regressor_and_extended_options_on_csr():
    X, _ = sparse_problem(np.float64)
    y = np.asarray(X.sum(axis=1)).ravel()
    for params in (dict(loss="huber"), dict(activation="gelu"), dict(dropout=0.3)):
        a = BPRegressor(hidden_layer_sizes=(12,), max_iter=3, random_state=0, **params).fit(X, y)
        b = BPRegressor(hidden_layer_sizes=(12,), max_iter=3, random_state=0, **params).fit(X.toarray(), y)
        assert_close_models(a, b, 1e-10)


def test_no_n_features_wide_buffers(monkeypatch):
    """Neither the training workspace nor predict's buffers grow with n_features."""
    X, y = sparse_problem(np.float64, n=200, d=20000, density=0.001)
    seen = {}
    real_ws = _network.Workspace

    class Spy(real_ws):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["acts"] = self.buffers.acts.size

    monkeypatch.setattr(_lbfgs, "Workspace", Spy)  # (an lbfgs fit)
    est = BPClassifier((8,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    assert seen["acts"] == 200 * (8 + 3)  # hidden and output blocks, no input block
    real_empty = _network.aligned_empty
    shapes = []

    def spy_empty(shape, dtype):
        shapes.append(shape)
        return real_empty(shape, dtype)

    monkeypatch.setattr(_network, "aligned_empty", spy_empty)
    est.predict_proba(X)
    assert shapes and all(np.prod(s) < 20000 for s in shapes)


def test_fit_drops_the_workspace_partial_fit_keeps_it():
    X, y = sparse_problem(np.float64, n=100, d=50)
    est = BPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    assert "_workspace" not in est.__dict__
    est.partial_fit(X, y)
    assert "_workspace" in est.__dict__
