#!/usr/bin/env python
"""CSR input: fastbp's BPClassifier vs scikit-learn's MLPClassifier.

Two workloads, both float64 CSR with 5 random classes and the network
``hidden_layer_sizes=(64,)``, ``random_state=0`` (everything else default):

* **fit**: X = ``scipy.sparse.random(10000, 50000, density=0.002, format="csr",
  random_state=0)``, y = ``RandomState(0).randint(0, 5, 10000)``,
  ``max_iter=3``.  Fit time is the median of 3 (engines interleaved within each
  repeat), after one untimed fastbp fit so compilation is excluded; then
  predict_proba on the same X, median of 5 after one untimed call per engine.
* **wide predict**: a model fitted with ``max_iter=1`` on 200 rows of a
  200000-feature matrix (density 0.0005); predict_proba on X2 =
  ``scipy.sparse.random(2000, 200000, density=0.0005)``: time (median of 5)
  and peak memory.  tracemalloc misses numba's and BLAS's buffers, so memory
  is the resident set size, in a fresh subprocess per engine: the child loads
  the pickled model and X2, runs predict_proba once on X2's first row (loads or
  compiles the kernel), resets the peak (``/proc/self/clear_refs``), runs
  predict_proba(X2) and reports the peak (``VmHWM`` of ``/proc/self/status``)
  minus the resident size just before the call.  Not
  ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's peak into a
  child's ru_maxrss across fork/exec (it read this script's ~900 MB for both
  engines) and it cannot be reset.  Where /proc is missing (not Linux) the
  child falls back to ru_maxrss, and the output says which was used.

Until its engine calls the CSR kernels of ``fastbp/_kernels/sparse.py``, fastbp
densifies each CSR batch (rows x n_features) and is slower and larger than
scikit-learn here; the script uses only the public estimators, so it measures
whichever engine the installed fastbp has.  The machines are
shared 2-core boxes: quote the ratios of one run, not lone absolute numbers.

Usage, from the repository root with fastbp installed (``pip install -e .``)::

    python bench/sparse.py            # the sizes above (a few minutes)
    python bench/sparse.py --quick    # small sizes, ~20 s: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

# Run as a script, this file's directory (bench/) is sys.path[0], and this
# module's name would shadow a top-level ``sparse`` package (pydata/sparse) for
# anything that tries to import it: bench/ goes last instead
# (benchmarks.common is imported from it).
_HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]
if _HERE not in sys.path:
    sys.path.append(_HERE)
from benchmarks.common import cpu_model, proc_status, reset_peak  # noqa: E402

FULL = dict(fit_rows=10000, fit_features=50000, fit_density=0.002,
            wide_rows=2000, wide_features=200000, wide_density=0.0005, wide_train_rows=200)
QUICK = dict(fit_rows=2000, fit_features=10000, fit_density=0.002,
             wide_rows=500, wide_features=50000, wide_density=0.0005, wide_train_rows=200)
N_CLASSES = 5


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def quiet():
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def csr(rows, features, density, seed):
    import numpy as np
    import scipy.sparse as sp

    return sp.random(rows, features, density=density, format="csr", dtype=np.float64,
                     random_state=seed)


def labels(rows):
    import numpy as np

    return np.random.RandomState(0).randint(0, N_CLASSES, rows)


def wide_x2(cfg):
    return csr(cfg["wide_rows"], cfg["wide_features"], cfg["wide_density"], 1)


def make_estimator(engine, max_iter):
    if engine == "sklearn":
        from sklearn.neural_network import MLPClassifier as cls
    else:
        from fastbp import BPClassifier as cls
    return cls(hidden_layer_sizes=(64,), max_iter=max_iter, random_state=0)


def seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pause():
    # let the previous engine's spinning BLAS / OpenMP threads go idle
    time.sleep(0.2)


def median_runs(fn, repeats):
    times = []
    for _ in range(repeats):
        pause()
        times.append(seconds(fn))
    return statistics.median(times)


def ru_maxrss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child_memory(model_path, cfg):
    """In a fresh process: the peak memory of one predict_proba(X2) above the
    resident size before it.  Prints JSON."""
    import pickle

    quiet()
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    X2 = wide_x2(cfg)
    model.predict_proba(X2[:1])  # load (or compile) the kernels, small buffers
    status = proc_status()
    if "VmHWM" in status and reset_peak():
        method = "VmHWM"
        base = proc_status()["VmRSS"]
        t = seconds(lambda: model.predict_proba(X2))
        peak = proc_status()["VmHWM"]
    else:  # no /proc: the rise of ru_maxrss (masked by any earlier, higher peak)
        method = "ru_maxrss"
        base = ru_maxrss_mb()
        t = seconds(lambda: model.predict_proba(X2))
        peak = ru_maxrss_mb()
    print(json.dumps(dict(method=method, base_mb=base, peak_mb=peak,
                          extra_mb=max(0.0, peak - base), seconds=t)))


def measure_memory(model, cfg, tmpdir, name):
    import pickle

    path = os.path.join(tmpdir, f"{name}.pkl")
    with open(path, "wb") as f:
        pickle.dump(model, f)
    cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", path,
           "--child-config", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"memory child for {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions():
    import numba
    import numpy
    import scipy
    import sklearn

    import fastbp

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "numba": numba.__version__,
        "fastbp": f"{fastbp.__version__} ({os.path.dirname(fastbp.__file__)})",
    }


def fmt_s(t):
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def ratio(a, b):
    return f"{a / b:.3g}×" if b > 0 else "—"


def run(cfg, fit_repeats, predict_repeats, quick):
    quiet()
    import numba

    engines = ("sklearn", "fastbp")
    X = csr(cfg["fit_rows"], cfg["fit_features"], cfg["fit_density"], 0)
    y = labels(cfg["fit_rows"])
    log(f"fit data: {X.shape[0]}x{X.shape[1]} CSR, nnz {X.nnz}")

    log("warm-up fit (fastbp, compiles the kernels)")
    t_compile = seconds(lambda: make_estimator("fastbp", 3).fit(X, y))

    fit_times = {e: [] for e in engines}
    models = {}
    for rep in range(fit_repeats):
        for e in engines:  # interleaved, so a busy moment hits both engines
            pause()
            model = make_estimator(e, 3)
            fit_times[e].append(seconds(lambda: model.fit(X, y)))
            models[e] = model
            log(f"  fit {rep + 1}/{fit_repeats} {e}: {fmt_s(fit_times[e][-1])}")
    fit = {e: statistics.median(fit_times[e]) for e in engines}
    loss = {e: models[e].loss_ for e in engines}

    pred = {}
    for e in engines:
        models[e].predict_proba(X)  # warm-up (fastbp: compiles predict)
        pred[e] = median_runs(lambda: models[e].predict_proba(X), predict_repeats)
        log(f"  predict_proba {e}: {fmt_s(pred[e])}")

    Xw = csr(cfg["wide_train_rows"], cfg["wide_features"], cfg["wide_density"], 2)
    yw = labels(cfg["wide_train_rows"])
    X2 = wide_x2(cfg)
    log(f"wide predict: {X2.shape[0]}x{X2.shape[1]} CSR, nnz {X2.nnz}; model fitted on "
        f"{Xw.shape[0]} rows")
    wide = {}
    wide_pred = {}
    for e in engines:
        wide[e] = make_estimator(e, 1).fit(Xw, yw)
        wide[e].predict_proba(X2[:1])
        wide_pred[e] = median_runs(lambda: wide[e].predict_proba(X2), predict_repeats)
        log(f"  predict_proba {e}: {fmt_s(wide_pred[e])}")
    with tempfile.TemporaryDirectory(prefix="fastbp-bench-sparse-") as tmpdir:
        mem = {e: measure_memory(wide[e], cfg, tmpdir, e) for e in engines}
    for e in engines:
        log(f"  memory {e}: {mem[e]}")

    extra = {e: mem[e]["extra_mb"] for e in engines}
    peak = {e: mem[e]["peak_mb"] for e in engines}
    methods = {mem[e]["method"] for e in engines}

    fit_label = (f"fit {X.shape[0]}×{X.shape[1]} (nnz {X.nnz}), 3 epochs, "
                 f"median of {fit_repeats}")
    rows = [
        (fit_label, fmt_s(fit["sklearn"]), fmt_s(fit["fastbp"]),
         ratio(fit["sklearn"], fit["fastbp"])),
        (f"predict_proba same X, median of {predict_repeats}", fmt_s(pred["sklearn"]),
         fmt_s(pred["fastbp"]), ratio(pred["sklearn"], pred["fastbp"])),
        (f"predict_proba {X2.shape[0]}×{X2.shape[1]} (nnz {X2.nnz}), median of "
         f"{predict_repeats}", fmt_s(wide_pred["sklearn"]), fmt_s(wide_pred["fastbp"]),
         ratio(wide_pred["sklearn"], wide_pred["fastbp"])),
        ("  its peak memory above the resident size before the call",
         f"{extra['sklearn']:.1f} MB", f"{extra['fastbp']:.1f} MB",
         ratio(extra["sklearn"], extra["fastbp"])),
        ("  peak resident size of that process", f"{peak['sklearn']:.0f} MB",
         f"{peak['fastbp']:.0f} MB", ratio(peak["sklearn"], peak["fastbp"])),
    ]

    out = []
    out.append(f"## CSR input: fastbp vs scikit-learn{' (--quick sizes)' if quick else ''}")
    out.append("")
    out.append(f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; numba threads "
               f"{numba.config.NUMBA_NUM_THREADS}, threading layer "
               f"{_threading_layer(numba)}; n_jobs=None (fastbp's default)")
    out.append("- " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    out.append(f"- network (64,) relu, adam, batch 200, float64 CSR, {N_CLASSES} classes; "
               f"fastbp compile + first fit: {fmt_s(t_compile)} (excluded below)")
    if methods == {"VmHWM"}:
        how = ("VmHWM of /proc/self/status (peak resident set size), reset just before "
               "the call; not ru_maxrss, which a child inherits from its parent")
    else:
        how = ("the rise of getrusage ru_maxrss (no /proc here: an earlier, higher "
               "peak in the child hides the call's memory)")
    out.append("- memory: a fresh subprocess per engine loads the pickled model and X2 "
               f"and warms up on one row; measured with {how}")
    out.append("")
    out.append("| measurement | scikit-learn | fastbp | sklearn/fastbp |")
    out.append("|---|---:|---:|---:|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    out.append(f"Final training loss after 3 epochs: scikit-learn {loss['sklearn']:.6f}, "
               f"fastbp {loss['fastbp']:.6f}.")
    print("\n".join(out))


def _threading_layer(numba):
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return "none yet"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes (2000x10000 fit, 500x50000 predict): a smoke test")
    p.add_argument("--fit-repeats", type=int, default=3, help="timed fits (median)")
    p.add_argument("--predict-repeats", type=int, default=5,
                   help="timed predict_proba calls (median)")
    p.add_argument("--child-memory", metavar="MODEL_PKL", help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_memory:
        child_memory(args.child_memory, json.loads(args.child_config))
        return
    cfg = QUICK if args.quick else FULL
    run(cfg, args.fit_repeats, args.predict_repeats, args.quick)


if __name__ == "__main__":
    main()
