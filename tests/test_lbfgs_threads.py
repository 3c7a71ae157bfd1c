"""L-BFGS fits from any Python thread: the BLAS pin (fastbp._blas_pin) holds there too.

scipy's L-BFGS-B calls level-1 BLAS on the parameter vector (``ddot``), and
OpenBLAS splits a long ``ddot`` by its thread count, which changes its rounding:
the fit pins every BLAS library to one thread for the whole minimization.
threadpoolctl (from 3.8) drops a thread count set from any Python thread other
than its "controlling" one -- the first to set one, for as long as it lives --
so a pin from a second thread did nothing, and the same fit from a worker
thread gave another model than from the main thread.

One fresh interpreter (the controlling thread is per process) fits the same
L-BFGS problem, with a parameter vector long enough for OpenBLAS to split
(about 10^5 entries), from: a long-lived thread pool's thread that pins first,
the main thread while that thread lives, the main thread alone, a new
``threading.Thread``, and two concurrent threads of joblib's threading backend;
for n_jobs=1 and 2.  Every BLAS library runs 2 threads when fastbp is not
pinning it, and no thread controls OpenBLAS before the first pin.  Under
threadpoolctl's rule alone the first thread to pin would keep control: the pool
thread's pins would hold and the main thread's be dropped while it lived; then
the main thread's would hold and every other thread's be dropped.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent("""
    import concurrent.futures, hashlib, json, threading, warnings
    import numpy as np
    import scipy.linalg.blas
    from joblib import Parallel, delayed
    from threadpoolctl import ThreadpoolController
    from fastbp import BPRegressor, _blas_pin
    from fastbp._blas_pin import pinned
    warnings.simplefilter("ignore")

    libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    for lib in libs:  # what the user's process may have, on any machine
        lib.set_num_threads(2)
    for lib in libs:  # no thread controls OpenBLAS yet (as after a threadpool_limits block)
        getattr(type(lib), "clear_controlling_thread", lambda force: None)(force=True)
    rng = np.random.RandomState(0)
    u, v = rng.normal(size=2_000_000), rng.normal(size=2_000_000)
    X = rng.normal(size=(200, 400))  # 102,913 parameters
    y = np.tanh(X[:, :10].sum(1)) + 0.1 * rng.normal(size=200)

    def dots():  # scipy's OpenBLAS, and numpy's
        return [float(scipy.linalg.blas.ddot(u, v)).hex(), float(np.dot(u, v)).hex()]

    def probe():
        with pinned("all"):
            return {"threads": sorted({lib.get_num_threads() for lib in libs}), "dots": dots()}

    def fit(n_jobs):
        est = BPRegressor(hidden_layer_sizes=(256,), solver="lbfgs", max_iter=5,
                          random_state=0, n_jobs=n_jobs).fit(X, y)
        arrays = est.coefs_ + est.intercepts_
        return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()

    def in_thread(f, *args):
        out = []
        t = threading.Thread(target=lambda: out.append(f(*args)))
        t.start()
        t.join()
        return out[0]

    out = {"unpinned_dots": dots(), "probes": {}, "fits": {}}
    for n_jobs in (1, 2):
        fits, probes = {}, {}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its thread lives on
            probes["pool thread"] = pool.submit(probe).result()
            fits["pool thread"] = pool.submit(fit, n_jobs).result()
            probes["main, pool alive"] = probe()
            fits["main, pool alive"] = fit(n_jobs)
        probes["main"], fits["main"] = probe(), fit(n_jobs)
        probes["thread"], fits["thread"] = in_thread(probe), in_thread(fit, n_jobs)
        both = Parallel(n_jobs=2, backend="threading")(delayed(fit)(n_jobs) for _ in range(2))
        fits["joblib threads"], fits["joblib threads (2nd)"] = both
        out["probes"][n_jobs], out["fits"][n_jobs] = probes, fits
    out["restored"] = sorted({lib.get_num_threads() for lib in libs})
    out["pins_left"] = [len(_blas_pin._PINS.holders), len(_blas_pin._PINS.saved)]
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def child():
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["FASTBP_BLAS"] = "openblas"
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_pin_takes_effect_in_every_python_thread(child):
    """Pinned, every library reports one thread in every thread, and a long
    ddot there has the one-thread bits -- which differ from the two-thread
    bits, or this test could not tell the two apart."""
    reference = child["probes"]["1"]["main"]["dots"]
    assert reference[0] != child["unpinned_dots"][0], "ddot rounds alike on 1 and 2 threads"
    for n_jobs, probes in child["probes"].items():
        for where, seen in probes.items():
            assert seen["threads"] == [1], (n_jobs, where, seen)
            assert seen["dots"] == reference, (n_jobs, where)
    assert child["restored"] == [2]  # and put back after
    assert child["pins_left"] == [0, 0]


def test_lbfgs_fits_are_bitwise_the_same_from_any_python_thread(child):
    reference = child["fits"]["1"]["main"]
    for n_jobs, fits in child["fits"].items():
        for where, digest in fits.items():
            assert digest == reference, (n_jobs, where)
