"""Central finite differences directly on the compiled loss and gradient.

``fastbp._training.loss_and_gradient`` (float64) returns sklearn's *reported*
loss and the gradient of the *objective* (see ``tests/_reference.py``).  They
differ in one way away from the clipping region: for squared error the
reported loss averages over outputs while the gradient is that of the sum, so

    objective = n_out * (reported - l2) + l2,   l2 = 0.5 alpha ||W||^2 / sw_sum.

The finite differences below are taken of that objective, computed from the
compiled loss alone (the oracle is used for nothing but the L2 term), and no
data is drawn near relu's kink or the log-losses' clipping.
"""

import numpy as np
import pytest

import _reference as ref
from fastbp._kernels import activations as KA
from fastbp._kernels import losses as KL
from fastbp._network import Network, Workspace, as_kernel_input
from fastbp._training import loss_and_gradient

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
    (relu's kink) -- redrawn the same way for every activation."""
    sizes = [n_in, 4, 3, n_out]
    for _ in range(100):
        X = rng.normal(size=(n, n_in))
        coefs, intercepts = ref.init_params(sizes, activation, int(rng.integers(2**31)))
        acts = ref.forward(coefs, intercepts, X, activation, out_act)
        zs = [a @ W + b for a, W, b in zip(acts[:-2], coefs[:-1], intercepts[:-1])]
        if min(np.abs(z).min() for z in zs) > 1e-3:
            return sizes, X, coefs, intercepts, acts[-1]
    pytest.fail("could not draw kink-free data")


class CompiledLoss:
    """theta -> (reported loss, gradient) through the compiled kernel."""

    def __init__(self, sizes, X, Y, sw, activation, out_act, loss, alpha, n_threads,
                 n_blocks):
        self.sizes = sizes
        self.net = Network(sizes, np.float64)
        n = X.shape[0]
        self.ws = Workspace(self.net.sizes, np.float64, n, n_blocks)
        self.Xk = as_kernel_input(X, np.float64)
        self.Y = np.ascontiguousarray(Y, dtype=np.float64)
        self.sw = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
        self.sw_sum = float(self.sw.sum())
        self.act = KA.HIDDEN_CODES[activation]
        self.out = KL.OUTPUT_CODES[(out_act, loss)]
        self.alpha = alpha
        self.n_out = sizes[-1]
        self.scale = self.n_out if loss == "squared_error" else 1
        self.n_threads = n_threads

    def __call__(self, theta):
        self.net.params[...] = theta
        return loss_and_gradient(self.net, self.Xk, self.Y, self.sw, self.act, self.out,
                                 self.alpha, self.ws, self.n_threads)

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


# (weighted with L2?, n_threads, n_blocks of the 9-row batch)
SETTINGS = {"plain-T1-J1": (False, 1, 1), "weighted-l2-T2-J4": (True, 2, 4)}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("case", list(OUTPUTS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_compiled_gradient_matches_finite_differences(rng, activation, case, setting):
    out_act, loss, n_out = OUTPUTS[case]
    sizes, X, coefs, intercepts, P = draw_problem(rng, activation, out_act, n_out)
    if out_act in ("logistic", "softmax"):  # far from the clipping region
        assert P.min() > 1e-6 and P.max() < 1 - 1e-6
    Y = targets(rng, out_act, X.shape[0], n_out)
    weighted, n_threads, n_blocks = SETTINGS[setting]
    sw = rng.uniform(0.2, 3.0, size=X.shape[0]) if weighted else None
    alpha = 1e-2 if weighted else 0.0
    f = CompiledLoss(sizes, X, Y, sw, activation, out_act, loss, alpha, n_threads,
                     n_blocks)

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
