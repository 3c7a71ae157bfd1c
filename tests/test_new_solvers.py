"""The rmsprop and adamw solvers (issue 8), against their specification.

* ``step_range`` with ``RMSPROP`` / ``ADAMW`` on a sub-range of a vector against
  a NumPy transcription of the formulas in the arrays' dtype (bitwise) and in
  float64 (to ``conftest.TOL``); a bias-like range (``decay`` 0) of adamw is an
  Adam step bit for bit; ``decay`` is read by adamw only;
* the estimators: adamw with ``weight_decay=0`` is adam bit for bit; both
  solvers learn digits; partial_fit keeps the optimizer and follows the
  plain-NumPy oracle ``_reference.run_epoch`` across calls; ``n_jobs`` does not
  change a bit;
* the ``rho`` / ``weight_decay`` parameters: scikit-learn's validation messages,
  their place in the signature and their defaults;
* the Python optimizers' kernel constants (``opt.kernel``, a
  ``fastbp._kernels.state.Optimizer``) and the ``Loss`` fields.

Whole epochs of the compiled kernel against the oracle, for every schedule and
thread/block count, are in ``test_kernels.py`` (its ``SOLVERS``).
"""

import inspect
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import _reference as ref
from conftest import tol
from fastbp import BPClassifier, BPRegressor, _threads
from fastbp._kernels import optimizers as KO
from fastbp._kernels import state as kernel_state
from fastbp._kernels.losses import OUTPUT_CODES
from fastbp._optim import AdamOptimizer, AdamWOptimizer, RMSpropOptimizer

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["f64", "f32"]
NEW_SOLVERS = ["rmsprop", "adamw"]
ESTIMATORS = [BPClassifier, BPRegressor]


def quiet(est, method, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(*args, **kwargs)


def adam_lr(lr_init, b1, b2, t):
    """Adam's bias-corrected rate at step t, scikit-learn's Python expression."""
    return lr_init * np.sqrt(1 - b2**t) / (1 - b1**t)


# --------------------------------------------------------------------------
# 1. step_range
# --------------------------------------------------------------------------
# hyper-parameters of the step tests; lr_init differs from every bias-corrected
# rate, so decaying with lr_t instead of lr_init shows
RMS = dict(lr=0.02, rho=0.8, eps=1e-6)
ADW = dict(lr=0.05, b1=0.8, b2=0.99, eps=1e-7, wd=0.3)
N, P0, P1 = 103, 7, 90  # odd bounds: vector loops with remainders
ALPHA, SW_SUM = 1e-3, 37.0


def numpy_step(solver, w, raw, moments, l2, decay, sw_sum, lr_t, dt):
    """The specification of one step on ``w[P0:P1]``, in place, with every
    operation in dtype ``dt`` (scalars rounded to ``dt`` first; constants such
    as ``1 - rho`` formed in float64, then rounded) but adamw's update, which
    numpy forms as scikit-learn's Adam update (see ``adam_update``).  ``(1 - rho) * (g * g)``
    associates as scikit-learn's Adam writes ``(1 - beta_2) * grads**2``."""
    dt = np.dtype(dt).type
    s = slice(P0, P1)
    W = w[s]
    g = (raw[s] + dt(l2) * W) / dt(sw_sum)
    lr = dt(lr_t)
    if solver == "rmsprop":
        v = dt(RMS["rho"]) * moments[0, s] + dt(1.0 - RMS["rho"]) * (g * g)
        moments[0, s] = v
        w[s] = W - lr * g / (np.sqrt(v) + dt(RMS["eps"]))
    else:
        assert solver == "adamw"
        m = dt(ADW["b1"]) * moments[0, s] + dt(1.0 - ADW["b1"]) * g
        v = dt(ADW["b2"]) * moments[1, s] + dt(1.0 - ADW["b2"]) * (g * g)
        moments[0, s], moments[1, s] = m, v
        W = W * dt(1.0 - ADW["lr"] * decay)  # the initial rate, not lr_t
        # Adam's update with lr_t a float64 numpy scalar, as scikit-learn's Adam
        # has it: numpy >= 2 forms it in float64 and rounds once, on assignment
        w[s] = W + -np.float64(lr_t) * m / (np.sqrt(v) + dt(ADW["eps"]))


def make_opt(solver, dtype, n=N):
    if solver == "rmsprop":
        return RMSpropOptimizer(n, dtype, RMS["lr"], RMS["rho"], RMS["eps"])
    return AdamWOptimizer(n, dtype, ADW["lr"], ADW["b1"], ADW["b2"], ADW["eps"], ADW["wd"])


def step_inputs(rng, solver, dtype):
    w = rng.normal(size=N).astype(dtype)
    n_mom = 1 if solver == "rmsprop" else 2
    moments = (rng.random(size=(n_mom, N)) * 0.1).astype(dtype)
    if solver == "adamw":
        moments[0] -= dtype(0.05)  # m of either sign
    return w, moments


def rate(solver, t):
    if solver == "rmsprop":
        return RMS["lr"]  # constant: learning_rate_init
    return adam_lr(ADW["lr"], ADW["b1"], ADW["b2"], t)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("decay", [0.0, ADW["wd"]], ids=["bias", "weights"])
@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_step_range_is_the_formula_in_the_array_dtype(rng, solver, decay, dtype):
    """Six steps on [P0, P1): bitwise the dtype transcription, close to the
    float64 one, nothing outside the range touched."""
    opt = make_opt(solver, dtype)
    code = KO.RMSPROP if solver == "rmsprop" else KO.ADAMW
    assert opt.code == code
    optimizer = opt.kernel
    assert optimizer.code == code
    w, moments = step_inputs(rng, solver, dtype)
    w_np, mom_np = w.copy(), moments.copy()
    w64, mom64 = w.astype(np.float64), moments.astype(np.float64)
    w_start, mom_start = w.copy(), moments.copy()
    outside = np.r_[0:P0, P1:N]
    for t in range(1, 7):
        raw = rng.normal(size=N).astype(dtype)
        lr_t = rate(solver, t)
        assert KO.step_range(w, raw, moments, P0, P1, ALPHA, decay, SW_SUM, optimizer,
                             lr_t) is None
        numpy_step(solver, w_np, raw, mom_np, ALPHA, decay, SW_SUM, lr_t, dtype)
        numpy_step(solver, w64, raw.astype(np.float64), mom64, ALPHA, decay, SW_SUM,
                   lr_t, np.float64)
        msg = f"step {t}"
        np.testing.assert_array_equal(w, w_np, err_msg=msg)
        np.testing.assert_array_equal(moments, mom_np, err_msg=msg)
        np.testing.assert_allclose(w, w64, **tol(dtype), err_msg=msg)
        for k in range(moments.shape[0]):
            scale = np.abs(mom64[k]).max()
            np.testing.assert_allclose(moments[k], mom64[k], rtol=tol(dtype)["rtol"],
                                       atol=tol(dtype)["atol"] * scale, err_msg=msg)
        np.testing.assert_array_equal(w[outside], w_start[outside], err_msg=msg)
        np.testing.assert_array_equal(moments[:, outside], mom_start[:, outside],
                                      err_msg=msg)
    assert w.dtype == dtype and moments.dtype == dtype
    assert np.abs(w - w_start).max() > 1e-2  # it stepped


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_adamw_bias_range_is_an_adam_step_bitwise(rng, dtype):
    """decay 0 (what the callers pass for intercepts): ADAMW is ADAM bit for bit,
    with the very same constants but the code -- whose ``weight_decay`` is not 0, so
    the kernel must decay by its ``decay`` argument, not by the field."""
    opt = make_opt("adamw", dtype)
    adamw = opt.kernel
    assert adamw.code == KO.ADAMW
    assert adamw.weight_decay == ADW["wd"]
    adam = adamw._replace(code=KO.ADAM)
    w_w, mom_w = step_inputs(rng, "adamw", dtype)
    w_a, mom_a = w_w.copy(), mom_w.copy()
    for t in range(1, 6):
        raw = rng.normal(size=N).astype(dtype)
        lr_t = rate("adamw", t)
        l2 = 0.0 if t % 2 else ALPHA  # bias ranges have l2 0; the decay alone matters
        KO.step_range(w_w, raw, mom_w, P0, P1, l2, 0.0, SW_SUM, adamw, lr_t)
        KO.step_range(w_a, raw, mom_a, P0, P1, l2, 0.0, SW_SUM, adam, lr_t)
        np.testing.assert_array_equal(w_w, w_a, err_msg=f"step {t}")
        np.testing.assert_array_equal(mom_w, mom_a, err_msg=f"step {t}")
    # and with a decay they part (the comparison above is not vacuous)
    raw = rng.normal(size=N).astype(dtype)
    KO.step_range(w_w, raw, mom_w, P0, P1, ALPHA, ADW["wd"], SW_SUM, adamw, 0.01)
    KO.step_range(w_a, raw, mom_a, P0, P1, ALPHA, ADW["wd"], SW_SUM, adam, 0.01)
    assert not np.array_equal(w_w, w_a)
    np.testing.assert_array_equal(mom_w, mom_a)  # moments use g before the decay


@pytest.mark.parametrize("solver", ["sgd", "adam", "rmsprop"])
def test_decay_argument_is_read_by_adamw_only(rng, solver):
    """Callers pass ``weight_decay`` for every weight range; the other solvers'
    formulas have no decay, so a decay must not change their step."""
    from fastbp._optim import SGDOptimizer

    dtype = np.float64
    if solver == "sgd":
        opt = SGDOptimizer(N, dtype, 0.05, "constant", 0.9, True, 0.5)
    elif solver == "adam":
        opt = AdamOptimizer(N, dtype, 0.05, 0.8, 0.99, 1e-7)
    else:
        opt = make_opt("rmsprop", dtype)
    optimizer = opt.kernel
    w0 = rng.normal(size=N)
    mom0 = rng.random(size=(opt.moments.shape[0], N)) * 0.1
    raw = rng.normal(size=N)
    results = []
    for decay in (0.0, 0.3):
        w, mom = w0.copy(), mom0.copy()
        KO.step_range(w, raw, mom, P0, P1, ALPHA, decay, SW_SUM, optimizer, 0.01)
        results.append((w, mom))
    assert not np.array_equal(results[0][0], w0)
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])


def test_reference_steps_decay_only_the_coefs():
    """The oracle itself (no sklearn counterpart to check it against): adamw
    with zero gradients only decays the first half of ``params`` (the coefs);
    with no decay it is ``adam_step``; rmsprop's first step from v = 0 moves
    every parameter by ``lr / sqrt(1 - rho)`` against the sign of its gradient
    (eps 0 here)."""
    rng = np.random.default_rng(5)
    coefs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    intercepts = [rng.normal(size=4), rng.normal(size=2)]
    params = [p.copy() for p in coefs + intercepts]
    zeros = [np.zeros_like(p) for p in params]
    hp = dict(ref.ADAMW_DEFAULTS, learning_rate_init=0.1, weight_decay=2.0)
    state = ref.init_opt_state("adamw", params)
    ref.adamw_step(params, zeros, state, hp)
    assert state["t"] == 1
    for got, start in zip(params[:2], coefs):
        np.testing.assert_allclose(got, 0.8 * start, rtol=1e-15)
    for got, start in zip(params[2:], intercepts):
        np.testing.assert_array_equal(got, start)

    grads = [rng.normal(size=p.shape) for p in params]
    a, b = [p.copy() for p in params], [p.copy() for p in params]
    sa, sb = ref.init_opt_state("adamw", a), ref.init_opt_state("adam", b)
    for _ in range(3):
        ref.adamw_step(a, grads, sa, dict(hp, weight_decay=0.0))
        ref.adam_step(b, grads, sb, hp)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)

    p = [p.copy() for p in params]
    state = ref.init_opt_state("rmsprop", p)
    assert list(state) == ["vs"]
    ref.rmsprop_step(p, grads, state, dict(ref.RMSPROP_DEFAULTS, learning_rate_init=0.01,
                                           rho=0.75, epsilon=0.0))
    for got, start, g, v in zip(p, params, grads, state["vs"], strict=True):
        np.testing.assert_allclose(v, 0.25 * g**2, rtol=1e-15)
        np.testing.assert_allclose(got - start, -0.01 * np.sign(g) / 0.5, rtol=1e-9)
    with pytest.raises(ValueError, match=r"unknown solver 'rms'; expected one of "):
        ref.init_opt_state("rms", params)


# --------------------------------------------------------------------------
# 2. the Python optimizers
# --------------------------------------------------------------------------
def assert_one_kernel_type(optimizer):
    """An ``Optimizer`` whose code is an int and every hyper-parameter a float
    (what the old float64 ``hyper`` vector guaranteed: one kernel type)."""
    assert isinstance(optimizer, kernel_state.Optimizer)
    assert type(optimizer.code) is int
    assert all(type(v) is float for v in optimizer[1:]), optimizer


def test_solver_codes_and_hyper_slots():
    assert (KO.RMSPROP, KO.ADAMW) == (3, 4)
    # each solver's optimizer runs its own kernel code
    from fastbp import BPClassifier
    from fastbp._optim import make_optimizer

    codes = {solver: make_optimizer(BPClassifier(solver=solver), 4, np.float64).code
             for solver in ("sgd", "adam", "rmsprop", "adamw")}
    assert codes == {"sgd": KO.SGD, "adam": KO.ADAM, "rmsprop": KO.RMSPROP,
                     "adamw": KO.ADAMW}
    fields = kernel_state.Optimizer._fields
    assert "rho" in fields and "weight_decay" in fields
    assert len(set(fields)) == len(fields)  # no two names share a field
    # the constructor sets every field (in order): none is left out
    assert tuple(inspect.signature(kernel_state.optimizer).parameters) == fields


def test_rmsprop_optimizer_kernel_hyper_layout():
    opt = RMSpropOptimizer(10, np.float32, 0.02, 0.8, 1e-6)
    assert opt.code == KO.RMSPROP and opt.n_moments == 1
    assert opt.moments.shape == (1, 10) and opt.moments.dtype == np.float32
    assert not opt.moments.any()
    assert opt.learning_rate == 0.02
    k = opt.kernel
    assert_one_kernel_type(k)
    assert k.code == KO.RMSPROP
    assert k.rho == 0.8
    assert k.epsilon == 1e-6
    opt.start_batches()  # the rate the kernel steps with
    assert opt.state.rate.dtype == np.float64 and opt.state.rate.shape == (1,)
    assert opt.state.rate[0] == k.lr_init == 0.02  # the constant rate
    loss = kernel_state.loss(OUTPUT_CODES[("softmax", "log_loss")], 0.25, np.float32)
    assert loss.alpha == 0.25
    assert k.weight_decay == 0.0
    assert loss.clip_eps == np.finfo(np.float32).eps
    defaults = {k: p.default for k, p in
                inspect.signature(RMSpropOptimizer).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == dict(learning_rate_init=0.001, rho=0.9, epsilon=1e-8)


def test_adamw_optimizer_kernel_hyper_layout():
    opt = AdamWOptimizer(10, np.float64, 0.03, 0.8, 0.99, 1e-7, 0.2)
    assert isinstance(opt, AdamOptimizer)
    assert opt.code == KO.ADAMW and opt.n_moments == 2
    assert opt.moments.shape == (2, 10) and opt.moments.dtype == np.float64
    assert opt.t == 0 and opt.learning_rate == 0.03
    k = opt.kernel
    assert_one_kernel_type(k)
    assert k.code == KO.ADAMW
    assert k.weight_decay == 0.2
    loss = kernel_state.loss(OUTPUT_CODES[("softmax", "log_loss")], 0.5, np.float64)
    assert (k.lr_init, k.beta_1, k.beta_2, k.epsilon, loss.alpha) == (
        0.03, 0.8, 0.99, 1e-7, 0.5)
    assert k.rho == 0.0
    defaults = {k: p.default for k, p in
                inspect.signature(AdamWOptimizer).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == dict(learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                            epsilon=1e-8, weight_decay=0.01)
    # plain Adam leaves the new fields at 0 (its weight ranges get decay 0)
    k = AdamOptimizer(10, np.float64, 0.03).kernel
    assert k.weight_decay == 0.0 and k.rho == 0.0


# --------------------------------------------------------------------------
# 3. the estimators
# --------------------------------------------------------------------------
def small_problem(n=120, n_in=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_classes, size=n)
    return X, y


def assert_same_fit(a, b):
    for ca, cb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(ca, cb)
    for ia, ib in zip(a.intercepts_, b.intercepts_, strict=True):
        np.testing.assert_array_equal(ia, ib)
    assert a.loss_curve_ == b.loss_curve_
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_


def test_adamw_without_weight_decay_is_adam_bitwise():
    X, y = small_problem()
    params = dict(hidden_layer_sizes=(8, 5), batch_size=16, max_iter=6,
                  learning_rate_init=0.01, random_state=0, n_iter_no_change=1000)
    adam = quiet(BPClassifier(solver="adam", **params), "fit", X, y)
    adamw0 = quiet(BPClassifier(solver="adamw", weight_decay=0.0, **params), "fit", X, y)
    assert type(adamw0._optimizer) is AdamWOptimizer
    assert adamw0._optimizer.t == adam._optimizer.t == 6 * 8
    assert_same_fit(adamw0, adam)
    # the default weight decay reaches the kernel: the fits part
    adamw = quiet(BPClassifier(solver="adamw", **params), "fit", X, y)
    assert adamw._optimizer.kernel.weight_decay == 0.01
    assert not np.array_equal(adamw.coefs_[0], adam.coefs_[0])


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_old_solvers_ignore_rho_and_weight_decay(solver):
    """With the default solver (and sgd) the new parameters change nothing."""
    X, y = small_problem()
    params = dict(solver=solver, hidden_layer_sizes=(8,), batch_size=16, max_iter=4,
                  learning_rate_init=0.01, random_state=0, n_iter_no_change=1000)
    plain = quiet(BPClassifier(**params), "fit", X, y)
    odd = quiet(BPClassifier(rho=0.1, weight_decay=5.0, **params), "fit", X, y)
    assert_same_fit(odd, plain)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_new_solvers_learn_digits(digits, solver):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    clf = BPClassifier(solver=solver, hidden_layer_sizes=(32,), batch_size=50,
                       max_iter=25, random_state=0, n_jobs=2)
    quiet(clf, "fit", X_train, y_train)
    curve = clf.loss_curve_
    assert len(curve) == clf.n_iter_ == 25
    assert np.all(np.isfinite(curve))
    assert curve[-1] < 0.2 * curve[0]  # the training loss went down
    assert clf.loss_ == curve[-1] and clf.best_loss_ == min(curve)
    assert clf.t_ == 25 * 1000
    assert clf.score(X_train, y_train) > 0.93
    assert clf.score(X_test, y_test) > 0.85
    expected = RMSpropOptimizer if solver == "rmsprop" else AdamWOptimizer
    assert type(clf._optimizer) is expected
    if solver == "rmsprop":
        assert clf._optimizer.learning_rate == 0.001  # constant
    else:
        t = clf._optimizer.t
        assert t == 25 * 20
        assert clf._optimizer.learning_rate == adam_lr(0.001, 0.9, 0.999, t)


@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_new_solvers_regression_loss_decreases(solver):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(300, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    reg = BPRegressor(solver=solver, hidden_layer_sizes=(16,), batch_size=32,
                      max_iter=30, learning_rate_init=0.01, random_state=0)
    quiet(reg, "fit", X, y)
    assert len(reg.loss_curve_) == 30
    assert reg.loss_curve_[-1] < 0.3 * reg.loss_curve_[0]
    assert reg.score(X, y) > 0.8


def test_adamw_weight_decay_shrinks_the_weights(digits):
    X, y = digits[0][:500], digits[1][:500]
    params = dict(solver="adamw", hidden_layer_sizes=(16,), batch_size=50, max_iter=20,
                  learning_rate_init=0.01, random_state=0)
    free = quiet(BPClassifier(weight_decay=0.0, **params), "fit", X, y)
    decayed = quiet(BPClassifier(weight_decay=5.0, **params), "fit", X, y)
    norm = lambda est: np.sqrt(sum((c**2).sum() for c in est.coefs_))  # noqa: E731
    assert norm(decayed) < 0.5 * norm(free)


@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_n_jobs_does_not_change_a_bit(digits, solver):
    assert _threads.resolve_n_threads(2) == 2  # the parallel kernel really runs
    X, y = digits[0][:600], digits[1][:600]
    params = dict(solver=solver, hidden_layer_sizes=(40, 20), batch_size=64,
                  max_iter=4, random_state=0, learning_rate_init=0.005,
                  weight_decay=0.1, n_iter_no_change=1000)
    one = quiet(BPClassifier(n_jobs=1, **params), "fit", X, y)
    two = quiet(BPClassifier(n_jobs=2, **params), "fit", X, y)
    start = ref.init_params([64, 40, 20, 10], "relu", 0)[0][0]  # sklearn's draws
    assert np.abs(one.coefs_[0] - start).max() > 1e-2  # it trained
    assert_same_fit(two, one)
    np.testing.assert_array_equal(two._optimizer.moments, one._optimizer.moments)


@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_partial_fit_continues_like_the_reference(solver):
    """Three partial_fit calls (no shuffling) step like ``_reference.run_epoch``
    on each chunk with ONE optimizer state carried across the calls; ``t_``,
    adamw's step counter and the moments advance."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    lr, rho, wd, alpha, batch = 0.02, 0.8, 0.3, 1e-3, 8
    clf = BPClassifier(solver=solver, hidden_layer_sizes=(5,), batch_size=batch,
                       learning_rate_init=lr, rho=rho, weight_decay=wd, alpha=alpha,
                       shuffle=False, random_state=0)
    sizes = [4, 5, 3]
    coefs, intercepts = ref.init_params(sizes, "relu", 0)
    state = ref.init_opt_state(solver, coefs + intercepts)
    if solver == "rmsprop":
        hp = dict(ref.RMSPROP_DEFAULTS, learning_rate_init=lr, rho=rho)
    else:
        hp = dict(ref.ADAMW_DEFAULTS, learning_rate_init=lr, weight_decay=wd)
    Y = np.eye(3)[y]
    opt = None
    for k, s in enumerate([slice(0, 20), slice(20, 40), slice(40, 60)]):
        extra = {"classes": np.arange(3)} if k == 0 else {}
        moments_before = None if opt is None else opt.moments.copy()
        clf.partial_fit(X[s], y[s], **extra)
        if opt is None:
            opt = clf._optimizer
        assert clf._optimizer is opt  # kept, not rebuilt
        if moments_before is not None:
            assert not np.array_equal(opt.moments, moments_before)
        want = ref.run_epoch(coefs, intercepts, X[s], Y[s], None, np.arange(20), batch,
                             "relu", "softmax", "log_loss", alpha, solver, state, hp)
        msg = f"call {k}"
        assert clf.n_iter_ == 1 and clf.t_ == 20 * (k + 1), msg
        assert len(clf.loss_curve_) == k + 1
        assert clf.loss_curve_[-1] == pytest.approx(want, rel=tol(np.float64)["rtol"]), msg
        for got, exp in zip(clf.coefs_ + clf.intercepts_, coefs + intercepts, strict=True):
            np.testing.assert_allclose(got, exp, **tol(np.float64), err_msg=msg)
        if solver == "adamw":
            assert opt.t == state["t"] == 3 * (k + 1), msg
            assert opt.learning_rate == adam_lr(lr, 0.9, 0.999, opt.t)
            want_m = [ref.pack(state["ms"][:1], state["ms"][1:]),
                      ref.pack(state["vs"][:1], state["vs"][1:])]
        else:
            assert opt.learning_rate == lr
            want_m = [ref.pack(state["vs"][:1], state["vs"][1:])]
        for got, exp in zip(opt.moments, want_m, strict=True):
            np.testing.assert_allclose(got, exp, rtol=tol(np.float64)["rtol"],
                                       atol=tol(np.float64)["atol"] * np.abs(exp).max(),
                                       err_msg=msg)


# --------------------------------------------------------------------------
# 4. the parameters
# --------------------------------------------------------------------------
def range_message(est_cls, name, interval, value):
    return re.escape(f"The {name!r} parameter of {est_cls.__name__} must be a float "
                     f"in the range {interval}. Got {value!r} instead.")


def fit_data(est_cls):
    X, y = small_problem(n=20, n_in=3)
    return X, (y if est_cls is BPClassifier else y.astype(float))


@pytest.mark.parametrize("solver", ["adam", "rmsprop"])
@pytest.mark.parametrize("value", [1.0, 1, -0.1, 2.5, None, "0.5"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_rho_is_validated(est_cls, value, solver):
    X, y = fit_data(est_cls)
    with pytest.raises(ValueError, match=range_message(est_cls, "rho", "[0.0, 1.0)",
                                                       value)):
        est_cls(solver=solver, rho=value, max_iter=1).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "adamw"])
@pytest.mark.parametrize("value", [-1, -1e-3, -np.inf, None, "0.1"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_weight_decay_is_validated(est_cls, value, solver):
    X, y = fit_data(est_cls)
    with pytest.raises(ValueError, match=range_message(est_cls, "weight_decay",
                                                       "[0.0, inf)", value)):
        est_cls(solver=solver, weight_decay=value, max_iter=1).fit(X, y)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_partial_fit_validates_the_new_parameters(est_cls):
    X, y = fit_data(est_cls)
    extra = {"classes": np.unique(y)} if est_cls is BPClassifier else {}
    with pytest.raises(ValueError, match=range_message(est_cls, "rho", "[0.0, 1.0)", 1.0)):
        est_cls(solver="rmsprop", rho=1.0).partial_fit(X, y, **extra)
    with pytest.raises(ValueError, match=range_message(est_cls, "weight_decay",
                                                       "[0.0, inf)", -0.5)):
        est_cls(solver="adamw", weight_decay=-0.5).partial_fit(X, y, **extra)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_solver_options_and_boundary_values(est_cls):
    X, y = fit_data(est_cls)
    with pytest.raises(ValueError, match=rf"The 'solver' parameter of {est_cls.__name__} "
                       r"must be a str among \{.*\}\. Got 'rms' instead\.") as info:
        est_cls(solver="rms").fit(X, y)
    for option in ("'lbfgs'", "'sgd'", "'adam'", "'rmsprop'", "'adamw'"):
        assert option in str(info.value)
    # the closed ends of the intervals are accepted
    quiet(est_cls(solver="rmsprop", rho=0.0, max_iter=2, random_state=0), "fit", X, y)
    quiet(est_cls(solver="adamw", weight_decay=0.0, max_iter=2, random_state=0), "fit",
          X, y)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_rho_and_weight_decay_follow_n_jobs_with_defaults(est_cls):
    names = list(inspect.signature(est_cls).parameters)
    # issue 8's order: the shared parameters after n_jobs, then each estimator's own
    own = (["loss", "class_weight"] if est_cls is BPClassifier
           else ["huber_delta", "out_activation"])
    shared = ["n_jobs", "dropout", "n_init", "rho", "weight_decay", "validation_metric"]
    assert names[-len(shared) - len(own):] == shared + own
    params = est_cls().get_params()
    assert params["rho"] == 0.9 and params["weight_decay"] == 0.01
    assert params["solver"] == "adam"
    est = clone(est_cls(rho=0.5, weight_decay=0.2))
    assert (est.rho, est.weight_decay) == (0.5, 0.2)
    est.set_params(rho=0.0, weight_decay=3.0)
    assert est.get_params()["rho"] == 0.0 and est.get_params()["weight_decay"] == 3.0
