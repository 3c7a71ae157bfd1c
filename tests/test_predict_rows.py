"""predict on a few dense rows: loops without BLAS or threads (``predict_rows``),
and a direct check of plain ndarray input in place of scikit-learn's generic one."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import _reference as ref
from fastbp import BPClassifier, BPRegressor, _network
from fastbp import _kernels as K


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [dict(activation="relu"), dict(activation="tanh"),
                                     dict(activation="gelu"), dict(activation="softplus",
                                                                    loss="squared_error")])
@pytest.mark.parametrize("hidden", [(7,), (9, 5)])
def test_few_rows_match_the_reference_and_the_blas_path(dtype, options, hidden, monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.rand(120, 6).astype(dtype)
    y = rng.randint(0, 3, 120)
    est = BPClassifier(hidden_layer_sizes=hidden, max_iter=3, random_state=0, **options).fit(X, y)
    calls = []

    def spy(kind, *args):
        calls.append(kind)
        return K.kernels_for(kind, *args)

    monkeypatch.setattr(_network, "kernels_for", spy)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    full = est.predict_proba(X)
    coefs = [np.asarray(c, np.float64) for c in est.coefs_]
    intercepts = [np.asarray(b, np.float64) for b in est.intercepts_]
    expected = ref.forward(coefs, intercepts, X.astype(np.float64), est.activation,
                           "softmax")[-1]
    for rows in (1, 2, _network.SMALL_PREDICT_ROWS):
        few = est.predict_proba(X[:rows])
        assert few.dtype == dtype
        np.testing.assert_allclose(few, full[:rows], rtol=rtol, atol=rtol)
        np.testing.assert_allclose(few, expected[:rows], rtol=10 * rtol, atol=10 * rtol)
        # each row depends on nothing but itself
        np.testing.assert_array_equal(est.predict_proba(X[rows - 1:rows])[0], few[-1])
    assert "predict_rows" in calls and "predict" in calls


def test_regressor_and_binary_few_rows():
    rng = np.random.RandomState(1)
    X = rng.rand(80, 4)
    reg = BPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, X @ [1, 2, 3, 4])
    np.testing.assert_allclose(reg.predict(X[:3]), reg.predict(X)[:3], rtol=1e-12)
    clf = BPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, X[:, 0] > .5)
    np.testing.assert_allclose(clf.predict_proba(X[:1]), clf.predict_proba(X)[:1], rtol=1e-12)
    assert clf.predict(X[:2]).dtype == bool


def test_plain_input_keeps_scikit_learns_checks_and_messages():
    rng = np.random.RandomState(0)
    X = rng.rand(50, 4)
    y = rng.randint(0, 2, 50)
    with pytest.raises(NotFittedError):
        BPClassifier().predict(X[:1])
    est = BPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    bad = X[:2].copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(bad)
    with pytest.raises(ValueError, match="X has 3 features, but BPClassifier is expecting 4"):
        est.predict(X[:2, :3])
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        est.predict(X[:0])
    # lists, ints and Fortran order go through scikit-learn's path and agree
    np.testing.assert_allclose(est.predict_proba(X[:2].tolist()), est.predict_proba(X[:2]))
    np.testing.assert_allclose(est.predict_proba(np.asfortranarray(X[:3])),
                               est.predict_proba(X[:3]))
    # (finiteness is the forward pass's to check: test_validation.py)
    assert est._is_plain_input(X[:2]) and est._is_plain_input(bad)
    assert not est._is_plain_input(X[:2].astype(int))


def test_feature_names_still_warn():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    df = pd.DataFrame(rng.rand(40, 3), columns=list("abc"))
    est = BPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(
        df, rng.randint(0, 2, 40))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict(df.to_numpy()[:1])
