"""Every compiled kernel against the plain-NumPy oracle ``tests/_reference.py``.

* full-batch loss and gradient (``_lbfgs.loss_and_gradient``, i.e. the
  training kernel with optimizer code NONE) for every hidden activation, every
  (output activation, loss) pair, both dtypes, the serial and the parallel
  dispatcher, several work-block counts (``n_blocks``, the kernels' unit of
  work; threads take blocks), dense and CSR input, with and without sample
  weights and L2;
* whole epochs of mini-batches with sgd (Nesterov on/off), adam, rmsprop and
  adamw (a large weight decay, so that decaying the wrong ranges shows), including
  an uneven last batch, a shuffled order and a chunked epoch;
* the predict kernels, dense and CSR, for several block sizes;
* degenerate shapes (more blocks than batch rows or than fan-in rows);
* thread-count invariance: for a given ``n_blocks`` the result is bitwise the
  same for any thread count.

The oracle always runs in float64 on the very values (weights, data) the kernel
saw, so a float32 kernel is measured against the exact answer; tolerances per
dtype live in ``conftest.TOL``.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import _reference as ref
from conftest import tol
from fastbp import BPClassifier, _threads, _training
from fastbp._kernels import PREDICT, TRAIN
from fastbp._kernels import activations as KA
from fastbp._kernels import losses as KL
from fastbp._kernels import optimizers as KO
from fastbp._kernels import state as kernel_state
from fastbp._network import Network, Workspace, as_kernel_input
from fastbp._optim import AdamOptimizer, AdamWOptimizer, RMSpropOptimizer, SGDOptimizer
from fastbp._lbfgs import loss_and_gradient
from fastbp._training import _run_batches

# Every test here runs under both gradient schedules (conftest.schedule).
pytestmark = pytest.mark.usefixtures("schedule")

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["f64", "f32"]
HIDDEN = ["identity", "logistic", "tanh", "relu"]
THREADS = [1, 2, 3]  # 3 threads on a 2-core machine is fine
BLOCKS = [1, 3, 5]  # 3 and 5 do not divide the batch sizes used below
# (n_threads, n_blocks): serial with several blocks, parallel with one block,
# parallel with more blocks than threads, and uneven splits everywhere
THREADS_BLOCKS = [(1, 1), (1, 3), (2, 1), (2, 4), (3, 5)]
TB_IDS = [f"T{t}-J{j}" for t, j in THREADS_BLOCKS]

# id -> (output activation, reference loss name, n_outputs)
OUTPUTS = {
    "squared_error-1": ("identity", "squared_error", 1),
    "squared_error-2": ("identity", "squared_error", 2),
    "binary": ("logistic", "binary_log_loss", 1),
    "multilabel": ("logistic", "binary_log_loss", 3),
    "softmax": ("softmax", "log_loss", 3),
    "poisson": ("exp", "poisson", 2),
}
# the loss name fastbp's estimators use for each output activation
_EST_LOSS = {"identity": "squared_error", "logistic": "log_loss",
             "softmax": "log_loss", "exp": "poisson"}


def out_code(out_act):
    return KL.OUTPUT_CODES[(out_act, _EST_LOSS[out_act])]


def act_code(activation):
    return KA.HIDDEN_CODES[activation]


# --------------------------------------------------------------------------
# problem builders
# --------------------------------------------------------------------------
make_targets = ref.make_targets


def make_X(rng, n, n_in):
    """Gaussian X with ~40% zeros and one all-zero row (an empty CSR row)."""
    X = rng.normal(size=(n, n_in))
    X[rng.random(size=(n, n_in)) < 0.4] = 0.0
    X[n // 2] = 0.0
    return X


def csr_unsorted(X):
    """CSR of X with the column indices of every row in reverse order."""
    A = sp.csr_matrix(X)
    data, indices = A.data.copy(), A.indices.copy()
    for i in range(A.shape[0]):
        s = slice(A.indptr[i], A.indptr[i + 1])
        data[s], indices[s] = data[s][::-1], indices[s][::-1]
    B = sp.csr_matrix((data, indices, A.indptr.copy()), shape=A.shape)
    B.has_sorted_indices = False
    return B


def kernel_input(X, dtype, csr):
    X = np.asarray(X, dtype=dtype)
    return as_kernel_input(csr_unsorted(X) if csr else X, dtype)


def init_params(sizes, activation, seed, dtype):
    """Glorot weights rounded to ``dtype``, returned in float64 (exactly the
    values the kernel sees) together with the kernel's Network."""
    coefs, intercepts = ref.init_params(sizes, activation, seed)
    coefs = [c.astype(dtype).astype(np.float64) for c in coefs]
    intercepts = [b.astype(dtype).astype(np.float64) for b in intercepts]
    return coefs, intercepts, Network.from_arrays(coefs, intercepts, dtype)


def flat(coefs, intercepts):
    return ref.pack(coefs, intercepts)


def assert_close(actual, desired, dtype, scale=1.0, err_msg=""):
    """assert_allclose with TOL[dtype]; atol relative to ``scale`` (the size of
    the largest entry, for arrays of small numbers such as Adam's moments)."""
    t = tol(dtype)
    np.testing.assert_allclose(actual, desired, rtol=t["rtol"],
                               atol=t["atol"] * scale, err_msg=err_msg)


def threads_for(n_threads):
    kernel, eff = _threads.choose(TRAIN, n_threads)
    assert eff == n_threads  # the parallel variant really runs
    assert kernel is (TRAIN.parallel if n_threads > 1 else TRAIN.serial)
    return kernel


# --------------------------------------------------------------------------
# 1. full-batch loss and gradient
# --------------------------------------------------------------------------
def full_batch(net, X, Y, sw, activation, out_act, alpha, dtype, csr, n_threads,
               n_blocks, rows=None):
    """``rows``: a workspace of that many rows (fewer than n: the evaluation
    runs in row chunks, as L-BFGS's does on large data)."""
    n = Y.shape[0]
    ws = Workspace(net.sizes, dtype, n if rows is None else rows, n_blocks)
    sw_k = np.ones(n, dtype=dtype) if sw is None else sw.astype(dtype)
    return loss_and_gradient(net, kernel_input(X, dtype, csr), Y.astype(dtype), sw_k,
                             act_code(activation), out_code(out_act), alpha, ws,
                             n_threads)


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(OUTPUTS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_loss_and_gradient_match_reference(rng, activation, case, dtype, n_threads):
    out_act, loss, n_out = OUTPUTS[case]
    n, n_in = 13, 5
    sizes = [n_in, 7, 4, n_out]
    X = make_X(rng, n, n_in).astype(dtype).astype(np.float64)
    Y = make_targets(rng, loss, n, n_out)
    sw_values = rng.uniform(0.2, 3.0, size=n).astype(dtype).astype(np.float64)
    coefs, intercepts, net = init_params(sizes, activation, 7, dtype)
    params_before = net.params.copy()
    # rows 4: chunks of 4, 4, 4 and 1 rows
    combos = [(csr, sw, alpha, rows) for csr in (False, True) for sw in (None, sw_values)
              for alpha in (0.0, 1e-3) for rows in (None, 4)]
    for i, (csr, sw, alpha, rows) in enumerate(combos):
        n_blocks = BLOCKS[(i // 2 + n_threads) % len(BLOCKS)]
        msg = (f"csr={csr} weighted={sw is not None} alpha={alpha} "
               f"n_blocks={n_blocks} rows={rows}")
        got_loss, got_grad = full_batch(net, X, Y, sw, activation, out_act,
                                        alpha, dtype, csr, n_threads, n_blocks, rows)
        want_loss, cg, ig = ref.backprop(coefs, intercepts, X, Y, sw,
                                         activation, out_act, loss, alpha)
        want_grad = flat(cg, ig)
        assert got_grad.dtype == np.float64
        assert got_grad.shape == want_grad.shape
        assert np.abs(want_grad).max() > 1e-3, msg  # not a dead network
        # the loss is sklearn's reported loss (squared error averaged
        # over outputs), not the objective
        assert want_loss == ref.reported_loss(coefs, intercepts, X, Y, sw,
                                              activation, out_act, loss, alpha)
        assert_close(got_loss, want_loss, dtype, err_msg=msg)
        assert_close(got_grad, want_grad, dtype,
                     scale=np.abs(want_grad).max(), err_msg=msg)
        # optimizer code NONE leaves the parameters alone
        np.testing.assert_array_equal(net.params, params_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_row_chunks_agree_with_one_call(rng, dtype):
    """L-BFGS on large data evaluates in row chunks (``lbfgs_workspace``):
    the chunks' raw sums added in float64, then the L2 term and the division
    by the total weight, equal the one call to rounding; a chunk whose weights
    are all zero adds nothing (the kernel skips it without writing its sums:
    what the workspace held must not leak in); a chunk of any size gives the
    same to rounding, and each chunk size gives the same bits every time."""
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    n, sizes = 40, [6, 9, 5, 3]
    X = make_X(rng, n, 6)
    Y = make_targets(rng, "log_loss", n, 3)
    sw = rng.uniform(0.5, 2.0, size=n)
    sw[8:16] = 0.0  # chunk 1 of 8 rows: no weight
    _, _, net = init_params(sizes, "tanh", 3, dtype)
    for n_threads, n_blocks in THREADS_BLOCKS:
        one = full_batch(net, X, Y, sw, "tanh", "softmax", 1e-2, dtype, False,
                         n_threads, n_blocks)
        for rows in (8, 7, 1):
            chunked = full_batch(net, X, Y, sw, "tanh", "softmax", 1e-2, dtype, False,
                                 n_threads, n_blocks, rows)
            assert chunked[0] == pytest.approx(one[0], rel=rtol), rows
            np.testing.assert_allclose(chunked[1], one[1], rtol=rtol,
                                       atol=rtol * np.abs(one[1]).max(), err_msg=str(rows))
            again = full_batch(net, X, Y, sw, "tanh", "softmax", 1e-2, dtype, False,
                               n_threads, n_blocks, rows)
            assert again[0] == chunked[0]
            np.testing.assert_array_equal(again[1], chunked[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_dense_and_csr_gradients_agree(rng, dtype):
    """CSR input runs the first layer over its non-zeros (no dense copy), so its
    sums round differently from the dense GEMM: equal to rounding, not bitwise
    (issue 8: rtol 1e-10 in float64, 1e-5 in float32)."""
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    n, sizes = 17, [6, 5, 3, 3]
    X = make_X(rng, n, 6)
    Y = make_targets(rng, "log_loss", n, 3)
    sw = rng.uniform(0.5, 2.0, size=n)
    for n_threads, n_blocks in THREADS_BLOCKS:
        _, _, net = init_params(sizes, "tanh", 3, dtype)
        dense = full_batch(net, X, Y, sw, "tanh", "softmax", 1e-3, dtype, False,
                           n_threads, n_blocks)
        csr = full_batch(net, X, Y, sw, "tanh", "softmax", 1e-3, dtype, True,
                         n_threads, n_blocks)
        assert csr[0] == pytest.approx(dense[0], rel=rtol)
        np.testing.assert_allclose(csr[1], dense[1], rtol=rtol,
                                   atol=rtol * np.abs(dense[1]).max())


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_csr_with_duplicate_entries_is_summed(rng, dtype):
    """A CSR matrix may hold duplicate (row, col) entries; scipy, sklearn's
    ``safe_sparse_dot`` and ``toarray`` all sum them.  So must the kernels."""
    n, sizes = 9, [4, 5, 2]
    X = make_X(rng, n, 4)
    A = sp.csr_matrix(X)
    # split every stored value v into two entries v/4 and 3v/4 of the same cell
    indptr = A.indptr * 2
    indices = np.repeat(A.indices, 2)
    data = np.column_stack([A.data / 4, 3 * A.data / 4]).ravel()
    D = sp.csr_matrix((data.astype(dtype), indices, indptr), shape=A.shape)
    assert not D.has_canonical_format
    np.testing.assert_allclose(D.toarray(), X.astype(dtype), rtol=1e-6)
    Y = make_targets(rng, "squared_error", n, 2)
    coefs, intercepts, net = init_params(sizes, "tanh", 1, dtype)
    Xd = D.toarray().astype(np.float64)

    ws = Workspace(net.sizes, dtype, n, 2)
    got_loss, got_grad = loss_and_gradient(
        net, as_kernel_input(D, dtype), Y.astype(dtype), np.ones(n, dtype=dtype),
        act_code("tanh"), out_code("identity"), 0.0, ws, 1)
    want_loss, cg, ig = ref.backprop(coefs, intercepts, Xd, Y, None, "tanh",
                                     "identity", "squared_error", 0.0)
    assert_close(got_loss, want_loss, dtype)
    assert_close(got_grad, flat(cg, ig), dtype)

    out = run_predict(net, D, dtype, act_code("tanh"), out_code("identity"), 4, 1)
    want = ref.forward(coefs, intercepts, Xd, "tanh", "identity")[-1]
    assert_close(out, want, dtype)


# --------------------------------------------------------------------------
# 2. mini-batch epochs
# --------------------------------------------------------------------------
SOLVERS = {
    "sgd-nesterov": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd-plain": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": False}),
    "adam": ("adam", dict(ref.ADAM_DEFAULTS, learning_rate_init=0.01)),
    # rho off its default, so that a rho lost on the way to the kernel shows
    "rmsprop": ("rmsprop", dict(ref.RMSPROP_DEFAULTS, learning_rate_init=0.01, rho=0.8)),
    # lr_init * weight_decay = 5e-3 per step: far above the float32 tolerance,
    # so decaying the intercepts too (or not at all) cannot pass
    "adamw": ("adamw", dict(ref.ADAMW_DEFAULTS, learning_rate_init=0.01,
                            weight_decay=0.5)),
}
# the solvers whose optimizer counts steps (``t``) and bias-corrects the rate
COUNTED = ("adam", "adamw")


def make_optimizer(solver_id, n_params, dtype):
    solver, hp = SOLVERS[solver_id]
    if solver == "sgd":
        return SGDOptimizer(n_params, dtype, hp["learning_rate"], "constant",
                            hp["momentum"], hp["nesterov"], 0.5)
    if solver == "rmsprop":
        return RMSpropOptimizer(n_params, dtype, hp["learning_rate_init"], hp["rho"],
                                hp["epsilon"])
    if solver == "adamw":
        return AdamWOptimizer(n_params, dtype, hp["learning_rate_init"], hp["beta_1"],
                              hp["beta_2"], hp["epsilon"], hp["weight_decay"])
    assert solver == "adam", solver
    return AdamOptimizer(n_params, dtype, hp["learning_rate_init"], hp["beta_1"],
                         hp["beta_2"], hp["epsilon"])


def kernel_epoch(net, opt, Xk, Y, sw, order, batch_size, activation, out_act, alpha,
                 n_threads, n_blocks, chunks=None):
    """One epoch through ``_training._run_batches``; returns the summed batch loss."""
    kernel = threads_for(n_threads)
    n_batches = -(-order.shape[0] // batch_size)
    if chunks is None:
        chunks = [(0, n_batches)]
    ws = Workspace(net.sizes, net.dtype, batch_size, n_blocks)
    args = _training.train_args(Xk, Y, sw, net, ws, act_code(activation), opt.kernel,
                                opt.state, kernel_state.loss(out_code(out_act), alpha,
                                                             net.dtype))
    opt.start_batches()
    total = 0.0
    with _threads.thread_limits(n_threads):
        for lo, hi in chunks:
            total = _run_batches(kernel, _training.for_batches(args, order, lo, hi, total))
    opt.after_batches()
    return total


def ref_moments(solver, state, n_layers):
    if solver == "sgd":
        v = state["velocities"]
        return [flat(v[:n_layers], v[n_layers:])]
    if solver == "rmsprop":
        v = state["vs"]
        return [flat(v[:n_layers], v[n_layers:])]
    return [flat(state["ms"][:n_layers], state["ms"][n_layers:]),
            flat(state["vs"][:n_layers], state["vs"][n_layers:])]


def epoch_problem(rng, case, dtype, n=31, n_in=5):
    out_act, loss, n_out = OUTPUTS[case]
    X = make_X(rng, n, n_in).astype(dtype).astype(np.float64)
    Y = make_targets(rng, loss, n, n_out)
    sw = rng.uniform(0.2, 3.0, size=n).astype(dtype).astype(np.float64)
    return X, Y, sw, [n_in, 7, 4, n_out]


@pytest.mark.parametrize("csr", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("n_threads,n_blocks", THREADS_BLOCKS, ids=TB_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver_id", list(SOLVERS))
def test_epochs_match_reference(rng, solver_id, dtype, n_threads, n_blocks, csr):
    """Two epochs (shuffled orders, the second a strict subset of the rows as in
    early stopping), batches 8, 8, 8, 7 then 8, 8, 8, 1: params, optimizer
    moments, Adam's step counter and the summed batch loss."""
    solver, hp = SOLVERS[solver_id]
    out_act, loss, _ = OUTPUTS["softmax"]
    activation, alpha, batch_size = "tanh", 1e-3, 8
    X, Y, sw, sizes = epoch_problem(rng, "softmax", dtype)
    coefs, intercepts, net = init_params(sizes, activation, 11, dtype)
    opt = make_optimizer(solver_id, net.n_params, dtype)
    state = ref.init_opt_state(solver, coefs + intercepts)
    Xk = kernel_input(X, dtype, csr)
    Yk, swk = Y.astype(dtype), sw.astype(dtype)
    orders = [rng.permutation(31), rng.permutation(31)[:25]]
    for epoch, order in enumerate(orders):
        order = order.astype(np.int64)
        got = kernel_epoch(net, opt, Xk, Yk, swk, order, batch_size, activation,
                           out_act, alpha, n_threads, n_blocks)
        want = ref.run_epoch(coefs, intercepts, X, Y, sw, order, batch_size, activation,
                             out_act, loss, alpha, solver, state, hp)
        msg = f"epoch {epoch}"
        assert_close(got / order.shape[0], want, dtype, err_msg=msg)
        assert_close(net.params, flat(coefs, intercepts), dtype, err_msg=msg)
        want_moments = ref_moments(solver, state, len(coefs))
        assert len(opt.moments) == len(want_moments)
        for m_got, m_want in zip(opt.moments, want_moments):
            assert_close(m_got, m_want, dtype, scale=np.abs(m_want).max(), err_msg=msg)
        if solver in COUNTED:
            assert opt.t == state["t"] == 4 * (epoch + 1)
    assert net.params.dtype == dtype and opt.moments.dtype == dtype


@pytest.mark.parametrize("case", list(OUTPUTS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_epoch_every_output_and_activation(rng, activation, case):
    """One sgd epoch (float64, 2 threads, unweighted) for every pair."""
    out_act, loss, _ = OUTPUTS[case]
    X, Y, _, sizes = epoch_problem(rng, case, np.float64, n=23)
    coefs, intercepts, net = init_params(sizes, activation, 5, np.float64)
    opt = make_optimizer("sgd-nesterov", net.n_params, np.float64)
    state = ref.init_opt_state("sgd", coefs + intercepts)
    order = rng.permutation(23).astype(np.int64)
    got = kernel_epoch(net, opt, kernel_input(X, np.float64, False), Y, np.ones(23),
                       order, 6, activation, out_act, 1e-3, 2, 3)
    want = ref.run_epoch(coefs, intercepts, X, Y, None, order, 6, activation, out_act,
                         loss, 1e-3, "sgd", state, SOLVERS["sgd-nesterov"][1])
    assert got / 23 == pytest.approx(want, rel=1e-12)
    assert_close(net.params, flat(coefs, intercepts), np.float64)
    assert_close(opt.moments[0], ref_moments("sgd", state, 3)[0], np.float64)


@pytest.mark.parametrize("n_threads,n_blocks", [(1, 1), (2, 3), (3, 5)],
                         ids=["T1-J1", "T2-J3", "T3-J5"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver_id", ["sgd-nesterov", "adam", "rmsprop", "adamw"])
def test_chunked_epoch_is_bitwise_equal_to_one_call(rng, solver_id, dtype, n_threads,
                                                    n_blocks):
    """Splitting an epoch into calls (what makes Ctrl-C responsive) must not change
    a single bit; Adam's counter advances once per batch across the calls."""
    X, Y, sw, sizes = epoch_problem(rng, "squared_error-2", dtype, n=45)
    order = rng.permutation(45).astype(np.int64)
    batch_size, n_batches = 7, 7  # 6 x 7 + 3
    Xk, Yk, swk = kernel_input(X, dtype, False), Y.astype(dtype), sw.astype(dtype)

    def run(chunks):
        _, _, net = init_params(sizes, "relu", 2, dtype)
        opt = make_optimizer(solver_id, net.n_params, dtype)
        losses = [kernel_epoch(net, opt, Xk, Yk, swk, order, batch_size, "relu",
                               "identity", 1e-3, n_threads, n_blocks, chunks)
                  for _ in range(2)]
        return net, opt, losses

    net1, opt1, loss1 = run(None)
    assert not np.array_equal(net1.params, init_params(sizes, "relu", 2, dtype)[2].params)
    if solver_id in COUNTED:
        assert opt1.t == 2 * n_batches
    for chunks in ([(0, 3), (3, 7)], [(0, 1), (1, 2), (2, 6), (6, 7)]):
        net2, opt2, loss2 = run(chunks)
        np.testing.assert_array_equal(net2.params, net1.params)
        np.testing.assert_array_equal(opt2.moments, opt1.moments)
        # the loss too: the epoch's sum runs on through the calls, left to right
        assert loss2 == loss1
        if solver_id in COUNTED:
            assert opt2.t == opt1.t == 2 * n_batches
            assert opt2.learning_rate == opt1.learning_rate


def test_adam_step_counter_advances_per_batch_and_sets_rate(rng):
    X, Y, sw, sizes = epoch_problem(rng, "binary", np.float64, n=20)
    _, _, net = init_params(sizes, "logistic", 0, np.float64)
    opt = make_optimizer("adam", net.n_params, np.float64)
    opt.state.step[0] = 5  # a partial_fit that already took 5 steps
    order = np.arange(20, dtype=np.int64)
    kernel_epoch(net, opt, kernel_input(X, np.float64, False), Y, sw, order, 6,
                 "logistic", "logistic", 0.0, 2, 2, chunks=[(0, 2)])
    assert opt.t == 7
    kernel_epoch(net, opt, kernel_input(X, np.float64, False), Y, sw, order, 6,
                 "logistic", "logistic", 0.0, 2, 2, chunks=[(2, 4)])
    assert opt.t == 9
    # scikit-learn's AdamOptimizer formula in Python, bit for bit
    expected = 0.01 * np.sqrt(1 - 0.999**9) / (1 - 0.9**9)
    assert opt.learning_rate == expected


@pytest.mark.parametrize("lr_init,beta_1,beta_2", [(0.001, 0.9, 0.999), (0.01, 0.8, 0.95),
                                                   (0.3, 0.5, 0.9999)])
def test_adam_rate_is_sklearns_formula_bit_for_bit(lr_init, beta_1, beta_2):
    """The compiled bias-corrected rate equals scikit-learn's Python expression at
    every step (numba's ``**`` with an int exponent differed by an ulp in ~3%)."""
    from fastbp._kernels.optimizers import adam_rate

    steps = np.arange(1, 30001)
    got = np.array([adam_rate(lr_init, beta_1, beta_2, t) for t in steps.tolist()])
    want = np.array([lr_init * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
                     for t in steps.tolist()])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} steps differ, first t={steps[bad[:5]]}"


def test_adam_rate_inside_the_kernel_is_the_one_python_reports(rng):
    """The rate the compiled epoch stepped with is what ``_optimizer.learning_rate``
    shows (one source), and equals scikit-learn's formula at that step."""
    X = rng.normal(size=(300, 4))
    y = rng.integers(0, 2, size=300)
    for max_iter in (1, 7, 40):
        clf = BPClassifier(hidden_layer_sizes=(3,), batch_size=10, max_iter=max_iter,
                           learning_rate_init=0.02, beta_1=0.85, beta_2=0.995,
                           random_state=0, n_iter_no_change=10**6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        t = clf._optimizer.t
        assert t == 30 * max_iter
        assert clf._optimizer.learning_rate == 0.02 * np.sqrt(1 - 0.995**t) / (1 - 0.85**t)


def test_fit_split_into_many_calls_is_bitwise_equal(rng, monkeypatch):
    """The estimator's own chunking (``CALL_FLOPS``): one batch per compiled call
    gives the same fit as the whole epoch in one call."""
    X = rng.normal(size=(90, 6))
    y = rng.integers(0, 3, size=90)

    def fit():
        clf = BPClassifier(hidden_layer_sizes=(8, 5), batch_size=16, max_iter=3,
                           random_state=0, n_jobs=2, learning_rate_init=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(X, y)

    one = fit()
    calls = []
    original = _training._run_batches

    def spy(kernel, args):
        calls.append((args.batches.lo, args.batches.hi))
        return original(kernel, args)

    monkeypatch.setattr(_training, "CALL_FLOPS", 1.0)
    monkeypatch.setattr(_training, "_run_batches", spy)
    many = fit()
    assert calls[:6] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert len(calls) == 3 * 6
    np.testing.assert_array_equal(many._net.params, one._net.params)
    assert many.loss_curve_ == one.loss_curve_
    assert many._optimizer.t == one._optimizer.t == 18


# --------------------------------------------------------------------------
# 3. predict kernels
# --------------------------------------------------------------------------
def run_predict(net, X, dtype, a_code, o_code, block, n_threads):
    sparse = sp.issparse(X)
    Xk = as_kernel_input(X, dtype)
    n = X.shape[0]
    sizes = net.sizes
    max_width = int(max(sizes[1:].max(), sizes[0] if sparse else 1))
    ws = np.empty((n_threads, 3, block * max_width), dtype=dtype)
    out = np.full((n, int(sizes[-1])), np.nan, dtype=dtype)
    kernel, eff = _threads.choose(PREDICT, n_threads)
    assert eff == n_threads
    with _threads.thread_limits(eff):
        nonfinite = kernel(Xk.dense, Xk.csr, sizes, net.params, a_code, o_code, out, ws,
                           block, eff)
    # the count of inf/nan first-layer products (X @ W_0, before the bias)
    Z0 = np.asarray(X @ net.coefs[0].astype(dtype), dtype=dtype)
    assert nonfinite == int((~np.isfinite(Z0)).sum())
    return out


@pytest.mark.parametrize("csr", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(OUTPUTS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_predict_matches_reference(rng, activation, case, dtype, csr):
    out_act, _, n_out = OUTPUTS[case]
    n, sizes = 23, [5, 9, 4, n_out]
    X = make_X(rng, n, 5).astype(dtype)
    coefs, intercepts, net = init_params(sizes, activation, 4, dtype)
    want = ref.forward(coefs, intercepts, X.astype(np.float64), activation, out_act)[-1]
    Xin = csr_unsorted(X) if csr else X
    results = {}
    for block in (1, 5, 16, 23, 64):  # 5 and 16 do not divide 23
        for n_threads in THREADS:
            out = run_predict(net, Xin, dtype, act_code(activation), out_code(out_act),
                              block, n_threads)
            assert out.dtype == dtype
            assert_close(out, want, dtype, err_msg=f"block={block} T={n_threads}")
            results[block, n_threads] = out
        # which thread computes a block does not change it
        for n_threads in THREADS[1:]:
            np.testing.assert_array_equal(results[block, n_threads], results[block, 1])
    if out_act == "softmax":
        np.testing.assert_allclose(results[5, 2].sum(axis=1), 1.0, rtol=1e-5)


def test_predict_dense_and_csr_are_bitwise_equal(rng):
    X = make_X(rng, 40, 6)
    _, _, net = init_params([6, 8, 3, 2], "relu", 0, np.float64)
    for block in (3, 16):
        for n_threads in THREADS:
            a = run_predict(net, X, np.float64, act_code("relu"), out_code("identity"),
                            block, n_threads)
            b = run_predict(net, sp.csr_matrix(X), np.float64, act_code("relu"),
                            out_code("identity"), block, n_threads)
            np.testing.assert_array_equal(a, b)


def test_predict_of_training_logits_matches_training_forward(rng):
    """The loss the training kernel reports is the loss of the predict kernel's
    outputs (both forward passes agree)."""
    X, Y, sw, sizes = epoch_problem(rng, "poisson", np.float64, n=19)
    coefs, intercepts, net = init_params(sizes, "tanh", 8, np.float64)
    loss, _ = full_batch(net, X, Y, sw, "tanh", "exp", 0.0, np.float64, False, 2, 3)
    P = run_predict(net, X, np.float64, act_code("tanh"), out_code("exp"), 7, 2)
    assert loss == pytest.approx(ref.data_loss(Y, P, "poisson", sw), rel=1e-13)


# --------------------------------------------------------------------------
# 4. degenerate shapes
# --------------------------------------------------------------------------
DEGENERATE = {
    "one-row": (1, [4, 5, 3, 2]),
    "two-rows": (2, [4, 5, 3, 2]),
    "one-unit-hidden": (11, [4, 1, 3, 2]),
    "one-feature": (11, [1, 5, 3, 2]),
    "one-everything": (5, [1, 1, 1, 1]),
    "no-hidden-layer": (11, [4, 2]),
    "many-layers": (11, [3, 2, 5, 1, 4, 2]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape_id", list(DEGENERATE))
def test_degenerate_shapes(rng, shape_id, dtype):
    n, sizes = DEGENERATE[shape_id]
    activation, out_act, loss = "tanh", "identity", "squared_error"
    X = rng.normal(size=(n, sizes[0])).astype(dtype).astype(np.float64)
    Y = rng.normal(size=(n, sizes[-1]))
    sw = rng.uniform(0.5, 2.0, size=n).astype(dtype).astype(np.float64)
    coefs, intercepts, net = init_params(sizes, activation, 6, dtype)
    want_loss, cg, ig = ref.backprop(coefs, intercepts, X, Y, sw, activation,
                                     out_act, loss, 1e-2)
    want_out = ref.forward(coefs, intercepts, X, activation, out_act)[-1]
    # (n_threads, n_blocks) with more blocks than rows, fan-in rows or threads
    for n_threads, n_blocks in [(1, 1), (1, 4), (2, 3), (3, 8)]:
        for csr in (False, True):
            msg = f"T={n_threads} J={n_blocks} csr={csr}"
            got_loss, got_grad = full_batch(net, X, Y, sw, activation, out_act, 1e-2,
                                            dtype, csr, n_threads, n_blocks)
            assert_close(got_loss, want_loss, dtype, err_msg=msg)
            assert_close(got_grad, flat(cg, ig), dtype, err_msg=msg)
            Xin = sp.csr_matrix(X.astype(dtype)) if csr else X.astype(dtype)
            out = run_predict(net, Xin, dtype, act_code(activation), out_code(out_act),
                              2, n_threads)
            assert_close(out, want_out, dtype, err_msg=msg)

        # an epoch of batches (2, 2, ..., 1) smaller than the thread/block count
        order = np.random.default_rng(1).permutation(n).astype(np.int64)
        c = [w.copy() for w in coefs]
        b = [w.copy() for w in intercepts]
        _, _, net_t = init_params(sizes, activation, 6, dtype)
        opt = make_optimizer("adam", net_t.n_params, dtype)
        state = ref.init_opt_state("adam", c + b)
        got = kernel_epoch(net_t, opt, kernel_input(X, dtype, False), Y.astype(dtype),
                           sw.astype(dtype), order, 2, activation, out_act, 1e-2,
                           n_threads, n_blocks)
        want = ref.run_epoch(c, b, X, Y, sw, order, 2, activation, out_act, loss, 1e-2,
                             "adam", state, SOLVERS["adam"][1])
        assert_close(got / n, want, dtype, err_msg=msg)
        assert_close(net_t.params, flat(c, b), dtype, err_msg=msg)
        assert opt.t == state["t"] == -(-n // 2)


# --------------------------------------------------------------------------
# 5. thread-count invariance
# --------------------------------------------------------------------------
# The kernels split each mini-batch into ``n_blocks`` work blocks (rows of the
# batch in region 1, rows of every W_l in region 2) and threads take blocks,
# so for a given ``n_blocks`` every thread count runs the same floating-point
# operations: bitwise identical results.  Different block counts call BLAS on
# differently shaped slices, and OpenBLAS does not round every M-block of a
# gemm the same way, so across block counts results agree to rounding only.
BLOCK_RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def epoch_results(solver_id, dtype, csr, n_threads, n_blocks):
    rng = np.random.default_rng(0)
    n = 53
    X, Y, sw, _ = epoch_problem(rng, "softmax", dtype, n=n, n_in=7)
    sizes = [7, 13, 6, 3]
    order = rng.permutation(n).astype(np.int64)
    Xk, Yk, swk = kernel_input(X, dtype, csr), Y.astype(dtype), sw.astype(dtype)
    _, _, net = init_params(sizes, "tanh", 9, dtype)
    opt = make_optimizer(solver_id, net.n_params, dtype)
    losses = [kernel_epoch(net, opt, Xk, Yk, swk, order, 10, "tanh", "softmax",
                           1e-3, n_threads, n_blocks) for _ in range(2)]
    return net.params.copy(), opt.moments.copy(), losses


@pytest.mark.parametrize("csr", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver_id", ["sgd-nesterov", "adam", "rmsprop", "adamw"])
def test_epoch_is_bitwise_identical_across_thread_counts(solver_id, dtype, csr):
    """Batches of 10 rows (last one 3) in 1, 3 or 8 blocks (8 > 3 rows)."""
    for n_blocks in (1, 3, 8):
        first = epoch_results(solver_id, dtype, csr, 1, n_blocks)
        start = init_params([7, 13, 6, 3], "tanh", 9, dtype)[2].params
        assert np.abs(first[0] - start).max() > 1e-3  # it trained
        for n_threads in THREADS[1:]:
            params, moments, losses = epoch_results(solver_id, dtype, csr, n_threads,
                                                    n_blocks)
            msg = f"n_blocks={n_blocks} n_threads={n_threads}"
            np.testing.assert_array_equal(params, first[0], err_msg=msg)
            np.testing.assert_array_equal(moments, first[1], err_msg=msg)
            assert losses == first[2], msg


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_epoch_across_block_counts_agrees_to_rounding(dtype):
    results = {j: epoch_results("adam", dtype, False, 2, j) for j in (1, 2, 3, 8)}
    rtol = BLOCK_RTOL[dtype]
    params1, moments1, losses1 = results[1]
    for n_blocks, (params, moments, losses) in results.items():
        msg = f"n_blocks={n_blocks}"
        np.testing.assert_allclose(params, params1, rtol=rtol,
                                   atol=rtol * np.abs(params1).max(), err_msg=msg)
        for m, m1 in zip(moments, moments1):
            np.testing.assert_allclose(m, m1, rtol=rtol, atol=rtol * np.abs(m1).max(),
                                       err_msg=msg)
        np.testing.assert_allclose(losses, losses1, rtol=rtol, err_msg=msg)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradient_is_bitwise_identical_across_thread_counts(rng, dtype):
    n = 41
    X, Y, sw, _ = epoch_problem(rng, "multilabel", dtype, n=n, n_in=9)
    sizes = [9, 10, 7, 3]
    _, _, net = init_params(sizes, "logistic", 2, dtype)
    for n_blocks in (1, 4, 5):
        results = [full_batch(net, X, Y, sw, "logistic", "logistic", 1e-3, dtype, False,
                              n_threads, n_blocks) for n_threads in THREADS]
        for loss, grad in results[1:]:
            assert loss == results[0][0]
            np.testing.assert_array_equal(grad, results[0][1])


def assert_one_kernel_type(optimizer):
    """An ``Optimizer`` whose code is an int and every hyper-parameter a float
    (what the old float64 ``hyper`` vector guaranteed: one kernel type)."""
    assert isinstance(optimizer, kernel_state.Optimizer)
    assert type(optimizer.code) is int
    assert all(type(v) is float for v in optimizer[1:]), optimizer


def test_kernel_hp_layout():
    """The optimizer constants, rate and loss the kernels read are what the
    optimizers (and ``state.loss``) write."""
    opt = SGDOptimizer(10, np.float32, 0.2, "constant", 0.7, False, 0.5)
    assert_one_kernel_type(opt.kernel)
    opt.start_batches()  # the rate of the steps (sgd: the current learning rate)
    assert opt.state.rate.dtype == np.float64 and opt.state.rate.shape == (1,)
    loss = kernel_state.loss(out_code("identity"), 0.25, np.float32)
    assert (opt.state.rate[0], opt.kernel.momentum, opt.kernel.nesterov, loss.alpha) == (
        0.2, 0.7, 0.0, 0.25)
    assert loss.clip_eps == np.finfo(np.float32).eps
    adam = AdamOptimizer(10, np.float64, 0.03, 0.8, 0.99, 1e-7)
    assert_one_kernel_type(adam.kernel)
    assert (adam.kernel.lr_init, adam.kernel.beta_1, adam.kernel.beta_2,
            adam.kernel.epsilon) == (0.03, 0.8, 0.99, 1e-7)
    assert adam.moments.shape == (2, 10) and opt.moments.shape == (1, 10)
    assert adam.code == KO.ADAM and opt.code == KO.SGD
    assert adam.kernel.code == KO.ADAM and opt.kernel.code == KO.SGD


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("solver", ["sgd", "sgd-no-nesterov", "adam"])
def test_step_range_is_sklearns_update_in_the_array_dtype(solver, dtype, seed):
    """One optimizer step over a sub-range equals scikit-learn's own optimizer
    (numpy arithmetic, under the numpy installed) bitwise, in float32 as in
    float64, and leaves everything outside the range untouched.

    Tens of thousands of parameters per seed: an update rounded in float32
    where numpy forms it in float64 (Adam's float64 rate under NEP 50) differs
    in a few parameters per thousand, so with a hundred parameters a lucky
    seed passed."""
    from sklearn.neural_network._stochastic_optimizers import (
        AdamOptimizer as SkAdam,
        SGDOptimizer as SkSGD,
    )

    rng = np.random.default_rng(seed)
    n, p0, p1 = 20_011, 7, 19_990  # odd bounds: vector loops with remainders
    alpha, n_rows = 1e-3, 37.0
    w = rng.normal(size=n).astype(dtype)
    raw = rng.normal(size=n).astype(dtype)
    n_mom = 2 if solver == "adam" else 1
    moments = (rng.random(size=(n_mom, n)) * (1.0 if solver == "adam" else 0.1)).astype(dtype)
    if solver == "adam":
        moments[0] -= dtype(0.5)
        opt = AdamOptimizer(n, dtype, 0.01, 0.8, 0.99, 1e-7)
        t = 4
        lr_t = 0.01 * np.sqrt(1 - 0.99**t) / (1 - 0.8**t)
        sk = SkAdam([w[p0:p1].copy()], 0.01, 0.8, 0.99, 1e-7)
        sk.t = t - 1
        sk.ms = [moments[0, p0:p1].copy()]
        sk.vs = [moments[1, p0:p1].copy()]
    else:
        nesterov = solver == "sgd"
        opt = SGDOptimizer(n, dtype, 0.05, "constant", 0.9, nesterov, 0.5)
        lr_t = 0.05
        sk = SkSGD([w[p0:p1].copy()], 0.05, "constant", 0.9, nesterov)
        sk.velocities = [moments[0, p0:p1].copy()]
    sk_params = [w[p0:p1].copy()]
    sk_grad = (raw[p0:p1] + alpha * w[p0:p1]) / n_rows  # sklearn: += alpha W; /= n
    assert sk_grad.dtype == dtype
    sk.update_params(sk_params, [sk_grad])

    w_before, mom_before = w.copy(), moments.copy()
    KO.step_range(w, raw, moments, p0, p1, alpha, 0.0, n_rows, opt.kernel, lr_t)
    np.testing.assert_array_equal(w[p0:p1], sk_params[0])
    if solver == "adam":
        np.testing.assert_array_equal(moments[0, p0:p1], sk.ms[0])
        np.testing.assert_array_equal(moments[1, p0:p1], sk.vs[0])
    else:
        np.testing.assert_array_equal(moments[0, p0:p1], sk.velocities[0])
    outside = np.r_[0:p0, p1:n]
    np.testing.assert_array_equal(w[outside], w_before[outside])
    np.testing.assert_array_equal(moments[:, outside], mom_before[:, outside])


# (rows r of the batch, width of A, column block [c0, c1), n): one per path of
# gemm_tn_cols -- a vector column (n == 1), the outer-product loop (few rows of
# C, n >= 8, r not a multiple of 4), and BLAS on a column block in place
# (many rows, or 2 <= n < 8) -- plus the whole width and an empty block.
TN_CASES = {
    "vector-block": (37, 50, 9, 41, 1),
    "vector-full": (8, 6, 0, 6, 1),
    "few-rows": (203, 40, 5, 25, 64),
    "few-rows-r<4": (3, 12, 2, 12, 9),
    "blas-block": (45, 100, 30, 90, 17),
    "blas-narrow-n": (45, 100, 1, 70, 5),
    "blas-full": (31, 70, 0, 70, 12),
    "empty": (10, 8, 4, 4, 16),
    # a block with no batch rows (more blocks than rows): C must come out zero
    "no-rows-blas": (0, 40, 0, 40, 9),
    "no-rows-loop": (0, 12, 2, 12, 16),
    "no-rows-vector": (0, 7, 0, 7, 1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(TN_CASES), ids=list(TN_CASES))
def test_gemm_tn_cols_every_path(rng, case, dtype):
    from fastbp._kernels.linalg import gemm_tn_cols

    r, width, c0, c1, n = TN_CASES[case]
    A = rng.normal(size=(r, width)).astype(dtype)
    B = rng.normal(size=(r, n)).astype(dtype)
    C = np.full((c1 - c0, n), np.nan, dtype=dtype)  # every entry must be written
    gemm_tn_cols(A, c0, c1, B, C)
    expected = A[:, c0:c1].astype(np.float64).T @ B.astype(np.float64)
    np.testing.assert_allclose(C, expected, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(1, 784, 128), (10, 7, 3), (3, 4, 1), (16, 9, 33), (2, 1, 5),
                                   (0, 5, 4), (4, 0, 6)])
def test_gemm_few_rows(rng, shape, dtype):
    """Four rows of B at a time and a tail of k % 4; every entry written."""
    from fastbp._kernels.linalg import gemm_few_rows

    m, k, n = shape
    A = rng.normal(size=(m, k)).astype(dtype)
    B = rng.normal(size=(k, n)).astype(dtype)
    C = np.full((m, n), np.nan, dtype=dtype)
    gemm_few_rows(A, B, C)
    np.testing.assert_allclose(C, A.astype(np.float64) @ B.astype(np.float64), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_gemm_rm_on_strided_sub_blocks(rng, trans_a, trans_b, dtype):
    """op(A) @ op(B) + beta C on sub-blocks of flat buffers (offsets and parent
    row strides), leaving every other element of C untouched."""
    from fastbp._kernels.linalg import gemm_rm

    m, n, k = 7, 5, 9
    A_par = rng.normal(size=(12, 15)).astype(dtype)  # parents, larger than needed
    B_par = rng.normal(size=(11, 13)).astype(dtype)
    C_par = rng.normal(size=(10, 8)).astype(dtype)
    ar, ac = (2, 3)
    br, bc = (1, 4)
    cr, cc = (2, 1)
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    A = A_par[ar:ar + a_shape[0], ac:ac + a_shape[1]]
    B = B_par[br:br + b_shape[0], bc:bc + b_shape[1]]
    opA = A.T if trans_a else A
    opB = B.T if trans_b else B
    beta = 0.5
    expected_par = C_par.astype(np.float64).copy()
    expected_par[cr:cr + m, cc:cc + n] = (opA.astype(np.float64) @ opB.astype(np.float64)
                                          + beta * C_par[cr:cr + m, cc:cc + n])
    gemm_rm(trans_a, trans_b, m, n, k,
            A_par.ravel(), ar * 15 + ac, 15, B_par.ravel(), br * 13 + bc, 13,
            beta, C_par.ravel(), cr * 8 + cc, 8)
    np.testing.assert_allclose(C_par, expected_par, **tol(dtype))

