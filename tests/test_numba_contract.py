"""The numba internals fastbp relies on, pinned: a numba release that changes
one of them fails here, by name, instead of silently disabling the stale-cache
check or corrupting products.

* ``fastbp._config.ensure_cache_fresh`` finds each kernel's cache directory at
  ``Dispatcher._cache._cache_path`` and tells an uncached kernel by its
  ``numba.core.caching.NullCache``; when the path cannot be found it warns.
* ``fastbp._kernels.linalg._xgemm`` declares numba's C helper ``numba_xxgemm``
  (the BLAS bridge of ``np.dot``) by hand, under fastbp's own symbol name bound
  to the helper's address (``fastbp._blas``), and calls it.  Its numerical result
  (all four transpose combinations, offsets into larger parents, leading
  dimensions, float32 and float64) is checked in
  ``tests/test_kernels.py::test_gemm_rm_on_strided_sub_blocks``.
"""

import re
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import types

from fastbp import _blas, _config
from fastbp._kernels import DISPATCHERS
from fastbp._kernels import linalg as KLIN


# --- the on-disk cache ------------------------------------------------------

@pytest.mark.skipif(not _config.CACHE, reason="FASTBP_CACHE=0: fastbp's kernels are "
                    "not cached, there is no cache directory to find")
def test_cached_dispatcher_keeps_its_cache_directory_in_cache_path():
    cached = ["train_batches_serial", "predict_serial"]
    if _config.CACHE_PARALLEL:
        cached += ["train_batches_parallel", "predict_parallel"]
    for name in cached:
        cache = getattr(DISPATCHERS[name], "_cache", None)
        path = getattr(cache, "_cache_path", None)
        assert isinstance(path, str) and Path(path).is_dir(), (
            f"fastbp relies on a cached numba dispatcher having ._cache._cache_path, "
            f"the str path of its cache directory (numba {numba.__version__}: "
            f"{name}._cache is {cache!r}, ._cache_path is {path!r}); without it the "
            "stale-cache check of fastbp._config.ensure_cache_fresh is off")
        assert _config._cache_dir(DISPATCHERS[name]) == Path(path)


def test_uncached_dispatcher_has_a_null_cache():
    # ensure_cache_fresh skips (without a warning) a kernel with a NullCache: it
    # is not cached (FASTBP_CACHE=0, FASTBP_PARALLEL_CACHE=0, no writable place).
    from numba.core.caching import NullCache

    uncached = numba.njit(cache=False)(lambda x: x + 1)
    assert isinstance(uncached._cache, NullCache), (
        "fastbp relies on numba giving a dispatcher compiled with cache=False a "
        f"numba.core.caching.NullCache as ._cache (numba {numba.__version__} gives "
        f"{uncached._cache!r})")
    assert _config._cache_dir(uncached) is None
    if not _config.CACHE:
        assert all(isinstance(d._cache, NullCache) for d in DISPATCHERS.values())


def _fake_dispatcher(name, cache):
    return type("FakeDispatcher", (), {"__name__": name, "_cache": cache})()


def test_cache_path_not_found_warns_once(tmp_path, monkeypatch):
    """Caching on but a cache directory nowhere to be found: ONE RuntimeWarning
    (naming numba's version and what to do); the kernels it can locate are still
    checked; uncached kernels do not count."""

    class MovedCache:  # a numba that keeps the path elsewhere
        cache_dir = str(tmp_path / "elsewhere")

    class FoundCache:
        _cache_path = str(tmp_path / "found")

    monkeypatch.setattr(_config, "CACHE", True)
    monkeypatch.setitem(_config._fresh, "checked", False)
    dispatchers = [_fake_dispatcher("fake_serial", MovedCache()),
                   _fake_dispatcher("fake_parallel", MovedCache()),
                   _fake_dispatcher("fake_found", FoundCache()),
                   numba.njit(cache=False)(lambda x: x)]
    with pytest.warns(RuntimeWarning,
                      match=re.escape("cannot locate numba's cache directory for "
                                      "'fake_serial', 'fake_parallel' (numba "
                                      f"{numba.__version__} ") + r".*stale compiled "
                            r"kernels.*will not be detected.*FASTBP_CACHE=0") as record:
        _config.ensure_cache_fresh(dispatchers)
    assert len([w for w in record if w.category is RuntimeWarning]) == 1
    stamp = Path(FoundCache._cache_path) / "fastbp-kernel-sources.sha256"
    assert len(stamp.read_text().strip()) == 64  # checked and stamped all the same
    # once per process
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        _config.ensure_cache_fresh(dispatchers)
    assert again == []


def test_cache_off_checks_nothing_and_never_warns(tmp_path, monkeypatch):
    class NoPathCache:
        pass

    monkeypatch.setattr(_config, "CACHE", False)
    monkeypatch.setitem(_config._fresh, "checked", False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _config.ensure_cache_fresh([_fake_dispatcher("fake_kernel", NoPathCache())])
    assert record == []
    assert _config._fresh["checked"] is False  # not even marked as done


# --- numba_xxgemm -----------------------------------------------------------

# What fastbp._kernels.linalg._xgemm passes, in order (the C prototype in
# numba/_lapack.c): kind, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta,
# C, ldc, returning an int status.
_XXGEMM_ARGS = ["char", "char", "char", "intp", "intp", "intp", "ptr", "ptr", "intp",
                "ptr", "intp", "ptr", "ptr", "intp"]


def test_numba_exports_the_xxgemm_helper():
    from numba import _helperlib

    address = _helperlib.c_helpers.get("xxgemm")
    assert isinstance(address, int) and address != 0, (
        "fastbp's _xgemm calls numba's C helper numba_xxgemm, exported as "
        f"numba._helperlib.c_helpers['xxgemm'] (numba {numba.__version__} has "
        f"{sorted(k for k in _helperlib.c_helpers if 'gemm' in k)})")
    # numba binds each helper to the LLVM symbol "numba_<name>" (numba/core/base.py)
    # once a target context exists; that symbol is what fastbp's call resolves to.
    import llvmlite.binding as ll

    numba.njit(lambda x: x)(1)
    assert ll.address_of_symbol("numba_xxgemm") == address, (
        "the LLVM symbol numba_xxgemm fastbp's _xgemm calls is not numba's helper")


@pytest.mark.parametrize("dtype", [types.float64, types.float32], ids=["f64", "f32"])
def test_numba_declares_xxgemm_as_fastbp_does(dtype):
    """numba's own typed declaration of numba_xxgemm is the 14-argument one
    fastbp's _xgemm assumes."""
    from numba.np.linalg import _BLAS

    ext = _BLAS.numba_xxgemm(dtype)
    ptr = types.CPointer(dtype)
    expected = {"char": types.char, "intp": types.intp, "ptr": ptr}
    assert ext.symbol == "numba_xxgemm" and ext.sig.return_type == types.intc and list(
        ext.sig.args) == [expected[a] for a in _XXGEMM_ARGS], (
        "fastbp's _xgemm calls numba_xxgemm(kind, transa, transb, m, n, k, alpha, A, "
        "lda, B, ldb, beta, C, ldc) -> int; numba "
        f"{numba.__version__} declares {ext.symbol}{ext.sig}")


def _declaration(dispatcher, name="numba_xxgemm"):
    """The LLVM ``declare`` of *name* in the IR of a freshly compiled dispatcher."""
    (ir,) = dispatcher.inspect_llvm().values()
    found = re.findall(rf"^declare (.*?)\s*@{name}\(([^)]*)\)", ir, re.M)
    assert len(found) == 1, f"no single declaration of {name} in the IR: {found}"
    ret, args = found[0]
    return ret.split()[-1], [a.strip() for a in args.split(",")]  # (attributes dropped)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_xgemm_declares_numba_xxgemm_like_numba_np_dot(dtype):
    """The LLVM declaration fastbp emits is the one numba's np.dot emits
    (numba/np/linalg.py::call_xxgemm), argument for argument."""

    @numba.njit(cache=False)
    def dot(a, b):
        return np.dot(a, b)

    a = np.ones((3, 4), dtype=dtype)
    dot(a, a.T)  # (3x4) @ (4x3): numba calls numba_xxgemm for matrix @ matrix
    numba_ret, numba_args = _declaration(dot)
    assert numba_ret == "i32" and len(numba_args) == len(_XXGEMM_ARGS), (
        "fastbp's _xgemm assumes numba's np.dot calls numba_xxgemm with 14 "
        f"arguments returning i32; numba {numba.__version__} declares "
        f"{numba_ret} numba_xxgemm({', '.join(numba_args)})")

    # gemm_rm (which inlines _xgemm) compiled anew: a cache-loaded build has no IR
    gemm_rm = numba.njit(cache=False)(KLIN.gemm_rm.py_func)
    arr, i64 = types.Array(numba.from_dtype(np.dtype(dtype)), 1, "C"), types.int64
    gemm_rm.compile((types.boolean, types.boolean, i64, i64, i64, arr, i64, i64, arr, i64,
                     i64, numba.from_dtype(np.dtype(dtype)), arr, i64, i64))
    # (fastbp calls it by its own name, bound to numba_xxgemm's address: fastbp._blas)
    assert _declaration(gemm_rm, _blas.GEMM_SYMBOL) == (numba_ret, numba_args), (
        "fastbp's _xgemm declares its BLAS symbol differently from numba's "
        "np.dot's numba_xxgemm")


def test_fastbp_gemm_symbol_is_numbas_helper_by_default():
    """With the default backend the symbol every fastbp product calls is bound
    to numba's numba_xxgemm (what np.dot calls), in this process."""
    import llvmlite.binding as ll
    from numba import _helperlib

    if _blas.backend() != "openblas":
        pytest.skip(f"this process runs FASTBP_BLAS={_blas.backend()}")
    assert ll.address_of_symbol(_blas.GEMM_SYMBOL) == _helperlib.c_helpers["xxgemm"]


# --- is_compiled: a specialization in memory or in the disk cache -------------

_CACHED_MODULE = '''
import numba

@numba.njit(cache=True)
def twice(x):
    return 2 * x
'''

_ASK = '''
import sys, json
import numpy as np
sys.path.insert(0, {path!r})
import cached_mod
from fastbp._config import is_compiled
before = is_compiled(cached_mod.twice, (np.ones(3),))
cached_mod.twice(np.ones(3))
print(json.dumps([before, is_compiled(cached_mod.twice, (np.ones(3),)),
                  is_compiled(cached_mod.twice, (np.ones(3, dtype=np.int8),)),
                  sum(cached_mod.twice.stats.cache_hits.values())]))
'''


def test_is_compiled_sees_memory_and_the_disk_cache(tmp_path):
    """``_config.is_compiled`` reads ``Dispatcher.overloads`` and numba's cache
    index (``FunctionCache._index_key``, ``_cache_file._load_index``): before a
    first call it is False; in a fresh process after another one compiled and
    cached the function it is True (before loading it); for argument types
    never compiled it stays False."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "cached_mod.py").write_text(_CACHED_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [json.loads(subprocess.run(
        [sys.executable, "-c", _ASK.format(path=str(tmp_path))], env=env, check=True,
        capture_output=True, text=True, timeout=300).stdout.strip().splitlines()[-1])
        for _ in range(2)]
    assert runs[0] == [False, True, False, 0]  # compiled here, then seen in memory
    assert runs[1] == [True, True, False, 1]  # seen on disk, then loaded from it
