"""asv: import and JIT-compile time of fastbp in a fresh interpreter (timeraw_).

Each sample is a new Python process (asv's ``timeraw_``), so the numbers include the
interpreter's ``import fastbp`` (numba, numpy, scikit-learn) plus compiling, or
loading from numba's on-disk cache, what a user's first fit reaches: a default
``BPClassifier`` (adam, all threads) fitted on float32 data, then predict_proba.

- cold cache: ``NUMBA_CACHE_DIR`` is a new empty directory, set in the child before
  numba is imported, so every ``cache=True`` kernel compiles from scratch;
- warm cache: ``NUMBA_CACHE_DIR`` points at a directory that ``setup`` filled by
  running the same code once in another process.

``fastbp.precompile()`` (both dtypes, serial and parallel, dense and sparse) is not
timed cold: it took about 40 s on a loaded 2-core machine, a quarter of the whole
asv budget; the first-fit path took about 15 s.

These need fastbp installed (``pip install -e .``): asv drops ``PYTHONPATH``.
"""

import os
import shutil
import subprocess
import sys
import tempfile

# Run in the child after NUMBA_CACHE_DIR is set: what a user's first fit costs.
_FIRST_FIT = """
import warnings
import numpy as np
from fastbp import BPClassifier
X = np.random.default_rng(0).standard_normal((256, 5)).astype(np.float32)
y = np.arange(256) % 3
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    BPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y).predict_proba(X)
"""


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
        return _FIRST_FIT, setup


class CompileWarmCache:
    """First fit in a fresh process, numba cache already filled: cache loading."""

    repeat = 3
    number = 1
    rounds = 1
    warmup_time = 0.0
    timeout = 600

    def setup(self):
        self.root = tempfile.mkdtemp(prefix="fastbp-asv-warm-")
        # Fill the cache once, in another process (not timed).
        code = _set_cache_dir(self.root) + "\n" + _FIRST_FIT
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def timeraw_first_fit(self):
        return _FIRST_FIT, _set_cache_dir(self.root)
