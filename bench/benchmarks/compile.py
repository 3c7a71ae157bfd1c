"""asv: import and JIT-compile time of fastbp in a fresh interpreter.

What a user's first fit costs, in a new Python process: a default
``BPClassifier(random_state=0)`` (adam, all threads) fitted on scikit-learn's
``load_digits`` (as float32), then predict_proba on the same rows.  The numbers
include importing numpy, scikit-learn and fastbp (numba) plus compiling, or
loading from numba's on-disk cache, every kernel that path reaches.

- cold cache: ``NUMBA_CACHE_DIR`` is a new empty directory, set in the child before
  numba is imported, so every ``cache=True`` kernel compiles from scratch;
- warm cache: ``NUMBA_CACHE_DIR`` points at a directory that a previous run of the
  same code filled;
- ``MLPClassifier(random_state=0)`` runs the same code, for comparison.

``timeraw_*`` time the whole child (asv's fresh-interpreter benchmarks);
``FirstFit.track_seconds`` splits one run of each case into import, fit and the
first predict_proba, as the child measures them (``run_first_fit``, which
``bench/compare.py --series first-fit`` also uses).

``fastbp.precompile()`` (both dtypes, serial and parallel, dense and sparse) is not
timed cold: it took about 40 s on a loaded 2-core machine, a quarter of the whole
asv budget; the first-fit path took about 15 s.

These need fastbp installed (``pip install -e .``): asv drops ``PYTHONPATH``.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

_ESTIMATORS = {
    "fastbp": "from fastbp import BPClassifier as Estimator",
    "sklearn": "from sklearn.neural_network import MLPClassifier as Estimator",
}

#: The cases of ``first_fit_series``, in the order they run.
FIRST_FIT_CASES = ("fastbp-cold", "fastbp-warm", "sklearn")
#: What the child reports (seconds), and the parent's wall time of the whole child.
FIRST_FIT_PARTS = ("import", "fit", "predict_proba", "process")
_REPORT = "FIRST_FIT_SECONDS "


def first_fit_code(engine="fastbp", dtype="float32", max_iter=None, report=False):
    """Python source of a user's first fit on digits; with ``report``, it prints
    the seconds of its imports, fit and first predict_proba as one JSON line."""
    params = "random_state=0" + ("" if max_iter is None else f", max_iter={max_iter}")
    code = f"""
import time
_t0 = time.perf_counter()
import warnings
from sklearn.datasets import load_digits
{_ESTIMATORS[engine]}
_t1 = time.perf_counter()
X, y = load_digits(return_X_y=True)
X = X.astype({dtype!r})
est = Estimator({params})
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _t2 = time.perf_counter()
    est.fit(X, y)
    _t3 = time.perf_counter()
    est.predict_proba(X)
    _t4 = time.perf_counter()
"""
    if report:
        code += (
            "import json\n"
            f"print({_REPORT!r} + json.dumps({{'import': _t1 - _t0, 'fit': _t3 - _t2,"
            " 'predict_proba': _t4 - _t3}))\n"
        )
    return code


def run_first_fit(engine, cache_dir=None, dtype="float32", max_iter=None, cwd=None):
    """Run ``first_fit_code`` in a fresh ``sys.executable`` (``NUMBA_CACHE_DIR`` =
    ``cache_dir`` when given) and return its seconds by ``FIRST_FIT_PARTS``."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    code = first_fit_code(engine, dtype, max_iter, report=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"first-fit child ({engine}) failed:\n{proc.stderr}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(_REPORT)][-1]
    return {**json.loads(line[len(_REPORT):]), "process": wall}


def first_fit_series(dtype="float32", max_iter=None, repeats=1, log=None):
    """Median seconds ``{case: {part: s}}`` over ``repeats`` rounds; each round runs
    fastbp with a new empty cache dir, fastbp with the first round's (now warm)
    dir, and sklearn, each in a fresh interpreter."""
    runs = {case: [] for case in FIRST_FIT_CASES}
    with tempfile.TemporaryDirectory(prefix="fastbp-first-fit-") as root:
        warm = None
        for r in range(repeats):
            cold = tempfile.mkdtemp(dir=root)
            warm = warm or cold
            for case, engine, cache in (("fastbp-cold", "fastbp", cold),
                                        ("fastbp-warm", "fastbp", warm),
                                        ("sklearn", "sklearn", None)):
                runs[case].append(run_first_fit(engine, cache, dtype, max_iter, cwd=root))
                if log:
                    log(f"  first fit {case} {r + 1}/{repeats}: "
                        + ", ".join(f"{k} {v:.2f}s" for k, v in runs[case][-1].items()))
    return {case: {part: statistics.median(t[part] for t in ts) for part in FIRST_FIT_PARTS}
            for case, ts in runs.items()}


def _set_cache_dir(path):
    # Untimed part of the child (timeit's setup): before numba is imported.
    return f"import os; os.environ['NUMBA_CACHE_DIR'] = {path!r}"


class Import:
    """``import fastbp`` alone (no fit): kernels with ``cache=True`` must not compile
    at import."""

    repeat = 3
    number = 1
    rounds = 1
    warmup_time = 0.0

    def timeraw_import(self):
        return "import fastbp"


class CompileColdCache:
    """First fit in a fresh process, empty numba cache: full JIT compilation."""

    repeat = 2
    number = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 600

    def setup(self):
        self.root = tempfile.mkdtemp(prefix="fastbp-asv-cold-")

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def timeraw_first_fit(self):
        # A new empty directory for each sample (each sample is one child process).
        setup = (
            "import os, tempfile; "
            f"os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(dir={self.root!r})"
        )
        return first_fit_code(), setup


class CompileWarmCache:
    """First fit in a fresh process, numba cache already filled: cache loading."""

    repeat = 3
    number = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 600

    def setup(self):
        self.root = tempfile.mkdtemp(prefix="fastbp-asv-warm-")
        run_first_fit("fastbp", self.root)  # fill the cache once, in another process

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def timeraw_first_fit(self):
        return first_fit_code(), _set_cache_dir(self.root)


class MLPFirstFit:
    """The same first fit with MLPClassifier, in a fresh process (baseline)."""

    repeat = 3
    number = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 300

    def timeraw_first_fit(self):
        return first_fit_code("sklearn")


class FirstFit:
    """One run of each case (fastbp cold, fastbp warm, sklearn) split into seconds
    of import, fit, first predict_proba and the whole child process."""

    param_names = ["case", "part"]
    params = [list(FIRST_FIT_CASES), list(FIRST_FIT_PARTS)]
    timeout = 600

    def setup_cache(self):
        return first_fit_series()

    def track_seconds(self, results, case, part):
        return results[case][part]

    track_seconds.unit = "seconds"
