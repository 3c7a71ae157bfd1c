"""asv: fit / predict_proba / quality of BPClassifier, with MLPClassifier as baseline.

Every suite comes twice: ``BP*`` (fastbp.BPClassifier) and ``MLP*``
(sklearn.neural_network.MLPClassifier, same constructor parameters), so ``asv
compare`` / ``asv publish`` show both.  Workloads are the reduced ``ASV_WORKLOADS``
(see ``common.py`` and ``bench/README.md``); the full-size comparison is
``bench/compare.py``.

Fixed work: exactly ``epochs`` epochs (tol=0, no early stopping); compile time is
excluded (``setup`` warms the JIT; ``compile.py`` times it separately).
"""

import timeit

from .common import (
    ASV_WORKLOADS,
    FitTiming,
    fit_quietly,
    log_loss_of,
    make_data,
    make_estimator,
    warm_jit,
)

SOLVERS = ["sgd", "adam"]
DTYPES = ["float32", "float64"]


class _Fit(FitTiming):
    """time_fit / peakmem_fit per workload x solver x dtype.

    lbfgs runs ``epochs`` L-BFGS iterations (``max_iter``), each a full-batch
    evaluation or two (on mnist-like, fastbp's are row chunks: see
    ``fastbp._lbfgs.lbfgs_workspace``).
    """

    engine = None  # set by subclasses
    param_names = ["workload", "solver", "dtype"]
    params = [list(ASV_WORKLOADS), SOLVERS + ["lbfgs"], DTYPES]

    def setup(self, workload, solver, dtype):
        self.workload = ASV_WORKLOADS[workload]
        self.X, self.y, _, _ = make_data(self.workload, dtype)
        # Numba compilation (loads from the on-disk cache when warm; not timed)
        warm_jit(self.engine, dtypes=(dtype,), solvers=(solver,))

    def time_fit(self, workload, solver, dtype):
        fit_quietly(make_estimator(self.engine, self.workload, solver), self.X, self.y)

    def peakmem_fit(self, workload, solver, dtype):
        fit_quietly(make_estimator(self.engine, self.workload, solver), self.X, self.y)


class BPFit(_Fit):
    engine = "fastbp"


class MLPFit(_Fit):
    engine = "sklearn"


class _Quality:
    """Final training loss (``loss_``), held-out log-loss and accuracy.

    ``setup_cache`` fits every combination once per asv run, so a faster but wrong
    engine shows up as a jump in these tracks.
    """

    engine = None
    param_names = ["workload", "solver", "dtype"]
    params = [list(ASV_WORKLOADS), SOLVERS, DTYPES]
    timeout = 600  # setup_cache fits all 16 combinations

    def _fit_all(self):
        results = {}
        for name, w in ASV_WORKLOADS.items():
            for dtype in DTYPES:
                X, y, X_test, y_test = make_data(w, dtype)
                for solver in SOLVERS:
                    est = fit_quietly(make_estimator(self.engine, w, solver), X, y)
                    results[(name, solver, dtype)] = {
                        "final_loss": float(est.loss_),
                        "test_log_loss": log_loss_of(est, X_test, y_test),
                        "test_score": float(est.score(X_test, y_test)),
                    }
        return results

    def track_final_loss(self, results, workload, solver, dtype):
        return results[(workload, solver, dtype)]["final_loss"]

    track_final_loss.unit = "loss_"

    def track_test_log_loss(self, results, workload, solver, dtype):
        return results[(workload, solver, dtype)]["test_log_loss"]

    track_test_log_loss.unit = "log-loss"

    def track_test_score(self, results, workload, solver, dtype):
        return results[(workload, solver, dtype)]["test_score"]

    track_test_score.unit = "accuracy"


# asv runs one setup_cache per *function* (keyed by module and line), so each
# subclass needs its own; an inherited one would be shared by both engines.
class BPQuality(_Quality):
    engine = "fastbp"

    def setup_cache(self):
        return self._fit_all()


class MLPQuality(_Quality):
    engine = "sklearn"

    def setup_cache(self):
        return self._fit_all()


_MODELS = {}  # (engine, dtype) -> (fitted model, test X)


def _mnist_model(engine, dtype):
    """A model of the mnist-like network and the test input, fitted once per
    process (setup re-runs before every sample).  The weights' values do not
    matter for a predict timing: 1 epoch on 2000 rows, after the JIT warm-up."""
    key = (engine, dtype)
    if key not in _MODELS:
        w = ASV_WORKLOADS["mnist-like"]
        X, y, X_test, _ = make_data(w, dtype)
        warm_jit(engine, dtypes=(dtype,), solvers=("adam",))  # Numba compilation
        est = make_estimator(engine, w, "adam").set_params(max_iter=1)
        _MODELS[key] = fit_quietly(est, X[:2000], y[:2000]), X_test
    return _MODELS[key]


class _PredictProba:
    """predict_proba on the mnist-like held-out input (10000 x 784, 10 classes)."""

    engine = None
    param_names = ["dtype"]
    params = [DTYPES]
    timer = timeit.default_timer  # wall time
    number = 1
    repeat = (3, 10, 10.0)
    rounds = 1
    warmup_time = 0.0

    def setup(self, dtype):
        self.est, self.X_test = _mnist_model(self.engine, dtype)
        self.est.predict_proba(self.X_test[:10])

    def time_predict_proba(self, dtype):
        self.est.predict_proba(self.X_test)


class BPPredictProba(_PredictProba):
    engine = "fastbp"


class MLPPredictProba(_PredictProba):
    engine = "sklearn"


class _PredictLatency:
    """predict_proba latency on 1, 10 and 10000 rows of the mnist-like input
    (float32), a model of the mnist-like network."""

    engine = None
    param_names = ["rows"]
    params = [[1, 10, 10000]]
    timer = timeit.default_timer
    number = 20  # a one-row call is tens of microseconds: average 20 calls
    repeat = (3, 10, 10.0)
    rounds = 1
    warmup_time = 0.0
    def setup(self, rows):
        self.est, X_test = _mnist_model(self.engine, "float32")
        self.X = X_test[:rows].copy()
        self.est.predict_proba(self.X)  # (loads the few-rows kernel)

    def time_predict_proba(self, rows):
        self.est.predict_proba(self.X)


class BPPredictLatency(_PredictLatency):
    engine = "fastbp"


class MLPPredictLatency(_PredictLatency):
    engine = "sklearn"


class _PartialFit(FitTiming):
    """One partial_fit call on a 1000-row chunk of the mnist-like data (float32,
    the mnist-like network, adam): the unit a stream (dask-ml's Incremental)
    is made of.  Every sample is the next chunk of a model already streaming."""

    engine = None
    repeat = (5, 30, 10.0)  # a call is ~3 ms: more samples than a whole fit needs
    chunk = 1000

    def setup(self):
        import numpy as np

        w = ASV_WORKLOADS["mnist-like"]
        self.X, self.y, _, _ = make_data(w, "float32")
        self.classes = np.unique(self.y)
        warm_jit(self.engine, dtypes=("float32",), solvers=("adam",))
        self.est = make_estimator(self.engine, w, "adam")
        self.est.partial_fit(self.X[:self.chunk], self.y[:self.chunk], classes=self.classes)
        self.start = 0

    def time_partial_fit(self):
        self.start = (self.start + self.chunk) % (self.X.shape[0] - self.chunk)
        rows = slice(self.start, self.start + self.chunk)
        self.est.partial_fit(self.X[rows], self.y[rows])


class BPPartialFit(_PartialFit):
    engine = "fastbp"


class MLPPartialFit(_PartialFit):
    engine = "sklearn"


class BPThreads(FitTiming):
    """Thread scaling: BPClassifier(n_jobs=1) vs n_jobs=2 (adam, float32)."""

    param_names = ["workload", "n_jobs"]
    params = [["small", "mnist-like"], [1, 2]]

    def setup(self, workload, n_jobs):
        self.workload = ASV_WORKLOADS[workload]
        self.X, self.y, _, _ = make_data(self.workload, "float32")
        # Numba compilation
        warm_jit("fastbp", dtypes=("float32",), solvers=("adam",))

    def time_fit(self, workload, n_jobs):
        est = make_estimator("fastbp", self.workload, "adam", n_jobs=n_jobs)
        fit_quietly(est, self.X, self.y)
