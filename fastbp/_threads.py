"""Thread counts, set in a scoped way, and the choice of kernel variant.

Inside a fastbp call:

* numba runs ``n_threads`` threads (``numba.set_num_threads``, thread-local in
  numba, restored in ``finally``);
* BLAS is pinned to one thread (threadpoolctl, restored on exit), because the
  kernels call BLAS (``?gemm`` through ``fastbp._blas``, numba's ``?gemv`` for
  single columns on OpenBLAS) from inside their parallel regions on blocks each
  thread owns: two thread pools never compete for the cores.  Which libraries,
  and for how long: ``fastbp._blas_pin``.

``n_jobs=None`` means numba's current thread count, which is the machine's
cores unless the process limits it (loky workers set NUMBA_NUM_THREADS and
OMP_NUM_THREADS to cpu_count() // n_jobs), capped by OMP_NUM_THREADS when set
(dask's nanny sets it to 1 in its workers).  Thread counts change only the
speed, never the result: the work is split in blocks that depend on the
machine's CPU count alone (``n_blocks``).  The serial variant runs when one
thread is asked for, in a forked child of a process whose OpenMP threads
already started (GNU OpenMP kills such a child), and from a non-main Python
thread under the ``workqueue`` layer (which aborts on concurrent use).
"""

import os
import threading
from contextlib import contextmanager

import numba

from . import _config
from ._blas_pin import pinned

_state = {"parallel_started": False, "forked_child": False}


def _after_fork_in_child():
    if _state["parallel_started"]:
        _state["forked_child"] = True


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork to guard
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _machine_cpus():
    """Logical CPUs of the machine, as the operating system reports them.

    Deliberately *not* numba's NUMBA_NUM_THREADS, OMP_NUM_THREADS, the CPU
    affinity or Python's PYTHON_CPU_COUNT override: process pools change all of
    those per worker (loky sets NUMBA_NUM_THREADS=cpu_count()//n_jobs, dask's
    nanny OMP_NUM_THREADS=1), and the work-block count derived from this number
    decides the floating-point operations of a fit.
    """
    try:
        count = os.sysconf("SC_NPROCESSORS_ONLN")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        count = os.cpu_count()
    return max(1, int(count or 1))


# Read once per process: the same in a worker, a forked or spawned child.
MACHINE_CPUS = _machine_cpus()


def _omp_budget():
    """OMP_NUM_THREADS as an int, if the environment sets one (else None).

    Process pools that run one task per core set it to tell native libraries to
    stay single-threaded: loky does (with NUMBA_NUM_THREADS), and dask's nanny
    does by default (without NUMBA_NUM_THREADS).
    """
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        budget = int(value)
    except ValueError:
        return None
    return budget if budget >= 1 else None


def resolve_n_threads(n_jobs):
    """Number of threads for ``n_jobs`` (None, or an int; negative counts back from all).

    None means numba's current thread count, capped by OMP_NUM_THREADS when the
    environment sets it, so fastbp does not oversubscribe process-pool workers.
    """
    max_threads = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        budget = _omp_budget()
        n = int(numba.get_num_threads())
        return n if budget is None else max(1, min(n, budget))
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, max_threads + 1 + n_jobs)
    return max(1, min(n_jobs, max_threads))


def n_blocks(batch_size):
    """Work blocks per parallel region for mini-batches of ``batch_size`` rows.

    A function of the machine's CPU count (``MACHINE_CPUS``) and the batch size
    only -- never of ``n_jobs``, numba's thread settings, OMP_NUM_THREADS or the
    process: the kernels split their BLAS calls by block, and OpenBLAS rounds
    products of different shapes differently, so this number fixes the
    floating-point operations of a fit.  One block per CPU (fewer blocks would
    idle threads; more would repeat OpenBLAS's packing of each weight matrix per
    block), and at least 16 batch rows per block.  A process limited to fewer
    threads runs the same blocks, some threads taking several.
    """
    return int(max(1, min(MACHINE_CPUS, batch_size // 16)))


def _parallel_is_safe():
    if _state["forked_child"]:
        return False
    # numba names its layer only once its threads are launched, which
    # get_num_threads does: without it, Python threads making a process's first
    # calls would all see no layer yet and all run workqueue's parallel kernel
    # at once (it aborts the process: "Concurrent access has been detected")
    numba.get_num_threads()
    try:
        layer = numba.threading_layer()
    except ValueError:  # (no layer could be launched)
        layer = None
    if layer == "workqueue" and threading.current_thread() is not threading.main_thread():
        return False
    return True


def effective_threads(n_threads):
    """``n_threads`` or 1 where a parallel region would be unsafe."""
    if n_threads > 1 and not _parallel_is_safe():
        return 1
    return n_threads


def prepare(n_threads):
    """Before kernels run: drop stale cached kernels (once per process) and note
    that parallel regions may start (for the fork guard)."""
    from ._config import ensure_cache_fresh
    from ._kernels import DISPATCHERS

    ensure_cache_fresh(DISPATCHERS.values())
    if n_threads > 1:
        _state["parallel_started"] = True


def choose(pair, n_threads):
    """The build of ``pair`` (a ``fastbp._kernels.KernelPair``) to run for a call
    asking for ``n_threads``, and the thread count it runs with.

    The one place a kernel variant is chosen: the parallel build when more than
    one thread is asked for and a parallel region is safe here, else the serial
    one.  (The training loop's Pacer may still run the serial twin of a chosen
    parallel build for a call when that is faster: the result is the same.)
    """
    n_threads = effective_threads(n_threads)
    prepare(n_threads)
    return (pair.parallel if n_threads > 1 else pair.serial), n_threads


# Seconds of serial work after which compiling a parallel build that is not
# compiled yet (neither in this process nor in numba's disk cache) pays back:
# its compile time divided by the share of the serial time it saves (the
# README's Compilation and caching section gives both, as measured on 2
# cores); the predict kernel compiles in a fraction of the epoch kernel's time.
PARALLEL_PAYBACK_SECONDS = {"train": 15.0, "predict": 3.0}


class CompileGate:
    """Whether to run -- and so compile -- the parallel build of a kernel pair,
    for one signature (``gate`` keeps one per process).

    Open at once when that build is already compiled or in the disk cache
    (``_config.is_compiled``).  Otherwise the serial build runs in its place
    (the same result bit for bit: the blocks do not change) until the serial
    seconds spent in its place in this process, plus the caller's estimate of
    those still to come, reach ``PARALLEL_PAYBACK_SECONDS[kind]``: a fit that
    cannot gain the compile time back never compiles it.  Serial time adds up
    across calls (e.g. a stream of ``partial_fit``), so a long-running process
    gets the parallel build in the end.
    """

    def __init__(self, kind, is_open):
        self.kind = kind
        self.open = bool(is_open)
        self.serial_seconds = 0.0
        self.serial_warm = False  # the first serial call was made (and not counted)

    def serial_ran(self, seconds, seconds_to_come=0.0):
        """A call of the serial build in the parallel one's place took
        ``seconds``; ``seconds_to_come`` is the caller's estimate of the serial
        time still to come.  The one place a timed serial call feeds the gate
        (the Pacer's, L-BFGS's and predict's calls all come here): the first
        call of this signature in the process is not counted, as it may have
        compiled (or loaded) the serial build itself."""
        if self.open:
            return
        if not self.serial_warm:
            self.serial_warm = True
            return
        self.serial_seconds += seconds
        self.update(seconds_to_come)

    def update(self, seconds_to_come=0.0):
        if self.serial_seconds + seconds_to_come >= PARALLEL_PAYBACK_SECONDS[self.kind]:
            self.open = True


_gates = {}  # (parallel dispatcher, argument types) -> CompileGate


@contextmanager
def eager_parallel():
    """Within: every gate is open, so the parallel builds run (and compile)
    whenever more than one thread is asked for (``precompile``, the tests)."""
    saved = dict(PARALLEL_PAYBACK_SECONDS)
    PARALLEL_PAYBACK_SECONDS.update((kind, 0.0) for kind in saved)
    try:
        yield
    finally:
        PARALLEL_PAYBACK_SECONDS.update(saved)


def gate(parallel, kind, args):
    """The ``CompileGate`` of the parallel dispatcher ``parallel`` called with
    ``args`` (``kind``: "train" or "predict", for the payback time)."""
    try:
        key = (parallel, tuple(parallel.typeof_pyval(a) for a in args))
    except Exception:  # not numba-typable: the call itself will say why
        return CompileGate(kind, True)
    found = _gates.get(key)
    if found is None:
        found = _gates[key] = CompileGate(kind, _config.is_compiled(parallel, args))
    found.update()
    return found


def gated(pair, kernel, kind, args):
    """The kernel to call with ``args`` after ``choose`` picked ``kernel`` of
    ``pair``: the serial build in place of a parallel one whose compile gate
    is closed.  Returns ``(kernel, gate)``: ``gate`` is the ``CompileGate`` to
    give that serial call's time (``CompileGate.serial_ran``), else None.
    (The epoch loop's Pacer takes the gate itself: it picks a kernel per call.)
    """
    if kernel is not pair.parallel:
        return kernel, None
    found = gate(pair.parallel, kind, args)
    return (kernel, None) if found.open else (pair.serial, found)


@contextmanager
def thread_limits(n_threads, blas="kernels"):
    """Run numba with ``n_threads`` and the ``blas`` BLAS libraries ("kernels"
    or "all", see ``fastbp._blas_pin``) with one thread; restore both after."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        with pinned(blas):
            yield
    finally:
        numba.set_num_threads(previous)
