"""Bad input gets sklearn's error messages and never corrupts a fitted model."""

import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from conftest import diverging_regression
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
        ({"solver": "nadam"}, "The 'solver' parameter of BPClassifier must be a str among"),
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
        BPRegressor(loss="hinge").fit(X, y)


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


@pytest.mark.parametrize("n_rows", [3, 1000], ids=["few-rows", "kernel"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_X_at_predict(digits, bad, dtype, n_rows):
    """The forward pass's own finiteness count (no scan of X) still gives
    scikit-learn's errors, with relu, which maps nan and -inf to 0."""
    X, y = digits
    clf = BPClassifier(max_iter=2, random_state=0, activation="relu").fit(X, y)
    Xt = np.resize(X, (n_rows, X.shape[1])).astype(dtype)
    Xt[n_rows - 1, 7] = bad
    word = "NaN" if np.isnan(bad) else "infinity"
    for method in (clf.predict, clf.predict_proba, clf.predict_log_proba):
        with pytest.raises(ValueError, match=f"Input X contains {word}"):
            method(Xt)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        clf.score(Xt, np.resize(y, n_rows))


def test_finite_X_whose_products_overflow_predicts_or_says_why(digits):
    """A finite X can make the first layer's products overflow: that is no
    input error (scikit-learn predicts too), but a NaN output is never
    returned silently (scikit-learn returns it)."""
    X, y = digits
    clf = BPClassifier(max_iter=2, random_state=0).fit(X.astype(np.float32), y)
    Xt = np.full((200, X.shape[1]), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match=r"output is NaN for 200 of the 200 rows of X: X "
                                         r"is finite, but .* overflow float32"):
        clf.predict_proba(Xt)
    Xt[:, :] = 1e3  # large but not overflowing: finite probabilities
    assert np.isfinite(clf.predict_proba(Xt)).all()


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


def test_divergence_with_early_stopping_restores_the_best_epoch():
    X, y, params = diverging_regression()
    with pytest.warns(ConvergenceWarning,
                      match=r"non-finite in epoch 6: training stopped there and the "
                            r"weights of epoch 4 \(the best validation score, 0\.084.*\) "
                            r"were restored\. Lower learning_rate_init \(it is 0\.5\)"):
        reg = BPRegressor(**params).fit(X, y)
    assert reg.n_iter_ == 6 == len(reg.loss_curve_) == len(reg.validation_scores_)
    last = reg.validation_scores_[-1]
    assert type(last) is float and np.isnan(last)
    assert np.all(np.isfinite(reg.validation_scores_[:-1]))
    assert not np.isfinite(reg.loss_curve_[-1]) and not np.isfinite(reg.loss_)
    assert reg.best_validation_score_ == max(reg.validation_scores_[:-1])
    assert int(np.nanargmax(reg.validation_scores_)) == 3  # epoch 4
    assert reg.t_ == 6 * 180
    # the model is epoch 4's, bit for bit, and usable
    replay = BPRegressor(**{**params, "max_iter": 4}).fit(X, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, replay.coefs_ + replay.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(reg.predict(X)).all()
    assert reg.score(X, y) == replay.score(X, y)


def test_divergence_with_early_stopping_warm_start_names_the_starting_weights():
    """A warm-started fit whose first epoch diverges keeps the weights it started
    from (the best score so far came from the earlier fit) and says so."""
    X, y, params = diverging_regression()
    reg = BPRegressor(**{**params, "learning_rate_init": 0.01, "max_iter": 3},
                      warm_start=True).fit(X, y)
    start = [c.copy() for c in reg.coefs_ + reg.intercepts_]
    best = reg.best_validation_score_
    reg.set_params(learning_rate_init=50.0, max_iter=20)
    with pytest.warns(ConvergenceWarning, match="non-finite in epoch 1: training stopped "
                      "there and the weights this fit started from"):
        reg.fit(X, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, start):
        np.testing.assert_array_equal(a, b)
    assert reg.best_validation_score_ == best and reg.n_iter_ == 1
    assert len(reg.validation_scores_) == 4 and np.isnan(reg.validation_scores_[-1])


def test_a_non_finite_validation_score_is_divergence_too():
    """The validation R^2 goes nan (the weights overflowed in the epoch's last
    mini-batches) one epoch before the training loss is non-finite: the fit
    stops at that first epoch, with one nan score, as the divergence contract
    says (it went on one more epoch and recorded [..., nan, nan])."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=200)
    _, _, params = diverging_regression()
    params["learning_rate_init"] = 0.3
    with pytest.warns(ConvergenceWarning,
                      match=r"The validation score became non-finite in epoch 2: training "
                            r"stopped there and the weights of epoch 1 \(the best"):
        reg = BPRegressor(**params).fit(X, y)
    assert reg.n_iter_ == 2 == len(reg.loss_curve_) == len(reg.validation_scores_)
    assert np.isfinite(reg.loss_curve_).all()  # the training loss was still finite
    assert np.isnan(reg.validation_scores_[-1]) and np.isfinite(reg.validation_scores_[0])
    assert len(reg.validation_loss_curve_) == 2
    replay = BPRegressor(**{**params, "max_iter": 1}).fit(X, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, replay.coefs_ + replay.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("metric", ["score", "loss"])
def test_a_non_finite_validation_value_stops_at_that_epoch(monkeypatch, metric):
    """Whichever of the two validation values is non-finite (a nan score, an
    inf loss), the epoch is the last, and the best epoch before it is kept."""
    from fastbp import _training

    X, y, params = diverging_regression()
    params.update(learning_rate_init=0.01, validation_metric=metric)
    real = _training.validation_score_and_loss
    calls = []

    def third_is_bad(est, net, val, n_threads):
        score, loss = real(est, net, val, n_threads)
        calls.append(1)
        if len(calls) == 3:
            return (score, np.inf) if metric == "loss" else (np.nan, loss)
        return score, loss

    monkeypatch.setattr(_training, "validation_score_and_loss", third_is_bad)
    what = "loss" if metric == "loss" else "score"
    with pytest.warns(ConvergenceWarning, match=f"validation {what} became non-finite in "
                                                "epoch 3: training stopped there"):
        reg = BPRegressor(**params).fit(X, y)
    assert reg.n_iter_ == 3 == len(reg.validation_scores_) == len(reg.validation_loss_curve_)
    monkeypatch.setattr(_training, "validation_score_and_loss", real)
    replay = BPRegressor(**{**params, "max_iter": 2}).fit(X, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, replay.coefs_ + replay.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_divergence_in_the_first_epoch_with_early_stopping_raises():
    """Nothing to keep: no epoch had a finite validation score."""
    X, y, params = diverging_regression()
    reg = BPRegressor(**{**params, "learning_rate_init": 50.0})
    with pytest.raises(ValueError, match=r"non-finite in epoch 1; lower learning_rate_init "
                                         r"\(it is 50\.0\).*left as it was before"):
        reg.fit(X, y)
    assert not hasattr(reg, "coefs_")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_divergence_from_huge_targets_suggests_scaling_y(solver):
    """y ~ 1e160: the squared error overflows at once, whatever the learning
    rate; the message says to scale y too (a classifier's names X only)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3))
    reg = BPRegressor(solver=solver, hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=r"or y \(e\.g\. with TransformedTargetRegressor\)"):
        reg.fit(X, 1e160 * rng.normal(size=50))
    assert not hasattr(reg, "coefs_")
    clf = BPClassifier(solver="sgd", learning_rate_init=1e6, momentum=0.0, max_iter=50,
                       random_state=0)
    with pytest.raises(ValueError, match=r"scale X \(e\.g\. with StandardScaler\)\.") as info:
        clf.fit(X * 1e100, (X[:, 0] > 0).astype(int))
    assert "TransformedTargetRegressor" not in str(info.value)


def test_lbfgs_divergence_message_speaks_of_iterations():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 5)) * 1e160  # the first forward pass overflows
    reg = BPRegressor(solver="lbfgs", max_iter=20, random_state=0)
    with pytest.raises(ValueError, match=r"Solver produced non-finite parameter weights\. "
                       r".*L-BFGS reached a non-finite loss or weights after 0 iteration"
                       r"\(s\); scale X .* or y .*, or increase alpha\. The estimator was left"
                       ) as info:
        reg.fit(X, X[:, 0])
    assert "epoch" not in str(info.value) and "learning_rate" not in str(info.value)
    assert not hasattr(reg, "coefs_")
    # the same outcome every time: the gradient of a non-finite loss used to be
    # whatever the fresh workspace held (0 iterations in a new process, 20 later)
    for _ in range(3):
        with pytest.raises(ValueError, match=r"after 0 iteration\(s\)"):
            BPRegressor(solver="lbfgs", max_iter=20, random_state=0).fit(X, X[:, 0])


def test_gradient_of_a_non_finite_loss_is_nan_not_workspace_garbage():
    from fastbp._network import Network, Workspace, as_kernel_input
    from fastbp._lbfgs import loss_and_gradient

    X = np.full((4, 2), 1e160)
    Y = np.full((4, 1), -1e160)
    net = Network([2, 3, 1], np.float64)
    net.params[...] = 1.0
    ws = Workspace(net.sizes, np.float64, 4, 1)
    ws.buffers.grad_sums[...] = 123.0  # what a reused workspace might hold
    loss, grad = loss_and_gradient(net, as_kernel_input(X, np.float64), Y, np.ones(4),
                                   0, 0, 0.0, ws, 1)
    assert loss == np.inf
    assert grad.shape == (net.n_params,) and np.isnan(grad).all()


@pytest.mark.parametrize("X, y, too_few", [
    ([[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1], [1]),
    ([[1, 2], [2, 3], [3, 4], [4, 5]], ["yes", "no", "no", "no"], ["yes"]),
    ([[1, 2], [2, 3], [3, 4], [4, 5]], [1.0, 1.0, 1.0, -1.0], [-1.0]),
], ids=["int", "str", "float"])
def test_stratified_split_error_names_the_users_labels(X, y, too_few):
    """scikit-learn's message, but naming the labels the user passed (it named
    internal indicator rows such as '1.0')."""
    message = ("The least populated classes in y have only 1 member, which is too "
               "few. The minimum number of groups for any class cannot be less than 2. "
               f"Classes with too few members are: {too_few}")
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        BPClassifier(early_stopping=True, validation_fraction=0.5).fit(X, y)


def test_stratify_codes_give_sklearns_split():
    """Only binary classifiers stratify (scikit-learn's ``n_outputs_`` counts the
    indicator columns, so multiclass is not stratified either); the 0/1 codes
    give exactly scikit-learn's split of the indicator column."""
    from sklearn.model_selection import train_test_split

    from fastbp._training import _stratify_codes

    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, size=300)
    Y = labels[:, None].astype(bool)
    idx = np.arange(300)
    for seed in range(5):
        want = train_test_split(idx, test_size=0.2, random_state=seed, stratify=Y)
        got = train_test_split(idx, test_size=0.2, random_state=seed,
                               stratify=_stratify_codes(Y.astype(np.float32)))
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
    # the estimator splits like MLPClassifier, for binary and multiclass y
    from sklearn.neural_network import MLPClassifier

    X = rng.normal(size=(300, 3))
    for y in (labels, rng.randint(0, 4, size=300)):
        kw = dict(hidden_layer_sizes=(3,), early_stopping=True, max_iter=3,
                  validation_fraction=0.3, random_state=3)
        bp = BPClassifier(**kw).fit(X, y)
        sk = MLPClassifier(**kw).fit(X, y)
        np.testing.assert_allclose(bp.validation_scores_, sk.validation_scores_, rtol=1e-12)


def test_import_without_register_at_fork():
    """Windows has no os.register_at_fork; importing fastbp must not need it."""
    import subprocess
    import sys

    # the standard library and the dependencies register their own fork hooks
    # (random does): import them first, then take the function away
    code = ("import os, random, logging, numpy, scipy, numba, threadpoolctl\n"
            "import sklearn.neural_network, sklearn.model_selection\n"
            "del os.register_at_fork\n"
            "import fastbp\n"
            "from fastbp import _threads\n"
            "print('ok', _threads.MACHINE_CPUS >= 1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "True"]


def test_sizes_beyond_the_blas_int_are_refused_before_allocating():
    """numba's BLAS bridge narrows sizes to 32 bits without a check; fastbp
    refuses such sizes with a clear error instead (before allocating)."""
    from fastbp._network import BLAS_INT_MAX, Network, Workspace

    with pytest.raises(ValueError, match=r"The width of layer 1 is 2147483648, but the "
                       r"BLAS library computes with 32-bit sizes: at most 2147483647"):
        Network([3, 2**31, 1], np.float32)
    with pytest.raises(ValueError, match=r"rows per compiled product \(the batch size\) "
                       r"is 2147483648"):
        Workspace([3, 2, 1], np.float32, 2**31, 1)
    Network([3, 2, 1], np.float32)  # ordinary sizes pass
    assert BLAS_INT_MAX == np.iinfo(np.int32).max


def test_readonly_targets_and_weights_train_the_same_model(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4))
    y = X[:, 0] - X[:, 1]
    sw = rng.uniform(0.5, 2.0, size=80)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "sw.npy", sw)
    y_ro = np.load(tmp_path / "y.npy", mmap_mode="r")
    sw_ro = np.load(tmp_path / "sw.npy", mmap_mode="r")
    assert not (y_ro.flags.writeable or sw_ro.flags.writeable)
    for solver in ("adam", "lbfgs"):
        a = BPRegressor(solver=solver, max_iter=5, random_state=0).fit(X, y_ro,
                                                                       sample_weight=sw_ro)
        b = BPRegressor(solver=solver, max_iter=5, random_state=0).fit(X, y, sample_weight=sw)
        for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(ca, cb)


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


@pytest.mark.parametrize("attr", ["coefs_", "intercepts_"])
def test_replacing_one_item_is_seen_by_predict_fit_and_pickle(digits, attr):
    """``est.coefs_[0] = W`` (a scikit-learn idiom) changes the model: predict
    uses W, a pickle predicts as the model does, and training starts from W."""
    X, y = digits
    params = dict(hidden_layer_sizes=(7,), max_iter=2, random_state=0, warm_start=True)
    clf = BPClassifier(**params).fit(X, y)
    new = getattr(clf, attr)[0] * -0.5 + 0.01
    getattr(clf, attr)[0] = new
    # the forward pass of the edited weights, in NumPy
    W0 = new if attr == "coefs_" else clf.coefs_[0]
    b0 = new if attr == "intercepts_" else clf.intercepts_[0]
    hidden = np.maximum(X @ W0 + b0, 0)
    z = hidden @ clf.coefs_[1] + clf.intercepts_[1]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-10, atol=1e-12)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    # training continues from the edited weights, and the user's array is not trained
    keep = new.copy()
    other = BPClassifier(**params).fit(X, y)
    getattr(other, attr)[0] = keep.copy()
    clf.fit(X, y)
    other.fit(X, y)
    np.testing.assert_array_equal(new, keep)
    for a, b in zip(clf.coefs_ + clf.intercepts_, other.coefs_ + other.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(getattr(clf, attr)[0], keep)


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

    from fastbp._validation import binarize_labels as _binarize

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

    from fastbp._validation import binarize_labels as _binarize

    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    lb = LabelBinarizer().fit(Y)
    np.testing.assert_array_equal(_binarize(lb, Y), Y.astype(bool))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_buffers_of_every_thread_are_aligned_alike(dtype):
    """Each thread's predict buffers start on a 64-byte boundary, so an
    alignment-sensitive BLAS kernel cannot make a prediction depend on the
    thread that computed it."""
    from fastbp._network import ALIGN, _padded, aligned_empty

    for n_threads, slab in [(1, 7), (2, 33), (3, 1000), (4, 16)]:
        ws = aligned_empty((n_threads, 3, _padded(slab, dtype)), dtype)
        assert ws.dtype == dtype and ws.flags.c_contiguous and ws.flags.writeable
        assert ws.shape[2] >= slab
        for t in range(n_threads):
            for k in range(3):
                assert ws[t, k].ctypes.data % ALIGN == 0



@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_failed_partial_fit_puts_back_every_fitted_attribute(solver):
    """The rollback snapshot copies what a fit mutates in place (weights, the
    optimizer's arrays, the curves): after a diverged partial_fit every fitted
    attribute, the optimizer state and the predictions are bit for bit those
    of before the call, and the model trains on as if it had not happened."""
    from _fit_digest import fitted_state

    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5))
    y = X @ rng.normal(size=5)
    reg = BPRegressor(hidden_layer_sizes=(6,), solver=solver, batch_size=20, random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y)
    before = fitted_state(reg, X)
    twin = copy.deepcopy(reg)
    # sgd: the first steps land, then the loss overflows (adam keeps its first
    # call's learning rate across partial_fit, as scikit-learn's does: its
    # weights move by about lr per step, so overflow the loss by the data)
    reg.set_params(learning_rate_init=1e100)
    scale = 1e100 if solver == "sgd" else 1e200
    with pytest.raises(ValueError, match="left as it was before this call"):
        reg.partial_fit(X * scale, y * scale)
    reg.set_params(learning_rate_init=0.001)
    assert fitted_state(reg, X) == before
    reg.partial_fit(X, y)
    twin.set_params(learning_rate_init=0.001).partial_fit(X, y)
    assert fitted_state(reg, X) == fitted_state(twin, X)


# --------------------------------------------------------------------------
# sample weights that sum to zero (issue 17, item 1)
# --------------------------------------------------------------------------
def _check_weights(sample_weight, dtype):
    from fastbp._validation import check_sample_weight

    X = np.zeros((sample_weight.shape[0], 1), dtype=dtype)
    return check_sample_weight(sample_weight, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights_of_one_sign_are_never_refused_however_many(dtype):
    """The tolerance was n * eps(dtype) * sum(|w|): in float32 it reached the
    sum itself at n = 2**23, so any weights of that many rows were refused."""
    n = 2**23
    sw = _check_weights(np.ones(n, dtype=dtype), dtype)
    assert sw.shape == (n,) and sw.dtype == dtype
    tiny = np.full(n, 1e-30, dtype=dtype)  # one sign: their sum is far from 0
    _check_weights(tiny, dtype)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixed_sign_weights_are_refused_only_when_they_cancel(seed, dtype):
    """At 10**6 rows the old float32 bound refused weights whose sum was under
    12% of sum(|w|).  Now: a sum of 1e-6 of sum(|w|) trains, exact
    cancellation and a sum within float64's rounding of the sum are refused."""
    rng = np.random.default_rng(seed)
    n = 10**6
    w = rng.normal(size=n).astype(dtype)
    w -= dtype(w.mean(dtype=np.float64))
    # make the float64 sum about 1e-6 of sum(|w|), of either sign
    target = (1 if seed % 2 else -1) * 1e-6 * float(np.abs(w).sum(dtype=np.float64))
    w[0] += dtype(target - float(w.sum(dtype=np.float64)))
    total = float(w.sum(dtype=np.float64))
    assert 0.5e-6 < abs(total) / float(np.abs(w).sum(dtype=np.float64)) < 2e-6
    _check_weights(w, dtype)

    cancelling = np.concatenate([w[: n // 2], -w[: n // 2]])  # exactly 0
    with pytest.raises(ValueError, match="Sample weights must not sum to zero"):
        _check_weights(cancelling, dtype)
    # zero but for a term far below the sum's rounding: not a weight vector
    # whose sign the float64 sum can be trusted with
    cancelling[0] += dtype(1e-30) if dtype == np.float32 else 1e-300
    with pytest.raises(ValueError, match="Sample weights must not sum to zero"):
        _check_weights(cancelling, dtype)


@pytest.mark.slow
def test_float32_fit_of_2_23_rows_with_weights_and_class_weight():
    """The estimator-level symptom: fit(X32, y, sample_weight=np.ones(n)) and any
    class_weight raised "Sample weights must not sum to zero" at n = 2**23."""
    n = 2**23
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 1)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    params = dict(hidden_layer_sizes=(1,), max_iter=1, batch_size=2**16, random_state=0,
                  n_jobs=1)
    clf = BPClassifier(class_weight="balanced", **params)
    clf.fit(X, y, sample_weight=np.ones(n))
    assert np.isfinite(clf.loss_)
