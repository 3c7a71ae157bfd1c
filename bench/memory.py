#!/usr/bin/env python
"""Memory of big fits: the peak of one epoch on 10⁶ × 100 float32, and a
``partial_fit`` stream over a memory-mapped X.

The contract (the "long runs and big data" issue): fitting one epoch on
1,000,000 × 100 float32 peaks under 1.5 × (X + model + workspaces), without a
copy of X; ``partial_fit`` over a memmapped X, chunk by chunk, holds memory flat.

**fit** (one fresh interpreter per row of the table): import fastbp, warm the
kernels with a tiny fit of the same estimator (gates open, so the parallel
build is loaded or compiled too: compilation does not count), read the resident
size (``base``), generate X and y (``bench/benchmarks/common.scaling_data``'s
draws: standard-normal features and the sign of a fixed linear function, so
2 classes), reset the peak (``/proc/self/clear_refs``), fit
``BPClassifier(hidden_layer_sizes=(64,), batch_size=200, max_iter=1)`` and read
the peak (``VmHWM``).  Then

* expected = X + y + the model's flat parameters + the optimizer's moments +
  the training ``Workspace``'s arrays (sizes taken from the objects the fit
  built: ``_training._workspace`` is wrapped to keep the workspace that
  ``fit()`` drops at its end);
* peak increment = VmHWM − base: X and y themselves plus whatever the fit
  allocated on top of them; ratio = peak increment / expected (a copy of X
  would put it above 2);
* "X in place": the array the epoch kernel reads is X itself
  (``np.shares_memory``; ``_training.fit_stochastic`` is wrapped to see its
  input), and the "numpy peak" column is tracemalloc's peak during the fit
  (numpy's allocations, not numba's or BLAS's): a copy of X would show as
  ≥ X MB there (a second fit of the same data in the same process: the
  tracing is not running during the measured one).

"above X+y" is the fit's own share of the peak: besides the workspace, about
33 bytes per row in float32 (41 in float64) of per-row bookkeeping, measured
at 31.4 MB for 10⁶ rows: the targets as the kernel's float array and as bools,
the unit sample weights, the int64 row order, and the shuffle's permutation
and the reordered copy it makes.  That does not depend on the number of
features: 8% of X at 100 features, but at ``--features 10`` it alone is 0.7 × X
(measured: 1.68×, over the 1.5× target; 20 features: 1.37×).

The default fit (no validation split) is the contract's row; the
``early_stopping=True`` row shows what the held-out copy
(``X[idx_val]``, ``validation_fraction`` of X) adds on top, together with the
split's own index arrays (scikit-learn's ``train_test_split``, stratified).

**stream**: X (``--stream-rows`` × ``--features`` float32) is written to a temporary
``.npy`` and opened with ``mmap_mode="r"``; ``partial_fit`` runs over chunks of
``--chunk`` rows (``--passes`` passes).  Touched pages of the file count in the
resident size but are file-backed and reclaimable (``RssFile``); the fit's own
memory is the anonymous part (``RssAnon`` of ``/proc/self/status``), read
after every call.  Growth is measured from the end of the first few calls
(``--stream-warmup``; the workspace, the optimizer and numba's first-call
buffers are allocated there).  "chunk in place": each chunk reached the
kernel without a copy.

Memory is the resident set size read from ``/proc/self/status`` (Linux), in
MiB ("MB" below); ``getrusage``'s ``ru_maxrss`` is not used, as it cannot be
reset and a child inherits its parent's (see ``bench/sparse.py``).  The
machines are shared 2-core boxes: the memory figures are stable, the seconds
are not.

Usage, from the repository root with fastbp installed (``pip install -e .``)::

    python bench/memory.py                 # 10⁶ rows: fit (2 rows) + stream, ~1 min
    python bench/memory.py --quick         # 10⁵ rows: a smoke run, ~15 s
    python bench/memory.py --dtypes float32,float64 --series fit
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

# Run as a script, bench/ is sys.path[0], where bench/sparse.py would shadow a
# top-level ``sparse`` package (numba's entry points look for pydata/sparse):
# bench/ goes last instead (benchmarks.common is imported from it).
_HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]
if _HERE not in sys.path:
    sys.path.append(_HERE)
from benchmarks.common import cpu_model, proc_status, reset_peak  # noqa: E402
FEATURES = 100  # common.SCALING_FEATURES
SEED = 0  # common.SEED
MB = 2.0**20
TARGET_RATIO = 1.5


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- data
def make_data(n, dtype, features=FEATURES):
    """``common.scaling_data(n)``'s draws (as ``dtype``), without its cache
    (other ``features``: the same recipe)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    w = rng.standard_normal(features).astype(np.float32)
    X = rng.standard_normal((n, features), dtype=np.float32)
    y = (X @ w > 0).astype(np.int64)
    if np.dtype(dtype) != X.dtype:
        X = X.astype(dtype)
    return X, y


def estimator(cfg, **extra):
    from fastbp import BPClassifier

    params = dict(hidden_layer_sizes=tuple(cfg["hidden"]), batch_size=cfg["batch_size"],
                  solver=cfg["solver"], max_iter=1, tol=0.0, n_iter_no_change=10**6,
                  random_state=SEED, n_jobs=cfg["n_jobs"])
    if cfg.get("early_stopping"):
        params.update(early_stopping=True, validation_fraction=0.1)
    params.update(extra)
    return BPClassifier(**params)


def quiet():
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def workspace_bytes(ws):
    arrays = [ws.buffers.acts, ws.buffers.deltas, ws.buffers.grad_sums, ws.buffers.rowsq,
              ws.buffers.rowloss, ws.buffers.pre]
    return sum(a.nbytes for a in arrays + [ws.partials])


class Spy:
    """Wraps ``_training._workspace`` and ``_training.fit_stochastic`` to see
    the workspace a fit builds and the input its kernel reads."""

    def __init__(self):
        from fastbp import _training

        self._training = _training
        self.workspace = None
        self.inputs = []
        self._orig = (_training._workspace, _training.fit_stochastic)

        def _workspace(*args, **kwargs):
            self.workspace = self._orig[0](*args, **kwargs)
            return self.workspace

        def fit_stochastic(est, net, inputs, *args, **kwargs):
            self.inputs.append(inputs.dense)
            return self._orig[1](est, net, inputs, *args, **kwargs)

        _training._workspace = _workspace
        _training.fit_stochastic = fit_stochastic

    def clear(self):
        self.inputs = []


# -------------------------------------------------------------- child: a fit
def child_fit(cfg):
    """One fresh process: the peak of one epoch above the resident size before
    X existed.  Prints JSON."""
    import tracemalloc

    import numpy as np

    from fastbp import _threads

    quiet()
    t0 = time.perf_counter()
    after_import = proc_status().get("VmRSS", float("nan"))
    # Load (or compile) every kernel the big fit can run, serial and parallel
    # builds (its Pacer probes both): a fit with n_jobs=1 and one as asked, gates
    # open.  5000 rows: an early-stopping split of 500 rows, so the validation
    # forward pass runs the blocked predict kernel as the big fit's does.
    Xs, ys = make_data(5000, cfg["dtype"], cfg["features"])
    with _threads.eager_parallel():
        for n_jobs in (1, cfg["n_jobs"]):
            estimator(cfg, n_jobs=n_jobs).fit(Xs, ys)
    del Xs, ys
    warm_s = time.perf_counter() - t0
    gc.collect()
    base = proc_status()
    X, y = make_data(cfg["rows"], cfg["dtype"], cfg["features"])
    if not reset_peak():
        print(json.dumps({"error": "cannot reset VmHWM (/proc/self/clear_refs)"}))
        return
    loaded = proc_status()["VmRSS"]
    spy = Spy()
    est = estimator(cfg)
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    end = proc_status()
    x_in_place = bool(spy.inputs) and all(np.shares_memory(a, X) for a in spy.inputs)
    # the same fit again under tracemalloc (numpy's allocations): not in the
    # resident-size figures above, which tracemalloc's own tables would inflate
    again = estimator(cfg)
    tracemalloc.start()
    again.fit(X, y)
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    net = est._net
    expected = {
        "X": X.nbytes, "y": y.nbytes, "params": net.params.nbytes,
        "moments": est._optimizer.moments.nbytes,
        "workspace": workspace_bytes(spy.workspace),
    }
    print(json.dumps(dict(
        cfg=cfg, base_mb=base["VmRSS"], import_mb=after_import, warm_s=warm_s,
        loaded_mb=loaded, peak_mb=end["VmHWM"], end_mb=end["VmRSS"], fit_s=fit_s,
        expected={k: v / MB for k, v in expected.items()},
        expected_mb=sum(expected.values()) / MB,
        increment_mb=end["VmHWM"] - base["VmRSS"],
        x_in_place=x_in_place,
        numpy_peak_mb=numpy_peak / MB, loss=float(est.loss_))))


# ----------------------------------------------------------- child: a stream
def child_stream(cfg):
    """One fresh process: partial_fit over a memmapped X; RssAnon after each
    call.  Prints JSON."""
    import numpy as np

    quiet()
    rows, chunk = cfg["rows"], cfg["chunk"]
    with tempfile.TemporaryDirectory(prefix="fastbp-bench-memory-") as tmp:
        path = os.path.join(tmp, "X.npy")
        out = np.lib.format.open_memmap(path, mode="w+", dtype=cfg["dtype"],
                                        shape=(rows, cfg["features"]))
        rng = np.random.default_rng(SEED)
        w = rng.standard_normal(cfg["features"]).astype(np.float32)
        y = np.empty(rows, dtype=np.int64)
        for lo in range(0, rows, 100_000):  # in slabs: never all of X in anonymous memory
            hi = min(rows, lo + 100_000)
            slab = rng.standard_normal((hi - lo, cfg["features"]), dtype=np.float32)
            out[lo:hi] = slab
            y[lo:hi] = slab @ w > 0
        out.flush()
        del out, slab
        X = np.load(path, mmap_mode="r")
        classes = np.array([0, 1])
        spy = Spy()
        est = estimator(cfg)
        gc.collect()
        start = proc_status()
        anon, file_, rss, secs, in_place = [], [], [], [], True
        for _ in range(cfg["passes"]):
            for lo in range(0, rows, chunk):
                part = X[lo:lo + chunk]
                spy.clear()
                t = time.perf_counter()
                est.partial_fit(part, y[lo:lo + chunk], classes=classes)
                secs.append(time.perf_counter() - t)
                in_place &= bool(spy.inputs) and all(
                    np.shares_memory(a, part) for a in spy.inputs)
                del part
                st = proc_status()
                anon.append(st["RssAnon"])
                file_.append(st["RssFile"])
                rss.append(st["VmRSS"])
        del X
    k = min(cfg["warmup"], len(anon)) - 1
    print(json.dumps(dict(
        cfg=cfg, calls=len(anon),
        file_mb=rows * cfg["features"] * np.dtype(cfg["dtype"]).itemsize / MB,
        start=start, anon=anon, file=file_, rss=rss,
        anon_growth_mb=max(anon[k:]) - anon[k], anon_end_growth_mb=anon[-1] - anon[k],
        anon_first_mb=anon[k] - start["RssAnon"], file_growth_mb=max(file_) - start["RssFile"],
        rss_growth_mb=max(rss) - start["VmRSS"], chunk_in_place=bool(in_place),
        median_call_s=sorted(secs)[len(secs) // 2], loss=float(est.loss_))))


# --------------------------------------------------------------------- parent
def run_child(flag, cfg):
    cmd = [sys.executable, os.path.abspath(__file__), flag, json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {flag} {cfg} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in out:
        raise SystemExit(out["error"])
    return out


def versions():
    import numba
    import numpy
    import sklearn

    import fastbp

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "numba": numba.__version__,
            "fastbp": fastbp.__version__}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", default="fit,stream",
                   help="comma-separated: fit (peak of one epoch), stream (memmap partial_fit)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the fit")
    p.add_argument("--features", type=int, default=FEATURES,
                   help="columns of X (the contract's: 100)")
    p.add_argument("--dtypes", default="float32", help="comma-separated: float32,float64")
    p.add_argument("--solver", default="adam")
    p.add_argument("--hidden", default="64", help="hidden layer sizes, comma-separated")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--n-jobs", type=int, default=None, help="fastbp n_jobs (default: None)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="skip the early_stopping=True rows")
    p.add_argument("--stream-rows", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=10_000, help="rows per partial_fit call")
    p.add_argument("--passes", type=int, default=2, help="passes over the memmapped X")
    p.add_argument("--stream-warmup", type=int, default=3,
                   help="calls before the stream's growth is measured")
    p.add_argument("--quick", action="store_true", help="10⁵ rows everywhere: a smoke run")
    p.add_argument("--child-fit", help=argparse.SUPPRESS)
    p.add_argument("--child-stream", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_fit:
        return child_fit(json.loads(args.child_fit))
    if args.child_stream:
        return child_stream(json.loads(args.child_stream))
    if not proc_status():
        raise SystemExit("bench/memory.py reads /proc/self/status: Linux only")
    if args.quick:
        args.rows = args.stream_rows = 100_000
    series = args.series.split(",")
    hidden = [int(h) for h in args.hidden.split(",")]
    base_cfg = dict(hidden=hidden, batch_size=args.batch_size, solver=args.solver,
                    n_jobs=args.n_jobs, features=args.features)

    import numba

    out = [f"## fastbp memory: one epoch on big data, a memmapped partial_fit stream"
           f"{' (--quick sizes)' if args.quick else ''}", ""]
    out.append(f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, load average "
               + " ".join(f"{x:.2f}" for x in os.getloadavg())
               + f"; numba threads {numba.config.NUMBA_NUM_THREADS}, n_jobs={args.n_jobs}")
    out.append("- " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    out.append(f"- BPClassifier(hidden_layer_sizes={tuple(hidden)}, solver={args.solver!r}, "
               f"batch_size={args.batch_size}), {args.features} features, 2 classes; memory in "
               "MiB from /proc/self/status, each measurement in a fresh interpreter")

    if "fit" in series:
        rows = []
        for dtype in args.dtypes.split(","):
            for early in [False] + ([] if args.no_early_stopping else [True]):
                cfg = dict(base_cfg, rows=args.rows, dtype=dtype, early_stopping=early)
                log(f"fit {args.rows} x {args.features} {dtype}"
                    f"{' early_stopping' if early else ''} ...")
                r = run_child("--child-fit", cfg)
                log(f"  {json.dumps(r)}")
                rows.append(r)
        out += ["", "### One epoch (fit, max_iter=1)", "",
                "| rows | features | dtype | options | X MB | expected MB | peak increment MB "
                "| ratio | above X+y MB | X in place | numpy peak MB | fit s |",
                "|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
        for r in rows:
            c, e = r["cfg"], r["expected"]
            above = r["increment_mb"] - e["X"] - e["y"]
            out.append(
                f"| {c['rows']:,} | {c['features']} | {c['dtype']} | "
                f"{'early_stopping' if c['early_stopping'] else 'default'} | {e['X']:.1f} | "
                f"{r['expected_mb']:.1f} | {r['increment_mb']:.1f} | "
                f"{r['increment_mb'] / r['expected_mb']:.3f}× | {above:.1f} | "
                f"{'yes' if r['x_in_place'] else '**no**'} | {r['numpy_peak_mb']:.1f} | "
                f"{r['fit_s']:.2f} |")
        r0 = rows[0]
        e = r0["expected"]
        out += ["", f"expected = X {e['X']:.1f} + y {e['y']:.1f} + params "
                f"{e['params'] * 1024:.1f} KiB + optimizer moments {e['moments'] * 1024:.1f} KiB"
                f" + workspace {e['workspace'] * 1024:.1f} KiB (first row). Base (after import "
                f"and the warm-up fit, before X): {r0['base_mb']:.0f} MB; the warm-up itself "
                f"took {r0['warm_s']:.1f} s and {r0['base_mb'] - r0['import_mb']:.0f} MB "
                "(excluded)."]
        by = {}
        for r in rows:
            by.setdefault(r["cfg"]["dtype"], {})[r["cfg"]["early_stopping"]] = r
        for dtype, pair in by.items():
            if True in pair and False in pair:
                extra = pair[True]["increment_mb"] - pair[False]["increment_mb"]
                out.append(f"early_stopping's extra ({dtype}): {extra:.1f} MB "
                           f"(its validation copy X[idx_val] is "
                           f"{0.1 * pair[True]['expected']['X']:.1f} MB).")
        for r in rows:
            ratio = r["increment_mb"] / r["expected_mb"]
            c = r["cfg"]
            out.append(f"{c['dtype']} {'early_stopping' if c['early_stopping'] else 'default'}: "
                       f"{'meets' if ratio < TARGET_RATIO else '**misses**'} the < "
                       f"{TARGET_RATIO}× target ({ratio:.3f}×, "
                       f"{(TARGET_RATIO - ratio) * r['expected_mb']:+.0f} MB of headroom).")

    if "stream" in series:
        cfg = dict(base_cfg, rows=args.stream_rows, dtype=args.dtypes.split(",")[0],
                   chunk=args.chunk, passes=args.passes, warmup=args.stream_warmup)
        log(f"stream {args.stream_rows} x {args.features} memmap, chunks of {args.chunk} ...")
        r = run_child("--child-stream", cfg)
        log(f"  calls {r['calls']}, RssAnon {r['anon'][:5]} ... {r['anon'][-3:]}")
        out += ["", f"### partial_fit over a memmapped X (mmap_mode='r'), chunks of "
                f"{args.chunk} rows, {args.passes} passes", "",
                "| rows | dtype | file MB | calls | RssAnon first calls MB | RssAnon growth "
                "after MB (max / end) | RssFile growth MB | VmRSS growth MB | chunk in place "
                "| s per call (median) |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        out.append(
            f"| {args.stream_rows:,} | {cfg['dtype']} | {r['file_mb']:.1f} | {r['calls']} | "
            f"{r['anon_first_mb']:.1f} | {r['anon_growth_mb']:.1f} / "
            f"{r['anon_end_growth_mb']:.1f} | {r['file_growth_mb']:.1f} | "
            f"{r['rss_growth_mb']:.1f} | {'yes' if r['chunk_in_place'] else '**no**'} | "
            f"{r['median_call_s'] * 1000:.1f} ms |")
        out += ["", f"RssAnon first calls: its rise over the first {args.stream_warmup} calls "
                "(workspace, optimizer, first-call buffers); growth after: the largest rise "
                "over the rest, and at the end.  RssFile is the mapped file's touched pages "
                "(reclaimable)."]
    print("\n".join(out))


if __name__ == "__main__":
    main()
