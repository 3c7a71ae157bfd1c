"""fastbp's own options (issue 8) end to end.

1. The NumPy oracle's new parts (``tests/_reference.py``) against finite
   differences and values by hand: activations, losses and output deltas,
   masked backprop.
2. Dropout's masks (``fastbp._kernels.dropout``): the rate, independence of
   the key's parts, and the generator (splitmix64, reimplemented here).
3. The compiled mini-batch step with dropout against the NumPy masked backprop
   built from the same masks.
4. Estimators: reproducibility, predictions, validation and which kernel build
   runs.
5. Every new activation and loss trains a sensible model, in float64 and
   float32, with sample weights and with L-BFGS (but dropout).
"""

import math
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import _reference as ref
from conftest import tol
from fastbp import BPClassifier, BPRegressor, _threads, _training
from fastbp._kernels import TRAIN, TRAIN_EXTENDED, kernels_for
from fastbp._kernels import activations as KA
from fastbp._kernels import losses as KL
from fastbp._kernels.dropout import _S11, keep_threshold, layer_key, mix64
from fastbp._kernels import state as kernel_state
from fastbp._kernels.optimizers import NONE
from fastbp._network import Network, Workspace, as_kernel_input
from fastbp._optim import SGDOptimizer

TOL64 = tol(np.float64)
ALL_HIDDEN = list(ref.ALL_HIDDEN_ACTIVATIONS)
# (output activation, loss) of every kind, the ids the tests use
PAIRS = {
    "identity-squared": ("identity", "squared_error"),
    "logistic-log": ("logistic", "binary_log_loss"),
    "softmax-log": ("softmax", "log_loss"),
    "exp-poisson": ("exp", "poisson"),
    "logistic-squared": ("logistic", "squared_error"),
    "softmax-squared": ("softmax", "squared_error"),
    "absolute": ("identity", "absolute_error"),
    "huber": ("identity", "huber"),
}
HUBER_DELTA = 0.5


@numba.njit
def keep_mask(dropout_key, sample, layer, width, rate):
    """The mask (1.0 kept, 0.0 dropped) of one sample's units, from the kernels'
    own hash (``fastbp._kernels.dropout``): what ``apply_mask`` keeps."""
    out = np.empty(width, dtype=np.float64)
    thr = keep_threshold(rate)
    key = layer_key(dropout_key[0], dropout_key[1], sample, layer)
    for j in range(width):
        out[j] = 1.0 if (mix64(key + np.uint64(j)) >> _S11) >= thr else 0.0
    return out


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def assert_close64(actual, desired, err_msg=""):
    """float64 TOL, the absolute part scaled by the largest desired value."""
    desired = np.asarray(desired)
    np.testing.assert_allclose(actual, desired, rtol=TOL64["rtol"],
                               atol=TOL64["atol"] * max(1.0, np.abs(desired).max()),
                               err_msg=err_msg)


def draw_targets(rng, out_act, loss, P):
    """Targets for a pair; robust losses' from P, with residuals away from
    |r| = 0 (absolute_error) and |r| = HUBER_DELTA (huber, both sides)."""
    n, n_out = P.shape
    sign = rng.choice([-1.0, 1.0], size=P.shape)
    if loss == "absolute_error":
        return P - sign * rng.uniform(0.1, 1.5, size=P.shape)
    if loss == "huber":
        inside = np.arange(P.size).reshape(P.shape) % 2 == 0
        mag = np.where(inside, rng.uniform(0.05, HUBER_DELTA - 0.1, size=P.shape),
                       rng.uniform(HUBER_DELTA + 0.1, 2.0, size=P.shape))
        return P - sign * mag
    if out_act == "softmax":
        return np.eye(n_out)[rng.integers(0, n_out, size=n)]
    if out_act == "logistic":
        return rng.integers(0, 2, size=(n, n_out)).astype(float)
    if out_act == "exp":
        return rng.poisson(1.5, size=(n, n_out)).astype(float)
    return rng.normal(size=(n, n_out))


# --------------------------------------------------------------------------
# 1. the oracle's new parts
# --------------------------------------------------------------------------
def test_new_activations_by_hand():
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(ref.apply_activation(z, "leaky_relu"),
                                  [-0.02, -0.005, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(ref.apply_activation(z, "elu"),
                               [math.exp(-2) - 1, math.exp(-0.5) - 1, 0.0, 0.5, 2.0],
                               rtol=1e-15)
    np.testing.assert_allclose(ref.apply_activation(z, "softplus"),
                               [math.log(1 + math.exp(v)) for v in z], rtol=1e-15)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_allclose(
        ref.apply_activation(z, "gelu"),
        [0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v**3))) for v in z], rtol=1e-15)
    # the tanh approximation is within 5e-4 of the exact (erf) gelu, and not it
    grid = np.linspace(-6, 6, 2001)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in grid])
    err = np.abs(ref.apply_activation(grid, "gelu") - exact)
    assert 1e-5 < err.max() < 5e-4
    # no overflow far out
    big = np.array([-800.0, 800.0])
    np.testing.assert_array_equal(ref.apply_activation(big, "softplus"), [0.0, 800.0])
    np.testing.assert_array_equal(ref.apply_activation(big, "elu"), [-1.0, 800.0])


@pytest.mark.parametrize("activation", ALL_HIDDEN)
def test_activation_derivatives_match_finite_differences(activation):
    z = np.concatenate([np.linspace(-4, -0.01, 60), np.linspace(0.01, 4, 60)])
    h = 1e-6
    numeric = (ref.apply_activation(z + h, activation)
               - ref.apply_activation(z - h, activation)) / (2 * h)
    np.testing.assert_allclose(ref.activation_derivative_z(z, activation), numeric,
                               rtol=1e-7, atol=1e-9)
    if activation in ref.HIDDEN_ACTIVATIONS:  # the from-output form agrees
        np.testing.assert_allclose(
            ref.activation_derivative(ref.apply_activation(z, activation), activation),
            ref.activation_derivative_z(z, activation), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("pair", list(PAIRS))
def test_output_delta_is_the_gradient_of_the_weighted_sample_losses(rng, pair):
    out_act, loss = PAIRS[pair]
    n, K = 6, 4
    Z = rng.normal(size=(n, K))
    P = ref.apply_activation(Z, out_act)
    Y = draw_targets(rng, out_act, loss, P)
    sw = rng.uniform(0.2, 3.0, size=n)
    D = ref.output_delta(Y, P, out_act, loss, sw, HUBER_DELTA)

    def total(Zp):  # sum_i sw_i * loss_i, the objective's data part times sum(sw)
        Pp = ref.apply_activation(Zp, out_act)
        return sw.sum() * ref.data_loss_general(Y, Pp, out_act, loss, sw, HUBER_DELTA,
                                                clip=False)

    numeric = ref.fd_gradient(lambda v: total(v.reshape(n, K)), Z.ravel()).reshape(n, K)
    np.testing.assert_allclose(D, numeric, rtol=1e-6, atol=1e-9)
    if (out_act, loss) == ("softmax", "squared_error"):
        # the closed form a_k ((a_k - y_k) - sum_j (a_j - y_j) a_j)
        R = P - Y
        closed = P * (R - (R * P).sum(axis=1, keepdims=True)) * sw[:, None]
        np.testing.assert_allclose(D, closed, rtol=1e-13, atol=1e-15)
        diagonal = R * P * (1 - P) * sw[:, None]
        assert np.abs(D - diagonal).max() > 1e-2 * np.abs(D).max()


def test_new_losses_by_hand():
    P = np.array([[0.0, 1.0], [2.0, -1.0]])
    Y = np.array([[0.3, 3.0], [1.0, -1.0]])
    sw = np.array([1.0, 3.0])
    # r = [[-0.3, -2], [1, 0]]; huber with delta 0.5: [[0.045, 0.875], [0.375, 0]]
    assert ref.data_loss_general(Y, P, "identity", "huber", sw, 0.5) == pytest.approx(
        (1 * (0.045 + 0.875) / 2 + 3 * (0.375 + 0) / 2) / 4, rel=1e-14)
    assert ref.data_loss_general(Y, P, "identity", "absolute_error", sw) == pytest.approx(
        (1 * 2.3 / 2 + 3 * 1 / 2) / 4, rel=1e-14)
    np.testing.assert_allclose(ref.output_delta(Y, P, "identity", "huber", sw, 0.5),
                               [[-0.15, -0.25], [0.75, 0.0]], rtol=1e-14)
    np.testing.assert_allclose(ref.output_delta(Y, P, "identity", "absolute_error", sw),
                               [[-0.5, -0.5], [1.5, 0.0]], rtol=1e-14)
    # squared error on probabilities: 0.5 * sum over outputs, no 1 / n_out
    Pp = np.array([[0.2, 0.8]])
    Yp = np.array([[0.0, 1.0]])
    assert ref.data_loss_general(Yp, Pp, "softmax", "squared_error") == pytest.approx(0.04)
    assert ref.data_loss_general(Yp, Pp, "logistic", "squared_error") == pytest.approx(0.04)


def _oracle_problem(rng, activation, pair, masked, sizes=(3, 5, 4, 3), n=8):
    out_act, loss = PAIRS[pair]
    sizes = list(sizes)
    for _ in range(100):  # no hidden pre-activation near relu's kink
        X = rng.normal(size=(n, sizes[0]))
        coefs, intercepts = ref.init_params(sizes, "relu", int(rng.integers(2**31)))
        zs, acts = ref.forward_general(coefs, intercepts, X, activation, out_act)
        if min(np.abs(z).min() for z in zs[:-1]) > 1e-3:
            break
    Y = draw_targets(rng, out_act, loss, acts[-1])
    sw = rng.uniform(0.2, 3.0, size=n)
    masks = rates = None
    if masked:  # a mask on the first hidden layer only, rate 0 on the second
        rates = [0.4, 0.0]
        masks = [(rng.random((n, sizes[1])) >= 0.4).astype(float), None]
    return sizes, X, coefs, intercepts, (X, Y, sw, activation, out_act, loss, 1e-2,
                                         HUBER_DELTA, masks, rates)


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("activation", ALL_HIDDEN)
def test_backprop_general_matches_finite_differences(rng, activation, pair, masked):
    sizes, _, coefs, intercepts, args = _oracle_problem(rng, activation, pair, masked)
    _, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    analytic = ref.pack(cg, ig)
    assert np.abs(analytic).max() > 1e-3
    numeric = ref.fd_gradient(
        lambda t: ref.objective_general(*ref.unpack(t, sizes), *args),
        ref.pack(coefs, intercepts))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("pair", ["identity-squared", "logistic-log", "softmax-log",
                                  "exp-poisson"])
@pytest.mark.parametrize("activation", list(ref.HIDDEN_ACTIVATIONS))
def test_backprop_general_without_masks_is_backprop(rng, activation, pair):
    _, _, coefs, intercepts, args = _oracle_problem(rng, activation, pair, False)
    value, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    want_value, want_cg, want_ig = ref.backprop(coefs, intercepts, *args[:7])
    assert value == want_value
    np.testing.assert_allclose(ref.pack(cg, ig), ref.pack(want_cg, want_ig), rtol=1e-13,
                               atol=1e-16)
    X, _, _, activation, out_act = args[:5]
    zs, acts = ref.forward_general(coefs, intercepts, X, activation, out_act)
    for a, b in zip(acts, ref.forward(coefs, intercepts, X, activation, out_act)):
        np.testing.assert_array_equal(a, b)


def test_a_dropped_unit_gets_no_gradient(rng):
    """Unit 2 of hidden layer 0 dropped for every sample: its incoming weights,
    bias and outgoing weights have zero gradient (alpha 0); the kept units are
    scaled by 1 / (1 - p)."""
    sizes, X, coefs, intercepts, args = _oracle_problem(rng, "tanh", "softmax-log", True)
    masks = [np.ones((X.shape[0], sizes[1])), None]
    masks[0][:, 2] = 0.0
    args = args[:6] + (0.0, HUBER_DELTA, masks, [0.25, 0.0])
    zs, acts = ref.forward_general(coefs, intercepts, X, "tanh", "softmax", *args[-2:])
    np.testing.assert_array_equal(acts[1][:, 2], 0.0)
    np.testing.assert_allclose(acts[1][:, 0], np.tanh(zs[0][:, 0]) / 0.75, rtol=1e-15)
    _, cg, ig = ref.backprop_general(coefs, intercepts, *args)
    np.testing.assert_array_equal(cg[0][:, 2], 0.0)
    np.testing.assert_array_equal(ig[0][2], 0.0)
    np.testing.assert_array_equal(cg[1][2, :], 0.0)
    assert np.abs(cg[0][:, [0, 1, 3, 4]]).min() > 0


# --------------------------------------------------------------------------
# 2. the masks
# --------------------------------------------------------------------------
KEY = np.array([123456789, 4], dtype=np.int64)


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.5, 0.9])
def test_keep_mask_drops_at_the_rate(rate):
    """100k units of one sample, and 1000 samples x 100 units: the share
    dropped is within 4 sigma of the rate."""
    n = 100_000
    sigma = math.sqrt(rate * (1 - rate) / n)
    one = keep_mask(KEY, 7, 1, n, rate)
    assert set(np.unique(one)) == {0.0, 1.0}
    assert abs((1 - one.mean()) - rate) < 4 * sigma
    many = np.concatenate([keep_mask(KEY, i, 2, 100, rate) for i in range(1000)])
    assert abs((1 - many.mean()) - rate) < 4 * sigma


def test_keep_mask_at_rate_zero_keeps_everything():
    np.testing.assert_array_equal(keep_mask(KEY, 3, 1, 10_000, 0.0), 1.0)


def test_masks_depend_on_every_part_of_the_key():
    """(seed, epoch, sample, layer) each change the mask; the same key gives
    the same mask (a pure function)."""
    def mask(seed=11, epoch=2, sample=5, layer=1):
        return keep_mask(np.array([seed, epoch], dtype=np.int64), sample, layer, 64, 0.5)

    base = mask()
    np.testing.assert_array_equal(base, mask())
    for other in (mask(seed=12), mask(epoch=3), mask(sample=6), mask(layer=2),
                  mask(seed=0), mask(epoch=0), mask(sample=0)):
        assert not np.array_equal(base, other)
    # consecutive samples (and layers) are not shifted copies of each other
    a, b = mask(sample=5), mask(sample=6)
    assert all(not np.array_equal(a[s:], b[:64 - s]) for s in range(1, 8))


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x):
    """splitmix64's output function (Steele, Lea & Flood 2014) on a uint64
    array: x += 0x9E3779B97F4A7C15, then two xor-shift-multiply rounds and a
    final xor-shift (NumPy uint64 arithmetic wraps modulo 2**64)."""
    x = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _numpy_keep_mask(seed, epoch, sample, layer, width, rate):
    """The docstring's mask: a chain of splitmix64 over (seed, epoch, sample,
    layer), unit j's hash = splitmix64(key + j), dropped iff its top 53 bits
    are below rate * 2**53."""
    h = _splitmix64(np.array([seed], dtype=np.int64).astype(np.uint64))
    for part in (epoch, sample, layer):
        h = _splitmix64(h ^ np.array([part], dtype=np.int64).astype(np.uint64))
    units = _splitmix64(h + np.arange(width, dtype=np.uint64))
    threshold = np.uint64(int(rate * 2.0**53))
    return ((units >> np.uint64(11)) >= threshold).astype(np.float64)


def test_the_generator_is_splitmix64():
    # splitmix64 from state 0: its published first outputs
    assert int(mix64(np.uint64(0))) == 0xE220A8397B1DCDAF
    assert int(mix64(np.uint64(0x9E3779B97F4A7C15))) == 0x6E789E6AA1B965F4
    np.testing.assert_array_equal(_splitmix64(np.array([0, 0x9E3779B97F4A7C15],
                                                       dtype=np.uint64)),
                                  np.array([0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4],
                                           dtype=np.uint64))
    for x in (1, 12345, 2**63 + 5, 2**64 - 1):
        assert int(mix64(np.uint64(x))) == int(_splitmix64(np.array([x],
                                                                    dtype=np.uint64))[0])
    for seed, epoch, sample, layer, rate in [(0, 0, 0, 1, 0.5), (123456789, 4, 7, 2, 0.3),
                                             (2**62 + 3, 199, 10**6, 1, 0.9),
                                             (42, 1, 3, 3, 0.05)]:
        np.testing.assert_array_equal(
            keep_mask(np.array([seed, epoch], dtype=np.int64), sample, layer, 257, rate),
            _numpy_keep_mask(seed, epoch, sample, layer, 257, rate))


# --------------------------------------------------------------------------
# 3. the compiled step with dropout
# --------------------------------------------------------------------------
def masks_of(key, sizes, rates, n):
    """keep_mask's masks of samples 0..n-1 for every hidden layer (None at rate 0)."""
    return [None if p == 0 else
            np.array([keep_mask(key, i, l + 1, sizes[l + 1], p) for i in range(n)])
            for l, p in enumerate(rates)]


def compiled_dropout_run(X, Y, sw, order, coefs, intercepts, activation, out_act, loss,
                         alpha, rates, key, n_threads, n_blocks, batch_size=None,
                         optimizer=None, csr=False):
    """``_training._run_batches`` over ``order`` (one batch by default) with
    dropout, X dense or CSR; returns (loss sum, grad_sums, params after, kernel)."""
    sizes = [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]
    net = Network(sizes, np.float64)
    net.params[...] = ref.pack(coefs, intercepts)
    batch_size = order.shape[0] if batch_size is None else batch_size
    ws = Workspace(net.sizes, np.float64, batch_size, n_blocks,
                   keep_pre=_training.needs_pre(_Act(activation), np.asarray(rates)),
                   sparse=csr)
    if optimizer is None:
        kernel_opt = kernel_state.optimizer(NONE)
        opt_state = kernel_state.optimizer_state(0, net.n_params, np.float64)
    else:
        optimizer.start_batches()  # its learning rate into state.rate, as an epoch does
        kernel_opt, opt_state = optimizer.kernel, optimizer.state
    a_code, o_code = KA.HIDDEN_CODES[activation], KL.OUTPUT_CODES[(out_act, loss)]
    kernel, n_threads = _threads.choose(kernels_for("train", a_code, o_code, True), n_threads)
    n_batches = -(-order.shape[0] // batch_size)
    args = _training.train_args(
        as_kernel_input(sp.csr_matrix(X) if csr else X, np.float64), Y, sw, net, ws, a_code,
        kernel_opt, opt_state, kernel_state.loss(o_code, alpha, np.float64, HUBER_DELTA),
        kernel_state.Dropout(np.asarray(rates, dtype=np.float64), key))
    with _threads.thread_limits(n_threads):
        total = _training._run_batches(
            kernel, _training.for_batches(args, order, 0, n_batches, 0.0))
    return total, ws.buffers.grad_sums.copy(), net.params.copy(), kernel


class _Act:
    """What ``_training.needs_pre`` reads of an estimator."""

    def __init__(self, activation):
        self.activation = activation


# (hidden sizes, rates): one and two hidden layers, rates differing per layer
# and 0 on either layer
DROPOUT_NETS = {
    "1-hidden": ([6], [0.3]),
    "2-hidden": ([6, 5], [0.25, 0.5]),
    "rate0-first": ([6, 5], [0.0, 0.4]),
    "rate0-last": ([6, 5], [0.4, 0.0]),
}
# (n_threads, n_blocks)
VARIANTS = {"serial-J1": (1, 1), "parallel-J3": (2, 3)}


@pytest.mark.usefixtures("schedule")
@pytest.mark.parametrize("csr", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "gelu"])
@pytest.mark.parametrize("net_id", list(DROPOUT_NETS))
def test_dropout_step_matches_numpy_masked_backprop(rng, net_id, activation, variant, csr):
    hidden, rates = DROPOUT_NETS[net_id]
    out_act, loss, n_out = (("identity", "squared_error", 2) if len(hidden) == 1
                            else ("softmax", "log_loss", 3))
    n = 11
    sizes = [4] + hidden + [n_out]
    X = rng.normal(size=(n, 4)) * (rng.random((n, 4)) < 0.6)  # some zeros for CSR
    coefs, intercepts = ref.init_params(sizes, "relu", int(rng.integers(2**31)))
    Y = draw_targets(rng, out_act, loss, np.zeros((n, n_out)))
    sw = rng.uniform(0.3, 2.0, size=n)
    order = rng.permutation(n).astype(np.int64)  # masks follow the sample, not the row
    key = np.array([987654321, 5], dtype=np.int64)
    n_threads, n_blocks = VARIANTS[variant]
    params_before = ref.pack(coefs, intercepts)

    total, grad, params_after, kernel = compiled_dropout_run(
        X, Y, sw, order, coefs, intercepts, activation, out_act, loss, 1e-2, rates, key,
        n_threads, n_blocks, csr=csr)
    assert kernel in TRAIN_EXTENDED
    np.testing.assert_array_equal(params_after, params_before)  # NONE: no step

    masks = masks_of(key, sizes, rates, n)
    assert all((m is None) == (p == 0) for m, p in zip(masks, rates))
    want_loss, cg, ig = ref.backprop_general(coefs, intercepts, X, Y, sw, activation,
                                             out_act, loss, 1e-2, HUBER_DELTA, masks, rates)
    want = ref.pack(cg, ig)
    assert_close64(total / n, want_loss)
    assert_close64(grad, want)
    # the masks matter: without them the gradient is far from this one
    _, cg0, ig0 = ref.backprop_general(coefs, intercepts, X, Y, sw, activation, out_act,
                                       loss, 1e-2)
    assert np.abs(ref.pack(cg0, ig0) - want).max() > 1e-2 * np.abs(want).max()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dropout_masks_change_with_the_epoch_in_the_kernel(rng, variant):
    n, sizes, rates = 9, [3, 8, 2], [0.5]
    X = rng.normal(size=(n, 3))
    Y = rng.normal(size=(n, 2))
    coefs, intercepts = ref.init_params(sizes, "tanh", 0)
    order = np.arange(n, dtype=np.int64)
    n_threads, n_blocks = VARIANTS[variant]
    run = lambda key: compiled_dropout_run(  # noqa: E731
        X, Y, np.ones(n), order, coefs, intercepts, "tanh", "identity", "squared_error",
        0.0, rates, np.array(key, dtype=np.int64), n_threads, n_blocks)[1]
    np.testing.assert_array_equal(run([7, 0]), run([7, 0]))
    assert not np.allclose(run([7, 0]), run([7, 1]))
    assert not np.allclose(run([7, 0]), run([8, 0]))


@pytest.mark.usefixtures("schedule")
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("activation", ["softplus", "gelu"])
def test_dropout_epoch_of_sgd_steps_matches_numpy(rng, activation, variant):
    """Three mini-batches (4, 4, 3 rows) of SGD with momentum: each batch's
    masks are those of its samples, and the steps are the NumPy ones."""
    n, sizes, rates = 11, [4, 6, 5, 3], [0.3, 0.2]
    X = rng.normal(size=(n, 4))
    Y = np.eye(3)[rng.integers(0, 3, size=n)]
    sw = rng.uniform(0.5, 2.0, size=n)
    coefs, intercepts = ref.init_params(sizes, "relu", 5)
    order = rng.permutation(n).astype(np.int64)
    key = np.array([31337, 2], dtype=np.int64)
    hp = {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}
    n_params = ref.pack(coefs, intercepts).size
    opt = SGDOptimizer(n_params, np.float64, hp["learning_rate"], "constant",
                       hp["momentum"], hp["nesterov"], 0.5)
    n_threads, n_blocks = VARIANTS[variant]
    total, _, params, _ = compiled_dropout_run(
        X, Y, sw, order, coefs, intercepts, activation, "softmax", "log_loss", 1e-3, rates,
        key, n_threads, n_blocks, batch_size=4, optimizer=opt)

    masks = masks_of(key, sizes, rates, n)
    c, b = [w.copy() for w in coefs], [w.copy() for w in intercepts]
    state = ref.init_opt_state("sgd", c + b)
    want_total = 0.0
    for start in range(0, n, 4):
        idx = order[start:start + 4]
        batch_masks = [m[idx] for m in masks]
        value, cg, ig = ref.backprop_general(c, b, X[idx], Y[idx], sw[idx], activation,
                                             "softmax", "log_loss", 1e-3, HUBER_DELTA,
                                             batch_masks, rates)
        want_total += value * len(idx)
        ref.sgd_step(c + b, cg + ig, state, hp)
    assert_close64(total, want_total)
    assert_close64(params, ref.pack(c, b))


# --------------------------------------------------------------------------
# 4. estimators: reproducibility, predictions, validation, kernel builds
# --------------------------------------------------------------------------
def _blobs():
    return make_classification(n_samples=300, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)


def fit_dropout_clf(X, y, **kw):
    params = dict(hidden_layer_sizes=(16, 8), dropout=[0.3, 0.1], max_iter=5,
                  batch_size=32, random_state=0, learning_rate_init=0.01)
    params.update(kw)
    return BPClassifier(**params).fit(X, y)


def assert_same_model(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)
    assert a.loss_curve_ == b.loss_curve_


def models_differ(a, b):
    return any(not np.array_equal(x, y)
               for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


class RunBatchesSpy:
    """Records the named arguments of every ``_training._run_batches`` call."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = _training._run_batches

        def spy(kernel, args):
            self.calls.append({
                "kernel": kernel,
                "order": np.array(args.batches.order),
                "params": args.model.params.copy(),
                "dropout": None if args.dropout is None else np.array(args.dropout.rates),
                "dropout_key": np.array(args.dropout.key),
            })
            return real(kernel, args)

        monkeypatch.setattr(_training, "_run_batches", spy)

    def kernels(self):
        return {c["kernel"] for c in self.calls}


def test_dropout_fits_are_bitwise_reproducible_for_any_thread_count(monkeypatch):
    X, y = _blobs()
    spy = RunBatchesSpy(monkeypatch)
    one = fit_dropout_clf(X, y, n_jobs=1)
    assert spy.kernels() == {TRAIN_EXTENDED.serial}
    spy.calls.clear()
    two = fit_dropout_clf(X, y, n_jobs=2)
    if _threads.effective_threads(_threads.resolve_n_threads(2)) > 1:
        assert TRAIN_EXTENDED.parallel in spy.kernels()  # threads really ran
    again = fit_dropout_clf(X, y, n_jobs=1)
    assert_same_model(one, two)
    assert_same_model(one, again)
    assert models_differ(one, fit_dropout_clf(X, y, n_jobs=1, random_state=1))


def test_dropout_uses_a_fresh_mask_each_epoch_and_keeps_the_random_draws(monkeypatch):
    """With dropout, the initial weights, the early-stopping split and the
    mini-batch orders are those of the same fit without it (the mask seed does
    not advance the random state); the key's epoch counts up; the fit differs."""
    X, y = _blobs()
    spy = RunBatchesSpy(monkeypatch)
    plain = fit_dropout_clf(X, y, dropout=0.0, early_stopping=True, n_jobs=1)
    plain_calls = list(spy.calls)
    spy.calls.clear()
    dropped = fit_dropout_clf(X, y, early_stopping=True, n_jobs=1)
    assert len(spy.calls) == len(plain_calls) > 1
    np.testing.assert_array_equal(spy.calls[0]["params"], plain_calls[0]["params"])
    for a, b in zip(spy.calls, plain_calls):
        np.testing.assert_array_equal(a["order"], b["order"])
    assert spy.calls[0]["order"].shape[0] == 270  # 10% held out
    epochs = [int(c["dropout_key"][1]) for c in spy.calls]
    assert epochs == sorted(epochs) and epochs[0] == 0 and epochs[-1] == len(epochs) - 1
    assert len({int(c["dropout_key"][0]) for c in spy.calls}) == 1
    np.testing.assert_array_equal(spy.calls[0]["dropout"], [0.3, 0.1])
    assert models_differ(plain, dropped)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_predictions_with_dropout_are_the_plain_forward_pass(activation):
    X, y = _blobs()
    clf = fit_dropout_clf(X, y, activation=activation, dropout=0.5)
    want = ref.forward(clf.coefs_, clf.intercepts_, X, activation, "softmax")[-1]
    assert_close64(clf.predict_proba(X), want)
    np.testing.assert_array_equal(clf.predict(X), want.argmax(axis=1))
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))

    Xr, yr = make_regression(n_samples=200, n_features=5, random_state=0)
    reg = BPRegressor(hidden_layer_sizes=(12, 6), activation=activation, dropout=[0.2, 0.4],
                      max_iter=5, random_state=0).fit(Xr, yr / yr.std())
    want = ref.forward(reg.coefs_, reg.intercepts_, Xr, activation, "identity")[-1]
    assert_close64(reg.predict(Xr), want.ravel())


@pytest.mark.parametrize("dropout", [0.1, [0.0, 0.2]])
@pytest.mark.parametrize("est_cls", [BPClassifier, BPRegressor])
def test_lbfgs_with_dropout_raises(est_cls, dropout):
    X, y = _blobs()
    est = est_cls(hidden_layer_sizes=(6, 4), solver="lbfgs", dropout=dropout, max_iter=3)
    with pytest.raises(ValueError, match="dropout is not supported by solver='lbfgs'"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")
    # no dropout at all is fine with lbfgs
    est.set_params(dropout=[0.0, 0.0]).fit(X, y)
    assert est.n_iter_ >= 1


@pytest.mark.parametrize("dropout,message", [
    (1.0, r"'dropout' parameter of BPClassifier must be a float in the range \[0.0, 1.0\)"),
    (-0.1, r"'dropout' parameter of BPClassifier must be a float in the range \[0.0, 1.0\)"),
    ([0.1, 0.2, 0.3], r"dropout has 3 rate\(s\) but the network has 2 hidden layer\(s\)"),
    ([0.1], r"dropout has 1 rate\(s\) but the network has 2 hidden layer\(s\)"),
    ([0.1, 1.0], r"Each rate in dropout must be in \[0, 1\).*Got dropout=\[0.1, 1.0\]"),
    ([-0.2, 0.1], r"Each rate in dropout must be in \[0, 1\)"),
], ids=["1.0", "-0.1", "too-long", "too-short", "list-with-1.0", "list-negative"])
def test_invalid_dropout_raises(dropout, message):
    X, y = _blobs()
    clf = BPClassifier(hidden_layer_sizes=(6, 4), dropout=dropout, max_iter=2)
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")


CORE = "core"
EXTENDED = "extended"
# (estimator, options, build expected)
BUILD_CASES = {
    "default": (BPClassifier, {}, CORE),
    "dropout-0.0": (BPClassifier, dict(dropout=0.0), CORE),
    "dropout-int-0": (BPClassifier, dict(dropout=0), CORE),
    "dropout-list-0": (BPClassifier, dict(dropout=[0.0, 0.0]), CORE),
    "tanh": (BPClassifier, dict(activation="tanh"), CORE),
    "poisson": (BPRegressor, dict(loss="poisson"), CORE),
    "dropout-0.2": (BPClassifier, dict(dropout=0.2), EXTENDED),
    "dropout-list": (BPClassifier, dict(dropout=[0.0, 0.3]), EXTENDED),
    "leaky_relu": (BPClassifier, dict(activation="leaky_relu"), EXTENDED),
    "elu": (BPRegressor, dict(activation="elu"), EXTENDED),
    "softplus": (BPClassifier, dict(activation="softplus"), EXTENDED),
    "gelu": (BPClassifier, dict(activation="gelu"), EXTENDED),
    "clf-squared_error": (BPClassifier, dict(loss="squared_error"), EXTENDED),
    "absolute_error": (BPRegressor, dict(loss="absolute_error"), EXTENDED),
    "huber": (BPRegressor, dict(loss="huber"), EXTENDED),
}


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_the_kernel_build_each_option_runs(monkeypatch, case):
    est_cls, options, build = BUILD_CASES[case]
    X, y = _blobs()
    if est_cls is BPRegressor:
        y = np.abs(X[:, 0]) + 0.1
    spy = RunBatchesSpy(monkeypatch)
    est = est_cls(hidden_layer_sizes=(6, 4), max_iter=2, random_state=0, n_jobs=1,
                  **options).fit(X, y)
    pair = TRAIN if build == CORE else TRAIN_EXTENDED
    assert spy.calls and spy.kernels() <= set(pair)
    if build == CORE and "dropout" in options:  # the same model as not passing it
        assert_same_model(est, est_cls(hidden_layer_sizes=(6, 4), max_iter=2,
                                       random_state=0, n_jobs=1).fit(X, y))


# --------------------------------------------------------------------------
# 5. every new option trains a sensible model
# --------------------------------------------------------------------------
_DIGITS = {}


def digits(kind):
    """Scaled digits, 800 training rows (stratified) and the rest held out,
    with multiclass, binary (>= 5) or multilabel (odd, >= 5, multiple of 3)
    targets."""
    if not _DIGITS:
        X, y = load_digits(return_X_y=True)
        _DIGITS["split"] = train_test_split(X / 16.0, y, train_size=800, random_state=0,
                                            stratify=y)
    Xtr, Xte, ytr, yte = _DIGITS["split"]
    make = {"multiclass": lambda v: v, "binary": lambda v: (v >= 5).astype(int),
            "multilabel": lambda v: np.column_stack([v % 2, v >= 5, v % 3 == 0]).astype(int)}
    return Xtr, Xte, make[kind](ytr), make[kind](yte)


def indicator(kind, y):
    """The targets the network fits (one-hot, one 0/1 column or the indicator)."""
    if kind == "multiclass":
        return np.eye(10)[y]
    return y.reshape(len(y), -1).astype(float)


# case -> (options, target kind, held-out accuracy threshold for adam, for lbfgs)
# Measured (adam float64 / float32 / lbfgs with weights): leaky_relu .965/.967/.958,
# elu .966/.967/.961, softplus .962/.964/.962, gelu .967/.964/.948, squared_error
# multiclass .963/.963/.869, binary .966/.964/.953, multilabel .882/.878/.872,
# gelu + dropout 0.2 .957/.960.
CLF_CASES = {
    "leaky_relu": (dict(activation="leaky_relu"), "multiclass", 0.93, 0.92),
    "elu": (dict(activation="elu"), "multiclass", 0.93, 0.92),
    "softplus": (dict(activation="softplus"), "multiclass", 0.93, 0.92),
    "gelu": (dict(activation="gelu"), "multiclass", 0.93, 0.91),
    "sq-multiclass": (dict(loss="squared_error"), "multiclass", 0.93, 0.82),
    "sq-binary": (dict(loss="squared_error"), "binary", 0.93, 0.92),
    "sq-multilabel": (dict(loss="squared_error"), "multilabel", 0.84, 0.83),
    "gelu-dropout": (dict(activation="gelu", dropout=0.2), "multiclass", 0.92, None),
}
CLF_COMMON = dict(hidden_layer_sizes=(24,), random_state=0)
ADAM = dict(max_iter=25, batch_size=64, learning_rate_init=0.01)


def _weights(n):
    return np.random.default_rng(0).uniform(0.5, 2.0, size=n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32-weighted"])
@pytest.mark.parametrize("case", list(CLF_CASES))
def test_classifier_options_train_a_sensible_model(case, dtype):
    options, kind, threshold, _ = CLF_CASES[case]
    Xtr, Xte, ytr, yte = digits(kind)
    sw = None if dtype == np.float64 else _weights(len(ytr))
    clf = BPClassifier(**CLF_COMMON, **ADAM, **options).fit(Xtr.astype(dtype), ytr,
                                                              sample_weight=sw)
    assert clf.coefs_[0].dtype == dtype
    assert clf.predict_proba(Xte.astype(dtype)).dtype == dtype
    assert clf.score(Xte.astype(dtype), yte) > threshold
    assert np.isfinite(clf.loss_curve_).all() and clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("case", [c for c in CLF_CASES if CLF_CASES[c][3] is not None])
def test_classifier_options_with_lbfgs_and_sample_weight(case):
    """L-BFGS's loss_ is the compiled loss at the returned weights: it equals
    the NumPy oracle's weighted loss there (and not the unweighted one)."""
    options, kind, _, threshold = CLF_CASES[case]
    Xtr, Xte, ytr, yte = digits(kind)
    sw = _weights(len(ytr))
    clf = BPClassifier(**CLF_COMMON, solver="lbfgs", max_iter=60, **options).fit(
        Xtr, ytr, sample_weight=sw)
    assert clf.score(Xte, yte) > threshold
    loss = options.get("loss", "log_loss")
    args = (Xtr, indicator(kind, ytr))
    rest = (clf.activation, clf.out_activation_, loss, clf.alpha)
    want = ref.reported_loss_general(clf.coefs_, clf.intercepts_, *args, sw, *rest)
    np.testing.assert_allclose(clf.loss_, want, rtol=1e-10)
    unweighted = ref.reported_loss_general(clf.coefs_, clf.intercepts_, *args, None, *rest)
    assert abs(unweighted - want) > 1e-4 * want


_REG = {}


def regression(n_out):
    """Standardized make_regression (noise 2), 280 training rows; with 3
    outputs the targets are y, -y and sin(y)."""
    if not _REG:
        X, y = make_regression(n_samples=400, n_features=6, noise=2.0, random_state=0)
        y = y / y.std()
        _REG["X"], _REG["y"] = X, y
    X, y = _REG["X"], _REG["y"]
    Y = y if n_out == 1 else np.column_stack([y, -y, np.sin(y)])
    return train_test_split(X, Y, test_size=0.3, random_state=0)


# case -> (options, n_outputs, held-out r2 threshold for adam on clean targets,
# for lbfgs on targets with outliers).  Measured (adam float64 / float32 with
# weights; lbfgs with weights and outliers): absolute_error 1 output
# .9996/.9996; .9995, 3 outputs .965; .939; huber 1 output .993/.993; .897,
# 3 outputs .946; .803; huber delta 0.3 1 output .996/.996; .994, 3 outputs
# .951; .977.
REG_CASES = {
    "absolute-1": (dict(loss="absolute_error"), 1, 0.97, 0.97),
    "absolute-3": (dict(loss="absolute_error"), 3, 0.9, 0.9),
    "huber-1": (dict(loss="huber"), 1, 0.97, 0.85),
    "huber-3": (dict(loss="huber"), 3, 0.9, 0.75),
    "huber-0.3-1": (dict(loss="huber", huber_delta=0.3), 1, 0.97, 0.97),
    "huber-0.3-3": (dict(loss="huber", huber_delta=0.3), 3, 0.9, 0.93),
}
REG_COMMON = dict(hidden_layer_sizes=(16,), random_state=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32-weighted"])
@pytest.mark.parametrize("case", list(REG_CASES))
def test_regressor_losses_train_a_sensible_model(case, dtype):
    options, n_out, threshold, _ = REG_CASES[case]
    Xtr, Xte, ytr, yte = regression(n_out)
    sw = None if dtype == np.float64 else _weights(len(ytr))
    reg = BPRegressor(**REG_COMMON, max_iter=100, learning_rate_init=0.01, **options).fit(
        Xtr.astype(dtype), ytr.astype(dtype), sample_weight=sw)
    assert reg.coefs_[0].dtype == dtype and reg.predict(Xte.astype(dtype)).dtype == dtype
    assert reg.score(Xte.astype(dtype), yte) > threshold


def with_outliers(y):
    """``y`` with 10% of its rows moved by +-15 (standard deviations)."""
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), len(y) // 10, replace=False)
    noisy = y.copy()
    noisy[idx] += (rng.choice([-1.0, 1.0], size=len(idx)) * 15).reshape(
        (-1,) + (1,) * (y.ndim - 1))
    return noisy


@pytest.mark.parametrize("case", list(REG_CASES))
def test_regressor_losses_with_lbfgs_and_sample_weight(case):
    """huber's and absolute_error's loss_ equal the NumPy oracle's weighted
    loss at the fitted weights (1 and 3 outputs).  The training targets have
    outliers, so that huber's residuals lie on both sides of delta."""
    options, n_out, _, threshold = REG_CASES[case]
    Xtr, Xte, ytr, yte = regression(n_out)
    ytr = with_outliers(ytr)
    sw = _weights(len(ytr))
    reg = BPRegressor(**REG_COMMON, solver="lbfgs", max_iter=60, **options).fit(
        Xtr, ytr, sample_weight=sw)
    assert reg.score(Xte, yte) > threshold
    Y = ytr.reshape(len(ytr), -1)
    rest = (reg.activation, "identity", reg.loss, reg.alpha, reg.huber_delta)
    want = ref.reported_loss_general(reg.coefs_, reg.intercepts_, Xtr, Y, sw, *rest)
    np.testing.assert_allclose(reg.loss_, want, rtol=1e-10)
    unweighted = ref.reported_loss_general(reg.coefs_, reg.intercepts_, Xtr, Y, None, *rest)
    assert abs(unweighted - want) > 1e-4 * want
    if reg.loss == "huber":  # residuals on both sides of delta at the fit
        R = np.abs(reg.predict(Xtr).reshape(Y.shape) - Y)
        assert (R < reg.huber_delta).any() and (R > reg.huber_delta).any()


def test_robust_losses_shrug_off_outliers():
    """10% of the training targets moved by +-15 standard deviations: the
    squared error follows them (measured r2 on clean held-out data -2.0),
    absolute_error and huber do not (.9997, huber delta 0.3: .994)."""
    Xtr, Xte, ytr, yte = regression(1)
    noisy = with_outliers(ytr)
    scores = {}
    for name, options in {"squared": dict(loss="squared_error"),
                          "absolute": dict(loss="absolute_error"),
                          "huber": dict(loss="huber", huber_delta=0.3)}.items():
        reg = BPRegressor(**REG_COMMON, max_iter=100, learning_rate_init=0.01, **options)
        scores[name] = reg.fit(Xtr, noisy).score(Xte, yte)
    assert scores["absolute"] > 0.98 and scores["huber"] > 0.97
    assert scores["squared"] < 0.5


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_huber_with_a_huge_delta_is_squared_error_for_one_output(solver):
    """With |r| <= delta everywhere and one output, huber's row loss 0.5 r^2
    and delta r are squared_error's to the bit (0.5 * (r * r) and (0.5 * r) * r
    round alike; dividing by n_out = 1 is exact): the same fit, bit for bit,
    though it runs in the other kernel build."""
    Xtr, _, ytr, _ = regression(1)
    common = dict(REG_COMMON, solver=solver, max_iter=20)
    squared = BPRegressor(**common).fit(Xtr, ytr)
    huber = BPRegressor(loss="huber", huber_delta=1e9, **common).fit(Xtr, ytr)
    for a, b in zip(squared.coefs_ + squared.intercepts_, huber.coefs_ + huber.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert squared.loss_ == huber.loss_
    # and a delta inside the residuals changes the fit
    small = BPRegressor(loss="huber", huber_delta=0.1, **common).fit(Xtr, ytr)
    assert models_differ(squared, small)


def test_a_dropout_for_no_hidden_layer_or_nested_is_refused():
    X, y = make_classification(60, 4, random_state=0)
    with pytest.raises(ValueError, match="needs hidden layers to drop units from"):
        BPClassifier(hidden_layer_sizes=(), dropout=0.9).fit(X, y)
    BPClassifier(hidden_layer_sizes=(), dropout=0.0, max_iter=2).fit(X, y)  # fine
    with pytest.raises(ValueError, match="a flat sequence of such floats"):
        BPClassifier(hidden_layer_sizes=(4, 4), dropout=[[0.1, 0.2]]).fit(X, y)


@pytest.mark.parametrize("options", [dict(activation="gelu"), dict(dropout=0.5)])
def test_a_workspace_without_pre_is_refused(options):
    """gelu and dropout compute f' from ``pre``; a workspace without it would give
    a wrong gradient silently, so building the kernel's arguments
    (``_training.train_args``, on the way into the kernel) refuses it."""
    rng = np.random.RandomState(0)
    X = rng.rand(20, 3)
    Y = np.eye(2)[rng.randint(0, 2, 20)]
    net = Network([3, 4, 2], np.float64)
    net.params[...] = rng.uniform(-0.5, 0.5, net.n_params)
    ws = Workspace(net.sizes, np.float64, 20, 1)
    act = KA.HIDDEN_CODES[options.get("activation", "relu")]
    rates = np.array([options.get("dropout", 0.0)])
    with pytest.raises(ValueError, match="keep_pre=True"):
        args = _training.train_args(
            as_kernel_input(X, np.float64), Y, np.ones(20), net, ws, act,
            kernel_state.optimizer(NONE),
            kernel_state.optimizer_state(0, net.n_params, np.float64),
            kernel_state.loss(2, 0.0, np.float64),
            kernel_state.Dropout(rates, np.zeros(2, np.int64)))
        _training._run_batches(TRAIN_EXTENDED.serial,
                               _training.for_batches(args, np.arange(20), 0, 1))
