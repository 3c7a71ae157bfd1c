"""BLAS on one thread while fastbp needs it, and no longer: reference-counted
per library, safe against Ctrl-C and fork.

Why pin at all: the kernels call BLAS from inside their parallel regions, on
blocks each numba thread owns, so BLAS's own threads would only compete for the
cores; and L-BFGS and scikit-learn's scorers call BLAS from Python on long
vectors, which OpenBLAS splits (and rounds) by its thread count, so a result
would depend on the process (a pool worker has fewer threads than its parent).

What is pinned, and when (``pinned``):

* ``"kernels"``: the BLAS libraries numba's kernels call (scipy's; every BLAS
  library but numpy's own bundled copy, which compiled code never calls), for
  each compiled call and for a stochastic fit's duration;
* ``"all"``: every BLAS library, numpy's included, only where fastbp's Python
  code calls BLAS whose rounding must not depend on the process: L-BFGS's
  minimization, and the early-stopping validation score.

So numpy's matrix products in the user's other threads keep their threads
during predict and during a stochastic fit's epochs; where numpy and scipy
share one BLAS library (a conda or system OpenBLAS) that library is pinned
whenever fastbp runs.

The counts are per library (``_Pins``): the first holder saves a library's
thread count and pins it, the last one restores it, so Python threads entering
and leaving in any order never un-pin one another.  A ``KeyboardInterrupt``
arriving while a pin is released does not leave the library pinned (the
release is retried to its end, then the interrupt is raised), and a child
forked while any thread held a pin restores the libraries.

Any Python thread pins (``_set_num_threads``).  threadpoolctl (from 3.8) lets
only one "controlling" Python thread set a process-wide OpenBLAS pool (pthreads
builds, as scipy's and numpy's wheels are): the first to call
``set_num_threads`` keeps control while it lives, and the other threads' calls
are silently dropped.  Left to that, the first thread to pin (usually the main
one) would keep control, a pin from any other thread -- a thread pool's, a dask
worker's -- would do nothing, and L-BFGS from there would run scipy's ``ddot``
on OpenBLAS's threads: another rounding, another model.  So a set that
threadpoolctl drops is made again after taking control, and control is handed
back after every set, under this module's lock (a user's ``threadpool_limits``
in another thread takes it again at its next set).

What remains: OpenBLAS's count is one per process, so a pin from any thread
pins every thread's BLAS calls while it is held (the counts above restore it).
``openblas_set_num_threads_local``, called in each thread that calls BLAS,
would confine the pin to fastbp's threads; not done yet.
"""

import os
import threading
from contextlib import contextmanager

__all__ = ["pinned"]


class _Pins:
    def __init__(self):
        self.lock = threading.Lock()
        self.holders = {}  # token -> (thread ident, the libraries it pinned)
        self.saved = {}  # library -> its thread count before the first pin
        self.libraries = None  # "all" -> [...], "kernels" -> [...]: found once


_PINS = _Pins()


def _libraries(which):
    if _PINS.libraries is None:
        import numpy
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's kernels call)
        from threadpoolctl import ThreadpoolController

        blas = [lib for lib in ThreadpoolController().lib_controllers
                if lib.user_api == "blas"]
        numpy_dir = os.path.dirname(os.path.realpath(numpy.__file__))

        def is_numpys_own(lib):  # a wheel's numpy.libs/ or numpy/.libs/, .dylibs/
            path = os.path.realpath(lib.filepath)
            return path.startswith(numpy_dir + os.sep) or path.startswith(numpy_dir + ".libs")

        _PINS.libraries = {"all": blas,
                           "kernels": [lib for lib in blas if not is_numpys_own(lib)]}
    return _PINS.libraries[which]


def _set_num_threads(lib, n):
    """``lib.set_num_threads(n)``, obeyed whichever Python thread calls it (under
    ``_PINS.lock``).  threadpoolctl's OpenBLAS controller drops the call unless
    this thread controls OpenBLAS or no thread does; if it was dropped, this
    thread takes control from the other one and sets again.  Control is handed
    back after, so that no thread keeps it for its lifetime because it ran
    fastbp (the user's ``threadpool_limits`` elsewhere would then do nothing)."""
    release = getattr(type(lib), "clear_controlling_thread", None)  # threadpoolctl >= 3.8
    lib.set_num_threads(n)
    if release is None:
        return
    for _ in range(3):  # (another thread may take control between the two calls)
        if lib.get_num_threads() == n:
            break
        release(force=True)
        lib.set_num_threads(n)
    release()  # if this thread has control


def _pin(token, libs):
    with _PINS.lock:
        for lib in libs:  # saved before anything is set: an interrupt loses nothing
            if lib not in _PINS.saved:
                _PINS.saved[lib] = lib.get_num_threads()
        _PINS.holders[token] = (threading.get_ident(), tuple(libs))
        for lib in libs:
            _set_num_threads(lib, 1)


def _release(token):
    """Drop ``token``'s pins; restore every library no holder pins any more.
    Each step can be repeated, so an interrupted release can be run again."""
    with _PINS.lock:
        _PINS.holders.pop(token, None)
        held = {lib for _, libs in _PINS.holders.values() for lib in libs}
        for lib in [lib for lib in _PINS.saved if lib not in held]:
            _set_num_threads(lib, _PINS.saved[lib])
            del _PINS.saved[lib]  # only once restored


def _release_surely(token):
    interrupt = None
    while True:
        try:
            _release(token)
            break
        except KeyboardInterrupt as exc:  # finish restoring, then let it through
            interrupt = exc
    if interrupt is not None:
        raise interrupt


@contextmanager
def pinned(which="kernels"):
    """Within: the ``which`` BLAS libraries ("kernels" or "all") run one thread."""
    token = object()
    try:
        _pin(token, _libraries(which))
        yield
    finally:
        _release_surely(token)


def _after_fork_in_child():
    # Only the forking thread lives on in the child, and one of the others may
    # have held the lock.  Every pin is released, the forking thread's too: a
    # child forked from inside a fastbp call (a multiprocessing pool started
    # from a callback) seldom returns through it, and its kernels run serially
    # (fastbp._threads: no parallel region in a forked child), so nothing there
    # needs BLAS pinned but L-BFGS's rounding, which is the parent's to keep.
    _PINS.lock = threading.Lock()
    for token in list(_PINS.holders):
        _release(token)


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
