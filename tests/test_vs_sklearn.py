"""Differential tests: BPClassifier / BPRegressor against scikit-learn's MLPs.

fastbp draws the same random numbers as scikit-learn in the same order
(Glorot init, per-epoch shuffles, the early-stopping split), runs the same
arithmetic and keeps the same bookkeeping, so with the same ``random_state`` a
fit is the same fit -- up to floating-point rounding in float64.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

import _reference as ref
from conftest import diverging_regression, tol
from fastbp import BPClassifier, BPRegressor

BP = {MLPClassifier: BPClassifier, MLPRegressor: BPRegressor}
CASES = ["binary", "multiclass", "multilabel", "squared_error", "poisson"]

# one epoch from given weights (the requirement)
ONE_EPOCH_RTOL = 1e-6
# fresh fits of several epochs
CURVE_RTOL = 1e-9
COEF_RTOL = 1e-7
LBFGS_RTOL = 1e-6

SOLVERS = {
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.05, momentum=0.9,
                         nesterovs_momentum=True),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.05, momentum=0.9,
                      nesterovs_momentum=False),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}


def problem(rng, case, n=60, n_in=5, dtype=np.float64):
    """(sklearn class, extra kwargs, X, y)."""
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if case == "binary":
        y = rng.integers(0, 2, size=n)
        y[:2] = [0, 1]
        return MLPClassifier, {}, X, y
    if case == "binary-str":  # labels that are not {0, 1}
        y = np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 0, "yes", "no")
        y[:2] = ["no", "yes"]
        return MLPClassifier, {}, X, y
    if case == "binary-12":
        y = np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 0, 2, 1)
        y[:2] = [1, 2]
        return MLPClassifier, {}, X, y
    if case == "multiclass":
        y = rng.choice(np.array(["a", "b", "c"]), size=n)
        y[:3] = ["a", "b", "c"]
        return MLPClassifier, {}, X, y
    if case == "multilabel":
        y = rng.integers(0, 2, size=(n, 3))
        return MLPClassifier, {}, X, y
    if case == "squared_error":
        y = X[:, :2] @ rng.normal(size=(2, 2)) + 0.3 * rng.normal(size=(n, 2))
        y = y.astype(dtype)
        return MLPRegressor, {"loss": "squared_error"}, X, y
    if case == "poisson":
        y = rng.poisson(np.exp(0.5 * X[:, :2]), size=(n, 2)).astype(dtype)
        return MLPRegressor, {"loss": "poisson"}, X, y
    raise AssertionError(case)


def quiet_fit(est, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, sample_weight=sample_weight)


def both(Sk, kwargs, n_jobs=1, **params):
    """An sklearn estimator and its fastbp twin with identical parameters."""
    return Sk(**kwargs, **params), BP[Sk](**kwargs, **params, n_jobs=n_jobs)


def assert_params_close(bp, sk, rtol, check_dtype=True):
    assert len(bp.coefs_) == len(sk.coefs_)
    scale = max(np.abs(c).max() for c in sk.coefs_ + sk.intercepts_)
    for i, (a, b) in enumerate(zip(bp.coefs_ + bp.intercepts_,
                                   sk.coefs_ + sk.intercepts_)):
        if check_dtype:
            assert a.dtype == b.dtype, i
        assert a.shape == b.shape, i
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=str(i))


def assert_same_outputs(bp, sk, X, rtol):
    if isinstance(sk, MLPClassifier):
        P_bp, P_sk = bp.predict_proba(X), sk.predict_proba(X)
        assert P_bp.dtype == P_sk.dtype
        np.testing.assert_allclose(P_bp, P_sk, rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(bp.predict(X), sk.predict(X))
        np.testing.assert_array_equal(bp.classes_, sk.classes_)
        if sk.out_activation_ == "softmax":  # log of clipped-free probabilities
            np.testing.assert_allclose(bp.predict_log_proba(X), sk.predict_log_proba(X),
                                       rtol=rtol, atol=rtol)
    else:
        Y_bp, Y_sk = bp.predict(X), sk.predict(X)
        assert Y_bp.dtype == Y_sk.dtype and Y_bp.shape == Y_sk.shape
        np.testing.assert_allclose(Y_bp, Y_sk, rtol=rtol, atol=rtol * np.abs(Y_sk).max())


def assert_same_stochastic_fit(bp, sk, X, coef_rtol=COEF_RTOL, curve_rtol=CURVE_RTOL):
    assert bp.n_iter_ == sk.n_iter_
    assert bp.t_ == sk.t_
    assert len(bp.loss_curve_) == len(sk.loss_curve_)
    np.testing.assert_allclose(bp.loss_curve_, sk.loss_curve_, rtol=curve_rtol)
    assert bp.loss_ == pytest.approx(sk.loss_, rel=curve_rtol)
    if sk.best_loss_ is None:
        assert bp.best_loss_ is None
    else:
        assert bp.best_loss_ == pytest.approx(sk.best_loss_, rel=curve_rtol)
    assert bp._no_improvement_count == sk._no_improvement_count
    assert (bp.out_activation_, bp.n_outputs_, bp.n_layers_) == (
        sk.out_activation_, sk.n_outputs_, sk.n_layers_)
    assert_params_close(bp, sk, coef_rtol)
    assert_same_outputs(bp, sk, X, coef_rtol)


# --------------------------------------------------------------------------
# 1. one epoch from the same given weights
# --------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("solver_id", list(SOLVERS))
@pytest.mark.parametrize("case", CASES)
def test_one_epoch_from_the_same_weights(rng, case, solver_id, weighted):
    """Weights assigned to both estimators (fastbp repacks the assigned lists;
    sklearn needs warm_start and a first fit for its state), then one epoch."""
    Sk, kwargs, X, y = problem(rng, case, n=45)
    sw = rng.uniform(0.2, 3.0, size=45) if weighted else None
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", alpha=1e-3,
                  batch_size=16, max_iter=1, shuffle=True, random_state=3,
                  warm_start=True, n_iter_no_change=1000, **SOLVERS[solver_id])
    for n_jobs in (1, 2):
        sk, bp = both(Sk, kwargs, n_jobs=n_jobs, **params)
        quiet_fit(sk, X, y, sw)
        quiet_fit(bp, X, y, sw)
        n_out = sk.n_outputs_
        coefs, intercepts = ref.init_params([5, 6, 4, n_out], "tanh", 17)
        for est in (sk, bp):
            est.coefs_ = [c.copy() for c in coefs]
            est.intercepts_ = [b.copy() for b in intercepts]
        quiet_fit(sk, X, y, sw)
        quiet_fit(bp, X, y, sw)
        assert bp.n_iter_ == sk.n_iter_ == 1
        assert bp.loss_curve_[-1] == pytest.approx(sk.loss_curve_[-1], rel=1e-9)
        assert_params_close(bp, sk, ONE_EPOCH_RTOL)
        moved = max(np.abs(a - b).max() for a, b in zip(bp.coefs_, coefs))
        assert moved > 1e-3  # the epoch did something


def test_assigned_coefs_are_repacked_not_aliased(rng):
    Sk, kwargs, X, y = problem(rng, "multiclass")
    bp = quiet_fit(BPClassifier(hidden_layer_sizes=(4,), max_iter=1, warm_start=True,
                                random_state=0), X, y)
    coefs = [np.asfortranarray(c * 0.5) for c in bp.coefs_]  # non-C-contiguous
    intercepts = [b.astype(np.float64) * 0.5 for b in bp.intercepts_]
    bp.coefs_, bp.intercepts_ = coefs, intercepts
    before = [c.copy() for c in coefs]
    P = bp.predict_proba(X)
    sk = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, warm_start=True,
                       random_state=0)
    quiet_fit(sk, X, y)
    sk.coefs_, sk.intercepts_ = [c.copy() for c in before], [b.copy() for b in intercepts]
    np.testing.assert_allclose(P, sk.predict_proba(X), rtol=1e-12)
    quiet_fit(bp, X, y)
    for c, c0 in zip(coefs, before):  # the user's arrays were copied, not trained
        np.testing.assert_array_equal(c, c0)


# --------------------------------------------------------------------------
# 2. fresh fits with the same random_state
# --------------------------------------------------------------------------
SCHEDULES = {
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "sgd-constant": dict(solver="sgd", learning_rate="constant", learning_rate_init=0.05),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling",
                           learning_rate_init=0.5, power_t=0.3),
    # tol large enough that the rate is divided by 5 a few times
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                         tol=0.05, n_iter_no_change=2, momentum=0.5),
}


@pytest.mark.parametrize("case,n_jobs", [("multiclass", 2), ("squared_error", 1)])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_fresh_fit_same_random_state(rng, schedule, case, n_jobs):
    Sk, kwargs, X, y = problem(rng, case, n=70)
    params = dict(hidden_layer_sizes=(8, 5), batch_size=16, max_iter=12, shuffle=True,
                  random_state=42, **SCHEDULES[schedule])
    params.setdefault("n_iter_no_change", 1000)
    sk, bp = both(Sk, kwargs, n_jobs=n_jobs, **params)
    quiet_fit(sk, X, y)
    quiet_fit(bp, X, y)
    assert_same_stochastic_fit(bp, sk, X)
    assert bp._optimizer.learning_rate == pytest.approx(sk._optimizer.learning_rate,
                                                        rel=1e-12)
    if schedule == "sgd-invscaling":
        assert sk._optimizer.learning_rate == pytest.approx(0.5 / (sk.t_ + 1) ** 0.3)
    if schedule == "sgd-adaptive":
        assert sk._optimizer.learning_rate < 0.1 / 5  # the schedule really ran
    assert sk.loss_curve_[-1] < sk.loss_curve_[0]


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("case", ["binary", "binary-str", "binary-12", "multiclass",
                                  "multilabel", "squared_error"])
def test_early_stopping(rng, case, weighted):
    Sk, kwargs, X, y = problem(rng, case, n=80)
    sw = rng.uniform(0.2, 3.0, size=80) if weighted else None
    params = dict(hidden_layer_sizes=(8,), batch_size=20, max_iter=60,
                  early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
                  tol=1e-3, solver="adam", learning_rate_init=0.02, random_state=1)
    sk, bp = both(Sk, kwargs, n_jobs=2, **params)
    quiet_fit(sk, X, y, sw)
    quiet_fit(bp, X, y, sw)
    assert sk.n_iter_ < 60  # it stopped early
    assert bp.best_loss_ is None
    assert len(bp.validation_scores_) == bp.n_iter_
    np.testing.assert_allclose(bp.validation_scores_, sk.validation_scores_,
                               rtol=CURVE_RTOL)
    assert bp.best_validation_score_ == pytest.approx(sk.best_validation_score_,
                                                      rel=CURVE_RTOL)
    assert bp.best_validation_score_ == max(bp.validation_scores_)
    # both restored the weights of the best epoch, not the last one
    assert_same_stochastic_fit(bp, sk, X)


def test_early_stopping_restores_best_weights(rng):
    """Replay the best epoch: a fit stopped at the best epoch has the weights
    the early-stopped fit ended with."""
    Sk, kwargs, X, y = problem(rng, "binary", n=80)
    params = dict(hidden_layer_sizes=(8,), batch_size=20, max_iter=60,
                  early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
                  tol=1e-3, learning_rate_init=0.05, random_state=1)
    bp = quiet_fit(BPClassifier(**params), X, y)
    best_epoch = int(np.argmax(bp.validation_scores_)) + 1
    assert best_epoch < bp.n_iter_
    replay = quiet_fit(BPClassifier(**{**params, "max_iter": best_epoch}), X, y)
    assert replay.n_iter_ == best_epoch
    for a, b in zip(bp.coefs_ + bp.intercepts_, replay.coefs_ + replay.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_divergence_with_early_stopping_matches_sklearns_best():
    """Both end with the weights of the best epoch before the divergence.
    scikit-learn trains on to max_iter recording nan scores; fastbp stops at the
    first non-finite loss (and warns), so its curves are scikit-learn's, cut there."""
    X, y, params = diverging_regression()
    params["max_iter"] = 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sklearn's overflows
        sk = quiet_fit(MLPRegressor(**params), X, y)
    with pytest.warns(ConvergenceWarning, match="non-finite in epoch 6"):
        bp = BPRegressor(**params).fit(X, y)
    assert sk.n_iter_ == 30 and np.isnan(sk.validation_scores_[5:]).all()
    assert bp.n_iter_ == 6
    np.testing.assert_allclose(bp.validation_scores_[:4], sk.validation_scores_[:4],
                               rtol=CURVE_RTOL)
    # epoch 5 is already blowing up (score -6.6e7): rounding grows with it
    np.testing.assert_allclose(bp.validation_scores_[4], sk.validation_scores_[4], rtol=1e-6)
    assert np.isnan(bp.validation_scores_[5])
    np.testing.assert_allclose(bp.loss_curve_[:4], sk.loss_curve_[:4], rtol=CURVE_RTOL)
    assert bp.best_validation_score_ == pytest.approx(sk.best_validation_score_,
                                                      rel=CURVE_RTOL)
    assert_params_close(bp, sk, COEF_RTOL)
    assert_same_outputs(bp, sk, X, COEF_RTOL)


@pytest.mark.parametrize("case", ["binary", "multiclass", "multilabel", "squared_error",
                                  "poisson"])
def test_sample_weight(rng, case):
    Sk, kwargs, X, y = problem(rng, case, n=50)
    sw = rng.uniform(0.0, 3.0, size=50)
    sw[:5] = 0.0
    params = dict(hidden_layer_sizes=(6, 5), batch_size=12, max_iter=6, shuffle=True,
                  solver="adam", learning_rate_init=0.02, random_state=7,
                  n_iter_no_change=1000)
    sk, bp = both(Sk, kwargs, n_jobs=2, **params)
    quiet_fit(sk, X, y, sw)
    quiet_fit(bp, X, y, sw)
    assert_same_stochastic_fit(bp, sk, X)
    # and the weights matter
    unweighted = quiet_fit(BP[Sk](**kwargs, **params, n_jobs=1), X, y)
    assert not np.allclose(unweighted.coefs_[0], bp.coefs_[0], rtol=1e-3)


@pytest.mark.parametrize("Sk", [MLPClassifier, MLPRegressor])
def test_batch_size_larger_than_n(rng, Sk):
    _, kwargs, X, y = problem(rng, "binary" if Sk is MLPClassifier else "squared_error",
                              n=30)
    params = dict(hidden_layer_sizes=(5,), batch_size=100, max_iter=5,
                  solver="sgd", learning_rate_init=0.1, random_state=0)
    sk, bp = both(Sk, kwargs, **params)
    msg = "Got `batch_size` less than 1 or larger than sample size"
    for est in (sk, bp):
        with pytest.warns(UserWarning, match=msg):
            quiet_fit(est, X, y)
    assert_same_stochastic_fit(bp, sk, X)
    assert bp.t_ == 5 * 30


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("case", ["multiclass", "poisson"])
def test_tol_based_stopping(rng, case, solver):
    Sk, kwargs, X, y = problem(rng, case, n=60)
    params = dict(hidden_layer_sizes=(6,), batch_size=15, max_iter=300, tol=1e-2,
                  n_iter_no_change=3, solver=solver, learning_rate_init=0.02,
                  random_state=4)
    sk, bp = both(Sk, kwargs, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # neither hits max_iter
        sk.fit(X, y)
        bp.fit(X, y)
    assert sk.n_iter_ < 300
    assert sk._no_improvement_count > 3
    assert_same_stochastic_fit(bp, sk, X)


def test_max_iter_convergence_warning_matches(rng):
    Sk, kwargs, X, y = problem(rng, "binary", n=30)
    sk, bp = both(Sk, kwargs, hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    match = r"Stochastic Optimizer: Maximum iterations \(2\) reached"
    with pytest.warns(ConvergenceWarning, match=match):
        sk.fit(X, y)
    with pytest.warns(ConvergenceWarning, match=match):
        bp.fit(X, y)
    assert_same_stochastic_fit(bp, sk, X)


@pytest.mark.parametrize("Sk", [MLPClassifier, MLPRegressor])
def test_sparse_input(rng, Sk):
    _, kwargs, X, y = problem(rng, "multiclass" if Sk is MLPClassifier else "poisson",
                              n=60, n_in=8)
    X[rng.random(size=X.shape) < 0.6] = 0.0
    params = dict(hidden_layer_sizes=(7,), batch_size=16, max_iter=5, random_state=2,
                  solver="sgd", learning_rate_init=0.05, n_iter_no_change=1000)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        Xs = fmt(X)
        sk, bp = both(Sk, kwargs, n_jobs=2, **params)
        quiet_fit(sk, Xs, y)
        quiet_fit(bp, Xs, y)
        assert_same_stochastic_fit(bp, sk, Xs)
        assert_same_outputs(bp, sk, X, COEF_RTOL)  # dense predict of a sparse fit


def test_sparse_input_early_stopping(rng):
    _, kwargs, X, y = problem(rng, "poisson", n=80, n_in=8)
    X[rng.random(size=X.shape) < 0.6] = 0.0
    params = dict(hidden_layer_sizes=(7,), batch_size=16, max_iter=40, random_state=2,
                  early_stopping=True, n_iter_no_change=2, tol=1e-3,
                  learning_rate_init=0.02)
    sk, bp = both(MLPRegressor, kwargs, **params)
    quiet_fit(sk, sp.csr_matrix(X), y)
    quiet_fit(bp, sp.csr_matrix(X), y)
    assert sk.n_iter_ < 40
    np.testing.assert_allclose(bp.validation_scores_, sk.validation_scores_,
                               rtol=CURVE_RTOL)
    assert_same_stochastic_fit(bp, sk, X)


def test_sparse_input_with_duplicate_entries(rng):
    """scipy CSR matrices may store a cell twice (their sum is the value);
    scikit-learn keeps them as they are and its products sum them."""
    _, kwargs, X, y = problem(rng, "squared_error", n=40, n_in=4)
    A = sp.csr_matrix(X)
    D = sp.csr_matrix((np.column_stack([A.data / 2, A.data / 2]).ravel(),
                       np.repeat(A.indices, 2), A.indptr * 2), shape=A.shape)
    assert not D.has_canonical_format
    params = dict(hidden_layer_sizes=(5,), batch_size=10, max_iter=3, random_state=0,
                  n_iter_no_change=1000)
    sk, bp = both(MLPRegressor, kwargs, **params)
    quiet_fit(sk, D, y)
    quiet_fit(bp, D, y)
    np.testing.assert_allclose(bp.predict(X), sk.predict(X), rtol=1e-7)
    np.testing.assert_allclose(bp.predict(D), sk.predict(D), rtol=1e-7)
    assert_same_stochastic_fit(bp, sk, X)


# --------------------------------------------------------------------------
# 3. lbfgs
# --------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("case", CASES)
def test_lbfgs(rng, case, weighted):
    Sk, kwargs, X, y = problem(rng, case, n=50)
    sw = rng.uniform(0.2, 3.0, size=50) if weighted else None
    n_jobs = 2 if weighted else 1
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", solver="lbfgs",
                  max_iter=25, alpha=1e-3, random_state=5)
    sk, bp = both(Sk, kwargs, n_jobs=n_jobs, **params)
    quiet_fit(sk, X, y, sw)
    quiet_fit(bp, X, y, sw)
    assert bp.n_iter_ == sk.n_iter_
    assert bp.loss_ == pytest.approx(sk.loss_, rel=LBFGS_RTOL)
    assert isinstance(bp.loss_, float)
    assert_params_close(bp, sk, LBFGS_RTOL)
    assert_same_outputs(bp, sk, X, LBFGS_RTOL)
    assert not hasattr(bp, "loss_curve_") and not hasattr(sk, "loss_curve_")


@pytest.mark.parametrize("case", ["multiclass", "squared_error"])
def test_lbfgs_in_row_chunks(rng, monkeypatch, case):
    """Above ``LBFGS_CALL_FLOPS`` of work per evaluation, L-BFGS evaluates in row
    chunks (so Ctrl-C waits for one chunk, not the whole batch): forced here
    with a small bound, it still matches scikit-learn, and stays bitwise the
    same whatever n_jobs (the chunk size depends on the shapes only)."""
    from fastbp import _lbfgs

    Sk, kwargs, X, y = problem(rng, case, n=50)
    sw = rng.uniform(0.2, 3.0, size=50)
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", solver="lbfgs",
                  max_iter=25, alpha=1e-3, random_state=5)
    sk, _ = both(Sk, kwargs, **params)
    quiet_fit(sk, X, y, sw)
    flops_per_row = 6 * (5 * 6 + 6 * 4 + 4 * sk.n_outputs_)
    monkeypatch.setattr(_lbfgs, "LBFGS_CALL_FLOPS", 7 * flops_per_row)  # chunks of 7 rows
    caps = []
    real = _lbfgs.lbfgs_workspace
    monkeypatch.setattr(_lbfgs, "lbfgs_workspace",
                        lambda *a: caps.append(real(*a).cap) or real(*a))
    fits = []
    for n_jobs in (1, 2):
        _, bp = both(Sk, kwargs, n_jobs=n_jobs, **params)
        quiet_fit(bp, X, y, sw)
        fits.append(bp)
    assert caps == [7, 7]
    bp = fits[0]
    assert bp.n_iter_ == sk.n_iter_
    assert bp.loss_ == pytest.approx(sk.loss_, rel=LBFGS_RTOL)
    assert_params_close(bp, sk, LBFGS_RTOL)
    assert_same_outputs(bp, sk, X, LBFGS_RTOL)
    assert fits[1].loss_ == bp.loss_
    for a, b in zip(fits[1].coefs_ + fits[1].intercepts_, bp.coefs_ + bp.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_max_fun(rng):
    Sk, kwargs, X, y = problem(rng, "squared_error", n=40)
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=200, max_fun=12,
                  random_state=0)
    sk, bp = both(Sk, kwargs, **params)
    match = "lbfgs failed to converge"
    with pytest.warns(ConvergenceWarning, match=match):
        sk.fit(X, y)
    with pytest.warns(ConvergenceWarning, match=match):
        bp.fit(X, y)
    assert sk.n_iter_ <= 12  # stopped by max_fun, far before max_iter
    assert bp.n_iter_ == sk.n_iter_
    assert bp.loss_ == pytest.approx(sk.loss_, rel=LBFGS_RTOL)
    assert_params_close(bp, sk, LBFGS_RTOL)
    assert bp.score(X, y) == pytest.approx(sk.score(X, y), rel=LBFGS_RTOL)


def test_lbfgs_converged_before_max_iter(rng):
    Sk, kwargs, X, y = problem(rng, "binary", n=40)
    params = dict(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=500, tol=1e-3,
                  alpha=1.0, random_state=0)
    sk, bp = both(Sk, kwargs, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sk.fit(X, y)
        bp.fit(X, y)
    assert sk.n_iter_ < 500
    assert bp.n_iter_ == sk.n_iter_
    assert bp.loss_ == pytest.approx(sk.loss_, rel=LBFGS_RTOL)
    assert_params_close(bp, sk, LBFGS_RTOL)


# --------------------------------------------------------------------------
# 4. partial_fit and warm_start
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver_id", list(SOLVERS))
@pytest.mark.parametrize("case", ["binary", "multiclass", "multilabel", "squared_error",
                                  "poisson"])
def test_partial_fit_sequence(rng, case, solver_id):
    Sk, kwargs, X, y = problem(rng, case, n=90)
    sw = rng.uniform(0.2, 3.0, size=90)
    # "auto" batches are as large as each chunk: the workspace changes size
    params = dict(hidden_layer_sizes=(6, 3), random_state=0, **SOLVERS[solver_id],
                  batch_size="auto" if solver_id == "adam" else 8)
    sk, bp = both(Sk, kwargs, n_jobs=2 if solver_id == "adam" else 1, **params)
    chunks = [slice(0, 25), slice(25, 60), slice(60, 90)]
    if case == "multiclass":
        # the first chunk misses a class: ``classes=`` tells both about it
        order = np.argsort(y == "c", kind="stable")
        X, y, sw = X[order], y[order], sw[order]
        assert "c" not in set(y[chunks[0]])
    for k, s in enumerate(chunks * 2):
        extra = {}
        if Sk is MLPClassifier and k == 0:
            # for multilabel y the "classes" are the column indices
            extra = {"classes": np.unique(y) if case != "multilabel" else np.arange(3)}
        w = sw[s] if k % 2 else None
        sk.partial_fit(X[s], y[s], sample_weight=w, **extra)
        bp.partial_fit(X[s], y[s], sample_weight=w, **extra)
        assert bp.n_iter_ == sk.n_iter_ == 1
        assert_same_stochastic_fit(bp, sk, X)
    assert len(bp.loss_curve_) == 6
    assert bp.t_ == 2 * 90
    if solver_id == "adam":  # one batch per call
        assert bp._optimizer.t == sk._optimizer.t == 6


@pytest.mark.parametrize("solver_id", list(SOLVERS))
@pytest.mark.parametrize("case", ["multiclass", "squared_error"])
def test_warm_start_second_fit(rng, case, solver_id):
    Sk, kwargs, X, y = problem(rng, case, n=80)
    params = dict(hidden_layer_sizes=(7,), batch_size=16, max_iter=4, random_state=0,
                  warm_start=True, n_iter_no_change=1000, **SOLVERS[solver_id])
    if solver_id.startswith("sgd"):
        params["learning_rate"] = "invscaling"  # t_ carries over warm starts
    sk, bp = both(Sk, kwargs, n_jobs=2, **params)
    quiet_fit(sk, X[:50], y[:50])
    quiet_fit(bp, X[:50], y[:50])
    assert_same_stochastic_fit(bp, sk, X)
    for est in (sk, bp):
        est.set_params(max_iter=3, learning_rate_init=params["learning_rate_init"] / 2)
    quiet_fit(sk, X[30:], y[30:])
    quiet_fit(bp, X[30:], y[30:])
    assert len(bp.loss_curve_) == 7 and bp.t_ == 4 * 50 + 3 * 50
    assert_same_stochastic_fit(bp, sk, X)


def test_warm_start_lbfgs(rng):
    Sk, kwargs, X, y = problem(rng, "poisson", n=60)
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=8, warm_start=True,
                  random_state=0)
    sk, bp = both(Sk, kwargs, **params)
    for _ in range(3):
        quiet_fit(sk, X, y)
        quiet_fit(bp, X, y)
        assert bp.n_iter_ == sk.n_iter_
        assert bp.loss_ == pytest.approx(sk.loss_, rel=LBFGS_RTOL)
        assert_params_close(bp, sk, LBFGS_RTOL)


# --------------------------------------------------------------------------
# 5. float32
# --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("case", ["binary", "multiclass", "squared_error", "poisson"])
def test_float32(rng, case, solver):
    Sk, kwargs, X, y = problem(rng, case, n=60, dtype=np.float32)
    assert X.dtype == np.float32
    params = dict(hidden_layer_sizes=(6, 4), activation="tanh", batch_size=16,
                  max_iter=3, solver=solver, learning_rate_init=0.01, random_state=0,
                  n_iter_no_change=1000)
    sk, bp = both(Sk, kwargs, n_jobs=2, **params)
    quiet_fit(sk, X, y)
    quiet_fit(bp, X, y)
    assert all(c.dtype == np.float32 for c in bp.coefs_ + bp.intercepts_)
    assert bp.n_iter_ == sk.n_iter_
    t = tol(np.float32)
    # sklearn's lbfgs hands back float64 coefs_ for float32 X (its _unpack
    # slices scipy's float64 solution); fastbp keeps the fitted dtype
    assert_params_close(bp, sk, t["rtol"], check_dtype=solver != "lbfgs")
    if solver != "lbfgs":
        # fastbp sums float32 losses in float64 (README, "Determinism"): the
        # curves agree to about 1e-7, not bitwise
        np.testing.assert_allclose(bp.loss_curve_, sk.loss_curve_, rtol=1e-6)
    if Sk is MLPClassifier:
        P = bp.predict_proba(X)
        assert P.dtype == np.float32
        np.testing.assert_allclose(P, sk.predict_proba(X), **t)
    else:
        Y = bp.predict(X)
        assert Y.dtype == np.float32
        np.testing.assert_allclose(Y, sk.predict(X), rtol=t["rtol"],
                                   atol=t["atol"] * np.abs(Y).max())
    # float64 input to a float32 model predicts in float64 (like sklearn)
    out64 = bp.predict_proba(X.astype(np.float64)) if Sk is MLPClassifier else \
        bp.predict(X.astype(np.float64))
    out64_sk = sk.predict_proba(X.astype(np.float64)) if Sk is MLPClassifier else \
        sk.predict(X.astype(np.float64))
    assert out64.dtype == out64_sk.dtype
