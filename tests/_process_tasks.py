"""Work for ``test_processes.py`` done in other processes and threads.

Two uses:

* ``python -c "import _process_tasks; _process_tasks.main([MODE, MODEL_PATH])"``
  (``tests/`` on PYTHONPATH, ``NUMBA_THREADING_LAYER`` set by the caller) runs
  one threads scenario in a fresh interpreter and prints one JSON line:

  - ``after-main``: the main thread fits (parallel kernels, so numba's
    threading layer is running), then ``predict_proba`` from 8 Python threads
    on one model and 4 models fitted in 4 Python threads at once.
  - ``threads-first``: nothing has run a parallel region yet; 8 threads
    predicting with the model pickled at MODEL_PATH and 4 threads fitting
    begin together.  Each thread's first ``fastbp._threads.choose`` (where a
    call picks the serial or the parallel kernel) waits at a barrier until
    every thread has chosen, so their first compiled calls start together: the
    worst case of a race that also happens without the barrier (half of the
    runs under ``workqueue``, measured).

  Every result is compared, bit for bit, with the same work done afterwards in
  the main thread, one call at a time.

* ``mp_predict``/``mp_fit`` are the functions a ``multiprocessing`` pool of
  each start method runs (fork, forkserver, spawn): they are importable by name
  because ``tests/`` is on the parent's ``sys.path`` (pytest's rootdir
  insertion), which spawn and forkserver children receive.
"""

import json
import os
import pickle
import sys
import threading
import time
import warnings

import numpy as np

from _fit_digest import fitted_state
from fastbp import BPClassifier, BPRegressor, _threads, _training
from fastbp import _kernels as K

N_PREDICT_THREADS = 8
N_FIT_THREADS = 4
PREDICT_ROUNDS = 4
JOIN_TIMEOUT = 120.0  # a thread still running after this: a deadlock
BARRIER_TIMEOUT = 30.0


def data():
    """Classification and regression data, the same in every process."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(640, 30))
    y = np.argmax(X[:, :3] @ rng.normal(size=(3, 3)), axis=1)
    Xr = rng.normal(size=(400, 12))
    yr = Xr @ rng.normal(size=12) + 0.1 * rng.normal(size=400)
    return X, y, Xr, yr


def model(i, n_jobs=2):
    """Model ``i`` (0-3) and its training data: four solvers, both estimators,
    batches of 64 rows (several work blocks: real parallel regions)."""
    X, y, Xr, yr = data()
    common = dict(max_iter=4, random_state=i, n_jobs=n_jobs)
    if i == 0:
        return BPClassifier(hidden_layer_sizes=(48, 24), batch_size=64, **common), X, y
    if i == 1:
        return BPClassifier(hidden_layer_sizes=(40,), solver="sgd", batch_size=64,
                            learning_rate_init=0.05, **common), X.astype(np.float32), y
    if i == 2:
        return BPRegressor(hidden_layer_sizes=(32,), solver="rmsprop", batch_size=64,
                           **common), Xr, yr
    return BPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", **dict(common, max_iter=30)), Xr, yr


def fit(i, n_jobs=2):
    est, Xm, ym = model(i, n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(Xm, ym)


def fit_state(i, n_jobs=2):
    est = fit(i, n_jobs)
    return fitted_state(est, model(i)[1])


def prediction_model():
    """The model whose predictions the threads compare (fitted with two threads)."""
    return fit(0)


def _layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region launched yet
        return None


class KernelLog:
    """Which Python threads ran a parallel compiled kernel (training calls and
    the kernel ``choose`` picked for predictions).  One per process
    (``KernelLog.get()``, cleared on each get): a pool worker runs several tasks."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls()
        log = cls._instance
        log.parallel_threads.clear()
        log.serial_threads.clear()
        log.before_kernel = None
        return log

    def __init__(self):
        self.parallel_threads = set()
        self.serial_threads = set()
        self._lock = threading.Lock()
        real_run, real_choose = _training._run_batches, _threads.choose

        def run(kernel, *args):
            self._note(kernel in (K.TRAIN.parallel, K.TRAIN_EXTENDED.parallel))
            return real_run(kernel, *args)

        def choose(pair, n_threads):
            kernel, n = real_choose(pair, n_threads)
            if pair is not K.TRAIN and pair is not K.TRAIN_EXTENDED:  # (noted when run)
                self._note(kernel is pair.parallel)
            if self.before_kernel is not None:
                self.before_kernel()
            return kernel, n

        self.parallel_threads = set()
        self.serial_threads = set()
        self.before_kernel = None
        _training._run_batches = run
        _threads.choose = choose

    def _note(self, parallel):
        with self._lock:
            (self.parallel_threads if parallel else self.serial_threads).add(
                threading.current_thread().name)


def _first_choice_barrier(log, parties):
    """Each thread's first kernel choice waits until ``parties`` threads chose."""
    barrier = threading.Barrier(parties)
    waited = threading.local()

    def wait():
        if threading.current_thread() is threading.main_thread() or getattr(waited, "done", False):
            return
        waited.done = True
        try:
            barrier.wait(timeout=BARRIER_TIMEOUT)
        except threading.BrokenBarrierError:
            pass  # some thread did not reach a kernel: go on without it

    log.before_kernel = wait
    return barrier


def run_threads(jobs, start_barrier=None):
    """Run each ``(name, fn)`` in its own Python thread; returns
    ({name: result}, {name: error repr}, [names of threads still running])."""
    results, errors = {}, {}

    def target(name, fn):
        try:
            if start_barrier is not None:
                start_barrier.wait(timeout=BARRIER_TIMEOUT)
            results[name] = fn()
        except BaseException as exc:  # reported, not raised in a thread
            errors[name] = repr(exc)

    threads = [threading.Thread(target=target, args=job, name=job[0], daemon=True)
               for job in jobs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    return results, errors, [t.name for t in threads if t.is_alive()]


def _predict_job(clf, X):
    def job():
        return [clf.predict_proba(X) for _ in range(PREDICT_ROUNDS)]
    return job


def _fit_job(i):
    def job():
        est = fit(i)
        return fitted_state(est, model(i)[1])
    return job


def threads_scenario(mode, model_path=None):
    log = KernelLog.get()
    X = data()[0]
    out = {"mode": mode, "layer_before": _layer()}
    t0 = time.monotonic()
    if mode == "after-main":
        clf = prediction_model()  # parallel kernels in the main thread first
        out["layer_after_main_fit"] = _layer()
        expected_proba = clf.predict_proba(X)
        expected_fits = [fit_state(i) for i in range(N_FIT_THREADS)]
        main_parallel = sorted(log.parallel_threads)
        log.parallel_threads.clear()
        log.serial_threads.clear()
        jobs = [("predict-%d" % k, _predict_job(clf, X)) for k in range(N_PREDICT_THREADS)]
        pred_res, pred_err, pred_hung = run_threads(
            jobs, threading.Barrier(N_PREDICT_THREADS))
        jobs = [("fit-%d" % i, _fit_job(i)) for i in range(N_FIT_THREADS)]
        fit_res, fit_err, fit_hung = run_threads(jobs, threading.Barrier(N_FIT_THREADS))
        results = {**pred_res, **fit_res}
        errors = {**pred_err, **fit_err}
        hung = pred_hung + fit_hung
        out["main_thread_parallel"] = main_parallel
    elif mode == "threads-first":
        with open(model_path, "rb") as f:
            clf = pickle.load(f)
        _first_choice_barrier(log, N_PREDICT_THREADS + N_FIT_THREADS)
        jobs = [("predict-%d" % k, _predict_job(clf, X)) for k in range(N_PREDICT_THREADS)]
        jobs += [("fit-%d" % i, _fit_job(i)) for i in range(N_FIT_THREADS)]
        results, errors, hung = run_threads(jobs)
        log.before_kernel = None
        threads_parallel = sorted(log.parallel_threads)
        threads_serial = sorted(log.serial_threads)
        expected_proba = clf.predict_proba(X)  # then one call at a time, here
        expected_fits = [fit_state(i) for i in range(N_FIT_THREADS)]
        log.parallel_threads, log.serial_threads = set(threads_parallel), set(threads_serial)
    else:
        raise ValueError(mode)
    mismatched = []
    for name, res in results.items():
        if name.startswith("predict"):
            if not all(np.array_equal(p, expected_proba) for p in res):
                mismatched.append(name)
        else:
            i = int(name.split("-")[1])
            if res != expected_fits[i]:
                mismatched.append(name)
    out.update(
        layer=_layer(), seconds=time.monotonic() - t0, n_results=len(results),
        errors=errors, hung=hung, mismatched=sorted(mismatched),
        threads_parallel=sorted(log.parallel_threads - {"MainThread"}),
        threads_serial=sorted(log.serial_threads - {"MainThread"}))
    return out


def main(argv):
    mode = argv[0]
    out = threads_scenario(mode, argv[1] if len(argv) > 1 else None)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    if out["hung"]:
        os._exit(3)  # threads still running cannot be joined


# ---- multiprocessing children -------------------------------------------------

def child_info():
    """What a child process sees: its numba and BLAS thread settings, whether
    fastbp knows it is a fork child of a process that ran parallel regions."""
    import multiprocessing

    import numba
    from threadpoolctl import threadpool_info

    return {"pid": os.getpid(), "start_method": multiprocessing.get_start_method(allow_none=True),
            "layer": _layer(), "numba_threads": int(numba.get_num_threads()),
            "numba_max_threads": int(numba.config.NUMBA_NUM_THREADS),
            "forked_child": bool(_threads._state["forked_child"]),
            "blas": sorted([i["internal_api"], int(i["num_threads"])]
                           for i in threadpool_info() if i["user_api"] == "blas")}


def mp_predict(clf, X):
    log = KernelLog.get()
    with _threads.eager_parallel():
        proba = clf.predict_proba(X)
        pred = clf.predict(X)
    return {"proba": proba, "pred": pred, "parallel": sorted(log.parallel_threads),
            "serial": sorted(log.serial_threads), "info": child_info()}


def mp_fit(i):
    log = KernelLog.get()
    with _threads.eager_parallel():
        state = fit_state(i)
    return {"state": state, "parallel": sorted(log.parallel_threads),
            "serial": sorted(log.serial_threads), "info": child_info()}
