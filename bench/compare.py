#!/usr/bin/env python
"""Side-by-side benchmarks: fastbp vs scikit-learn's MLPClassifier vs PyTorch CPU.

Series (``--series``, default all), each a markdown table with ratios
(sklearn time / fastbp time, torch time / fastbp time) as columns:

- **training**: for each workload x solver (sgd, adam) x dtype, the median fit
  time of each engine over ``--repeats`` runs, the GEMM floor (exact training
  FLOPs / numpy GEMM rate, measured before and after the fits of the same run,
  the faster of the two) and fastbp/floor, and each engine's final training
  loss, so a fast but wrong engine shows.  With ``--threads-scaling``, also
  fastbp with n_jobs=1 vs all threads.
- **predict**: predict_proba latency on 1, 10 and 10000 rows of the mnist-like
  test input (a model of the mnist-like network fitted for 1 epoch on 2000 rows),
  median of many calls (about a second of calls per engine and row count).
- **first-fit**: a user's first fit, each in a fresh interpreter
  (``sys.executable``): ``BPClassifier(random_state=0)`` on ``load_digits`` with
  the default n_jobs and an empty numba cache (``NUMBA_CACHE_DIR`` = a new temp
  dir), then again with that now-warm cache dir, and ``MLPClassifier(random_state=0)``;
  seconds of the imports, the fit and the first predict_proba, as the child
  measures them, and of the whole child process (``benchmarks/compile.py``).
- **sparse**: fit time on the CSR workload of ``bench/sparse.py`` (its data
  builder and estimators, imported from it), fastbp vs MLPClassifier.
- **scaling**: seconds of one training epoch on n x 100 float32 rows
  (``common.scaling_data``, a learnable binary target), n = 10^4 ... 10^6,
  (64,) relu, batch 200, and the cost per sample in µs, which stays flat when
  the time grows linearly in n.

All engines train the same network (sklearn's Glorot-uniform init for torch too)
with the same hyper-parameters (sklearn defaults: lr 1e-3, alpha 1e-4 L2 on the
weights, momentum 0.9 Nesterov / Adam betas 0.9, 0.999, eps 1e-8), batch size and
number of epochs, reshuffling every epoch.  Compile time is excluded from every
series but first-fit: every engine is warmed before timing (a tiny fit; for the
scaling and sparse series a small fit of the same network).  Engines are
interleaved within each repeat, so a busy moment hits all alike.  The same thread
count is given to every engine: fastbp ``n_jobs``,
``threadpoolctl.threadpool_limits`` around fastbp and sklearn (caps BLAS,
including the OpenBLAS numba calls), ``torch.set_num_threads`` (first-fit runs
the defaults).

Usage (from the repository root, fastbp installed with ``pip install -e .``)::

    python bench/compare.py                        # every series, float32, 3 repeats
    python bench/compare.py --quick                # every series, small sizes: a smoke run
    python bench/compare.py --series training --workloads small --repeats 1
    python bench/compare.py --series predict,scaling --no-torch
    python bench/compare.py --dtypes float32,float64 --threads-scaling \\
        --markdown-out bench-results.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import math
import os
import platform
import statistics
import sys
import time

from dataclasses import dataclass, replace
from functools import partial

try:  # imported as bench.compare (asv discovers every module under bench/)
    from .benchmarks import common
    from .benchmarks import compile as compile_bench
except ImportError:  # run as a script: its own directory, bench/, is on sys.path, so
    # the repository root (and an uninstalled fastbp/ source tree) is not shadowing.
    from benchmarks import common
    from benchmarks import compile as compile_bench

SERIES = ("training", "predict", "first-fit", "sparse", "scaling")
SOLVERS = ("sgd", "adam")
DASH = "—"
PREDICT_ROWS = (1, 10, 10_000)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# machine info and GEMM rate


cpu_model = common.cpu_model


def machine_info(n_threads, torch_mod):
    import numba
    import numpy as np
    import sklearn
    import threadpoolctl

    import fastbp

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not initialised"
    blas = sorted(
        {
            f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')}"
            f", {i.get('num_threads')} threads)"
            for i in threadpoolctl.threadpool_info()
            if i.get("user_api") == "blas"
        }
    )
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    rows = [
        ("date", datetime.datetime.now().astimezone().isoformat(timespec="seconds")),
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {affinity} usable"),
        ("load average", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("threads per engine", str(n_threads)),
        ("python", platform.python_version()),
        ("fastbp", getattr(fastbp, "__version__", "?")),
        ("numpy", np.__version__),
        ("numba", f"{numba.__version__} (threading layer: {layer})"),
        ("scikit-learn", sklearn.__version__),
        ("torch", torch_mod.__version__ if torch_mod else "not importable"),
        ("BLAS", "; ".join(blas) or "?"),
    ]
    return rows


def gemm_rate(dtype, n_threads, n=2048, repeats=5):
    """FLOP/s of an n x n numpy matmul on n_threads BLAS threads (median)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    times = []
    with threadpool_limits(limits=n_threads):
        np.matmul(a, b, out=c)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


# ---------------------------------------------------------------------------
# engines: each returns (seconds, final training loss, fitted model)


def cooldown(seconds):
    """Let the previous engine's idle threads stop spinning before timing the next.

    OpenBLAS, libgomp and PyTorch keep their worker threads busy-waiting for a
    while after a call (OpenBLAS about 0.1 s); a run that starts right after
    another engine shares the cores with them (measured: fastbp's mnist-like fit
    8% slower right after an MLPClassifier fit).  Every engine gets the same
    pause.  Not longer: on this VM a core left idle for 0.5 s was slow to wake,
    and the first parallel regions of the next fit paid for it (small, n_jobs=2:
    0.026 s after 0.5 s, 0.019 s after 0.2 s).
    """
    if seconds > 0:
        time.sleep(seconds)


def timed_fit(est, X, y, n_threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n_threads):
        t0 = time.perf_counter()
        common.fit_quietly(est, X, y)
        elapsed = time.perf_counter() - t0
    return elapsed, float(est.loss_), est


def run_estimator(engine, w, solver, X, y, n_jobs, n_threads):
    est = common.make_estimator(engine, w, solver, n_jobs=n_jobs if engine == "fastbp" else None)
    return timed_fit(est, X, y, n_threads)


def torch_model(torch, w, generator):
    """nn.Sequential with sklearn's init: U(-b, b), b = sqrt(6 / (fan_in + fan_out))."""
    from torch import nn

    sizes = w.layer_sizes
    layers, linears = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(fan_in, fan_out)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
        layers.append(lin)
        linears.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers), linears


def run_torch(torch, w, solver, Xt, yt, n_threads):
    """Plain PyTorch loop: randperm shuffle each epoch, same lr/batch/epochs.

    sklearn's L2 term (alpha * W / batch_size added to the weight gradient, biases
    exempt) is torch's coupled ``weight_decay=alpha / batch_size`` on the weights.
    The reported loss mirrors sklearn's ``loss_``: the mean batch loss of the last
    epoch plus the L2 penalty 0.5 * alpha * ||W||^2 * n_batches / n_samples (with
    the end-of-epoch weights).
    """
    torch.set_num_threads(n_threads)
    g = torch.Generator().manual_seed(common.SEED)
    t0 = time.perf_counter()
    model, linears = torch_model(torch, w, g)
    weights = [lin.weight for lin in linears]
    groups = [
        {"params": weights, "weight_decay": common.ALPHA / w.batch_size},
        {"params": [lin.bias for lin in linears], "weight_decay": 0.0},
    ]
    if solver == "sgd":
        opt = torch.optim.SGD(
            groups, lr=common.LEARNING_RATE_INIT, momentum=common.MOMENTUM, nesterov=True
        )
    else:
        opt = torch.optim.Adam(
            groups,
            lr=common.LEARNING_RATE_INIT,
            betas=(common.BETA_1, common.BETA_2),
            eps=common.EPSILON,
        )
    if w.n_outputs == 1:
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
    n, bs = Xt.shape[0], w.batch_size
    total = 0.0
    for _ in range(w.epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
    elapsed = time.perf_counter() - t0
    with torch.no_grad():
        sq = sum(float((W * W).sum()) for W in weights)
    penalty = 0.5 * common.ALPHA * sq * math.ceil(n / bs) / n
    return elapsed, total / n + penalty, model


def torch_tensors(torch, w, X, y):
    import numpy as np

    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if w.n_outputs == 1:
        yt = torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    else:
        yt = torch.from_numpy(y.astype(np.int64))
    return Xt, yt




def engine_runners(ctx, w, solver, X, y, tensors=None):
    """{engine: () -> (seconds, loss, model)}: fastbp and sklearn, and torch when
    its tensors of (X, y) are given."""
    runners = {
        engine: partial(run_estimator, engine, w, solver, X, y, ctx.fastbp_n_jobs, ctx.n_threads)
        for engine in ("fastbp", "sklearn")
    }
    if tensors is not None:
        runners["torch"] = partial(run_torch, ctx.torch, w, solver, *tensors, ctx.n_threads)
    return runners


def interleaved(runners, repeats, pause, label):
    """Median seconds and last loss of each runner, over ``repeats`` rounds that
    run every runner in turn (so a busy moment hits all of them alike)."""
    times = {name: [] for name in runners}
    losses = {}
    for r in range(repeats):
        for name, run in runners.items():
            cooldown(pause)
            t, losses[name], _ = run()
            times[name].append(t)
        log(f"  {label} rep {r + 1}/{repeats}: "
            + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    return {name: statistics.median(ts) for name, ts in times.items()}, losses


def median_call(fn, budget, min_calls=5, max_calls=10_000):
    """(median seconds, number of calls) of ``fn()``, called for about ``budget``
    seconds after one untimed call (first-call overheads, lazily loaded kernels)."""
    fn()
    times = []
    end = time.perf_counter() + budget
    while len(times) < min_calls or (len(times) < max_calls and time.perf_counter() < end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


# ---------------------------------------------------------------------------
# formatting


def fmt_s(t):
    return DASH if t is None else f"{t:.3f}"


def fmt_ratio(a, b):
    return DASH if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def fmt_loss(v):
    return DASH if v is None else f"{v:.4f}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt_time(t):
    """Seconds with a unit that fits: µs, ms or s."""
    if t is None:
        return DASH
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.3f} s"


def fmt_us(t, n):
    """Microseconds per sample of ``t`` seconds on ``n`` samples."""
    return DASH if t is None else f"{t / n * 1e6:.2f}"


def section(title, note, header, rows):
    """A report section: title, optional note, table."""
    return [f"## {title}", ""] + ([note, ""] if note else []) + [md_table(header, rows), ""]


# ---------------------------------------------------------------------------
# the series: each returns the lines of its report section


@dataclass
class Context:
    """What every series needs: the options, torch, the engines' thread settings."""

    args: argparse.Namespace
    torch: object  # the torch module, or None
    n_threads: int
    fastbp_n_jobs: int | None  # None = fastbp's default (all numba threads)
    workloads: dict  # common.WORKLOADS, or the reduced common.ASV_WORKLOADS with --quick
    repeats: int

    def tensors(self, w, X, y):
        """torch tensors of (X, y), or None: no torch, or not float32 (torch runs
        float32 only)."""
        if self.torch is None or X.dtype.name != "float32":
            return None
        return torch_tensors(self.torch, w, X, y)


def warm_up(ctx):
    """JIT compilation (or cache loading) and first-call overheads, before any timing."""
    import numpy as np

    dtypes = tuple(sorted(set(ctx.args.dtypes) | {"float32"}))  # scaling runs float32
    log("warming up (numba compilation, first-call overheads) ...")
    t0 = time.perf_counter()
    common.warm_jit("fastbp", dtypes=dtypes, solvers=SOLVERS)
    log(f"  fastbp warm-up {time.perf_counter() - t0:.1f} s")
    common.warm_jit("sklearn", dtypes=dtypes, solvers=SOLVERS)
    if ctx.torch is not None:
        tiny = common.Workload("tiny", 64, 5, 3, (8,), 16, 1, 0, 5)
        Xw = np.random.default_rng(0).standard_normal((64, 5)).astype("float32")
        yw = np.arange(64) % 3
        for solver in SOLVERS:
            run_torch(ctx.torch, tiny, solver, *ctx.tensors(tiny, Xw, yw), ctx.n_threads)


def series_training(ctx):
    args = ctx.args
    # GEMM rate: measured before and after the timings (same run); the floor uses
    # the faster of the two medians, so a busy moment cannot make the floor easy.
    gemm_n = 1024 if args.quick else 2048
    log(f"measuring GEMM rate ({gemm_n}x{gemm_n} matmul, {ctx.n_threads} threads) ...")
    before = {dt: gemm_rate(dt, ctx.n_threads, n=gemm_n) for dt in ("float32", "float64")}
    results = []
    for wname in args.workloads:
        w = ctx.workloads[wname]
        for dtype in args.dtypes:
            log(f"{wname} {dtype}: loading data ...")
            X, y, _, _ = common.make_data(w, dtype)
            tensors = ctx.tensors(w, X, y)
            for solver in args.solvers:
                med, losses = interleaved(
                    engine_runners(ctx, w, solver, X, y, tensors),
                    ctx.repeats, args.cooldown, f"{wname} {solver} {dtype}",
                )
                results.append((w, solver, dtype, med, losses))
    log("measuring GEMM rate again ...")
    after = {dt: gemm_rate(dt, ctx.n_threads, n=gemm_n) for dt in before}
    rates = {dt: max(before[dt], after[dt]) for dt in before}

    rows = []
    for w, solver, dtype, med, losses in results:
        floor = w.train_flops() / rates[dtype]
        rows.append([
            w.name, solver, dtype,
            fmt_s(med["fastbp"]), fmt_s(med["sklearn"]), fmt_s(med.get("torch")),
            fmt_ratio(med["sklearn"], med["fastbp"]), fmt_ratio(med.get("torch"), med["fastbp"]),
            fmt_s(floor), fmt_ratio(med["fastbp"], floor),
            fmt_loss(losses.get("fastbp")), fmt_loss(losses.get("sklearn")),
            fmt_loss(losses.get("torch")),
        ])
    note = (
        "Workloads: "
        + "; ".join(
            f"**{w.name}** {w.n_samples}×{w.n_features}, {w.n_classes} classes, "
            f"{w.hidden} relu, batch {w.batch_size}, {w.epochs} epoch(s)"
            for w in (ctx.workloads[n] for n in args.workloads)
        )
        + ". Floor = training FLOPs (forward 2p + weight grads 2p + deltas 2(p − p_first)"
        " per sample per epoch) / GEMM rate. GEMM rate: "
        + ", ".join(
            f"{dt} {before[dt] / 1e9:.0f} / {after[dt] / 1e9:.0f} GFLOP/s" for dt in rates
        )
        + f" (before / after the fits; numpy {gemm_n}² matmul, median of 5; the floor"
        " uses the faster). Loss = the engine's final training loss"
        " (`loss_`: last-epoch mean batch loss + L2 penalty). PyTorch runs float32 only."
    )
    header = ["workload", "solver", "dtype", "fastbp s", "sklearn s", "torch s",
              "sklearn/fastbp", "torch/fastbp", "GEMM floor s", "fastbp/floor",
              "loss fastbp", "loss sklearn", "loss torch"]
    return section("Training (fit), seconds", note, header, rows)


def inference_mode(torch):
    return contextlib.nullcontext() if torch is None else torch.inference_mode()


def predict_proba_fn(torch, engine, model, x):
    """A call of the engine's predict_proba on x: numpy array in, numpy array out."""
    if engine == "torch":
        return lambda: torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    return partial(model.predict_proba, x)


def series_predict(ctx):
    from threadpoolctl import threadpool_limits

    args = ctx.args
    budget = 0.2 if args.quick else 1.0
    w = ctx.workloads["mnist-like"]
    brief = replace(w, epochs=1)  # the weights' values do not change the cost
    rows = []
    for dtype in args.dtypes:
        log(f"predict_proba {dtype}: fitting the models ...")
        X, y, X_test, _ = common.make_data(w, dtype)
        X, y = X[:2000], y[:2000]
        runners = engine_runners(ctx, brief, "adam", X, y, ctx.tensors(brief, X, y))
        models = {engine: run()[2] for engine, run in runners.items()}
        with threadpool_limits(limits=ctx.n_threads), inference_mode(ctx.torch):
            for n_rows in PREDICT_ROWS:
                x = X_test[:n_rows].copy()
                res = {}
                for engine, model in models.items():
                    cooldown(args.cooldown)
                    res[engine] = median_call(predict_proba_fn(ctx.torch, engine, model, x),
                                              budget)
                t = {engine: r[0] for engine, r in res.items()}
                log(f"  predict_proba {x.shape[0]} rows {dtype}: "
                    + ", ".join(f"{k} {fmt_time(v)}" for k, v in t.items()))
                rows.append([
                    f"{x.shape[0]}×{x.shape[1]}", dtype,
                    fmt_time(t["fastbp"]), fmt_time(t["sklearn"]), fmt_time(t.get("torch")),
                    fmt_ratio(t["sklearn"], t["fastbp"]), fmt_ratio(t.get("torch"), t["fastbp"]),
                    " / ".join(str(r[1]) for r in res.values()),
                ])
    note = (
        f"A model of the mnist-like network {w.hidden} (784 features, 10 classes) fitted"
        " for 1 epoch on 2000 rows (adam); predict_proba on the first rows of the test"
        f" input. Median of the calls of about {budget:g} s per engine and row count (at"
        " least 5, at most 10000), after one untimed call. torch: `softmax(model(x))`"
        " from a numpy array to a numpy array, under `inference_mode`."
    )
    header = ["input", "dtype", "fastbp", "sklearn", "torch", "sklearn/fastbp",
              "torch/fastbp", "calls (fastbp / sklearn / torch)"]
    return section("predict_proba latency", note, header, rows)


FIRST_FIT_LABELS = {
    "fastbp-cold": "fastbp, empty numba cache",
    "fastbp-warm": "fastbp, warm numba cache",
    "sklearn": "MLPClassifier",
}


def series_first_fit(ctx):
    args = ctx.args
    max_iter = 20 if args.quick else None
    rows = []
    for dtype in args.dtypes:
        log(f"first fit {dtype}: fresh interpreters ...")
        res = compile_bench.first_fit_series(dtype, max_iter, ctx.repeats, log)
        sk = res["sklearn"]
        for case, t in res.items():
            own = case == "sklearn"
            rows.append([
                FIRST_FIT_LABELS[case], dtype,
                *(fmt_s(t[part]) for part in compile_bench.FIRST_FIT_PARTS),
                DASH if own else fmt_ratio(sk["fit"], t["fit"]),
                DASH if own else fmt_ratio(sk["process"], t["process"]),
            ])
    note = (
        "Each row: a fresh `sys.executable` that imports the estimator, loads"
        " `load_digits` (1797×64, 10 classes), fits `BPClassifier(random_state=0)`"
        " (default n_jobs) or `MLPClassifier(random_state=0)`"
        + (" with max_iter=20 (--quick)" if max_iter else "")
        + " and calls predict_proba once. Empty cache: `NUMBA_CACHE_DIR` is a new"
        " empty temp dir (every kernel compiles); warm: the dir the first empty-cache"
        " run filled. Import, fit and first predict_proba are timed in the child;"
        f" whole process is the child's wall time. Median of {ctx.repeats}."
    )
    header = ["case", "dtype", "import s", "fit s", "first predict_proba s",
              "whole process s", "sklearn/fastbp fit", "sklearn/fastbp process"]
    return section("First fit in a fresh interpreter, seconds", note, header, rows)


def load_bench_sparse():
    """bench/sparse.py as a module, under another name: as ``sparse`` it would
    shadow a top-level ``sparse`` package (pydata/sparse)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sparse.py")
    spec = importlib.util.spec_from_file_location("fastbp_bench_sparse", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def series_sparse(ctx):
    args = ctx.args
    bench_sparse = load_bench_sparse()
    cfg = bench_sparse.QUICK if args.quick else bench_sparse.FULL
    X = bench_sparse.csr(cfg["fit_rows"], cfg["fit_features"], cfg["fit_density"], 0)
    y = bench_sparse.labels(cfg["fit_rows"])
    epochs = 3

    def fit(engine, X=X, y=y):
        est = bench_sparse.make_estimator(engine, epochs)
        if engine == "fastbp":
            est.set_params(n_jobs=ctx.fastbp_n_jobs)
        return timed_fit(est, X, y, ctx.n_threads)

    log(f"sparse: {X.shape[0]}x{X.shape[1]} CSR, nnz {X.nnz}; warm-up fits on 500 rows")
    for engine in ("fastbp", "sklearn"):
        fit(engine, X[:500], y[:500])
    med, losses = interleaved({e: partial(fit, e) for e in ("fastbp", "sklearn")},
                              ctx.repeats, args.cooldown, "sparse fit")
    rows = [[
        f"{X.shape[0]}×{X.shape[1]} CSR, density {cfg['fit_density']}, nnz {X.nnz}",
        fmt_s(med["fastbp"]), fmt_s(med["sklearn"]), fmt_ratio(med["sklearn"], med["fastbp"]),
        fmt_loss(losses["fastbp"]), fmt_loss(losses["sklearn"]),
    ]]
    note = (
        "The fit workload of `bench/sparse.py`"
        + (" at its --quick sizes" if args.quick else "")
        + f": float64 CSR, {bench_sparse.N_CLASSES} random classes, hidden (64,),"
        f" random_state=0, otherwise the defaults (adam, batch 200), {epochs} epochs."
        " Both engines warmed by a fit on the first 500 rows (compilation excluded)."
        f" Median of {ctx.repeats}. `python bench/sparse.py` adds predict_proba and its"
        " memory."
    )
    header = ["input", "fastbp s", "sklearn s", "sklearn/fastbp", "loss fastbp",
              "loss sklearn"]
    return section("CSR input: fit, seconds", note, header, rows)


def series_scaling(ctx):
    args = ctx.args
    ns = [n // 10 for n in common.SCALING_N] if args.quick else list(common.SCALING_N)
    X, y = common.scaling_data(max(ns))
    warm = common.scaling_workload(1000)
    log(f"scaling: up to {max(ns)}x{X.shape[1]}; warm-up fits of the network on 1000 rows")
    for solver in args.solvers:
        warm_tensors = ctx.tensors(warm, X[:1000], y[:1000])
        for run in engine_runners(ctx, warm, solver, X[:1000], y[:1000], warm_tensors).values():
            run()
    rows = []
    for n in ns:
        w = common.scaling_workload(n)
        Xn, yn = X[:n], y[:n]
        tensors = ctx.tensors(w, Xn, yn)
        for solver in args.solvers:
            med, _ = interleaved(engine_runners(ctx, w, solver, Xn, yn, tensors),
                                 ctx.repeats, args.cooldown, f"scaling n={n} {solver}")
            fb, sk, tc = med["fastbp"], med["sklearn"], med.get("torch")
            rows.append([
                f"{n:,}", solver, fmt_time(fb), fmt_time(sk), fmt_time(tc),
                fmt_ratio(sk, fb), fmt_ratio(tc, fb),
                fmt_us(fb, n), fmt_us(sk, n), fmt_us(tc, n),
            ])
    note = (
        f"n × {X.shape[1]} float32 rows of standard-normal features, a learnable binary"
        " target (the sign of a fixed random linear function), hidden (64,) relu,"
        " batch 200, exactly 1 epoch (max_iter=1, tol=0): the time of one fit. µs/sample"
        " = seconds / n; flat when the cost grows linearly in n. Each engine warmed by"
        f" a fit of the same network on 1000 rows. Median of {ctx.repeats}."
    )
    header = ["n", "solver", "fastbp", "sklearn", "torch", "sklearn/fastbp",
              "torch/fastbp", "fastbp µs/sample", "sklearn µs/sample", "torch µs/sample"]
    return section("Epoch time vs n", note, header, rows)


def series_threads(ctx):
    import numba

    args = ctx.args
    n_max = numba.config.NUMBA_NUM_THREADS
    if n_max < 2:
        return ["## Thread scaling", "", "skipped: numba has only 1 thread", ""]
    rows = []
    for wname in args.workloads:
        w = ctx.workloads[wname]
        for dtype in args.dtypes:
            X, y, _, _ = common.make_data(w, dtype)
            for solver in args.solvers:
                runners = {
                    f"n_jobs={nj}": partial(run_estimator, "fastbp", w, solver, X, y, nj, nj)
                    for nj in (1, n_max)
                }
                med, _ = interleaved(runners, ctx.repeats, args.cooldown,
                                     f"threads {wname} {solver} {dtype}")
                t1, tn = med["n_jobs=1"], med[f"n_jobs={n_max}"]
                rows.append([wname, solver, dtype, fmt_s(t1), fmt_s(tn), fmt_ratio(t1, tn)])
    header = ["workload", "solver", "dtype", "n_jobs=1 s", f"n_jobs={n_max} s", "speedup"]
    return section(f"fastbp thread scaling (n_jobs=1 vs n_jobs={n_max})", None, header, rows)


SERIES_FUNCTIONS = {
    "training": series_training,
    "predict": series_predict,
    "first-fit": series_first_fit,
    "sparse": series_sparse,
    "scaling": series_scaling,
}


# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--series",
        default=",".join(SERIES),
        help="comma-separated subset of: %(default)s",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="shrink every size (asv's reduced workloads, 1/10 of the scaling rows, "
             "bench/sparse.py's quick sizes, shorter timing budgets, 1 repeat unless "
             "--repeats): a smoke run, not numbers to quote",
    )
    p.add_argument(
        "--workloads",
        default=",".join(common.WORKLOADS),
        help="training workloads, comma-separated subset of: %(default)s",
    )
    p.add_argument("--solvers", default=",".join(SOLVERS), help="default: %(default)s")
    p.add_argument(
        "--dtypes", default="float32", help="comma-separated: float32, float64 (default float32)"
    )
    p.add_argument("--repeats", type=int, default=None,
                   help="runs per engine; median (default 3, 1 with --quick)")
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="threads for every engine (default: all numba threads; fastbp gets n_jobs=None)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")
    p.add_argument(
        "--cooldown", type=float, default=0.2, metavar="S",
        help="pause before each timed fit, so the previous engine's spinning "
             "threads are idle (default: %(default)s s)",
    )
    p.add_argument("--no-predict", action="store_true",
                   help="skip the predict series (same as leaving it out of --series)")
    p.add_argument(
        "--threads-scaling",
        action="store_true",
        help="also time fastbp with n_jobs=1 vs all threads on each workload",
    )
    p.add_argument("--markdown-out", metavar="FILE", help="also write the report to FILE")
    args = p.parse_args(argv)

    def split(s, allowed, what):
        items = [x.strip() for x in s.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            p.error(f"--{what}: unknown {bad or s!r}; choose from {', '.join(allowed)}")
        return items

    args.series = split(args.series, SERIES, "series")
    if args.no_predict and "predict" in args.series:
        args.series.remove("predict")
    args.workloads = split(args.workloads, list(common.WORKLOADS), "workloads")
    args.solvers = split(args.solvers, SOLVERS, "solvers")
    args.dtypes = split(args.dtypes, ["float32", "float64"], "dtypes")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.n_jobs is not None and args.n_jobs < 1:
        p.error("--n-jobs must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        import fastbp
    except ImportError as exc:
        sys.exit(f"compare.py: cannot import fastbp ({exc}); run `pip install -e .` first")
    log(f"fastbp {getattr(fastbp, '__version__', '?')} from {os.path.dirname(fastbp.__file__)}")
    import numba

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            log("PyTorch not importable: torch columns left empty")

    ctx = Context(
        args=args,
        torch=torch,
        n_threads=args.n_jobs or numba.config.NUMBA_NUM_THREADS,
        fastbp_n_jobs=args.n_jobs,
        workloads=common.ASV_WORKLOADS if args.quick else common.WORKLOADS,
        repeats=args.repeats,
    )
    if args.threads_scaling or any(s != "first-fit" for s in args.series):
        warm_up(ctx)

    info = machine_info(ctx.n_threads, torch)
    info.append(("series", ", ".join(args.series)
                 + (", thread scaling" if args.threads_scaling else "")))
    info.append(("sizes", "--quick (reduced sizes: a smoke run, not numbers to quote)"
                 if args.quick else "full"))
    info.append(("repeats", f"{ctx.repeats} (median reported), {args.cooldown} s pause"
                 " before each timed run"))
    sections = ["# fastbp benchmark: fastbp vs MLPClassifier vs PyTorch CPU", "",
                md_table(["", ""], info), ""]
    for name in args.series:
        sections += SERIES_FUNCTIONS[name](ctx)
    if args.threads_scaling:
        sections += series_threads(ctx)

    report = "\n".join(sections)
    print(report)
    if args.markdown_out:
        with open(args.markdown_out, "w") as f:
            f.write(report + "\n")
        log(f"wrote {args.markdown_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
