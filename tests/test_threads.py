"""Thread counts: reproducibility, invariance, scoping, and unusual callers."""

import json
import multiprocessing
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

from _fit_digest import fitted_state
from conftest import needs_two_threads
from fastbp import BPClassifier, BPRegressor
from fastbp import _kernels as K
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


def _spy_kernel_calls(monkeypatch):
    """Record (parallel kernel?, numba's thread count) for each compiled epoch call."""
    from fastbp import _training

    calls = []
    real = _training._run_batches

    def spy(kernel, *args):
        calls.append((kernel is K.TRAIN.parallel, numba.get_num_threads()))
        return real(kernel, *args)

    monkeypatch.setattr(_training, "_run_batches", spy)
    return calls


def _force_parallel(monkeypatch):
    """Every compiled epoch call of a fit with n_threads > 1 runs the parallel
    kernel (the Pacer would run the serial twin when it is faster, as on a busy
    machine, and then a multi-threaded fit may not run the parallel one at all)."""
    from fastbp import _training

    def always(self):
        self._last = self.enabled
        return self.enabled

    monkeypatch.setattr(_training.Pacer, "use_parallel", always)


@needs_two_threads
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_same_seed_same_n_jobs_is_bitwise_reproducible(digits, solver, monkeypatch):
    """Two fits with n_jobs=2, every epoch call on the parallel kernel with two
    threads: bitwise the same model (how the threads share the blocks, and
    which thread ends first, must not show in the result)."""
    X, y = digits
    calls = _spy_kernel_calls(monkeypatch)
    _force_parallel(monkeypatch)
    a = _fit(X, y, n_jobs=2, solver=solver)
    assert calls and set(calls) == {(True, 2)}
    calls.clear()
    b = _fit(X, y, n_jobs=2, solver=solver)
    assert calls and set(calls) == {(True, 2)}
    assert fitted_state(a, X) == fitted_state(b, X)


@needs_two_threads
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_n_jobs_none_follows_numba_threads_and_gives_the_same_model(digits, solver,
                                                                    monkeypatch):
    """n_jobs=None fits with numba's current thread count: under
    numba.set_num_threads(1) only the serial kernel runs, under
    numba.set_num_threads(2) the parallel one on two threads; every fitted
    attribute is bitwise the same."""
    X, y = digits
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # (it would cap n_jobs=None)
    calls = _spy_kernel_calls(monkeypatch)
    _force_parallel(monkeypatch)
    states = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            calls.clear()
            states[threads] = fitted_state(_fit(X, y, n_jobs=None, solver=solver), X)
            assert numba.get_num_threads() == threads  # (restored after the fit)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert calls and set(calls) == {(threads > 1, threads)}
    assert states[1] == states[2]


@needs_two_threads
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_does_not_change_the_model(digits, dtype, monkeypatch):
    """n_jobs=1 and n_jobs=2 give bitwise the same fitted model -- every attribute,
    loss_curve_ included, not only the weights -- and n_jobs=2 really ran the
    parallel kernel on two threads.  (More threads than this machine's numba
    offers: the subprocess test below.)"""
    X, y = digits
    X = X.astype(dtype)
    calls = _spy_kernel_calls(monkeypatch)
    ref = _fit(X, y, n_jobs=1, solver="sgd", batch_size=32)
    assert calls and not any(par for par, _ in calls)
    calls.clear()
    other = _fit(X, y, n_jobs=2, solver="sgd", batch_size=32)
    assert (True, 2) in calls  # the parallel kernel ran, on 2 threads
    # Work is split in blocks that depend on the machine and the batch size,
    # never on n_jobs, and each weight's sum over the batch is one BLAS call:
    # every thread count makes the same floating-point operations.
    assert fitted_state(ref, X) == fitted_state(other, X)


def _blas_threads():
    return [(d["filepath"], d["num_threads"]) for d in threadpool_info()
            if d["user_api"] == "blas"]


def _diverging_fit(X, y, n_jobs):
    BPRegressor(solver="sgd", learning_rate_init=1e6, max_iter=5, n_jobs=n_jobs,
                random_state=0).fit(X, y * 1e6)


def _interrupted_fit(X, y, n_jobs, monkeypatch):
    from fastbp import _training

    def interrupting(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_training, "_run_batches", interrupting)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        _fit(X, y, n_jobs=n_jobs)


def _failing_fit(X, y, n_jobs, monkeypatch):
    from fastbp import _training

    def failing(*args):
        raise RuntimeError("boom inside the epoch")

    monkeypatch.setattr(_training, "_run_batches", failing)
    with pytest.raises(RuntimeError, match="boom inside the epoch"):
        _fit(X, y, n_jobs=n_jobs)


@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=needs_two_threads)])
@pytest.mark.parametrize("path", ["success", "lbfgs", "diverged", "interrupted", "error"])
def test_thread_settings_are_restored(digits, n_jobs, path, monkeypatch):
    """numba's thread count and the BLAS thread limits are back to what they were
    after every way out of a fit or predict, for serial and parallel fits.  They
    start at values fastbp does not set itself (numba 1 thread, BLAS 2), so a
    missing restore is visible."""
    from threadpoolctl import threadpool_limits

    X, y = digits
    with threadpool_limits(limits=2, user_api="blas"):
        numba.set_num_threads(1)
        try:
            before = (numba.get_num_threads(), _blas_threads())
            assert all(n == 2 for _, n in before[1])
            if path == "success":
                _fit(X, y, n_jobs=n_jobs).predict_proba(X)
            elif path == "lbfgs":
                _fit(X, y, n_jobs=n_jobs, solver="lbfgs").predict(X)
            elif path == "diverged":
                with pytest.raises(ValueError, match="non-finite"):
                    _diverging_fit(X, X[:, 3], n_jobs)
            elif path == "interrupted":
                _interrupted_fit(X, y, n_jobs, monkeypatch)
            else:
                _failing_fit(X, y, n_jobs, monkeypatch)
            assert (numba.get_num_threads(), _blas_threads()) == before
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_resolve_n_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # tested on its own below
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
        # bitwise: the same input gives the same row blocks in every thread
        # (BLAS pinned to one thread for as long as any fastbp call runs)
        np.testing.assert_array_equal(res, expected)


def test_fit_from_python_threads(digits):
    X, y = digits
    expected = fitted_state(_fit(X, y, n_jobs=2), X)
    with ThreadPoolExecutor(max_workers=2) as pool:
        fitted = list(pool.map(lambda _: _fit(X, y, n_jobs=2), range(2)))
    for est in fitted:
        assert fitted_state(est, X) == expected


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


def _digest_run(mode, n_jobs=None, **env):
    """``tests/_fit_digest.py`` in a fresh interpreter with ``env`` added."""
    here = os.path.dirname(os.path.abspath(__file__))
    # every run starts from the default thread settings, whatever the
    # environment running the tests says; then the variant's own
    full_env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join([here, full_env.get("PYTHONPATH", "")])
    argv = [mode] if n_jobs is None else [mode, str(n_jobs)]
    out = subprocess.run(
        [sys.executable, "-c", f"import _fit_digest; _fit_digest.main({argv!r})"],
        env=full_env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_THREADING_LAYER",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# name -> (mode, n_jobs, extra environment).  Variants that must run parallel
# kernels ask for two threads, so that they do on a 1-CPU machine too.
PROCESS_VARIANTS = {
    "n_jobs=1": ("plain", 1, {}),
    "NUMBA_NUM_THREADS=1": ("plain", None, {"NUMBA_NUM_THREADS": "1"}),
    # more threads than blocks or cores; n_jobs=3 and -1 must really run 3
    "NUMBA_NUM_THREADS=3,n_jobs=3": ("plain", 3, {"NUMBA_NUM_THREADS": "3"}),
    "NUMBA_NUM_THREADS=3,n_jobs=-1": ("plain", -1, {"NUMBA_NUM_THREADS": "3"}),
    "OMP_NUM_THREADS=1": ("plain", None, {"OMP_NUM_THREADS": "1"}),
    "workqueue": ("plain", None, {"NUMBA_THREADING_LAYER": "workqueue",
                                  "NUMBA_NUM_THREADS": "2"}),
    "fork-child": ("fork", None, {"NUMBA_NUM_THREADS": "2"}),
    "spawn-child": ("spawn", None, {"NUMBA_NUM_THREADS": "2"}),
    # loky gives its workers NUMBA_NUM_THREADS=cpu_count()//2 unless the parent
    # sets it: leave it unset
    "loky-worker": ("loky", None, {}),
    "dask-worker": ("dask", None, {}),
}


@pytest.fixture(scope="module")
def reference_fits():
    return _digest_run("plain", None)


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(PROCESS_VARIANTS))
def test_fits_identical_across_thread_settings_and_processes(reference_fits, variant):
    """One machine, the same data, parameters and random_state: bitwise the same
    fitted model (every attribute, the optimizer state and the predictions)
    whatever n_jobs, NUMBA_NUM_THREADS, OMP_NUM_THREADS, threading layer or
    process -- the default-settings fit of a fresh interpreter is the reference."""
    mode, n_jobs, env = PROCESS_VARIANTS[variant]
    if mode == "fork" and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    got = _digest_run(mode, n_jobs, **env)
    ref = reference_fits["states"]
    for model, state in ref.items():
        diff = {k: (v, got["states"][model].get(k)) for k, v in state.items()
                if got["states"][model].get(k) != v}
        assert not diff, f"{variant}: {model} differs in {sorted(diff)}"
    assert got["states"].keys() == ref.keys()
    if variant.startswith("NUMBA_NUM_THREADS=3"):
        assert [True, 3] in got["calls"], "the parallel kernel did not run on 3 threads"
    if variant == "NUMBA_NUM_THREADS=1":
        assert got["numba_threads"] == 1 and not any(par for par, _ in got["calls"])
    if variant == "workqueue":
        assert got["layer"] == "workqueue" and any(par for par, _ in got["calls"])


@pytest.mark.slow
def test_grid_search_scores_do_not_depend_on_n_jobs():
    """GridSearchCV(n_jobs=2) fits in loky workers (NUMBA_NUM_THREADS and
    OMP_NUM_THREADS set to cpu_count() // 2 there); its scores must equal
    n_jobs=1's exactly.  L-BFGS amplifies any last-bit difference."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 5))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.05 * rng.normal(size=150)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("bp", BPRegressor(solver="lbfgs", max_iter=200, random_state=0))])
    grid = {"bp__hidden_layer_sizes": [(8,), (16,)], "bp__alpha": [1.0, 1e-3]}
    results = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        results[n_jobs] = search.cv_results_
    for key in results[1]:
        if "test_score" in key:
            np.testing.assert_array_equal(results[1][key], results[2][key], err_msg=key)
    assert results[1]["mean_test_score"].max() > 0.5  # a real fit, not a constant


@needs_two_threads
def test_regressor_threads_invariant(monkeypatch, schedule):
    """A two-output regressor: n_jobs=1 (serial kernel only) and n_jobs=2
    (parallel kernel on two threads for every call) give bitwise the same
    fitted model, every attribute, under either gradient schedule."""
    rng = np.random.RandomState(0)
    X = rng.rand(300, 6)
    y = np.c_[X.sum(1), X[:, 0] - X[:, 1]]
    calls = _spy_kernel_calls(monkeypatch)
    _force_parallel(monkeypatch)
    states = {}
    for n_jobs in (1, 2):
        calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = BPRegressor(hidden_layer_sizes=(13,), max_iter=3, random_state=0,
                              n_jobs=n_jobs).fit(X, y)
        states[n_jobs] = fitted_state(est, X)
        assert calls and set(calls) == {(n_jobs > 1, n_jobs)}
    assert states[1] == states[2]


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


def test_closed_gate_runs_serial_until_the_compile_pays_back(monkeypatch):
    """A parallel kernel not compiled yet: the Pacer runs the serial one, in
    full calls, and opens the gate once the serial seconds run plus those
    still to come reach the payback time; then it warms up the parallel one."""
    from fastbp import _threads
    from fastbp._training import Pacer

    monkeypatch.setitem(_threads.PARALLEL_PAYBACK_SECONDS, "train", 10.0)
    gate = _threads.CompileGate("train", False)
    pacer = Pacer(n_threads=2, gate=gate)
    choices = []
    for batches_to_come in (1000, 50, 40, 30):  # 0.1 s per batch serial
        choices.append(pacer.use_parallel())
        assert pacer.batches(16) == 16  # no short probes: nothing to compare yet
        pacer.record(1.6, 16, batches_to_come)
    # warm-up (not counted), then 1.6 + 5 = 6.6 s, 3.2 + 4 = 7.2 s, 4.8 + 3 = 7.8 s
    assert choices == [False] * 4 and not gate.open
    assert gate.serial_seconds == pytest.approx(4.8)
    pacer.use_parallel()
    pacer.record(1.6, 16, 40)  # 6.4 s run + 4 s to come: pays
    assert gate.open and pacer.use_parallel() is True
    # the gate stays open for the process, and opens at once for a long fit
    assert _threads.CompileGate("train", False).open is False
    long_fit = _threads.CompileGate("train", False)
    long_fit.serial_ran(50.0, 100.0)  # a gate's first serial call is not counted
    assert not long_fit.open and long_fit.serial_seconds == 0.0
    long_fit.serial_ran(0.5, 100.0)
    assert long_fit.open


def test_gates_are_kept_per_signature_and_open_when_compiled(monkeypatch):
    """``gate`` asks ``is_compiled`` once per (dispatcher, argument types) and
    keeps the answer; eager_parallel opens every gate."""
    from fastbp import _config, _threads

    asked = []
    monkeypatch.setattr(_threads, "_gates", {})
    monkeypatch.setattr(_config, "is_compiled", lambda d, args: asked.append(args) or False)
    args64 = (np.zeros((2, 3)), np.zeros(3, dtype=np.int64))
    args32 = (np.zeros((5, 3), dtype=np.float32), np.zeros(3, dtype=np.int64))
    with _threads.eager_parallel():
        assert _threads.gate(K.PREDICT.parallel, "predict", args64).open
    monkeypatch.setitem(_threads.PARALLEL_PAYBACK_SECONDS, "predict", 3.0)
    # opened once (the parallel kernel then compiles): open for the process
    assert _threads.gate(K.PREDICT.parallel, "predict", (np.ones((7, 3)), args64[1])).open
    closed = _threads.gate(K.PREDICT.parallel, "predict", args32)
    assert closed.open is False
    assert _threads.gate(K.PREDICT.parallel, "predict", args32) is closed
    assert len(asked) == 2  # each signature asked once
    closed.serial_ran(3.5)  # the first serial call (it may have compiled): not counted
    assert not _threads.gate(K.PREDICT.parallel, "predict", args32).open
    closed.serial_ran(3.5)
    assert _threads.gate(K.PREDICT.parallel, "predict", args32).open


@needs_two_threads
def test_a_short_fit_runs_the_serial_kernel_while_the_gate_is_closed(digits, monkeypatch):
    """Same weights as the parallel fit, bit for bit; the parallel kernel is
    never called while compiling it cannot pay back."""
    from fastbp import _config, _threads, _training

    X, y = digits
    calls = _spy_kernel_calls(monkeypatch)
    ref = _fit(X, y, n_jobs=2)  # the conftest's eager gates: the parallel kernel
    assert (True, 2) in calls
    kernels = []
    real_run = _training._run_batches

    def spy(kernel, *args):
        kernels.append(kernel)
        return real_run(kernel, *args)

    monkeypatch.setattr(_threads, "_gates", {})
    monkeypatch.setattr(_config, "is_compiled", lambda d, args: False)
    monkeypatch.setitem(_threads.PARALLEL_PAYBACK_SECONDS, "train", 1e9)
    monkeypatch.setattr(_training, "_run_batches", spy)
    lazy = _fit(X, y, n_jobs=2)
    assert kernels and all(k is K.TRAIN.serial for k in kernels)
    assert fitted_state(lazy, X) == fitted_state(ref, X)



@needs_two_threads
def test_serial_probe_is_short_when_an_epoch_is_one_call(digits, monkeypatch):
    """A small epoch fits in one compiled call; a serial probe must still be a
    short call (an eighth of the epoch), not a whole epoch, and the calls of
    every epoch must cover its mini-batches exactly once, in order."""
    from fastbp import _training

    X, y = digits  # 500 rows, batch 25: 20 mini-batches per epoch, one call
    calls = []
    real_run = _training._run_batches

    def spy(kernel, args):
        lo, hi = args.batches.lo, args.batches.hi
        calls.append((kernel is K.TRAIN.serial, lo, hi))
        return real_run(kernel, args)

    def record(self, seconds, n_batches, batches_to_come=0):  # parallel 2x faster, always
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


@needs_two_threads
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
    assert fitted_state(mixed, X) == fitted_state(ref, X)


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
