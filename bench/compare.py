#!/usr/bin/env python
"""Side-by-side training time: fastbp vs scikit-learn's MLPClassifier vs PyTorch CPU.

For each workload x solver (sgd, adam) x dtype, prints a markdown table with the
median fit time of each engine over ``--repeats`` runs, the ratios
sklearn/fastbp and torch/fastbp (medians of the same run), the GEMM floor (exact
training FLOPs / numpy GEMM rate, measured before and after the fits of the same
run, the faster of the two) and fastbp/floor, and each engine's final training loss, so a fast but wrong engine
shows.  Then predict_proba on the mnist-like test input and, with
``--threads-scaling``, fastbp with n_jobs=1 vs all threads.

All engines train the same network (sklearn's Glorot-uniform init for torch too)
with the same hyper-parameters (sklearn defaults: lr 1e-3, alpha 1e-4 L2 on the
weights, momentum 0.9 Nesterov / Adam betas 0.9, 0.999, eps 1e-8), batch size and
number of epochs, reshuffling every epoch.  Compile time is excluded: every engine
is warmed before timing.  The same thread count is given to every engine: fastbp
``n_jobs``, ``threadpoolctl.threadpool_limits`` around fastbp and sklearn (caps BLAS,
including the OpenBLAS numba calls), ``torch.set_num_threads``.

Usage (from the repository root, fastbp installed with ``pip install -e .``)::

    python bench/compare.py                        # all workloads, float32, 3 repeats
    python bench/compare.py --workloads small --repeats 1
    python bench/compare.py --dtypes float32,float64 --threads-scaling \\
        --markdown-out bench-results.md
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time

from dataclasses import replace

try:  # imported as bench.compare (asv discovers every module under bench/)
    from .benchmarks import common
except ImportError:  # run as a script: its own directory, bench/, is on sys.path, so
    # the repository root (and an uninstalled fastbp/ source tree) is not shadowing.
    from benchmarks import common

SOLVERS = ("sgd", "adam")
DASH = "—"


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


def run_estimator(engine, w, solver, X, y, n_jobs, n_threads):
    from threadpoolctl import threadpool_limits

    est = common.make_estimator(engine, w, solver, n_jobs=n_jobs if engine == "fastbp" else None)
    with threadpool_limits(limits=n_threads):
        t0 = time.perf_counter()
        common.fit_quietly(est, X, y)
        elapsed = time.perf_counter() - t0
    return elapsed, float(est.loss_), est


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


def median_or_none(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--workloads",
        default=",".join(common.WORKLOADS),
        help="comma-separated subset of: %(default)s",
    )
    p.add_argument("--solvers", default=",".join(SOLVERS), help="default: %(default)s")
    p.add_argument(
        "--dtypes", default="float32", help="comma-separated: float32, float64 (default float32)"
    )
    p.add_argument("--repeats", type=int, default=3, help="runs per engine; median (default 3)")
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
    p.add_argument("--no-predict", action="store_true", help="skip the predict_proba table")
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

    args.workloads = split(args.workloads, list(common.WORKLOADS), "workloads")
    args.solvers = split(args.solvers, SOLVERS, "solvers")
    args.dtypes = split(args.dtypes, ["float32", "float64"], "dtypes")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.n_jobs is not None and args.n_jobs < 1:
        p.error("--n-jobs must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        import fastbp  # noqa: F401
        from fastbp import BPClassifier  # noqa: F401
    except ImportError as exc:
        sys.exit(f"compare.py: cannot import fastbp ({exc}); run `pip install -e .` first")
    import numba
    import numpy as np

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            log("PyTorch not importable: torch columns left empty")

    n_threads = args.n_jobs or numba.config.NUMBA_NUM_THREADS
    fastbp_n_jobs = args.n_jobs  # None = fastbp's default (all numba threads)
    repeats = args.repeats

    # -- warm-up: JIT compile (or cache load) before any timing
    log("warming up (numba compilation, first-call overheads) ...")
    t0 = time.perf_counter()
    common.warm_jit("fastbp", dtypes=tuple(args.dtypes), solvers=tuple(args.solvers))
    log(f"  fastbp warm-up {time.perf_counter() - t0:.1f} s")
    common.warm_jit("sklearn", dtypes=tuple(args.dtypes), solvers=tuple(args.solvers))
    if torch is not None:
        tiny = common.Workload("tiny", 64, 5, 3, (8,), 16, 1, 0, 5)
        Xw = np.random.default_rng(0).standard_normal((64, 5)).astype("float32")
        yw = np.arange(64) % 3
        for solver in args.solvers:
            run_torch(torch, tiny, solver, *torch_tensors(torch, tiny, Xw, yw), n_threads)

    # GEMM rate: measured before and after the timings (same run); the floor uses
    # the faster of the two medians, so a busy moment cannot make the floor easy.
    log(f"measuring GEMM rate (2048x2048 matmul, {n_threads} threads) ...")
    rates_before = {dt: gemm_rate(dt, n_threads) for dt in ("float32", "float64")}

    info = machine_info(n_threads, torch)
    sections = []

    # -- training
    fit_results = []
    for wname in args.workloads:
        w = common.WORKLOADS[wname]
        for dtype in args.dtypes:
            log(f"{wname} {dtype}: loading data ...")
            X, y, _, _ = common.make_data(w, dtype)
            tt = (
                torch_tensors(torch, w, X, y)
                if torch is not None and dtype == "float32"
                else None
            )
            for solver in args.solvers:
                times = {"fastbp": [], "sklearn": [], "torch": []}
                losses = {}
                for r in range(repeats):  # interleaved: noise hits every engine alike
                    for engine in ("fastbp", "sklearn"):
                        cooldown(args.cooldown)
                        t, loss, _ = run_estimator(
                            engine, w, solver, X, y, fastbp_n_jobs, n_threads
                        )
                        times[engine].append(t)
                        losses[engine] = loss
                    if tt is not None:
                        cooldown(args.cooldown)
                        t, loss, _ = run_torch(torch, w, solver, *tt, n_threads)
                        times["torch"].append(t)
                        losses["torch"] = loss
                    log(
                        f"  {wname} {solver} {dtype} rep {r + 1}/{repeats}: "
                        + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items() if v)
                    )
                fit_results.append(
                    (wname, solver, dtype, {k: median_or_none(v) for k, v in times.items()},
                     losses)
                )

    log("measuring GEMM rate again ...")
    rates_after = {dt: gemm_rate(dt, n_threads) for dt in ("float32", "float64")}
    rates = {dt: max(rates_before[dt], rates_after[dt]) for dt in rates_before}
    info.append(
        (
            "GEMM rate",
            ", ".join(
                f"{dt} {rates_before[dt] / 1e9:.0f} / {rates_after[dt] / 1e9:.0f} GFLOP/s"
                for dt in rates
            )
            + " (before / after the fits; numpy 2048² matmul, median of 5; the floor"
            " uses the faster)",
        )
    )
    info.append(("repeats", f"{repeats} (median reported), {args.cooldown} s pause before each fit"))
    sections.append("# fastbp benchmark: fastbp vs MLPClassifier vs PyTorch CPU")
    sections.append("")
    sections.append(md_table(["", ""], info))
    sections.append("")

    fit_rows = []
    for wname, solver, dtype, med, losses in fit_results:
        floor = common.WORKLOADS[wname].train_flops() / rates[dtype]
        fit_rows.append(
            [
                wname,
                solver,
                dtype,
                fmt_s(med["fastbp"]),
                fmt_s(med["sklearn"]),
                fmt_s(med["torch"]),
                fmt_ratio(med["sklearn"], med["fastbp"]),
                fmt_ratio(med["torch"], med["fastbp"]),
                fmt_s(floor),
                fmt_ratio(med["fastbp"], floor),
                fmt_loss(losses.get("fastbp")),
                fmt_loss(losses.get("sklearn")),
                fmt_loss(losses.get("torch")),
            ]
        )
    sections.append("## Training (fit), seconds")
    sections.append("")
    sections.append(
        "Workloads: "
        + "; ".join(
            f"**{common.WORKLOADS[n].name}** {common.WORKLOADS[n].n_samples}×"
            f"{common.WORKLOADS[n].n_features}, {common.WORKLOADS[n].n_classes} classes, "
            f"{common.WORKLOADS[n].hidden} relu, batch {common.WORKLOADS[n].batch_size}, "
            f"{common.WORKLOADS[n].epochs} epoch(s)"
            for n in args.workloads
        )
        + ". Floor = training FLOPs (forward 2p + weight grads 2p + deltas 2(p − p_first)"
        " per sample per epoch) / GEMM rate. Loss = the engine's final training loss"
        " (`loss_`: last-epoch mean batch loss + L2 penalty). PyTorch runs float32 only."
    )
    sections.append("")
    sections.append(
        md_table(
            [
                "workload",
                "solver",
                "dtype",
                "fastbp s",
                "sklearn s",
                "torch s",
                "sklearn/fastbp",
                "torch/fastbp",
                "GEMM floor s",
                "fastbp/floor",
                "loss fastbp",
                "loss sklearn",
                "loss torch",
            ],
            fit_rows,
        )
    )
    sections.append("")

    # -- predict_proba on the mnist-like test input
    if not args.no_predict:
        from threadpoolctl import threadpool_limits

        w = common.WORKLOADS["mnist-like"]
        pred_rows = []
        n_pred = max(5, 3 * repeats)
        for dtype in args.dtypes:
            log(f"predict_proba {dtype} ...")
            X, y, X_test, _ = common.make_data(w, dtype)
            small = replace(w, epochs=1)
            times = {}
            for engine in ("fastbp", "sklearn"):
                # Weights' values do not change the cost: 1 epoch on 2000 rows.
                _, _, est = run_estimator(
                    engine, small, "adam", X[:2000], y[:2000], fastbp_n_jobs, n_threads
                )
                with threadpool_limits(limits=n_threads):
                    est.predict_proba(X_test[:10])
                    ts = []
                    for _ in range(n_pred):
                        t0 = time.perf_counter()
                        est.predict_proba(X_test)
                        ts.append(time.perf_counter() - t0)
                times[engine] = statistics.median(ts)
            times["torch"] = None
            if torch is not None and dtype == "float32":
                tt_small = torch_tensors(torch, small, X[:2000], y[:2000])
                _, _, model = run_torch(torch, small, "adam", *tt_small, n_threads)
                Xt = torch.from_numpy(np.ascontiguousarray(X_test, dtype=np.float32))
                ts = []
                with torch.inference_mode():
                    torch.softmax(model(Xt[:10]), dim=1)
                    for _ in range(n_pred):
                        t0 = time.perf_counter()
                        torch.softmax(model(Xt), dim=1).numpy()
                        ts.append(time.perf_counter() - t0)
                times["torch"] = statistics.median(ts)
            pred_rows.append(
                [
                    f"{X_test.shape[0]}×{X_test.shape[1]}",
                    dtype,
                    f"{times['fastbp'] * 1e3:.2f}",
                    f"{times['sklearn'] * 1e3:.2f}",
                    DASH if times["torch"] is None else f"{times['torch'] * 1e3:.2f}",
                    fmt_ratio(times["sklearn"], times["fastbp"]),
                    fmt_ratio(times["torch"], times["fastbp"]),
                ]
            )
        sections.append(f"## predict_proba, mnist-like test input (ms, median of {n_pred})")
        sections.append("")
        sections.append(
            md_table(
                ["input", "dtype", "fastbp ms", "sklearn ms", "torch ms",
                 "sklearn/fastbp", "torch/fastbp"],
                pred_rows,
            )
        )
        sections.append("")

    # -- thread scaling
    if args.threads_scaling:
        n_max = numba.config.NUMBA_NUM_THREADS
        if n_max < 2:
            sections.append("## Thread scaling\n\nskipped: numba has only 1 thread\n")
        else:
            rows = []
            for wname in args.workloads:
                w = common.WORKLOADS[wname]
                for dtype in args.dtypes:
                    X, y, _, _ = common.make_data(w, dtype)
                    for solver in args.solvers:
                        times = {1: [], n_max: []}
                        for r in range(repeats):
                            for nj in (1, n_max):
                                cooldown(args.cooldown)
                                t, _, _ = run_estimator("fastbp", w, solver, X, y, nj, nj)
                                times[nj].append(t)
                        t1, tn = statistics.median(times[1]), statistics.median(times[n_max])
                        log(
                            f"  threads {wname} {solver} {dtype}: "
                            f"1 → {t1:.3f}s, {n_max} → {tn:.3f}s"
                        )
                        rows.append(
                            [wname, solver, dtype, fmt_s(t1), fmt_s(tn), fmt_ratio(t1, tn)]
                        )
            sections.append(f"## fastbp thread scaling (n_jobs=1 vs n_jobs={n_max})")
            sections.append("")
            sections.append(
                md_table(
                    ["workload", "solver", "dtype", "n_jobs=1 s", f"n_jobs={n_max} s", "speedup"],
                    rows,
                )
            )
            sections.append("")

    report = "\n".join(sections)
    print(report)
    if args.markdown_out:
        with open(args.markdown_out, "w") as f:
            f.write(report + "\n")
        log(f"wrote {args.markdown_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
