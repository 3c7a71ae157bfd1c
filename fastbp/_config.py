"""Process-wide switches, read once from the environment at import.

``FASTBP_CACHE``  -- "1" (default) caches compiled kernels on disk, so a fresh
                     process with a warm cache does not recompile; "0" disables it.
``FASTBP_PARALLEL_CACHE`` -- "1" (default) also caches the ``parallel=True``
                     variants.  Old numba releases crashed when a cached parallel
                     kernel was loaded under another thread count (pynndescent
                     PR #175); numba >= 0.60 does not, and ``tests/test_compile.py``
                     checks it (a cached kernel reloaded with another
                     NUMBA_NUM_THREADS).  Set "0" to opt out.

``FASTBP_BLAS``  -- "openblas" (default) or "mkl": the BLAS the kernels' matrix
                     products call (``fastbp._blas``, bound when the kernels
                     are imported).

Kernels are compiled lazily (nothing is compiled at import); see
``fastbp.precompile`` to compile ahead of time.
"""

import os
import threading
import types
import warnings

import numba
import numpy as np

__all__ = ["CACHE", "CACHE_PARALLEL", "FASTMATH_SAFE", "is_compiled", "jit", "jit_build",
           "jit_variants"]


def _env_flag(name, default):
    value = os.environ.get(name, default).strip().lower()
    return value not in ("0", "false", "no", "off", "")


CACHE = _env_flag("FASTBP_CACHE", "1")
CACHE_PARALLEL = CACHE and _env_flag("FASTBP_PARALLEL_CACHE", "1")

# The flags that keep IEEE semantics for inf/nan (no "nnan"/"ninf"): only for
# pure multiply-add loops.  Kernels with exp/log/division/sqrt use fastmath=False.
FASTMATH_SAFE = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _njit(func, cache, **options):
    """``numba.njit`` with an on-disk cache when one can be located.

    Kernels use ``error_model="numpy"``: a division by zero gives inf/nan (which
    the training loop reports as divergence) instead of a per-division check
    that raises ZeroDivisionError and keeps loops from vectorizing (the Adam
    step ran 3x slower with it).

    Numba raises ``RuntimeError: cannot cache function ...: no locator available``
    when neither the package directory, ``NUMBA_CACHE_DIR`` nor the user cache
    directory is writable; then we compile without a cache rather than fail.
    """
    options.setdefault("error_model", "numpy")
    if cache:
        try:
            return numba.njit(cache=True, **options)(func)
        except RuntimeError as exc:  # pragma: no cover - depends on the filesystem
            if "no locator available" not in str(exc):
                raise
            warnings.warn(
                f"fastbp: cannot cache compiled kernel {func.__name__!r} "
                f"({exc}); it will be compiled in every new process. Set "
                "NUMBA_CACHE_DIR to a writable directory to enable caching.",
                RuntimeWarning,
                stacklevel=3,
            )
    return numba.njit(cache=False, **options)(func)


def jit(func=None, **options):
    """Serial leaf kernel: ``njit(cache=CACHE, fastmath=False)`` by default."""
    if func is None:
        return lambda f: jit(f, **options)
    options.setdefault("fastmath", False)
    return _njit(func, CACHE, **options)


def _renamed_copy(func, suffix, overrides=None):
    # A separate function object per variant: numba names its cache index after
    # ``__qualname__``, so two dispatchers of one function would share (and
    # overwrite) one cache index.  ``overrides`` replace globals of the body
    # (numba resolves the functions a body calls through its globals): a build's
    # leaves.  (Not a closure made by a factory: numba missed its disk cache
    # for such a function in every new process, measured with numba 0.68.)
    func_globals = func.__globals__ if not overrides else {**func.__globals__, **overrides}
    new = types.FunctionType(
        func.__code__, func_globals, func.__name__ + suffix,
        func.__defaults__, func.__closure__,
    )
    new.__qualname__ = func.__qualname__ + suffix
    new.__doc__ = func.__doc__
    new.__module__ = func.__module__
    return new


def jit_variants(func, overrides=None, suffix=""):
    """Compile one plain-Python body twice, like umap's epoch kernels.

    Returns ``(serial, parallel)`` dispatchers. ``prange`` loops run as plain
    ``range`` in the serial variant, which is what runs with one thread, in a
    forked child of a process that started OpenMP threads, and wherever a
    parallel region is unsafe.  Both compile lazily.  ``overrides`` (a dict of
    names to compiled functions) links the body against them (see
    ``jit_build``); ``suffix`` names the build.
    """
    # nogil: restarts (fastbp._restarts) run one start per Python thread.
    serial = _njit(_renamed_copy(func, suffix + "_serial", overrides), CACHE,
                   parallel=False, nogil=True)
    parallel = _njit(_renamed_copy(func, suffix + "_parallel", overrides), CACHE_PARALLEL,
                     parallel=True, nogil=True)
    return serial, parallel


def jit_build(func, overrides, suffix, **options):
    """A serial function compiled from ``func``'s body, the names in
    ``overrides`` (a dict, or None) resolving to the compiled functions given
    there instead of the module's: one body, builds that link different leaves
    (``fastbp._kernels.network.Build``).  ``suffix`` names the build (and its
    cache index)."""
    options.setdefault("fastmath", False)
    return _njit(_renamed_copy(func, suffix, overrides), CACHE, **options)


def is_compiled(dispatcher, args):
    """Whether calling ``dispatcher`` with ``args`` would run without compiling:
    a specialization for their types exists in this process or in numba's disk
    cache (then the call only loads it).  False when unsure.

    Reads numba internals (``Dispatcher.overloads``, ``FunctionCache._index_key``
    and its index file); ``tests/test_numba_contract.py`` pins them.
    """
    try:
        sig = tuple(dispatcher.typeof_pyval(a) for a in args)
        if sig in dispatcher.overloads:
            return True
        cache = dispatcher._cache
        key = cache._index_key(sig, dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # NullCache (no index), a changed numba, an unreadable index
        return False


_fresh = {"checked": False}
# Held by the one thread that runs the check; a kernel call in another thread
# (a restart pool's first fit, say) waits for it instead of loading a cache
# file the check is about to delete.
_fresh_lock = threading.Lock()


def _cache_dir(dispatcher):
    """numba's on-disk cache directory of *dispatcher* as a ``Path``; None if the
    dispatcher is not cached (numba gives it a ``NullCache``: FASTBP_CACHE=0,
    FASTBP_PARALLEL_CACHE=0 or no writable location); raises ``LookupError`` if
    it is cached but numba no longer keeps the directory where we look.

    Reads numba internals (``Dispatcher._cache``, ``NullCache`` and
    ``FunctionCache._cache_path``); ``tests/test_numba_contract.py`` pins them.
    """
    from pathlib import Path

    try:
        from numba.core.caching import NullCache
    except ImportError:
        # Moved or renamed: every dispatcher takes the lookup below, and the
        # uncached ones warn (a false alarm) rather than hide a real problem.
        NullCache = ()

    cache = getattr(dispatcher, "_cache", None)
    if isinstance(cache, NullCache):
        return None
    path = getattr(cache, "_cache_path", None)
    if not isinstance(path, str) or not path:
        raise LookupError(getattr(dispatcher, "__name__", repr(dispatcher)))
    return Path(path)


def ensure_cache_fresh(dispatchers):
    """Drop on-disk kernels compiled from older sources of *any* kernel module.

    Numba invalidates a cached function only when its own file changes, but the
    cached epoch kernel also contains the code it inlined from other files
    (linalg, losses, optimizers, this module's flags).  A digest of all of them
    (``kernel_sources_digest``) is kept beside the cache; when it differs, the
    cache files are removed so the kernels are recompiled instead of silently
    running stale code.  Runs once per process, before the first kernel call:
    the first caller does the work and a concurrent caller waits until it is
    done (a thread that went on would load kernels the check deletes).  Does
    nothing with FASTBP_CACHE=0.  Warns (once) if caching is on but numba's
    cache directory cannot be found: then this protection is off.
    """
    if _fresh["checked"] or not CACHE:
        return
    with _fresh_lock:
        if _fresh["checked"]:  # another thread did it while this one waited
            return
        try:
            _drop_stale_kernels(dispatchers)
        finally:
            _fresh["checked"] = True


def kernel_sources_digest():
    """The digest the cached kernels are stamped with: numba's version, numpy's
    major version (``optimizers.ADAM_UPDATE_IN_FLOAT64`` is compiled in) and
    the source of every module a kernel inlines."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).parent
    digest = hashlib.sha256(numba.__version__.encode())
    digest.update(f"numpy {np.__version__.split('.')[0]}".encode())
    for path in sorted([here / "_config.py", *(here / "_kernels").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _drop_stale_kernels(dispatchers):
    """``ensure_cache_fresh``'s work, in the one thread that does it."""
    digest = kernel_sources_digest()
    cache_dirs, lost = set(), []
    for dispatcher in dispatchers:
        try:
            cache_dir = _cache_dir(dispatcher)
        except LookupError as exc:
            lost.append(str(exc))
            continue
        if cache_dir is not None:
            cache_dirs.add(cache_dir)
    if lost:
        warnings.warn(
            f"fastbp: cannot locate numba's cache directory for "
            f"{', '.join(map(repr, dict.fromkeys(lost)))} (numba {numba.__version__} changed the "
            "internals fastbp reads); stale compiled kernels left by an older "
            "fastbp will not be detected and may run. Set FASTBP_CACHE=0 to "
            "disable caching, or delete fastbp's *.nbi/*.nbc files from numba's "
            "cache (fastbp/_kernels/__pycache__, NUMBA_CACHE_DIR or the user cache "
            "directory) after upgrading fastbp.",
            RuntimeWarning,
            stacklevel=4,
        )
    for cache_dir in cache_dirs:
        stamp = cache_dir / "fastbp-kernel-sources.sha256"
        try:
            if stamp.exists() and stamp.read_text().strip() == digest:
                continue
            if cache_dir.is_dir():
                for stale in [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")]:
                    stale.unlink(missing_ok=True)
            cache_dir.mkdir(parents=True, exist_ok=True)
            stamp.write_text(digest + "\n")
        except OSError:
            # Numba chose this directory because it was writable when the kernels
            # were defined (its locators skip unwritable ones: NUMBA_CACHE_DIR,
            # the package's __pycache__, the user cache).  Failing now (the
            # permissions changed since, a full disk) means numba cannot save
            # there either and compiles in memory; a failed check must not stop a
            # fit, so carry on -- without the stamp, the next process checks again.
            continue
