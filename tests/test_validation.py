"""Bad input gets sklearn's error messages and never corrupts a fitted model."""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fastbp import BPClassifier, BPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize(
    "params, message",
    [
        ({"alpha": -1}, "The 'alpha' parameter of BPClassifier must be a float in the range [0.0, inf). Got -1 instead."),
        ({"activation": "softmax"}, "The 'activation' parameter of BPClassifier must be a str among"),
        ({"solver": "rmsprop"}, "The 'solver' parameter of BPClassifier must be a str among"),
        ({"learning_rate_init": 0.0}, "The 'learning_rate_init' parameter of BPClassifier must be a float in the range (0.0, inf). Got 0.0 instead."),
        ({"max_iter": 0}, "The 'max_iter' parameter of BPClassifier must be an int in the range [1, inf). Got 0 instead."),
        ({"momentum": 1.5}, "The 'momentum' parameter of BPClassifier must be a float in the range [0.0, 1.0]. Got 1.5 instead."),
        ({"batch_size": 0}, "The 'batch_size' parameter of BPClassifier must be a str among {'auto'} or an int in the range [1, inf). Got 0 instead."),
        ({"beta_2": 1.0}, "The 'beta_2' parameter of BPClassifier must be a float in the range [0.0, 1.0). Got 1.0 instead."),
        ({"n_jobs": "all"}, "The 'n_jobs' parameter of BPClassifier must be None or an instance of 'int'. Got 'all' instead."),
    ],
)
def test_invalid_hyper_parameters(digits, params, message):
    X, y = digits
    with pytest.raises(ValueError, match=re.escape(message)):
        BPClassifier(**params).fit(X, y)


def test_invalid_loss_regressor():
    X, y = make_regression(n_samples=20, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="The 'loss' parameter of BPRegressor must be a str among"):
        BPRegressor(loss="absolute_error").fit(X, y)


def test_hidden_layer_sizes_must_be_positive(digits):
    X, y = digits
    with pytest.raises(ValueError, match=re.escape("hidden_layer_sizes must be > 0, got [3, 0].")):
        BPClassifier(hidden_layer_sizes=[3, 0]).fit(X, y)


def test_n_jobs_zero_is_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match="'n_jobs' parameter must be None or a non-zero integer"):
        BPClassifier(n_jobs=0).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X(digits, bad):
    X, y = digits
    X = X.copy()
    X[3, 5] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        BPClassifier(max_iter=2).fit(X, y)


def test_wrong_number_of_features_at_predict(digits):
    X, y = digits
    clf = BPClassifier(max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features, but BPClassifier is expecting 64 features"):
        clf.predict(X[:, :63])


def test_empty_X(digits):
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        BPClassifier().fit(np.empty((0, 3)), np.empty(0))


def test_not_fitted():
    with pytest.raises(NotFittedError, match="This BPClassifier instance is not fitted yet"):
        BPClassifier().predict(np.zeros((2, 2)))


def test_partial_fit_unavailable_for_lbfgs():
    clf = BPClassifier(solver="lbfgs")
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        clf.partial_fit(np.zeros((2, 2)), [0, 1])
    assert "partial_fit is only available for stochastic optimizers. lbfgs is not stochastic." in str(
        info.value.__cause__)


def test_partial_fit_with_early_stopping(digits):
    X, y = digits
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        BPClassifier(early_stopping=True).partial_fit(X, y, classes=np.arange(10))


def test_partial_fit_unseen_class(digits):
    X, y = digits
    clf = BPClassifier(random_state=0).partial_fit(X[y < 5], y[y < 5], classes=np.arange(5))
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y)


def test_warm_start_with_other_classes(digits):
    X, y = digits
    clf = BPClassifier(warm_start=True, max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        clf.fit(X[y < 5], y[y < 5])


def test_warm_start_with_other_architecture_keeps_model(digits):
    X, y = digits
    clf = BPClassifier(hidden_layer_sizes=(8,), warm_start=True, max_iter=2, random_state=0).fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    clf.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match=re.escape("The network shape changed since the previous fit")):
        clf.fit(X, y)
    assert clf.hidden_layer_sizes == (9,)
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)
    assert clf.score(X, y) > 0.1


def test_poisson_negative_targets():
    X = np.random.RandomState(0).rand(20, 3)
    y = np.arange(20.0) - 3
    with pytest.raises(ValueError, match="Some value\\(s\\) of y are negative which is not allowed for Poisson"):
        BPRegressor(loss="poisson").fit(X, y)


def test_all_zero_sample_weight(digits):
    X, y = digits
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        BPClassifier().fit(X, y, sample_weight=np.zeros(len(y)))


def test_validation_set_too_small():
    X = np.random.RandomState(0).rand(10, 2)
    y = np.arange(10.0)
    with pytest.raises(ValueError, match="The validation set is too small. Increase 'validation_fraction'"):
        BPRegressor(early_stopping=True, validation_fraction=0.1).fit(X, y)


def test_batch_size_clipped_with_warning(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="Got `batch_size` less than 1 or larger than sample size"):
        BPClassifier(batch_size=10_000, max_iter=1).fit(X, y)


def test_divergence_raises_and_keeps_previous_model():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 5) * 1e4
    y = X @ rng.rand(5) * 1e6
    reg = BPRegressor(activation="identity", solver="sgd", learning_rate_init=0.5,
                      max_iter=5, random_state=0, warm_start=True)
    small = BPRegressor(activation="identity", solver="sgd", learning_rate_init=1e-12,
                        max_iter=1, random_state=0, warm_start=True)
    small.fit(X, y)
    before = [c.copy() for c in small.coefs_]
    n_iter, curve = small.n_iter_, list(small.loss_curve_)
    small.set_params(learning_rate_init=0.5, max_iter=5)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights.*lower learning_rate_init \\(it is 0.5\\)"):
        small.fit(X, y)
    # the model from before the failing call is intact and usable
    for a, b in zip(before, small.coefs_):
        np.testing.assert_array_equal(a, b)
    assert small.n_iter_ == n_iter and small.loss_curve_ == curve
    assert np.isfinite(small.predict(X)).all()
    # a fresh estimator that diverges is left unfitted, not with NaN weights
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        reg.fit(X, y)
    assert not hasattr(reg, "coefs_")


def test_interrupted_training_keeps_finite_model(digits, monkeypatch):
    from fastbp import _training

    X, y = digits
    calls = {"n": 0}
    real = _training._run_batches

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_training, "_run_batches", interrupting)
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        clf = BPClassifier(max_iter=10, random_state=0).fit(X, y)
    assert clf.n_iter_ == 2
    assert len(clf.loss_curve_) == 2
    assert all(np.isfinite(c).all() for c in clf.coefs_)


def test_sparse_matches_dense(digits):
    X, y = digits
    dense = BPClassifier(max_iter=3, random_state=0).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.csr_array):
        sparse = BPClassifier(max_iter=3, random_state=0).fit(fmt(X), y)
        for a, b in zip(dense.coefs_, sparse.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(fmt(X)),
                                   rtol=1e-12, atol=1e-14)


def test_float32_is_not_upcast(digits):
    X, y = digits
    X32 = X.astype(np.float32)
    clf = BPClassifier(max_iter=3, random_state=0).fit(X32, y)
    assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X32).dtype == np.float32
    reg = BPRegressor(max_iter=3, random_state=0).fit(X32, y.astype(np.float64))
    assert reg.predict(X32).dtype == np.float32


def test_coefs_are_views_of_one_buffer_and_can_be_replaced(digits):
    X, y = digits
    clf = BPClassifier(hidden_layer_sizes=(7, 5), max_iter=2, random_state=0).fit(X, y)
    base = clf._net.params
    for arr in clf.coefs_ + clf.intercepts_:
        assert np.shares_memory(arr, base)
    proba = clf.predict_proba(X)
    # replacing with plain copies (as when copying weights from another model) works
    clf.coefs_ = [np.array(c) * 1.0 for c in clf.coefs_]
    clf.intercepts_ = [np.array(b) for b in clf.intercepts_]
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-12)
    clf.coefs_[0][:] = 0.0
    assert not np.allclose(clf.predict_proba(X), proba)


def test_pickle_round_trip(digits):
    X, y = digits
    clf = BPClassifier(max_iter=3, random_state=0).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    # training continues from the unpickled state exactly as from the original
    clf.partial_fit(X, y)
    clone.partial_fit(X, y)
    for a, b in zip(clf.coefs_, clone.coefs_):
        np.testing.assert_array_equal(a, b)


def test_readonly_memmap_input(tmp_path, digits):
    X, y = digits
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    assert not Xm.flags.writeable
    a = BPClassifier(max_iter=2, random_state=0).fit(Xm, y)
    b = BPClassifier(max_iter=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(Xm), b.predict_proba(X))


@pytest.mark.parametrize("labels", [
    np.array([3, 1, 3, 1, 1]),
    np.array([2.0, 0.0, 1.0, 2.0, 1.0]),
    np.array(["b", "c", "a", "c", "b", "a"], dtype=object),
    np.array(["yes", "no", "no"]),
], ids=["binary-int", "multiclass-float", "multiclass-object", "binary-str"])
def test_binarize_matches_label_binarizer(labels):
    """The direct 1-D path gives LabelBinarizer's matrix, also when the binarizer
    was fitted on more classes than y holds (partial_fit's ``classes``) and when
    y holds a label it does not know (then the binarizer's own path decides)."""
    from sklearn.preprocessing import LabelBinarizer

    from fastbp.estimators import _binarize

    lb = LabelBinarizer().fit(labels)
    np.testing.assert_array_equal(_binarize(lb, labels), lb.transform(labels).astype(bool))
    extra = "zz" if labels.dtype.kind in "OU" else labels.max() + 1
    wider = LabelBinarizer().fit(np.r_[labels, np.array([extra], dtype=labels.dtype)])
    for y in (labels, labels[labels == labels[0]]):  # fewer classes than fitted
        np.testing.assert_array_equal(_binarize(wider, y), wider.transform(y).astype(bool))
    unseen = np.r_[labels, np.array([extra], dtype=labels.dtype)]
    np.testing.assert_array_equal(_binarize(lb, unseen), lb.transform(unseen).astype(bool))


def test_binarize_multilabel_goes_through_the_binarizer():
    from sklearn.preprocessing import LabelBinarizer

    from fastbp.estimators import _binarize

    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    lb = LabelBinarizer().fit(Y)
    np.testing.assert_array_equal(_binarize(lb, Y), Y.astype(bool))
