"""Fit a fixed set of models and fingerprint every fitted attribute.

Used by ``test_threads.py`` to compare fits made under different thread
settings and in different processes (``python -c "import _fit_digest; _fit_digest.main(['MODE'])"`` with
``tests/`` on PYTHONPATH prints one JSON line, so that process-pool workers
import these functions by name).  The fingerprint covers every public fitted attribute
(``coefs_``, ``loss_curve_``, ``n_iter_``, ``validation_scores_``, ...), the
optimizer state and the predictions, bit for bit.

MODE is ``plain`` (fit here), ``fork``/``spawn`` (fit in a child process of
that start method, after this process ran parallel kernels), ``loky`` (fit in
a joblib/loky worker, as GridSearchCV(n_jobs=2) does) or ``dask`` (fit in a
worker of a local dask.distributed cluster).
"""

import hashlib
import json
import sys
import warnings

import numpy as np
import scipy.sparse as sp

import fastbp
from fastbp import _kernels as K
from fastbp import _threads

# On a 1-CPU machine every fit would be a single work block and thread
# invariance trivially true; give such a machine two blocks so that the tests
# compare real multi-block fits everywhere.  (All processes of a test import
# this module, so they all use the same value.)
if _threads.MACHINE_CPUS < 2:
    _threads.MACHINE_CPUS = 2


def _fingerprint(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}:" + hashlib.sha256(
            np.ascontiguousarray(value).tobytes()).hexdigest()[:20]
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return f"{type(value).__name__}:{float(value).hex()}"
    return repr(value)


def fitted_state(est, X):
    """Attribute name -> exact fingerprint, for every fitted attribute."""
    state = {k: _fingerprint(v) for k, v in sorted(vars(est).items())
             if k.endswith("_") and not k.startswith("_")}
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        state["_optimizer.moments"] = _fingerprint(opt.moments)
        state["_optimizer.learning_rate"] = _fingerprint(opt.learning_rate)
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    state["predictions"] = _fingerprint(out)
    return state


def _data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16.0
    y = y[:400]
    rng = np.random.RandomState(0)
    Xr = rng.normal(size=(150, 6))
    yr = Xr @ rng.normal(size=6) + 0.1 * rng.normal(size=150)
    return X, y, Xr, yr


def fit_all(n_jobs=None):
    """Fit the fixed models; returns {model name: fitted_state}."""
    from fastbp import BPClassifier, BPRegressor

    X, y, Xr, yr = _data()
    models = {
        # several blocks, the parameter-owned gradient schedule, float32 adam
        "adam-f32": (BPClassifier(hidden_layer_sizes=(33, 17), batch_size=64, max_iter=4,
                                  learning_rate_init=0.01, random_state=0), X.astype(np.float32), y),
        # Nesterov sgd with early stopping and the tol-based rule (n_iter_ depends
        # on last bits of the validation scores)
        "sgd-es-f64": (BPClassifier(hidden_layer_sizes=(8,), solver="sgd", batch_size=40,
                                    learning_rate_init=0.1, max_iter=15, early_stopping=True,
                                    n_iter_no_change=3, tol=1e-4, random_state=0), X, y),
        # the tol-based stopping rule on the training loss (reads loss_curve_)
        "sgd-tol-f64": (BPRegressor(hidden_layer_sizes=(9,), solver="sgd", batch_size=32,
                                    learning_rate_init=0.01, max_iter=40, tol=1e-3,
                                    n_iter_no_change=2, random_state=0), Xr, yr),
        # L-BFGS amplifies any last-bit difference of the gradient
        "lbfgs-f64": (BPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", alpha=1.0,
                                  max_iter=60, random_state=0), Xr, yr),
        # the extended kernels: CSR input, gelu, dropout masks, AdamW, early stopping
        # on the validation loss
        "extended-csr-f64": (BPClassifier(hidden_layer_sizes=(33, 17), activation="gelu",
                                          dropout=[0.3, 0.1], solver="adamw", batch_size=64,
                                          max_iter=6, learning_rate_init=0.01,
                                          early_stopping=True, validation_metric="loss",
                                          random_state=0), sp.csr_matrix(X), y),
        # restarts (concurrent when threads allow) with RMSprop and squared error
        "restarts-f32": (BPClassifier(hidden_layer_sizes=(8,), solver="rmsprop",
                                      loss="squared_error", n_init=3, batch_size=50,
                                      max_iter=5, random_state=0), X.astype(np.float32), y),
        "huber-f64": (BPRegressor(loss="huber", huber_delta=0.5, activation="elu",
                                  hidden_layer_sizes=(9,), batch_size=32, max_iter=5,
                                  random_state=0), Xr, yr),
    }
    states = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (est, Xm, ym) in models.items():
            est.set_params(n_jobs=n_jobs)
            est.fit(Xm, ym)
            states[name] = fitted_state(est, Xm)
    return states


def _spy_kernels():
    """Record (parallel kernel?, numba threads) of every compiled epoch call."""
    import numba

    from fastbp import _training

    calls = []
    real = _training._run_batches

    def spy(kernel, *args):
        calls.append([kernel is K.TRAIN.parallel, numba.get_num_threads()])
        return real(kernel, *args)

    _training._run_batches = spy
    return calls


def _fit_in_dask_worker(n_jobs):
    """fit_all in a worker of a local dask cluster (its nanny sets
    OMP_NUM_THREADS=1 there), on loopback, scratch space in a temp dir."""
    import tempfile

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"temporary-directory": tempfile.mkdtemp()}), \
            LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                         processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        return client.submit(fit_all, n_jobs, pure=False).result()


def run(mode, n_jobs=None):
    import numba

    calls = _spy_kernels()
    if mode == "plain":
        states = fit_all(n_jobs)
    else:
        # this process runs parallel kernels first, as a real parent would
        fit_all(n_jobs)
        if mode == "loky":
            from joblib import Parallel, delayed

            states = Parallel(n_jobs=2)(delayed(fit_all)(n_jobs) for _ in range(2))[1]
        elif mode == "dask":
            states = _fit_in_dask_worker(n_jobs)
        else:
            import multiprocessing

            with multiprocessing.get_context(mode).Pool(1) as pool:
                states = pool.apply(fit_all, (n_jobs,))
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    return {"states": states, "calls": calls, "layer": layer,
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "version": fastbp.__version__}


def main(argv):
    mode = argv[0]
    n_jobs = None if len(argv) < 2 else int(argv[1])
    sys.stdout.write(json.dumps(run(mode, n_jobs)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
