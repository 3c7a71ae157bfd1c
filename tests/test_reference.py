"""Tests proving that the plain-NumPy oracle in ``_reference.py`` is right.

Three independent lines of evidence:
  1. finite differences of ``objective`` against ``backprop``'s gradients;
  2. a tiny network worked out by hand;
  3. scikit-learn itself (private ``_backprop``, ``_initialize`` and whole
     epochs of ``fit`` with sgd / adam).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._multilayer_perceptron import _pack as sk_pack

import _reference as ref

HIDDEN = ["identity", "logistic", "tanh", "relu"]

# (output activation, loss, n_outputs)
OUTPUT_CASES = [
    ("identity", "squared_error", 2),
    ("logistic", "binary_log_loss", 1),  # binary
    ("logistic", "binary_log_loss", 3),  # multilabel
    ("softmax", "log_loss", 3),
    ("exp", "poisson", 2),
]
OUTPUT_IDS = ["squared_error", "binary", "multilabel", "softmax", "poisson"]
CANONICAL = ref.CANONICAL_LOSS


make_targets = ref.make_targets


def hidden_preactivations(coefs, intercepts, X, activation, out_activation):
    acts = ref.forward(coefs, intercepts, X, activation, out_activation)
    return [a @ W + b for a, W, b in zip(acts[:-2], coefs[:-1], intercepts[:-1])]


fd_gradient = ref.fd_gradient


# --------------------------------------------------------------------------
# 1. finite differences
# --------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("out_act,loss,n_out", OUTPUT_CASES, ids=OUTPUT_IDS)
@pytest.mark.parametrize("activation", HIDDEN)
def test_backprop_matches_finite_differences(
    rng, activation, out_act, loss, n_out, weighted, alpha
):
    n, n_in = 9, 3
    layer_sizes = [n_in, 4, 3, n_out]
    # Redraw until no hidden pre-activation sits near relu's kink (any
    # activation: keeps the data generation identical across activations).
    for _ in range(100):
        X = rng.normal(size=(n, n_in))
        coefs, intercepts = ref.init_params(
            layer_sizes, activation, int(rng.integers(2**31))
        )
        zs = hidden_preactivations(coefs, intercepts, X, activation, out_act)
        if min(np.abs(z).min() for z in zs) > 1e-3:
            break
    else:
        pytest.fail("could not draw kink-free data")
    Y = make_targets(rng, loss, n, n_out)
    sw = rng.uniform(0.2, 3.0, size=n) if weighted else None
    args = (X, Y, sw, activation, out_act, loss, alpha)

    value, cg, ig = ref.backprop(coefs, intercepts, *args)
    analytic = ref.pack(cg, ig)
    assert np.abs(analytic).max() > 1e-3  # not a trivially dead network

    def f(theta):
        return ref.objective(*ref.unpack(theta, layer_sizes), *args)

    numeric = fd_gradient(f, ref.pack(coefs, intercepts))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)

    # backprop's loss value is the reported (sklearn) loss ...
    assert value == ref.reported_loss(coefs, intercepts, *args)
    # ... which equals the objective except for squared_error's 1 / n_outputs
    sw_sum = n if sw is None else sw.sum()
    l2 = ref.l2_penalty(coefs, alpha, sw_sum)
    scale = n_out if loss == "squared_error" else 1
    np.testing.assert_allclose(
        ref.objective(coefs, intercepts, *args) - l2, scale * (value - l2), rtol=1e-12
    )


def test_finite_differences_detect_a_wrong_gradient(rng):
    """The FD check has teeth: a 1% error in one gradient entry is caught."""
    layer_sizes = [3, 4, 3, 2]
    X = rng.normal(size=(9, 3))
    Y = rng.normal(size=(9, 2))
    coefs, intercepts = ref.init_params(layer_sizes, "tanh", 0)
    args = (X, Y, None, "tanh", "identity", "squared_error", 0.0)
    _, cg, ig = ref.backprop(coefs, intercepts, *args)
    analytic = ref.pack(cg, ig)
    analytic[5] *= 1.01
    numeric = fd_gradient(
        lambda t: ref.objective(*ref.unpack(t, layer_sizes), *args),
        ref.pack(coefs, intercepts),
    )
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------
# 2. a tiny network by hand
# --------------------------------------------------------------------------
def test_tiny_network_by_hand():
    # 2 inputs -> 1 logistic hidden unit -> 1 identity output, squared error,
    # one sample x = (0.6, 0.8), y = 1, alpha = 0.1.
    #   W1 = [[0.5], [-0.25]], b1 = 0.1, W2 = [[2.0]], b2 = -0.5
    X = np.array([[0.6, 0.8]])
    Y = np.array([[1.0]])
    coefs = [np.array([[0.5], [-0.25]]), np.array([[2.0]])]
    intercepts = [np.array([0.1]), np.array([-0.5])]
    alpha = 0.1
    args = (X, Y, None, "logistic", "identity", "squared_error", alpha)

    # forward
    #   z1   = 0.5*0.6 - 0.25*0.8 + 0.1 = 0.3 - 0.2 + 0.1 = 0.2
    #   a1   = 1 / (1 + exp(-0.2))       = 0.549833997312478
    #   yhat = 2 * a1 - 0.5               = 0.599667994624956
    acts = ref.forward(coefs, intercepts, X, "logistic", "identity")
    np.testing.assert_allclose(acts[1], [[0.549833997312478]], rtol=1e-14)
    np.testing.assert_allclose(acts[2], [[0.599667994624956]], rtol=1e-14)

    # loss
    #   0.5 * (1 - 0.599667994624956)^2          = 0.080132857263802
    #   L2: 0.5 * 0.1 * (0.25 + 0.0625 + 4) / 1  = 0.215625
    #   total                                    = 0.295757857263802
    loss, cg, ig = ref.backprop(coefs, intercepts, *args)
    assert loss == pytest.approx(0.295757857263802, rel=1e-13)

    # backward
    #   d2     = yhat - y                 = -0.400332005375044
    #   dW2    = a1 * d2 + 0.1 * 2.0      = -0.220116146767481 + 0.2
    #                                     = -0.020116146767481
    #   db2    = d2
    #   a1(1-a1)                          =  0.247516572711860
    #   d1     = d2 * W2 * a1(1-a1)       = -0.198177611834594
    #   dW1    = x * d1 + 0.1 * W1        = (-0.118906567100756 + 0.05,
    #                                        -0.158542089467675 - 0.025)
    #                                     = (-0.068906567100756, -0.183542089467675)
    #   db1    = d1
    np.testing.assert_allclose(cg[1], [[-0.020116146767481]], rtol=1e-12)
    np.testing.assert_allclose(ig[1], [-0.400332005375044], rtol=1e-13)
    np.testing.assert_allclose(
        cg[0], [[-0.068906567100756], [-0.183542089467675]], rtol=1e-12
    )
    np.testing.assert_allclose(ig[0], [-0.198177611834594], rtol=1e-13)

    # one SGD step, lr = 0.1, momentum = 0.9 from zero velocity:
    #   v = -lr*g; plain update = v = -0.1 g;
    #   nesterov update = 0.9*v - lr*g = -(1 + 0.9) * 0.1 * g = -0.19 g
    grads = cg + ig
    expected = {
        False: [0.5068906567100756, -0.2316457910532325, 2.002011614676748,
                0.1198177611834594, -0.4599667994624956],
        True: [0.5130922477491436, -0.2151270030011418, 2.003822067885821,
               0.1376537462485728, -0.4239369189787416],
    }
    for nesterov in (False, True):
        params = [p.copy() for p in coefs + intercepts]
        state = ref.init_opt_state("sgd", params)
        hp = {"learning_rate": 0.1, "momentum": 0.9, "nesterov": nesterov}
        ref.sgd_step(params, grads, state, hp)
        np.testing.assert_allclose(ref.pack(params[:2], params[2:]),
                                   expected[nesterov], rtol=1e-14)
        np.testing.assert_allclose(state["velocities"][3], [0.0400332005375044])

    # one Adam step from zero moments: m = (1-b1) g, v = (1-b2) g^2,
    # lr_t = lr sqrt(1-b2)/(1-b1), so update = -lr g / (|g| + eps/sqrt(1-b2)),
    # i.e. -lr * sign(g) up to eps.  For g = d2 = -0.400332005375044 and
    # lr = 0.01: update = 0.01 * 0.400332.. / (0.400332.. + 1e-8/sqrt(0.001))
    #                   = 0.009999992100868
    params = [p.copy() for p in coefs + intercepts]
    state = ref.init_opt_state("adam", params)
    hp = dict(ref.ADAM_DEFAULTS, learning_rate_init=0.01)
    ref.adam_step(params, grads, state, hp)
    assert state["t"] == 1
    np.testing.assert_allclose(params[3], [-0.5 + 0.009999992100868], rtol=1e-13)
    np.testing.assert_allclose(state["ms"][3], [0.1 * -0.400332005375044])
    np.testing.assert_allclose(state["vs"][3], [0.001 * 0.400332005375044**2])


# --------------------------------------------------------------------------
# 3. scikit-learn as an outside oracle: _backprop, _initialize, _pack
# --------------------------------------------------------------------------
SK_CASES = ["binary", "multiclass", "multilabel", "squared_error", "poisson"]
EXPECTED_OUT = {
    "binary": ("logistic", 1),
    "multiclass": ("softmax", 3),
    "multilabel": ("logistic", 3),
    "squared_error": ("identity", 2),
    "poisson": ("exp", 2),
}


def sk_problem(rng, case, n, n_in=4, dtype=np.float64):
    """(estimator class, kwargs, X, y for sklearn, 2-D float Y for ref)."""
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if case == "binary":
        y = rng.integers(0, 2, size=n)
        y[:2] = [0, 1]
        return MLPClassifier, {}, X, y, y[:, None].astype(dtype)
    if case == "multiclass":
        y = rng.integers(0, 3, size=n)
        y[:3] = [0, 1, 2]
        return MLPClassifier, {}, X, y, np.eye(3, dtype=dtype)[y]
    if case == "multilabel":
        y = rng.integers(0, 2, size=(n, 3))
        return MLPClassifier, {}, X, y, y.astype(dtype)
    if case == "squared_error":
        y = rng.normal(size=(n, 2)).astype(dtype)
        return MLPRegressor, {"loss": "squared_error"}, X, y, y
    if case == "poisson":
        y = rng.poisson(1.5, size=(n, 2)).astype(dtype)
        return MLPRegressor, {"loss": "poisson"}, X, y, y
    raise AssertionError(case)


def fitted_estimator(Est, kwargs, X, y, sw, **params):
    est = Est(**kwargs, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)
    return est


def sk_backprop(est, X, Y, sw):
    n = est.n_layers_ - 1
    return est._backprop(X, Y, sw, [X] + [None] * n, [None] * n, [None] * n, [None] * n)


@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("case", SK_CASES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_backprop_matches_sklearn(rng, activation, case, weighted):
    Est, kwargs, X, y, Y = sk_problem(rng, case, n=23)
    sw = rng.uniform(0.2, 3.0, size=23) if weighted else None
    est = fitted_estimator(
        Est, kwargs, X, y, sw, hidden_layer_sizes=(5, 4), activation=activation,
        alpha=1e-2, solver="sgd", max_iter=1, random_state=0,
    )
    out_act, n_out = EXPECTED_OUT[case]
    assert (est.out_activation_, est.n_outputs_) == (out_act, n_out)
    coefs, intercepts = ref.init_params([4, 5, 4, n_out], activation, 1)
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]

    # sklearn's classifiers feed _backprop boolean indicator targets
    Y_sk = Y.astype(bool) if Est is MLPClassifier else Y
    sk_loss, sk_cg, sk_ig = sk_backprop(est, X, Y_sk, sw)
    # est.loss is "log_loss" for every classifier: exercises the alias
    loss, cg, ig = ref.backprop(
        coefs, intercepts, X, Y, sw, activation, out_act, est.loss, 1e-2
    )
    assert loss == pytest.approx(sk_loss, rel=1e-10)
    np.testing.assert_allclose(ref.pack(cg, ig), sk_pack(sk_cg, sk_ig), rtol=1e-10)


@pytest.mark.parametrize("case", ["multiclass", "squared_error"])
def test_backprop_matches_sklearn_float32(rng, case):
    Est, kwargs, X, y, Y = sk_problem(rng, case, n=23, dtype=np.float32)
    sw = rng.uniform(0.2, 3.0, size=23).astype(np.float32)
    est = fitted_estimator(
        Est, kwargs, X, y, sw, hidden_layer_sizes=(5, 4), activation="tanh",
        alpha=1e-2, solver="sgd", max_iter=1, random_state=0,
    )
    out_act, n_out = EXPECTED_OUT[case]
    coefs, intercepts = ref.init_params([4, 5, 4, n_out], "tanh", 1, np.float32)
    assert est.coefs_[0].dtype == coefs[0].dtype == np.float32
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    Y_sk = Y.astype(bool) if Est is MLPClassifier else Y
    sk_loss, sk_cg, sk_ig = sk_backprop(est, X, Y_sk, sw)
    loss, cg, ig = ref.backprop(coefs, intercepts, X, Y, sw, "tanh", out_act,
                                est.loss, 1e-2)
    assert all(g.dtype == np.float32 for g in cg + ig)
    assert loss == pytest.approx(float(sk_loss), rel=1e-5)
    np.testing.assert_allclose(ref.pack(cg, ig), sk_pack(sk_cg, sk_ig),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", HIDDEN)
def test_init_params_matches_sklearn_initialize(activation, dtype):
    layer_units = [6, 7, 3, 2]
    est = MLPRegressor(hidden_layer_sizes=(7, 3), activation=activation)
    est._random_state = np.random.RandomState(42)
    est._initialize(np.zeros((1, 2)), layer_units, dtype)
    coefs, intercepts = ref.init_params(layer_units, activation, 42, dtype)
    for mine, theirs in zip(coefs + intercepts, est.coefs_ + est.intercepts_):
        assert mine.dtype == theirs.dtype == dtype
        np.testing.assert_array_equal(mine, theirs)
    bound = np.sqrt((2.0 if activation == "logistic" else 6.0) / (6 + 7))
    assert np.abs(coefs[0]).max() <= bound
    assert np.abs(coefs[0]).max() > 0.8 * bound  # really uses the full range


def test_init_params_accepts_a_random_state_and_advances_it():
    rs = np.random.RandomState(3)
    first = ref.init_params([2, 3, 1], "relu", rs)
    second = ref.init_params([2, 3, 1], "relu", rs)
    again = ref.init_params([2, 3, 1], "relu", 3)
    np.testing.assert_array_equal(ref.pack(*first), ref.pack(*again))
    assert not np.array_equal(ref.pack(*first), ref.pack(*second))


def test_pack_unpack_roundtrip_and_sklearn_order(rng):
    layer_sizes = [3, 5, 2]
    coefs, intercepts = ref.init_params(layer_sizes, "relu", 0)
    v = ref.pack(coefs, intercepts)
    np.testing.assert_array_equal(v, sk_pack(coefs, intercepts))
    assert v.shape == (3 * 5 + 5 * 2 + 5 + 2,)
    np.testing.assert_array_equal(v[15:25], coefs[1].ravel())  # coefs first
    np.testing.assert_array_equal(v[25:30], intercepts[0])
    c2, i2 = ref.unpack(v, layer_sizes)
    for a, b in zip(coefs + intercepts, c2 + i2):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"need \(32,\)"):
        ref.unpack(v[:-1], layer_sizes)


# --------------------------------------------------------------------------
# 4. whole epochs against sklearn's fit
# --------------------------------------------------------------------------
SOLVERS = {
    "sgd-nesterov": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd-plain": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": False}),
    "adam": ("adam", dict(ref.ADAM_DEFAULTS, learning_rate_init=0.01)),
}


def sk_solver_params(solver, hp):
    if solver == "sgd":
        return dict(solver="sgd", learning_rate_init=hp["learning_rate"],
                    momentum=hp["momentum"], nesterovs_momentum=hp["nesterov"])
    return dict(solver="adam", learning_rate_init=hp["learning_rate_init"],
                beta_1=hp["beta_1"], beta_2=hp["beta_2"], epsilon=hp["epsilon"])


def run_epochs_both_ways(rng, case, solver_id, weighted, n_epochs, activation="tanh"):
    n, batch_size, alpha = 37, 8, 1e-3  # batches 8, 8, 8, 8, 5
    Est, kwargs, X, y, Y = sk_problem(rng, case, n=n)
    sw = rng.uniform(0.2, 3.0, size=n) if weighted else None
    solver, hp = SOLVERS[solver_id]
    est = fitted_estimator(
        Est, kwargs, X, y, sw, hidden_layer_sizes=(5, 4), activation=activation,
        alpha=alpha, batch_size=batch_size, max_iter=n_epochs, shuffle=False,
        warm_start=True, random_state=0, n_iter_no_change=1000,
        **sk_solver_params(solver, hp),
    )
    out_act, n_out = EXPECTED_OUT[case]
    coefs, intercepts = ref.init_params([4, 5, 4, n_out], activation, 1)
    est.coefs_ = [c.copy() for c in coefs]
    est.intercepts_ = [b.copy() for b in intercepts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, sample_weight=sw)  # warm start: fresh optimizer state

    state = ref.init_opt_state(solver, coefs + intercepts)
    losses = [
        ref.run_epoch(coefs, intercepts, X, Y, sw, np.arange(n), batch_size,
                      activation, out_act, CANONICAL[out_act], alpha, solver,
                      state, hp)
        for _ in range(n_epochs)
    ]
    return est, coefs, intercepts, losses



@pytest.mark.parametrize("weighted", [False, True], ids=["sw=None", "sw"])
@pytest.mark.parametrize("case", SK_CASES)
@pytest.mark.parametrize("solver_id", list(SOLVERS))
def test_one_epoch_matches_sklearn(rng, solver_id, case, weighted):
    est, coefs, intercepts, losses = run_epochs_both_ways(
        rng, case, solver_id, weighted, n_epochs=1
    )
    assert est.n_iter_ == 1
    assert losses[0] == pytest.approx(est.loss_curve_[-1], rel=1e-10)
    np.testing.assert_allclose(
        ref.pack(coefs, intercepts),
        sk_pack(est.coefs_, est.intercepts_),
        rtol=1e-10, atol=1e-13,
    )


@pytest.mark.parametrize("solver_id", list(SOLVERS))
def test_three_epochs_match_sklearn(rng, solver_id):
    """Optimizer state (velocities, Adam's t and moments) carries over epochs."""
    est, coefs, intercepts, losses = run_epochs_both_ways(
        rng, "multiclass", solver_id, weighted=True, n_epochs=3, activation="relu"
    )
    np.testing.assert_allclose(losses, est.loss_curve_[-3:], rtol=1e-10)
    assert losses[2] < losses[0]  # it is actually training
    np.testing.assert_allclose(
        ref.pack(coefs, intercepts),
        sk_pack(est.coefs_, est.intercepts_),
        rtol=1e-10, atol=1e-13,
    )


def test_fresh_fit_with_shuffle_matches_sklearn(rng):
    """End to end from random_state: init draws, then per-epoch shuffles.

    sklearn draws the weights from RandomState(random_state) and then, each
    epoch, ``order = order[perm]`` with ``perm = arange(n)`` shuffled in place
    by the same RandomState (``sklearn.utils.shuffle``).
    """
    n, batch_size, seed = 37, 8, 5
    X = rng.normal(size=(n, 4))
    y = rng.integers(0, 3, size=n)
    est = MLPClassifier(
        hidden_layer_sizes=(5, 4), activation="logistic", solver="adam",
        learning_rate_init=0.01, batch_size=batch_size, max_iter=2,
        shuffle=True, random_state=seed, n_iter_no_change=1000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)

    rs = np.random.RandomState(seed)
    coefs, intercepts = ref.init_params([4, 5, 4, 3], "logistic", rs)
    hp = dict(ref.ADAM_DEFAULTS, learning_rate_init=0.01)
    state = ref.init_opt_state("adam", coefs + intercepts)
    order, losses = np.arange(n), []
    for _ in range(2):
        perm = np.arange(n)
        rs.shuffle(perm)
        order = order[perm]
        losses.append(ref.run_epoch(
            coefs, intercepts, X, np.eye(3)[y], None, order, batch_size,
            "logistic", "softmax", "log_loss", 1e-4, "adam", state, hp,
        ))
    np.testing.assert_allclose(losses, est.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(
        ref.pack(coefs, intercepts), sk_pack(est.coefs_, est.intercepts_),
        rtol=1e-10, atol=1e-13,
    )


# --------------------------------------------------------------------------
# 5. invariants
# --------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 50.0, 800.0]))
def test_softmax_rows_sum_to_one(seed, scale):
    g = np.random.default_rng(seed)
    Z = g.normal(size=(6, 4)) * scale  # includes logits far beyond exp's range
    P = ref.apply_activation(Z, "softmax")
    assert np.all(np.isfinite(P)) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(P.argmax(axis=1), Z.argmax(axis=1))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    case=st.sampled_from(list(zip(OUTPUT_CASES, OUTPUT_IDS))),
    activation=st.sampled_from(HIDDEN),
    weighted=st.booleans(),
    alpha=st.sampled_from([0.0, 1e-2, 1.0]),
)
def test_reported_loss_is_nonnegative(seed, case, activation, weighted, alpha):
    (out_act, loss, n_out), _ = case
    g = np.random.default_rng(seed)
    n = 7
    X = g.normal(size=(n, 3)) * 3
    coefs, intercepts = ref.init_params([3, 4, n_out], activation, seed)
    Y = make_targets(g, loss, n, n_out)
    sw = g.uniform(0.1, 2.0, size=n) if weighted else None
    value = ref.reported_loss(coefs, intercepts, X, Y, sw, activation, out_act, loss, alpha)
    # the half Poisson deviance may round to a few ulps below 0 when yhat == y
    assert np.isfinite(value) and value >= -1e-12


def test_log_loss_is_clipped_like_sklearn():
    # p = 1 exactly for a y = 0 sample: clipped to 1 - eps, so finite
    P = np.array([[1.0], [0.5]])
    Y = np.array([[0.0], [1.0]])
    eps = np.finfo(np.float64).eps
    expected = -0.5 * (np.log(eps) + np.log(0.5))
    assert ref.data_loss(Y, P, "binary_log_loss") == pytest.approx(expected, rel=1e-6)
    P32 = P.astype(np.float32)
    eps32 = np.finfo(np.float32).eps
    expected32 = -0.5 * (np.log(eps32) + np.log(0.5))
    assert ref.data_loss(Y.astype(np.float32), P32, "binary_log_loss") == (
        pytest.approx(expected32, rel=1e-6)
    )


def test_weighted_losses_are_weighted_means(rng):
    P = rng.uniform(0.1, 0.9, size=(5, 2))
    Y = rng.uniform(0.0, 2.0, size=(5, 2))
    # integer weights == repeating rows
    sw = np.array([1, 2, 0, 3, 1])
    rep = np.repeat(np.arange(5), sw)
    for loss in ["squared_error", "poisson"]:
        assert ref.data_loss(Y, P, loss, sw) == pytest.approx(
            ref.data_loss(Y[rep], P[rep], loss), rel=1e-13
        )
    # squared_error: mean over outputs, poisson: sum over outputs
    per_output = 0.5 * ((Y - P) ** 2).mean(axis=0)
    assert ref.data_loss(Y, P, "squared_error") == pytest.approx(per_output.mean())
    assert ref.data_loss(Y, P, "squared_error", clip=False) == pytest.approx(
        per_output.sum()
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), solver=st.sampled_from(["sgd", "adam"]),
       nesterov=st.booleans())
def test_zero_gradient_from_fresh_state_leaves_params_unchanged(seed, solver, nesterov):
    coefs, intercepts = ref.init_params([3, 4, 2], "relu", seed % 2**31)
    params = [p.copy() for p in coefs + intercepts]
    state = ref.init_opt_state(solver, params)
    if solver == "sgd":
        hp = {"learning_rate": 0.5, "momentum": 0.9, "nesterov": nesterov}
    else:
        hp = dict(ref.ADAM_DEFAULTS, learning_rate_init=0.5)
    step = ref.sgd_step if solver == "sgd" else ref.adam_step
    for _ in range(3):
        step(params, [np.zeros_like(p) for p in params], state, hp)
    for before, after in zip(coefs + intercepts, params):
        np.testing.assert_array_equal(before, after)


def test_zero_gradient_with_momentum_still_moves():
    """Momentum is real state: after a non-zero step, g = 0 keeps moving."""
    params = [np.array([1.0])]
    state = ref.init_opt_state("sgd", params)
    hp = {"learning_rate": 0.1, "momentum": 0.5, "nesterov": False}
    ref.sgd_step(params, [np.array([1.0])], state, hp)  # v = -0.1, p = 0.9
    ref.sgd_step(params, [np.array([0.0])], state, hp)  # v = -0.05, p = 0.85
    np.testing.assert_allclose(params[0], [0.85], rtol=1e-15)
    np.testing.assert_allclose(state["velocities"][0], [-0.05], rtol=1e-15)


def test_run_epoch_batching_and_loss_weighting(rng):
    """Epoch loss = sum(batch_loss * batch_len) / n with an uneven last batch."""
    n, bs = 7, 3  # batches of 3, 3, 1
    X = rng.normal(size=(n, 2))
    Y = rng.normal(size=(n, 1))
    sw = rng.uniform(0.5, 2.0, size=n)
    order = rng.permutation(n)
    coefs, intercepts = ref.init_params([2, 3, 1], "tanh", 0)
    hp = {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}

    c, b = [w.copy() for w in coefs], [w.copy() for w in intercepts]
    state = ref.init_opt_state("sgd", c + b)
    epoch_loss = ref.run_epoch(c, b, X, Y, sw, order, bs, "tanh", "identity",
                               "squared_error", 0.01, "sgd", state, hp)

    # replay by hand: plain gradient descent batch by batch
    c2, b2 = [w.copy() for w in coefs], [w.copy() for w in intercepts]
    total = 0.0
    for idx in (order[0:3], order[3:6], order[6:7]):
        loss, cg, ig = ref.backprop(c2, b2, X[idx], Y[idx], sw[idx], "tanh",
                                    "identity", "squared_error", 0.01)
        total += loss * len(idx)
        for p, g in zip(c2 + b2, cg + ig):
            p -= 0.1 * g
    assert epoch_loss == pytest.approx(total / n, rel=1e-14)
    np.testing.assert_allclose(ref.pack(c, b), ref.pack(c2, b2), rtol=1e-14)


def test_relu_derivative_uses_activation_output():
    a = np.array([[0.0, 0.5, 2.0]])
    np.testing.assert_array_equal(ref.activation_derivative(a, "relu"), [[0, 1, 1]])
    np.testing.assert_allclose(ref.activation_derivative(a, "tanh"), [[1, 0.75, -3]])
    np.testing.assert_allclose(
        ref.activation_derivative(a, "logistic"), [[0, 0.25, -2]]
    )


def test_invalid_arguments_raise():
    coefs, intercepts = ref.init_params([2, 3, 1], "relu", 0)
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="not the canonical loss"):
        ref.backprop(coefs, intercepts, X, Y, None, "relu", "identity", "poisson", 0.0)
    with pytest.raises(ValueError, match="unknown output activation 'sigmoid'"):
        ref.objective(coefs, intercepts, X, Y, None, "relu", "sigmoid", "poisson", 0.0)
    with pytest.raises(ValueError, match="unknown hidden activation 'softmax'"):
        ref.forward(coefs, intercepts, X, "softmax", "identity")
    with pytest.raises(ValueError, match="unknown hidden activation 'elu'"):
        ref.init_params([2, 3, 1], "elu", 0)
    with pytest.raises(ValueError, match="unknown solver 'lbfgs'"):
        ref.init_opt_state("lbfgs", coefs + intercepts)
    with pytest.raises(ValueError, match=r"sample weights must have shape \(4,\)"):
        ref.reported_loss(coefs, intercepts, X, Y, np.ones(3), "relu", "identity",
                          "squared_error", 0.0)
