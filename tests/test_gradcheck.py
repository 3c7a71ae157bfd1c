"""Central finite differences directly on the compiled loss and gradient.

``fastbp._lbfgs.loss_and_gradient`` (float64) returns sklearn's *reported*
loss and the gradient of the *objective* (see ``tests/_reference.py``).  They
differ in one way away from the clipping region: for squared error the
reported loss averages over outputs while the gradient is that of the sum, so

    objective = n_out * (reported - l2) + l2,   l2 = 0.5 alpha ||W||^2 / sw_sum.

The finite differences below are taken of that objective, computed from the
compiled loss alone (the oracle is used for nothing but the L2 term), and no
data is drawn near relu's kink or the log-losses' clipping.

fastbp's own activations (leaky_relu, elu, softplus, gelu) and losses (a
classifier's squared_error on logistic and softmax outputs, the regressor's
absolute_error and huber) run in the extended kernels, which
``loss_and_gradient`` picks itself (``fastbp._kernels.kernels_for``).  Their
losses are consistent for any number of outputs, so there the objective *is*
the reported loss.  No data is drawn near absolute_error's kink (|r| = 0) or
huber's switch (|r| = huber_delta), and huber's residuals lie on both sides.

Each check also runs with a workspace of 4 rows: the evaluation in row chunks
that L-BFGS uses on large data (``fastbp._lbfgs.lbfgs_workspace``).
"""

import numpy as np
import pytest

import _reference as ref
from conftest import tol
from fastbp import _kernels
from fastbp._kernels import activations as KA
from fastbp._kernels import losses as KL
from fastbp._network import Network, Workspace, as_kernel_input
from fastbp._lbfgs import loss_and_gradient

HIDDEN = ["identity", "logistic", "tanh", "relu"]
# id -> (output activation, estimator loss name, n_outputs)
OUTPUTS = {
    "squared_error-1": ("identity", "squared_error", 1),
    "squared_error-3": ("identity", "squared_error", 3),
    "binary": ("logistic", "log_loss", 1),
    "multilabel": ("logistic", "log_loss", 3),
    "softmax": ("softmax", "log_loss", 3),
    "poisson": ("exp", "poisson", 2),
}
H = 1e-6
FD_TOL = dict(rtol=1e-5, atol=1e-8)


# Every test here runs under both gradient schedules (conftest.schedule).
pytestmark = pytest.mark.usefixtures("schedule")

def targets(rng, out_act, n, n_out):
    return ref.make_targets(rng, ref.CANONICAL_LOSS[out_act], n, n_out)


def draw_problem(rng, activation, out_act, n_out, n=9, n_in=3):
    """X and weights with every hidden pre-activation at least 1e-3 from 0
    (relu's and leaky_relu's kink) -- redrawn the same way for every activation
    (fastbp's own activations are initialized as relu: factor 6)."""
    sizes = [n_in, 4, 3, n_out]
    init_as = activation if activation in ref.HIDDEN_ACTIVATIONS else "relu"
    for _ in range(100):
        X = rng.normal(size=(n, n_in))
        coefs, intercepts = ref.init_params(sizes, init_as, int(rng.integers(2**31)))
        acts = ref.forward(coefs, intercepts, X, activation, out_act)
        zs = [a @ W + b for a, W, b in zip(acts[:-2], coefs[:-1], intercepts[:-1])]
        if min(np.abs(z).min() for z in zs) > 1e-3:
            return sizes, X, coefs, intercepts, acts[-1]
    pytest.fail("could not draw kink-free data")


class CompiledLoss:
    """theta -> (reported loss, gradient) through the compiled kernel."""

    def __init__(self, sizes, X, Y, sw, activation, out_act, loss, alpha, n_threads,
                 n_blocks, huber_delta=1.0, rows=None):
        self.sizes = sizes
        self.net = Network(sizes, np.float64)
        n = X.shape[0]
        # gelu's f' needs z: the workspace keeps it (as fit_lbfgs's does)
        self.ws = Workspace(self.net.sizes, np.float64, n if rows is None else rows, n_blocks,
                            keep_pre=activation == "gelu")
        self.Xk = as_kernel_input(X, np.float64)
        self.Y = np.ascontiguousarray(Y, dtype=np.float64)
        self.sw = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
        self.sw_sum = float(self.sw.sum())
        self.act = KA.HIDDEN_CODES[activation]
        self.out = KL.OUTPUT_CODES[(out_act, loss)]
        self.alpha = alpha
        self.n_out = sizes[-1]
        # only scikit-learn's identity squared_error averages its loss over outputs
        self.scale = self.n_out if (out_act, loss) == ("identity", "squared_error") else 1
        self.n_threads = n_threads
        self.huber_delta = huber_delta

    def __call__(self, theta):
        self.net.params[...] = theta
        return loss_and_gradient(self.net, self.Xk, self.Y, self.sw, self.act, self.out,
                                 self.alpha, self.ws, self.n_threads, self.huber_delta)

    def l2(self, theta):
        coefs, _ = ref.unpack(theta, self.sizes)
        return ref.l2_penalty(coefs, self.alpha, self.sw_sum)

    def objective(self, theta):
        """The function whose gradient the kernel returns."""
        reported, _ = self(theta)
        l2 = self.l2(theta)
        return self.scale * (reported - l2) + l2


def fd_gradient(f, theta, h=H):
    return ref.fd_gradient(f, theta, h)


# (weighted with L2?, n_threads, n_blocks of the 9-row batch, workspace rows:
# None for all rows in one call, 4 for L-BFGS's row chunks of large data)
SETTINGS = {"plain-T1-J1": (False, 1, 1, None), "weighted-l2-T2-J4": (True, 2, 4, None),
            "weighted-l2-T2-J2-chunks4": (True, 2, 2, 4)}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("case", list(OUTPUTS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_compiled_gradient_matches_finite_differences(rng, activation, case, setting):
    out_act, loss, n_out = OUTPUTS[case]
    sizes, X, coefs, intercepts, P = draw_problem(rng, activation, out_act, n_out)
    if out_act in ("logistic", "softmax"):  # far from the clipping region
        assert P.min() > 1e-6 and P.max() < 1 - 1e-6
    Y = targets(rng, out_act, X.shape[0], n_out)
    weighted, n_threads, n_blocks, rows = SETTINGS[setting]
    sw = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    alpha = 1e-2 if weighted else 0.0
    f = CompiledLoss(sizes, X, Y, sw, activation, out_act, loss, alpha, n_threads,
                     n_blocks, rows=rows)

    theta = ref.pack(coefs, intercepts)
    _, analytic = f(theta)
    assert np.abs(analytic).max() > 1e-3  # not a dead network
    numeric = fd_gradient(f.objective, theta)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)


def test_squared_error_loss_is_the_objective_over_n_outputs(rng):
    """The factor is real: for 3 outputs, differencing the *reported* loss gives
    the data gradient divided by 3 (plus the undivided L2 gradient), which the
    finite-difference check tells apart from the returned gradient."""
    sizes, X, coefs, intercepts, _ = draw_problem(rng, "tanh", "identity", 3)
    Y = targets(rng, "identity", X.shape[0], 3)
    f = CompiledLoss(sizes, X, Y, None, "tanh", "identity", "squared_error", 1e-2, 1, 2)
    theta = ref.pack(coefs, intercepts)
    _, analytic = f(theta)
    numeric_reported = fd_gradient(lambda t: f(t)[0], theta)
    numeric_l2 = fd_gradient(f.l2, theta)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        np.testing.assert_allclose(analytic, numeric_reported, **FD_TOL)
    np.testing.assert_allclose((analytic - numeric_l2) / 3 + numeric_l2,
                               numeric_reported, **FD_TOL)
    # and the L2 term enters only through the weights
    n_coef = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    np.testing.assert_allclose(numeric_l2[:n_coef], 1e-2 * theta[:n_coef] / X.shape[0],
                               rtol=1e-6)
    np.testing.assert_allclose(numeric_l2[n_coef:], 0.0, atol=1e-10)


def test_finite_differences_catch_a_wrong_entry(rng):
    """The check has teeth on the compiled gradient: 1% off in one entry fails."""
    sizes, X, coefs, intercepts, _ = draw_problem(rng, "logistic", "softmax", 3)
    Y = targets(rng, "softmax", X.shape[0], 3)
    f = CompiledLoss(sizes, X, Y, None, "logistic", "softmax", "log_loss", 0.0, 2, 3)
    theta = ref.pack(coefs, intercepts)
    analytic = f(theta)[1].copy()
    numeric = fd_gradient(f.objective, theta)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)
    k = int(np.argmax(np.abs(analytic)))
    analytic[k] *= 1.01
    with pytest.raises(AssertionError, match="Mismatched elements: 1 /"):
        np.testing.assert_allclose(analytic, numeric, **FD_TOL)


# --------------------------------------------------------------------------
# fastbp's own activations and losses (the extended kernels)
# --------------------------------------------------------------------------
NEW_HIDDEN = list(ref.EXTENDED_HIDDEN_ACTIVATIONS)
# id -> (output activation, estimator loss name, n_outputs)
NEW_OUTPUTS = {
    "sq-binary": ("logistic", "squared_error", 1),
    "sq-multilabel": ("logistic", "squared_error", 3),
    "sq-multiclass": ("softmax", "squared_error", 3),
    "absolute-1": ("identity", "absolute_error", 1),
    "absolute-3": ("identity", "absolute_error", 3),
    "huber-1": ("identity", "huber", 1),
    "huber-3": ("identity", "huber", 3),
}
ALL_OUTPUTS = {**OUTPUTS, **NEW_OUTPUTS}
HUBER_DELTA = 0.5
# every new activation with every output; scikit-learn's with every new loss
EXTENDED_CASES = ([(a, c) for a in NEW_HIDDEN for c in ALL_OUTPUTS]
                  + [(a, c) for a in HIDDEN for c in NEW_OUTPUTS])
# residuals |a - y| stay this far from absolute_error's kink and huber's switch
MARGIN = 0.05


def residuals(rng, shape, loss):
    """a - y for absolute_error (|r| in [0.1, 1.5]) or huber (alternately
    inside, |r| in [0.05, delta - 0.1], and outside, [delta + 0.1, 2])."""
    sign = rng.choice([-1.0, 1.0], size=shape)
    if loss == "absolute_error":
        return sign * rng.uniform(0.1, 1.5, size=shape)
    inside = np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0
    magnitude = np.where(inside, rng.uniform(0.05, HUBER_DELTA - 0.1, size=shape),
                         rng.uniform(HUBER_DELTA + 0.1, 2.0, size=shape))
    return sign * magnitude


def extended_targets(rng, out_act, loss, P):
    """Targets for any pair: robust losses' from the output P (residuals as
    above); 0/1 indicators or one-hot rows for either loss of a logistic or
    softmax output; otherwise as ``targets``."""
    if loss in ("absolute_error", "huber"):
        return P - residuals(rng, P.shape, loss)
    return targets(rng, out_act, P.shape[0], P.shape[1])


def check_residuals(P, Y, loss):
    R = np.abs(P - Y)
    if loss == "absolute_error":
        assert R.min() > MARGIN
    elif loss == "huber":
        assert np.abs(R - HUBER_DELTA).min() > MARGIN
        assert (R < HUBER_DELTA).any() and (R > HUBER_DELTA).any()  # both branches


def extended_problem(rng, activation, case, setting):
    out_act, loss, n_out = ALL_OUTPUTS[case]
    sizes, X, coefs, intercepts, P = draw_problem(rng, activation, out_act, n_out)
    if loss == "log_loss":  # far from the clipping region
        assert P.min() > 1e-6 and P.max() < 1 - 1e-6
    Y = extended_targets(rng, out_act, loss, P)
    check_residuals(P, Y, loss)
    weighted, n_threads, n_blocks, rows = SETTINGS[setting]
    sw = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    alpha = 1e-2 if weighted else 0.0
    f = CompiledLoss(sizes, X, Y, sw, activation, out_act, loss, alpha, n_threads,
                     n_blocks, huber_delta=HUBER_DELTA, rows=rows)
    args = (X, Y, sw, activation, out_act, loss, alpha, HUBER_DELTA)
    return f, coefs, intercepts, args


def assert_matches_oracle(got_loss, got_grad, coefs, intercepts, args):
    """The compiled loss and gradient equal the NumPy oracle's (float64 TOL)."""
    want_loss, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    want_grad = ref.pack(cg, ig)
    t = tol(np.float64)
    np.testing.assert_allclose(got_loss, want_loss, rtol=t["rtol"], atol=t["atol"])
    np.testing.assert_allclose(got_grad, want_grad, rtol=t["rtol"],
                               atol=t["atol"] * np.abs(want_grad).max())


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("activation,case", EXTENDED_CASES,
                         ids=[f"{a}-{c}" for a, c in EXTENDED_CASES])
def test_extended_gradient_matches_finite_differences(rng, activation, case, setting):
    f, coefs, intercepts, args = extended_problem(rng, activation, case, setting)
    # loss_and_gradient chose the extended build by itself
    assert _kernels.kernels_for("train", f.act, f.out) is _kernels.TRAIN_EXTENDED
    theta = ref.pack(coefs, intercepts)
    got_loss, analytic = f(theta)
    assert np.abs(analytic).max() > 1e-3  # not a dead network
    numeric = fd_gradient(f.objective, theta)
    np.testing.assert_allclose(analytic, numeric, **FD_TOL)
    if f.scale == 1:  # the new losses: the reported loss is the objective
        np.testing.assert_allclose(analytic, fd_gradient(lambda t: f(t)[0], theta),
                                   **FD_TOL)
    assert_matches_oracle(got_loss, analytic, coefs, intercepts, args)


@pytest.mark.parametrize("case", ["squared_error-3", "softmax", "sq-multiclass", "huber-3"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_gelu_gradient_equals_numpy_backprop(rng, monkeypatch, case, setting):
    """gelu's f' comes from z (the kernel's ``pre`` workspace): on a deeper
    network with pre-activations over [-4, 4] the compiled gradient is the
    NumPy backprop's to 1e-10, and not the one with f' taken of the output."""
    out_act, loss, n_out = ALL_OUTPUTS[case]
    sizes = [5, 8, 6, 4, n_out]
    X = 2.0 * rng.normal(size=(12, 5))
    coefs, intercepts = ref.init_params(sizes, "relu", 3)
    zs, acts = ref.forward_general(coefs, intercepts, X, "gelu", out_act)
    assert min(z.min() for z in zs[:-1]) < -1.5 and max(z.max() for z in zs[:-1]) > 1.5
    Y = extended_targets(rng, out_act, loss, acts[-1])
    weighted, n_threads, n_blocks, rows = SETTINGS[setting]
    sw = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    alpha = 1e-2 if weighted else 0.0
    f = CompiledLoss(sizes, X, Y, sw, "gelu", out_act, loss, alpha, n_threads, n_blocks,
                     huber_delta=HUBER_DELTA, rows=rows)
    got_loss, got_grad = f(ref.pack(coefs, intercepts))
    args = (X, Y, sw, "gelu", out_act, loss, alpha, HUBER_DELTA)
    assert_matches_oracle(got_loss, got_grad, coefs, intercepts, args)

    from_z = ref.activation_derivative_z
    monkeypatch.setattr(ref, "activation_derivative_z",
                        lambda z, name: from_z(ref.apply_activation(z, name), name))
    _, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    wrong = ref.pack(cg, ig)
    assert np.abs(got_grad - wrong).max() > 1e-3 * np.abs(wrong).max()


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_softmax_squared_error_uses_the_full_jacobian(rng, monkeypatch, activation):
    """The multiclass squared_error delta is J^T (p - y) with the full softmax
    Jacobian; its diagonal alone, (p - y) p (1 - p), gives another gradient
    that the compiled one is far from (so the checks above tell them apart)."""
    f, coefs, intercepts, args = extended_problem(rng, activation, "sq-multiclass",
                                                  "weighted-l2-T2-J4")
    _, got = f(ref.pack(coefs, intercepts))
    full = ref.softmax_jacobian
    monkeypatch.setattr(ref, "softmax_jacobian",
                        lambda P: full(P) * np.eye(P.shape[1])[None, :, :])
    _, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    diagonal = ref.pack(cg, ig)
    assert np.abs(got - diagonal).max() > 1e-2 * np.abs(got).max()
    monkeypatch.undo()
    assert_matches_oracle(*f(ref.pack(coefs, intercepts)), coefs, intercepts, args)


def test_huber_delta_reaches_the_kernel(rng):
    """loss_and_gradient's huber_delta is the one used: residuals between 0.6
    and 2 are on the quadratic side for delta = 3 and linear for 0.5."""
    f, coefs, intercepts, args = extended_problem(rng, "tanh", "huber-3", "plain-T1-J1")
    theta = ref.pack(coefs, intercepts)
    small = f(theta)
    f.huber_delta = 3.0
    large = f(theta)
    assert small[0] < large[0]
    assert np.abs(small[1] - large[1]).max() > 1e-2
    assert_matches_oracle(*large, coefs, intercepts, args[:-1] + (3.0,))
