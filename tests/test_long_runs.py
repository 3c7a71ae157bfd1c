"""Long runs and big data: memory over many fits, the peak of a big fit, a
memmapped partial_fit stream.

The contract: 500 fits and predicts in one process grow its resident memory by
less than 50 MB; one epoch on big float32 data peaks under 1.5 x (X + model +
workspaces) without a copy of X; ``partial_fit`` over a memmapped X, chunk by
chunk, holds memory flat.  ``bench/memory.py`` measures the same at 10^6 rows.

Each measurement runs in a fresh interpreter (``python -c``), so that pytest's
own allocations (and earlier tests' kernels) do not count, and reads the
resident set size from ``/proc/self/status`` (``VmRSS``; ``VmHWM``, its peak,
reset through ``/proc/self/clear_refs``; ``RssAnon``, its anonymous part):
Linux only.  The children print one JSON line; the tests print the figures
(``pytest -s`` or ``-rA`` shows them).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                       reason="reads the resident set size from /proc/self/status (Linux)"),
]

MB = 2.0**20

# Shared by every child: /proc readers (the benchmarks') and a spy on the array
# the epoch kernel reads (``fastbp._training.fit_stochastic`` gets the KernelInput).
_PRELUDE = "BENCH = %r\n" % str(Path(__file__).resolve().parents[1] / "bench") + """
import gc, json, sys, time, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("ignore", ConvergenceWarning)
import fastbp
from fastbp import _training
from fastbp._threads import eager_parallel

sys.path.append(BENCH)  # last: bench/sparse.py must not shadow a ``sparse`` package
from benchmarks.common import proc_status as status, reset_peak

KERNEL_INPUTS = []
WORKSPACES = []
_fit_stochastic = _training.fit_stochastic
_workspace = _training._workspace

def _spy_fit_stochastic(est, net, inputs, *args, **kwargs):
    KERNEL_INPUTS.append(inputs.dense)
    return _fit_stochastic(est, net, inputs, *args, **kwargs)

def _spy_workspace(*args, **kwargs):
    ws = _workspace(*args, **kwargs)
    WORKSPACES.append(ws)
    return ws

def spy():
    _training.fit_stochastic = _spy_fit_stochastic
    _training._workspace = _spy_workspace

def workspace_bytes(ws):
    arrays = [ws.buffers.acts, ws.buffers.deltas, ws.buffers.grad_sums, ws.buffers.rowsq,
              ws.buffers.rowloss, ws.buffers.pre]
    return sum(a.nbytes for a in arrays + [ws.partials])
"""


def run_child(body, *args, timeout=300):
    code = _PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out.get("skip"):
        pytest.skip(out["skip"])
    return out


# ------------------------------------------------------------ 500 fits + predicts
_MANY_FITS = """
import pickle
import scipy.sparse as sp
from fastbp import BPClassifier, BPRegressor

n_iter, warmup = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
X64 = rng.standard_normal((2000, 30))
X32 = X64.astype(np.float32)
y2 = (X64[:, 0] + X64[:, 1] > 0).astype(np.int64)
y3 = np.digitize(X64[:, 2], [-0.5, 0.5])
yr = X64 @ rng.standard_normal(30)
Xsp = sp.random(2000, 500, density=0.05, format="csr", random_state=0)
Xsp32 = Xsp.astype(np.float32)

def small(i, n_jobs=1, **kw):
    # 10 epochs, 3 on two threads: a parallel region per mini-batch stalls
    # whenever another process holds a core (this machine is shared)
    return dict(hidden_layer_sizes=(32,), max_iter=10 if n_jobs == 1 else 3, random_state=i,
                n_jobs=n_jobs, **kw)

def clf64(i):
    m = BPClassifier(**small(i)).fit(X64, y3)
    m.predict(X64); m.predict_proba(X64[:5])

def clf32_sgd(i):
    BPClassifier(**small(i, solver="sgd")).fit(X32, y2).predict(X32)

def partial(i):
    m = BPClassifier(**small(i))
    for lo in range(0, 2000, 500):
        m.partial_fit(X32[lo:lo + 500], y3[lo:lo + 500], classes=[0, 1, 2])
    m.predict_proba(X32)

def warm(i):
    m = BPClassifier(**small(i, warm_start=True)).fit(X64, y2)
    m.fit(X64, y2).predict(X64)

def reg64(i):
    BPRegressor(**small(i)).fit(X64, yr).predict(X64)

def reg32_early(i):
    BPRegressor(**small(i, early_stopping=True)).fit(X32, yr).predict(X32)

def reg_partial(i):
    m = BPRegressor(**small(i, solver="sgd", learning_rate_init=0.01))
    for lo in range(0, 2000, 500):
        m.partial_fit(X64[lo:lo + 500], yr[lo:lo + 500])
    m.predict(X64[:3])

def sparse(i):
    m = BPClassifier(**small(i)).fit(Xsp, y3)
    m.predict_proba(Xsp)

def sparse32_threads(i):
    BPClassifier(**small(i, n_jobs=2)).fit(Xsp32, y2).predict(Xsp32)

def threads(i):
    m = BPClassifier(**small(i, n_jobs=2)).fit(X32, y3)
    m.predict_proba(X32)

def threads_early(i):
    BPClassifier(**small(i, n_jobs=2, early_stopping=True)).fit(X64, y2).predict(X64)

def lbfgs(i):
    BPClassifier(**small(i, solver="lbfgs")).fit(X64, y3).predict_proba(X64)

def restarts(i):  # n_init starts, run concurrently on a thread pool (fastbp._restarts)
    BPClassifier(**small(i, n_init=2, n_jobs=2)).fit(X32, y2).predict(X32)

def pickled(i):
    m = pickle.loads(pickle.dumps(BPClassifier(**small(i)).fit(X32, y3)))
    m.predict_proba(X32)
    m.partial_fit(X32[:500], y3[:500])  # rebuilds the transient network and workspace

CASES = [clf64, clf32_sgd, partial, warm, reg64, reg32_early, reg_partial, sparse,
         sparse32_threads, threads, threads_early, lbfgs, restarts, pickled]
marks = {}
seconds = {c.__name__: 0.0 for c in CASES}
t0 = time.perf_counter()
with eager_parallel():  # the parallel builds run wherever n_jobs=2 asks for them
    for i in range(n_iter):
        if i == warmup or (i > warmup and (i - warmup) % 80 == 0):
            gc.collect()
            marks[i] = status()
        case = CASES[i % len(CASES)]
        t = time.perf_counter()
        case(i)
        seconds[case.__name__] += time.perf_counter() - t
gc.collect()
marks[n_iter] = status()
print(json.dumps(dict(marks=marks, seconds=time.perf_counter() - t0, by_case=seconds)))
"""


def test_500_fits_and_predicts_hold_resident_memory():
    """500 fits (each followed by predict or predict_proba) of small models in
    one process, cycling through dense float64 / float32, CSR, classifier and
    regressor, adam / sgd / lbfgs, partial_fit, warm_start, early_stopping,
    n_jobs=1 / 2, n_init=2 and a pickle round trip: the resident size after the
    last one is less than 50 MB above its size after the first 28 (which load
    the kernels).  X is 2000 x 30 (469 KiB in float64), so that even one
    leaked copy of X per fit would exceed the bound (checked by hand: +216 MB)."""
    n_iter, warmup = 500, 28  # (two rounds of the fourteen cases)
    out = run_child(_MANY_FITS, n_iter, warmup)
    marks = {int(k): v for k, v in out["marks"].items()}
    first, last = marks[warmup], marks[n_iter]
    growth = last["VmRSS"] - first["VmRSS"]
    trend = ", ".join(f"{k}: {v['VmRSS']:.1f}" for k, v in sorted(marks.items()))
    print(f"\n{n_iter} fits+predicts in {out['seconds']:.1f} s: VmRSS {first['VmRSS']:.1f} -> "
          f"{last['VmRSS']:.1f} MB after iteration {warmup} -> {n_iter} (growth "
          f"{growth:+.1f} MB; RssAnon {last['RssAnon'] - first['RssAnon']:+.1f} MB); "
          f"VmRSS by iteration: {trend}; seconds by case: "
          + ", ".join(f"{k} {v:.2f}" for k, v in out["by_case"].items()))
    assert growth < 50, f"resident memory grew {growth:.1f} MB over {n_iter} fits: {trend}"


# ------------------------------------------------------------ a big epoch's peak
_BIG_FIT = """
import tracemalloc
from fastbp import BPClassifier

rows, dtype, early = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"

def data(n):  # bench/benchmarks/common.scaling_data's draws
    rng = np.random.default_rng(0)
    w = rng.standard_normal(100).astype(np.float32)
    X = rng.standard_normal((n, 100), dtype=np.float32)
    y = (X @ w > 0).astype(np.int64)
    return (X if dtype == "float32" else X.astype(dtype)), y

def make(**kw):
    params = dict(hidden_layer_sizes=(64,), batch_size=200, max_iter=1, tol=0.0,
                  n_iter_no_change=10**6, random_state=0, early_stopping=early)
    return BPClassifier(**{**params, **kw})

# every kernel the big fit can run, serial and parallel builds (the Pacer
# probes both), loaded or compiled before the baseline
Xs, ys = data(5000)
with eager_parallel():
    for n_jobs in (1, None):
        make(n_jobs=n_jobs).fit(Xs, ys)
del Xs, ys
gc.collect()
base = status()["VmRSS"]
X, y = data(rows)
if not reset_peak():
    print(json.dumps({"skip": "cannot reset VmHWM (/proc/self/clear_refs)"}))
    sys.exit(0)
spy()
est = make()
t = time.perf_counter()
est.fit(X, y)
seconds = time.perf_counter() - t
peak = status()["VmHWM"]
in_place = bool(KERNEL_INPUTS) and all(np.shares_memory(a, X) for a in KERNEL_INPUTS)
expected = (X.nbytes + y.nbytes + est._net.params.nbytes + est._optimizer.moments.nbytes
            + workspace_bytes(WORKSPACES[-1])) / 2**20
# the same fit under tracemalloc (numpy's allocations; not during the measured one)
tracemalloc.start()
make().fit(X, y)
numpy_peak = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps(dict(X_mb=X.nbytes / 2**20, expected_mb=expected, increment_mb=peak - base,
                      in_place=in_place, numpy_peak_mb=numpy_peak, seconds=seconds)))
"""


@pytest.mark.parametrize("dtype, early_stopping", [
    ("float32", False),
    ("float32", True),
    ("float64", False),
])
def test_big_fit_peak_memory_and_no_copy_of_X(dtype, early_stopping):
    """One epoch on 200000 x 100 (bench/memory.py runs 10^6): the peak resident
    size above the size before X existed is under 1.5 x (X + y + parameters +
    optimizer moments + workspace), the epoch kernel reads X itself, and
    numpy's peak during the fit stays far below X (a copy would be all of it).
    With early_stopping the validation rows are copied (a tenth of X): within
    the same bound."""
    rows = 200_000
    out = run_child(_BIG_FIT, rows, dtype, int(early_stopping))
    ratio = out["increment_mb"] / out["expected_mb"]
    print(f"\n{rows} x 100 {dtype}{' early_stopping' if early_stopping else ''}: X "
          f"{out['X_mb']:.1f} MB, expected {out['expected_mb']:.1f} MB, peak increment "
          f"{out['increment_mb']:.1f} MB, ratio {ratio:.3f}, numpy peak "
          f"{out['numpy_peak_mb']:.1f} MB, X in place {out['in_place']}, fit "
          f"{out['seconds']:.2f} s")
    assert out["in_place"], "the epoch kernel got a copy of X"
    assert out["numpy_peak_mb"] < 0.5 * out["X_mb"], out
    assert ratio < 1.5, out


# ------------------------------------------------------- a memmapped stream
_STREAM = """
from fastbp import BPClassifier

path, chunk, passes, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
X = np.load(path, mmap_mode="r")
y = np.load(path[:-len(".npy")] + "_y.npy")
assert isinstance(X, np.memmap) and not X.flags.writeable
# load (or compile) the serial and parallel builds first: a parallel build
# compiled mid-stream would be a one-time rise, not the stream's
with eager_parallel():
    for n_jobs in (1, None):
        BPClassifier(hidden_layer_sizes=(64,), n_jobs=n_jobs).partial_fit(
            np.array(X[:chunk]), y[:chunk], classes=[0, 1])
gc.collect()
spy()
est = BPClassifier(hidden_layer_sizes=(64,), random_state=0)
anon, rss, in_place = [], [], True
t = time.perf_counter()
for _ in range(passes):
    for lo in range(0, X.shape[0], chunk):
        part = X[lo:lo + chunk]
        KERNEL_INPUTS.clear()
        est.partial_fit(part, y[lo:lo + chunk], classes=[0, 1])
        in_place &= bool(KERNEL_INPUTS) and all(np.shares_memory(a, part)
                                                for a in KERNEL_INPUTS)
        del part
        st = status()
        anon.append(st["RssAnon"])
        rss.append(st["VmRSS"])
print(json.dumps(dict(anon=anon, rss=rss, in_place=bool(in_place), calls=len(anon),
                      seconds=time.perf_counter() - t, file=status()["RssFile"])))
"""


def test_partial_fit_over_memmapped_X_holds_memory_flat(tmp_path):
    """partial_fit over a read-only memmapped X (300000 x 100 float32, 114 MB),
    10000 rows per call, two passes: the anonymous resident memory (the
    file's touched pages are file-backed, counted in RssFile) rises by less
    than 20 MB after the first 3 calls, and each chunk (a C-contiguous float32
    row slice of the memmap) reaches the kernel without a copy."""
    rows, chunk, passes, warmup = 300_000, 10_000, 2, 3
    path = tmp_path / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 100))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(100).astype(np.float32)
    y = np.empty(rows, dtype=np.int64)
    for lo in range(0, rows, 50_000):
        slab = rng.standard_normal((50_000, 100), dtype=np.float32)
        X[lo:lo + 50_000] = slab
        y[lo:lo + 50_000] = slab @ w > 0
    X.flush()
    del X
    np.save(tmp_path / "X_y.npy", y)
    out = run_child(_STREAM, path, chunk, passes, warmup)
    anon = out["anon"]
    growth = max(anon[warmup - 1:]) - anon[warmup - 1]
    print(f"\n{out['calls']} partial_fit calls of {chunk} rows over a {rows} x 100 float32 "
          f"memmap in {out['seconds']:.1f} s: RssAnon {anon[warmup - 1]:.1f} MB after call "
          f"{warmup}, max {max(anon[warmup - 1:]):.1f}, last {anon[-1]:.1f} (growth "
          f"{growth:+.1f} MB); VmRSS {out['rss'][warmup - 1]:.1f} -> {out['rss'][-1]:.1f} MB "
          f"(the file's pages); chunks in place {out['in_place']}")
    assert out["in_place"], "partial_fit copied a C-contiguous float32 memmap chunk"
    assert growth < 20, anon
