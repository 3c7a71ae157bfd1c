"""Thread counts: reproducibility, invariance, scoping, and unusual callers."""

import multiprocessing
import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

from fastbp import BPClassifier, BPRegressor
from fastbp._threads import resolve_n_threads

# warnings.catch_warnings is not thread-safe; fits in worker threads warn too.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500] / 16.0, y[:500]


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BPClassifier(hidden_layer_sizes=(33, 17), max_iter=4, random_state=0, **kw).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_seed_same_n_jobs_is_bitwise_reproducible(digits, solver):
    X, y = digits
    a = _fit(X, y, n_jobs=2, solver=solver)
    b = _fit(X, y, n_jobs=2, solver=solver)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(ca, cb)
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_does_not_change_weights(digits, dtype):
    X, y = digits
    X = X.astype(dtype)
    ref = _fit(X, y, n_jobs=1)
    for n_jobs in (2, 3, -1):
        other = _fit(X, y, n_jobs=n_jobs)
        for ca, cb in zip(ref.coefs_ + ref.intercepts_, other.coefs_ + other.intercepts_):
            # Work is split in blocks that depend on the machine and the batch size,
            # never on n_jobs, and each weight's sum over the batch is one BLAS call:
            # every thread count makes the same floating-point operations.
            np.testing.assert_array_equal(ca, cb)
        assert ref.loss_curve_ == other.loss_curve_


def test_thread_settings_are_restored(digits):
    X, y = digits
    before_numba = numba.get_num_threads()
    before_blas = [(d["filepath"], d["num_threads"]) for d in threadpool_info()]
    clf = _fit(X, y, n_jobs=1)
    clf.predict_proba(X)
    assert numba.get_num_threads() == before_numba
    assert [(d["filepath"], d["num_threads"]) for d in threadpool_info()] == before_blas


def test_resolve_n_threads():
    max_threads = numba.config.NUMBA_NUM_THREADS
    assert resolve_n_threads(1) == 1
    assert resolve_n_threads(-1) == max_threads
    assert resolve_n_threads(10_000) == max_threads
    assert resolve_n_threads(None) == numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert resolve_n_threads(None) == 1
    finally:
        numba.set_num_threads(max_threads)


def test_n_jobs_none_respects_omp_num_threads(monkeypatch):
    # dask's nanny sets OMP_NUM_THREADS=1 in its workers, not NUMBA_NUM_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_n_threads(None) == 1
    assert resolve_n_threads(2) == min(2, numba.config.NUMBA_NUM_THREADS)  # explicit wins
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert resolve_n_threads(None) == numba.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_n_threads(None) == numba.get_num_threads()


def test_predict_from_many_python_threads(digits):
    X, y = digits
    clf = _fit(X, y, n_jobs=2)
    expected = clf.predict_proba(X)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(X), range(16)))
    for res in results:
        # Not bitwise: single-threaded OpenBLAS called from a non-main thread
        # rounds a few last bits differently (seen: 6e-16 relative).
        np.testing.assert_allclose(res, expected, rtol=1e-12, atol=1e-15)


def test_fit_from_python_threads(digits):
    X, y = digits
    expected = _fit(X, y, n_jobs=2).coefs_[0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        fitted = list(pool.map(lambda _: _fit(X, y, n_jobs=2), range(2)))
    for est in fitted:
        np.testing.assert_array_equal(est.coefs_[0], expected)


def _child_predict(clf, X, queue):
    queue.put(clf.predict_proba(X))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_predict_in_forked_child_after_parallel_use(digits):
    X, y = digits
    clf = _fit(X, y, n_jobs=2)
    expected = clf.predict_proba(X)  # the parent has run parallel regions now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_predict, args=(clf, X, queue))
    proc.start()
    result = queue.get(timeout=120)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    np.testing.assert_array_equal(result, expected)


@pytest.mark.slow
def test_grid_search_with_process_workers(digits):
    from sklearn.model_selection import GridSearchCV

    X, y = digits
    est = BPClassifier(max_iter=30, learning_rate_init=0.01, random_state=0)
    search = GridSearchCV(est, {"hidden_layer_sizes": [(8,), (16,)]}, cv=2, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
        direct = BPClassifier(**{**est.get_params(), **search.best_params_}).fit(X, y)
    assert search.best_score_ > 0.6
    assert set(search.cv_results_["param_hidden_layer_sizes"]) == {(8,), (16,)}
    # the workers (loky sets NUMBA_NUM_THREADS=1 there) and the parent agree
    np.testing.assert_array_equal(search.best_estimator_.coefs_[0], direct.coefs_[0])


def test_regressor_threads_invariant():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 6)
    y = np.c_[X.sum(1), X[:, 0] - X[:, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = BPRegressor(hidden_layer_sizes=(13,), max_iter=3, random_state=0, n_jobs=1).fit(X, y)
        b = BPRegressor(hidden_layer_sizes=(13,), max_iter=3, random_state=0, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[1], b.coefs_[1])


def test_pacer_prefers_the_faster_kernel_and_reprobes_with_backoff():
    from fastbp._training import Pacer

    pacer = Pacer(n_threads=2, probe_every=2, max_probe_every=8)
    choices, sizes = [], []
    for _ in range(40):
        par = pacer.use_parallel()
        choices.append(par)
        sizes.append(pacer.batches(16))
        # first calls are slow (cache load, thread start); then serial is 10x faster
        pacer.record(100.0 if len(choices) < 4 else (1.0 if par else 0.1), sizes[-1])
    assert choices[:4] == [True, True, False, False]  # warm up and measure both
    assert sizes[2] == sizes[3] == 2  # serial measurements are short calls
    assert choices[4] is False  # serial wins from here on
    probes = [i for i, c in enumerate(choices[4:], start=4) if c]
    assert 2 <= len(probes) <= 6  # parallel re-measured now and then, less often
    assert all(b - a >= 2 for a, b in zip(probes, probes[1:]))
    assert Pacer(n_threads=1).use_parallel() is False



def test_serial_probe_is_short_when_an_epoch_is_one_call(digits, monkeypatch):
    """A small epoch fits in one compiled call; a serial probe must still be a
    short call (an eighth of the epoch), not a whole epoch, and the calls of
    every epoch must cover its mini-batches exactly once, in order."""
    from fastbp import _training

    X, y = digits  # 500 rows, batch 25: 20 mini-batches per epoch, one call
    calls = []
    real_run = _training._run_batches

    def spy(kernel, *args):
        lo, hi = args[-2], args[-1]
        calls.append((kernel is _training.K.train_batches_serial, lo, hi))
        return real_run(kernel, *args)

    def record(self, seconds, n_batches):  # parallel measured 2x faster, always
        self.seen[self._last] += 1
        self.cost[self._last] = 1.0 if self._last else 2.0

    monkeypatch.setattr(_training, "_run_batches", spy)
    monkeypatch.setattr(_training.Pacer, "record", record)
    _fit(X, y, n_jobs=2, batch_size=25)
    serial = [(lo, hi) for is_serial, lo, hi in calls if is_serial]
    assert serial  # probed at least once
    assert all(hi - lo == 20 // 8 for lo, hi in serial)
    epochs, covered = [], []
    for _, lo, hi in calls:
        if lo == 0 and covered:
            epochs.append(covered)
            covered = []
        assert not covered or covered[-1][1] == lo  # contiguous
        covered.append((lo, hi))
    epochs.append(covered)
    assert len(epochs) == 4 and all(e[-1][1] == 20 for e in epochs)

def test_switching_kernels_mid_fit_gives_identical_weights(digits, monkeypatch):
    from fastbp import _training

    X, y = digits
    ref = _fit(X, y, n_jobs=1)
    flip = {"n": 0}

    def alternate(self):
        flip["n"] += 1
        self._last = flip["n"] % 2 == 0
        return self._last

    monkeypatch.setattr(_training, "CALL_FLOPS", 1.0)  # one call per mini-batch
    monkeypatch.setattr(_training.Pacer, "use_parallel", alternate)
    mixed = _fit(X, y, n_jobs=2)
    assert flip["n"] > 8
    for a, b in zip(ref.coefs_ + ref.intercepts_, mixed.coefs_ + mixed.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_uses_partials_picks_the_smaller_exchange():
    """Per-block partial gradients for small networks (they move fewer values
    between cores than the activations and deltas), parameter-owned blocks for
    large ones, and never with a single block."""
    from fastbp._network import uses_partials

    assert uses_partials([20, 64, 1], 200, 2)  # 2 * 1409 <= 200 * 85
    assert not uses_partials([20, 64, 1], 200, 1)
    assert not uses_partials([784, 128, 10], 200, 2)  # 2 * 101770 > 200 * 922
    assert not uses_partials([512, 1024, 1024, 10], 256, 2)
    assert uses_partials([784, 128, 10], 256, 2)  # 203540 <= 236032
    assert not uses_partials([784, 128, 10], 256, 3)
