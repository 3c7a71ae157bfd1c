"""Shared workload table, seeded data and estimator settings for fastbp benchmarks.

One registry feeds the asv suites (``bench/benchmarks/*.py``) and the side-by-side
script (``bench/compare.py``), so both always train the same networks on the same data.

Nothing here runs a kernel at import time: asv imports every module of the suite in
each benchmark process (and in the forkserver, where an OpenMP region would kill the
forked children).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import timeit
import warnings
from dataclasses import dataclass, replace

import numpy as np

#: Seed for every data set and every estimator (``random_state``).
SEED = 0

#: make_classification's class separation (1.0 leaves the asv variants near chance).
CLASS_SEP = 2.0

#: sklearn's defaults, spelled out: every engine gets exactly these.
ALPHA = 1e-4
LEARNING_RATE_INIT = 1e-3
MOMENTUM = 0.9
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class Workload:
    """A classification training job: data shape, network and schedule."""

    name: str
    n_samples: int  # training rows
    n_features: int
    n_classes: int
    hidden: tuple
    batch_size: int
    epochs: int
    n_test: int  # held-out rows (test score, predict_proba input)
    n_informative: int

    @property
    def n_outputs(self):
        # sklearn (and fastbp) use one logistic unit for two classes.
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def layer_sizes(self):
        return (self.n_features, *self.hidden, self.n_outputs)

    def n_weights(self):
        """(p, p_first): weights in all layers and in the first layer (no biases)."""
        sizes = self.layer_sizes
        p = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        return p, sizes[0] * sizes[1]

    def train_flops(self):
        """Exact GEMM FLOPs of training: per sample per epoch, forward 2p, weight
        gradients 2p, deltas 2(p - p_first); times rows times epochs."""
        p, p_first = self.n_weights()
        return self.n_samples * self.epochs * (4 * p + 2 * (p - p_first))


#: The full workloads, as used by ``bench/compare.py``.
WORKLOADS = {
    w.name: w
    for w in [
        Workload("small", 10_000, 20, 2, (64,), 200, 10, 2_000, 10),
        Workload("mnist-like", 60_000, 784, 10, (128,), 200, 3, 10_000, 64),
        Workload("wide", 20_000, 512, 10, (1024, 1024), 256, 1, 2_000, 64),
        Workload("deep", 20_000, 100, 5, (256, 256, 256, 256), 128, 2, 2_000, 32),
    ]
}

#: Reduced ("fast") variants for asv, so that a whole ``asv run`` stays around ten
#: minutes on 2 cores.  Same features, classes, network and batch size as the full
#: workload; fewer rows (and epochs) where noted.  The data of a reduced variant is
#: generated on its own (same seed), not sliced from the full set.
ASV_WORKLOADS = {
    "small": WORKLOADS["small"],  # unchanged: 10000 rows, 10 epochs
    "mnist-like": replace(WORKLOADS["mnist-like"], n_samples=10_000, epochs=2, n_test=10_000),
    "wide": replace(WORKLOADS["wide"], n_samples=4_000, epochs=1),
    "deep": replace(WORKLOADS["deep"], n_samples=5_000, epochs=2),
}


def _cache_dir():
    path = os.environ.get("FASTBP_BENCH_CACHE") or os.path.join(
        tempfile.gettempdir(), "fastbp-bench-data"
    )
    os.makedirs(path, exist_ok=True)
    return path


#: fastbp's own options (issue 8): name -> constructor parameters on top of a
#: workload's.  ``bench/options.py`` times them all, the asv suite a subset.
OPTIONS = {
    "default": {},
    "dropout=0.2": dict(dropout=0.2),
    "rmsprop": dict(solver="rmsprop"),
    "adamw": dict(solver="adamw"),
    "gelu": dict(activation="gelu"),
    "leaky_relu": dict(activation="leaky_relu"),
    "elu": dict(activation="elu"),
    "softplus": dict(activation="softplus"),
    "squared_error": dict(loss="squared_error"),
    "early_stopping": dict(early_stopping=True, n_iter_no_change=10**6),
    "early_stopping, validation_metric='loss'": dict(
        early_stopping=True, n_iter_no_change=10**6, validation_metric="loss"),
}


class FitTiming:
    """asv timing attributes for a benchmark whose call is one whole fit: wall time
    (the kernels are multi-threaded), 3 single-call samples in one process, no
    warm-up loop (``setup`` compiles)."""

    timer = timeit.default_timer
    number = 1
    repeat = 3
    rounds = 1
    warmup_time = 0.0
    timeout = 300


#: The epoch-time scaling series (``scaling.py``, ``compare.py --series scaling``):
#: rows of random float32 data with 100 features, one epoch each.
SCALING_N = (10_000, 30_000, 100_000, 300_000, 1_000_000)
SCALING_FEATURES = 100


def scaling_workload(n):
    """One epoch of a (64,) relu network, batch 200, on ``n`` rows of ``scaling_data``."""
    return Workload(f"n={n}", n, SCALING_FEATURES, 2, (64,), 200, 1, 0, SCALING_FEATURES)


_DATA = {}


def cpu_model():
    """The CPU's model name (quoted with every table: machines differ)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def proc_status():
    """{"VmRSS", "VmHWM", "RssAnon", "RssFile"} of this process in MiB from
    ``/proc/self/status`` (Linux), or {} where there is none.  ``getrusage``'s
    ``ru_maxrss`` is no substitute: it cannot be reset between measurements."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(line.split()[1]) / 1024.0  # kB
    except OSError:
        return {}
    return out


def reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def make_data(workload, dtype="float32"):
    """Seeded, deterministic ``(X_train, y_train, X_test, y_test)`` for a workload.

    ``make_classification`` with ``n_informative`` informative features, two
    clusters per class and ``class_sep=2`` (learnable but not saturated in the
    epoch budgets: held-out accuracy 0.27-0.99, so a broken engine shows).
    Generated once, in a child process, and cached as float32 ``.npy`` in the temp
    dir (``$FASTBP_BENCH_CACHE`` overrides); float64 is that data upcast.  Arrays
    are C-contiguous and writable (never memmaps: a read-only array is another
    numba type and would compile again).
    """
    dtype = np.dtype(dtype)
    key = (workload, dtype.name)
    if key in _DATA:
        return _DATA[key]
    w = workload
    n = w.n_samples + w.n_test
    stem = f"{w.n_features}f-{w.n_classes}c-{w.n_informative}i-{n}n-sep{CLASS_SEP}-seed{SEED}"
    fx = os.path.join(_cache_dir(), f"X-{stem}.npy")
    fy = os.path.join(_cache_dir(), f"y-{stem}.npy")
    if not (os.path.exists(fx) and os.path.exists(fy)):
        # In a child process, so that generating (float64 temporaries) does not
        # count in a peakmem_ benchmark that happens to be the first to need it.
        spec = [n, w.n_features, w.n_informative, w.n_classes, fx, fy]
        subprocess.run(
            [sys.executable, os.path.abspath(__file__), *map(str, spec)], check=True
        )
    X = np.load(fx)
    y = np.load(fy)
    X = np.ascontiguousarray(X, dtype=dtype)
    out = (X[: w.n_samples], y[: w.n_samples], X[w.n_samples :], y[w.n_samples :])
    _DATA[key] = out
    return out


def scaling_data(n):
    """Seeded ``(X, y)``: ``n`` rows of standard-normal float32 features and a
    learnable binary target, the sign of a fixed random linear function of them.

    Cheap to generate (no cache on disk); rows are drawn in order, so the first
    ``m`` rows of ``scaling_data(n)`` are ``scaling_data(m)``.
    """
    key = ("scaling", n)
    if key not in _DATA:
        rng = np.random.default_rng(SEED)
        w = rng.standard_normal(SCALING_FEATURES).astype(np.float32)
        X = rng.standard_normal((n, SCALING_FEATURES), dtype=np.float32)
        _DATA[key] = X, (X @ w > 0).astype(np.int64)
    return _DATA[key]


def _generate(n, n_features, n_informative, n_classes, fx, fy):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=2,
        class_sep=CLASS_SEP,
        random_state=SEED,
    )
    for path, arr in ((fx, X.astype(np.float32)), (fy, y.astype(np.int64))):
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, path)  # atomic: concurrent processes never see half a file


def estimator_params(workload, solver):
    """Constructor parameters shared by BPClassifier and MLPClassifier.

    Exactly ``workload.epochs`` epochs: ``max_iter=epochs``, ``tol=0`` and
    ``n_iter_no_change`` larger than ``max_iter`` (no early stop), no validation split.
    """
    return dict(
        hidden_layer_sizes=workload.hidden,
        activation="relu",
        solver=solver,
        alpha=ALPHA,
        batch_size=workload.batch_size,
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE_INIT,
        max_iter=workload.epochs,
        shuffle=True,
        random_state=SEED,
        tol=0.0,
        n_iter_no_change=workload.epochs + 1,
        early_stopping=False,
        momentum=MOMENTUM,
        nesterovs_momentum=True,
        beta_1=BETA_1,
        beta_2=BETA_2,
        epsilon=EPSILON,
    )


def make_estimator(engine, workload, solver, n_jobs=None):
    """A fresh, unfitted classifier. ``engine`` is "fastbp" or "sklearn"."""
    params = estimator_params(workload, solver)
    if engine == "fastbp":
        from fastbp import BPClassifier

        return BPClassifier(**params, n_jobs=n_jobs)
    if engine == "sklearn":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(**params)
    raise ValueError(f"engine must be 'fastbp' or 'sklearn', got {engine!r}")


def _eager_parallel():
    """fastbp's switch that opens every compile gate (a fit then runs the parallel
    kernel at once, compiling it if need be); a no-op for a fastbp without gates
    (``bench/ab.py`` times older trees)."""
    try:
        from fastbp._threads import eager_parallel
    except ImportError:
        return contextlib.nullcontext()
    return eager_parallel()


def fit_quietly(est, X, y):
    """fit() without the ConvergenceWarning that a fixed epoch budget always raises.

    With fastbp's compile gates open: a benchmark measures the steady state, so
    its warm-up fit compiles the parallel kernel a short fit would otherwise
    leave uncompiled (the cold first-fit series measures that behaviour)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(), _eager_parallel():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


_WARM = set()


def warm_jit(engine="fastbp", dtypes=("float32", "float64"), solvers=("sgd", "adam")):
    """Compile (or load from cache) every kernel a benchmark can hit.

    ``fastbp.precompile`` when it exists, then one tiny fit + predict_proba per
    dtype x solver x {binary, multiclass} (covers lazily compiled variants).  Cheap
    after the first call in a process.  A no-op for sklearn except the first-call
    import overhead.
    """
    todo = [(engine, d, s) for d in dtypes for s in solvers if (engine, d, s) not in _WARM]
    if not todo:
        return
    if engine == "fastbp":
        import fastbp

        if hasattr(fastbp, "precompile"):
            fastbp.precompile(dtypes=tuple(sorted({d for _, d, _ in todo})))
    rng = np.random.default_rng(SEED)
    for _, dtype, solver in todo:
        for n_classes in (2, 3):
            tiny = Workload("tiny", 64, 5, n_classes, (8, 8), 16, 1, 0, 5)
            X = rng.standard_normal((64, 5)).astype(dtype)
            y = np.arange(64) % n_classes
            est = fit_quietly(make_estimator(engine, tiny, solver), X, y)
            est.predict_proba(X)
        _WARM.add((engine, dtype, solver))


def log_loss_of(est, X, y):
    """Mean cross-entropy of the fitted model on (X, y), computed the same way for
    every engine (independent of what the engine reports in ``loss_``)."""
    from sklearn.metrics import log_loss

    proba = est.predict_proba(X)
    return float(log_loss(y, proba, labels=est.classes_))


if __name__ == "__main__":  # data generation in a child process (see make_data)
    _n, _nf, _ni, _nc, _fx, _fy = sys.argv[1:]
    _generate(int(_n), int(_nf), int(_ni), int(_nc), _fx, _fy)
