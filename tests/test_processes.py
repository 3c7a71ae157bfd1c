"""Python threads under each numba threading layer, and multiprocessing children
of each start method, after multithreaded work in the parent.

The issue's contract: "predict_proba from 8 Python threads on one model;
separate models fitted in 4 Python threads at once; correct results, no crash,
no deadlock, under each numba threading layer available (omp, workqueue, tbb
if installed).  predict and fit in multiprocessing children started with fork,
forkserver and spawn after a multithreaded fit in the parent."

``test_threads.py`` covers threads and a fork child in the pytest process
(whatever layer numba picked there); here each layer runs in a fresh
interpreter (the layer is fixed once numba launches its threads), doing the
scenarios of ``_process_tasks.py``:

* ``after-main``: the main thread fits first (numba's threads are running),
  then 8 threads predict and 4 threads fit at once;
* ``threads-first``: the process's first compiled calls are those of the 8
  predicting and 4 fitting threads, started together.

Every result must equal, bit for bit, the same call made alone in the main
thread (fastbp's results do not depend on threads); a crash (numba aborts
the process on concurrent use of ``workqueue``) or a thread still running after
two minutes fails the test.
"""

import json
import multiprocessing
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import _process_tasks as T
from fastbp import _threads, _training
from fastbp import _kernels as K

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = ["omp", "workqueue", "tbb"]
MODES = ["after-main", "threads-first"]
SUBPROCESS_TIMEOUT = 300  # a deadlocked scenario exits on its own after JOIN_TIMEOUT
POOL_TIMEOUT = 180

_THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_THREADING_LAYER",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _env(layer):
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    # two threads even on a 1-CPU machine: real parallel regions
    env.update(NUMBA_NUM_THREADS="2", NUMBA_THREADING_LAYER=layer,
               PYTHONPATH=os.pathsep.join([HERE, env.get("PYTHONPATH", "")]))
    return env


_layer_probe = {}


def _layer_unavailable(layer):
    """None if numba can launch ``layer`` here, else why not (a fresh
    interpreter: launching threads needs no compilation)."""
    if layer not in _layer_probe:
        out = subprocess.run(
            [sys.executable, "-c",
             "import numba; numba.get_num_threads(); print(numba.threading_layer())"],
            env=_env(layer), capture_output=True, text=True, timeout=120)
        got = out.stdout.strip().splitlines()[-1:] == [layer]
        _layer_probe[layer] = None if got else (
            "numba's %r threading layer is not available here%s: %s" % (
                layer, " (the tbb package is not installed)" if layer == "tbb" else "",
                " ".join(out.stderr.strip().splitlines()[-2:])[:300]))
    return _layer_probe[layer]


@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory):
    """The model the threads predict with, fitted with two threads, pickled."""
    path = tmp_path_factory.mktemp("processes") / "model.pkl"
    with _threads.eager_parallel():
        clf = T.prediction_model()
    path.write_bytes(pickle.dumps(clf))
    return str(path)


@pytest.mark.parametrize("layer, mode", [
    # ("workqueue", "threads-first") aborted the process until _parallel_is_safe
    # launched numba's threads before asking for their layer
    pytest.param(layer, mode, id="%s-%s" % (layer, mode))
    for layer in LAYERS for mode in MODES])
def test_threads_predict_and_fit_under_each_threading_layer(layer, mode, pickled_model):
    why = _layer_unavailable(layer)
    if why:
        pytest.skip(why)
    out = subprocess.run(
        [sys.executable, "-c",
         "import _process_tasks; _process_tasks.main(%r)" % ([mode, pickled_model],)],
        env=_env(layer), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        cwd=HERE)
    assert out.returncode == 0, (
        "the scenario process exited with %d (negative: killed by that signal)\n%s"
        % (out.returncode, out.stderr[-3000:]))
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print("\n%s/%s: %.2f s of thread work; threads running parallel kernels: %s; "
          "threads running serial ones: %s" % (layer, mode, res["seconds"],
                                               res["threads_parallel"], res["threads_serial"]))
    assert res["layer"] == layer
    assert not res["hung"], "threads still running after %s s: %s" % (T.JOIN_TIMEOUT, res)
    assert not res["errors"], res["errors"]
    assert res["n_results"] == T.N_PREDICT_THREADS + T.N_FIT_THREADS
    assert not res["mismatched"], "results differ from the one-at-a-time calls: %s" % res
    if layer == "workqueue":
        # documented: off the main thread, workqueue runs the serial kernels
        assert not res["threads_parallel"], res
    else:
        # the parallel kernels really ran from several Python threads at once
        assert len(res["threads_parallel"]) >= 2, res


# ---- multiprocessing ----------------------------------------------------------

START_METHODS = ["fork", "forkserver", "spawn"]


@pytest.fixture(scope="module")
def parent_fits():
    """In this process: model 0 fitted with two threads (parallel kernels, which
    start numba's thread pool) and its predictions; every model's fitted state."""
    calls = []
    real = _training._run_batches

    def spy(kernel, *args):
        calls.append(kernel is K.TRAIN.parallel)
        return real(kernel, *args)

    _training._run_batches = spy
    try:
        with _threads.eager_parallel():
            clf = T.prediction_model()
            states = [T.fit_state(i) for i in range(T.N_FIT_THREADS)]
    finally:
        _training._run_batches = real
    assert any(calls), "the parent's fit did not run the parallel kernel"
    X = T.data()[0]
    return clf, X, clf.predict_proba(X), clf.predict(X), states


@pytest.mark.parametrize("method", START_METHODS)
def test_predict_and_fit_in_child_processes(method, parent_fits):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip("no %s start method on this platform" % method)
    clf, X, proba, pred, states = parent_fits
    ctx = multiprocessing.get_context(method)
    pool = ctx.Pool(2)
    try:
        predicted = pool.apply_async(T.mp_predict, (clf, X))
        fitted = pool.map_async(T.mp_fit, range(T.N_FIT_THREADS))
        predicted = predicted.get(timeout=POOL_TIMEOUT)  # a hang: TimeoutError
        fitted = fitted.get(timeout=POOL_TIMEOUT)
        pool.close()  # let the workers exit on their own (and clean up after them)
        pool.join()
    finally:
        pool.terminate()
    infos = [predicted["info"]] + [f["info"] for f in fitted]
    print("\n%s children: %s" % (method, sorted({json.dumps(i, sort_keys=True) for i in infos})))
    np.testing.assert_array_equal(predicted["proba"], proba)
    np.testing.assert_array_equal(predicted["pred"], pred)
    for i, got in enumerate(fitted):
        diff = sorted(k for k, v in states[i].items() if got["state"].get(k) != v)
        assert not diff, "model %d fitted in a %s child differs in %s" % (i, method, diff)
        assert got["state"].keys() == states[i].keys()
    ran_parallel = predicted["parallel"] + [t for f in fitted for t in f["parallel"]]
    if method == "fork":
        # a fork of a process whose numba threads started: the serial kernels
        # (GNU OpenMP would kill the child), and fastbp knows why
        assert all(i["forked_child"] for i in infos)
        assert not ran_parallel
    else:
        assert not any(i["forked_child"] for i in infos)
        if all(i["numba_max_threads"] >= 2 for i in infos):
            assert ran_parallel, "no child ran a parallel kernel"
