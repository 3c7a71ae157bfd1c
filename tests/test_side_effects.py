"""fastbp's effects on the host process: BLAS thread pins (fastbp._blas_pin),
bounded to what needs them, released in any order, through Ctrl-C and fork;
and a mini-batch of zero total weight, which is skipped, not a divergence."""

import os
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from fastbp import BPClassifier, BPRegressor, _blas_pin
from fastbp._blas_pin import pinned


def _threads_by_lib():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def _kernel_and_numpy_libs():
    kernels = {lib.filepath for lib in _blas_pin._libraries("kernels")}
    numpys = {lib.filepath for lib in _blas_pin._libraries("all")} - kernels
    return kernels, numpys


@pytest.fixture
def two_blas_threads():
    """Every BLAS library on 2 threads (what a user's process may have), put back after."""
    libs = _blas_pin._libraries("all")
    before = [lib.get_num_threads() for lib in libs]
    for lib in libs:
        lib.set_num_threads(2)
    yield
    for lib, n in zip(libs, before):
        lib.set_num_threads(n)


class _AtTaskEnd:
    """A callback that runs ``action()`` at the end of every task whose name is
    in ``names`` (and whose id is ``task_id``, if given), keeping its results."""

    def __init__(self, action, names=("epoch", "lbfgs-iter"), task_id=None):
        self.action, self.names, self.task_id = action, names, task_id
        self.results = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context):
        if context.task_name in self.names and self.task_id in (None, context.task_id):
            self.results.append(self.action())


def _blas_probe():
    """Reads the BLAS thread counts at each epoch's (iteration's) end."""
    return _AtTaskEnd(_threads_by_lib)


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


@pytest.mark.usefixtures("two_blas_threads")
def test_a_stochastic_fit_pins_the_kernels_blas_and_leaves_numpys_alone():
    kernels, numpys = _kernel_and_numpy_libs()
    if not numpys:
        pytest.skip("numpy and scipy share one BLAS library here: it is pinned")
    probe = _blas_probe()
    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0
                     ).set_callbacks(probe).fit(X, y)
    assert len(probe.results) == 3
    for state in probe.results:
        assert all(state[k] == 1 for k in kernels)
        assert all(state[k] == 2 for k in numpys)  # the user's numpy keeps its threads
    assert set(_threads_by_lib().values()) == {2}  # and all restored


@pytest.mark.usefixtures("two_blas_threads")
def test_lbfgs_pins_every_blas_library_while_it_minimizes():
    probe = _blas_probe()
    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3, random_state=0
                     ).set_callbacks(probe).fit(X, y)
    assert probe.results and all(set(state.values()) == {1} for state in probe.results)
    assert set(_threads_by_lib().values()) == {2}


@pytest.mark.usefixtures("two_blas_threads")
def test_pins_released_in_any_order_restore_only_at_the_last():
    kernels, numpys = _kernel_and_numpy_libs()
    a, b = pinned("kernels"), pinned("all")
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)  # the first one in leaves first
    assert set(_threads_by_lib().values()) == {1}  # "all" still holds every library
    b.__exit__(None, None, None)
    assert set(_threads_by_lib().values()) == {2}
    assert not _blas_pin._PINS.holders and not _blas_pin._PINS.saved


@pytest.mark.usefixtures("two_blas_threads")
def test_pins_from_many_python_threads_restore_at_the_end():
    barrier = threading.Barrier(6)

    def work(which):
        for _ in range(50):
            with pinned(which):
                barrier.wait(timeout=10) if _ == 0 else None
    threads = [threading.Thread(target=work, args=("all" if i % 2 else "kernels",))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(_threads_by_lib().values()) == {2}
    assert not _blas_pin._PINS.holders and not _blas_pin._PINS.saved


@pytest.mark.usefixtures("two_blas_threads")
def test_ctrl_c_while_a_pin_is_released_still_restores(monkeypatch):
    lib = _blas_pin._libraries("all")[0]
    real = lib.set_num_threads
    calls = []

    def interrupted_once(n):  # a KeyboardInterrupt lands inside the restore
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(n)

    monkeypatch.setattr(lib, "set_num_threads", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        with pinned("all"):
            pass
    assert calls[:3] == [1, 2, 2]  # pinned, interrupted restore, restored on the retry
    monkeypatch.undo()
    assert set(_threads_by_lib().values()) == {2}
    assert not _blas_pin._PINS.holders and not _blas_pin._PINS.saved


@pytest.mark.usefixtures("two_blas_threads")
def test_a_pin_from_another_thread_holds_after_the_main_thread_set_a_count():
    """threadpoolctl (from 3.8) obeys one "controlling" thread per OpenBLAS and
    silently drops other threads' counts; the main thread set the count here
    (the fixture), so a pin from a worker thread did nothing, and an L-BFGS fit
    there rounded scipy's ddot by OpenBLAS's threads (tests/test_lbfgs_threads.py
    has that fit).  The pin must hold in the worker, and the count come back."""
    libs = _blas_pin._libraries("all")
    seen = {}

    def from_a_thread():
        with pinned("all"):
            seen["pinned"] = [lib.get_num_threads() for lib in libs]
        seen["after"] = [lib.get_num_threads() for lib in libs]

    t = threading.Thread(target=from_a_thread)
    t.start()
    t.join(timeout=30)
    assert seen["pinned"] == [1] * len(libs)
    assert seen["after"] == [2] * len(libs)
    libs[0].set_num_threads(2)  # and the main thread still sets counts
    assert libs[0].get_num_threads() == 2


def _blas_threads_in_forked_child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            os.write(w, repr(sorted(set(_threads_by_lib().values()))).encode())
        finally:
            os._exit(0)
    os.close(w)
    reported = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    os.close(r)
    return reported


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.usefixtures("two_blas_threads")
def test_a_child_forked_while_another_thread_holds_a_pin_is_not_pinned():
    # (the pin is held by this, the main thread)
    result = {}

    def fork_from_here():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            result["child"] = _blas_threads_in_forked_child()

    with pinned("all"):
        assert set(_threads_by_lib().values()) == {1}  # the parent is pinned meanwhile
        t = threading.Thread(target=fork_from_here)
        t.start()
        t.join(timeout=30)
    assert result["child"] == "[2]"
    assert set(_threads_by_lib().values()) == {2}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.usefixtures("two_blas_threads")
def test_a_child_forked_from_inside_a_pinned_call_is_not_pinned_either():
    # (a multiprocessing pool started from a callback: the child never
    # returns through the parent's fastbp call, so it must not keep its pin)
    with pinned("all"):
        assert _blas_threads_in_forked_child() == "[2]"
    assert set(_threads_by_lib().values()) == {2}


def test_a_batch_of_zero_total_weight_is_skipped_not_a_divergence():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    sw = np.ones(40)
    sw[:10] = 0.0  # the first mini-batch, with shuffle=False
    kw = dict(hidden_layer_sizes=(4,), batch_size=10, shuffle=False, max_iter=3, tol=0,
              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for solver in ("sgd", "adam"):
            est = BPRegressor(solver=solver, **kw).fit(X, y, sample_weight=sw)
            # no step for that batch: the model of the other three batches alone
            rest = BPRegressor(solver=solver, **kw).fit(X[10:], y[10:], sample_weight=sw[10:])
            for a, b in zip(est.coefs_ + est.intercepts_, rest.coefs_ + rest.intercepts_):
                np.testing.assert_array_equal(a, b)
            # and it adds 0 to the epoch's loss (divided by all 40 rows)
            np.testing.assert_allclose(est.loss_curve_, np.array(rest.loss_curve_) * 30 / 40,
                                       rtol=1e-12)


def _at_first_epoch_end(action):
    """Runs ``action`` at the end of the fit's first epoch."""
    return _AtTaskEnd(action, names=("epoch",), task_id=0)


def _in_another_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except Exception as exc:  # noqa: BLE001  (handed to the test)
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    return box


def test_predict_during_a_fit_in_another_thread_raises_a_clear_error():
    X, y = _digits()
    est = BPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        before = est.predict_proba(X)
        probe = _at_first_epoch_end(lambda: _in_another_thread(lambda: est.predict(X)))
        est.set_params(warm_start=True).set_callbacks(probe).fit(X, y)
    assert isinstance(probe.results[0]["error"], RuntimeError)
    assert "is being fitted in another thread" in str(probe.results[0]["error"])
    assert not np.array_equal(est.predict_proba(X), before)  # after the fit: the new model
    # a second fit of the same estimator at once is refused the same way
    probe = _at_first_epoch_end(lambda: _in_another_thread(lambda: est.fit(X, y)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_callbacks(probe).fit(X, y)
    assert "is being fitted in another thread" in str(probe.results[0]["error"])
    assert "_fit_in_progress" not in est.__dict__


@pytest.mark.parametrize("concurrent", [False, True], ids=["in-turn", "concurrent"])
def test_restarts_keep_the_fit_guard_until_the_fit_ends(monkeypatch, concurrent):
    """When a start other than 0 is kept, its attributes replace the
    estimator's, and the keys it lacked were deleted, the fit's guard among
    them: from then on (the fit's end callbacks included) a predict or a
    second fit in another thread was not refused."""
    from fastbp import _restarts

    X, y = _digits()
    est = BPClassifier(hidden_layer_sizes=(8,), max_iter=2, n_init=3, random_state=0)
    real_score = _restarts._score_of
    # start 0 never wins here, so another start's attributes replace est's
    monkeypatch.setattr(_restarts, "_score_of", lambda start, *a: (
        np.inf if start is est else real_score(start, *a)))
    monkeypatch.setattr(_restarts, "starts_run_concurrently", lambda *a: concurrent)
    probe = _AtTaskEnd(lambda: (_in_another_thread(lambda: est.predict(X)),
                                _in_another_thread(lambda: est.fit(X, y))), names=("fit",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_callbacks(probe).fit(X, y)
    assert est.best_init_ != 0
    (predicted, refitted), = probe.results
    for box in (predicted, refitted):
        assert isinstance(box.get("error"), RuntimeError), box
        assert "is being fitted in another thread" in str(box["error"])
    assert "_fit_in_progress" not in est.__dict__  # and it goes when the fit ends
    est.predict(X)


def test_packing_a_model_does_not_block_other_estimators(monkeypatch):
    """A predict that has to pack its weights (after unpickling, or after the
    user replaced coefs_) did so under the lock every estimator's fit and
    predict take; the first packing of a process also loads a compiled helper.
    Another estimator's predict must go on meanwhile."""
    import pickle

    from fastbp import estimators

    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = BPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
        b = BPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=1).fit(X, y)
    expected = a.predict(X)
    a = pickle.loads(pickle.dumps(a))  # its network is packed at its first predict
    packing, release = threading.Event(), threading.Event()
    real = estimators.Network.from_arrays.__func__

    def slow_pack(cls, coefs, intercepts, dtype):
        packing.set()
        assert release.wait(30)
        return real(cls, coefs, intercepts, dtype)

    monkeypatch.setattr(estimators.Network, "from_arrays", classmethod(slow_pack))
    stuck = threading.Thread(target=lambda: box.update(value=a.predict(X)))
    box = {}
    stuck.start()
    assert packing.wait(30)
    try:
        other = _in_another_thread_within(lambda: b.predict(X), seconds=10)
        assert "value" in other, "another estimator's predict waited for the packing"
    finally:
        release.set()
        stuck.join(30)
    np.testing.assert_array_equal(box["value"], expected)
    assert a._net.backs(a.coefs_, a.intercepts_)  # and the packed network is kept


def _in_another_thread_within(fn, seconds):
    box = {}

    def run():
        box["value"] = fn()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=seconds)
    return box


def test_a_predict_that_read_the_model_before_a_fit_finishes_on_that_model():
    """The race a lock cannot close (the predict read its model, then a warm
    start or partial_fit began): the fit trains a network of its own, so the
    predict computes with the weights it read, none torn by a step."""
    X, y = _digits()
    est = BPClassifier(hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X, y, classes=np.unique(y))
    model = est._model()  # what predict_proba reads first
    expected = est.predict_proba(X)
    est.partial_fit(X, y)  # begins before that predict computes
    np.testing.assert_array_equal(est._forward_pass_fast(X, model=model), expected)
    assert not np.array_equal(est.predict_proba(X), expected)
