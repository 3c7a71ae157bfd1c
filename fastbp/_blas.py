"""Which BLAS the compiled kernels' matrix products call, bound once per process.

Every GEMM of the kernels (``fastbp._kernels.linalg._xgemm``) calls one external
symbol, ``fastbp_xxgemm``, with the signature of numba's own BLAS bridge
``numba_xxgemm`` (the one ``np.dot`` calls in numba): a kind byte (``s``/``d``),
Fortran transpose bytes, column-major sizes and leading dimensions, and pointers
to alpha, the operands, beta and C.  Compiled and cached code refers to the
symbol by name, and LLVM resolves it when the code is loaded, so one cache
serves every backend.  ``install`` binds it (``fastbp._kernels.linalg`` calls it
at import, before any kernel can be compiled or loaded), from ``FASTBP_BLAS``:

* ``openblas`` (the default): numba's bridge, to scipy's OpenBLAS;
* ``mkl``: Intel MKL's ``cblas_sgemm``/``cblas_dgemm`` from the ``mkl`` package
  (``pip install "fastbp[mkl]"``), through a small compiled adapter.  MKL runs
  its sequential layer: it starts no threads of its own (numba's threads call
  it on the blocks they own, as they call OpenBLAS), and no Intel OpenMP runtime
  is loaded next to numba's GNU one.  Measured on the products of one work
  block (one thread, float32, 2-core Xeon): 9-16% faster than OpenBLAS on the
  forward products, 26-55% on the weight gradients.  Without MKL installed,
  fastbp warns and uses OpenBLAS.

A second symbol, ``GEMM_VECTORS_SYMBOL``, is a flag (a C ``int``) the kernels
read at run time: whether single-column products -- a single-output layer's,
which ``np.dot`` in compiled code sends to numba's ``?gemv`` (``?dot`` for one
row) on scipy's OpenBLAS whatever this module binds -- go through the bound GEMM
as well.  0 with OpenBLAS, where ``?gemv`` is faster than its ``?gemm`` with one
column and keeps every fit's bits; 1 with MKL, so that no product of the
kernels runs on OpenBLAS.  Products small enough for the kernels' own loops
(``fastbp._kernels.linalg``) call no BLAS with either backend.

The weights are as reproducible with either backend (the blocks, and so the
products, depend on the machine only), but MKL rounds differently from
OpenBLAS: a fit with one backend is not bitwise a fit with the other.
"""

import ctypes
import glob
import os
import sys
import warnings

__all__ = ["GEMM_SYMBOL", "GEMM_VECTORS_SYMBOL", "backend", "install"]

GEMM_SYMBOL = "fastbp_xxgemm"
GEMM_VECTORS_SYMBOL = "fastbp_gemm_vectors"
BACKENDS = ("openblas", "mkl")

_bound = {"backend": None, "keep": None, "vectors": None}

# MKL's C enums (mkl_cblas.h, mkl_service.h)
_COL_MAJOR, _NO_TRANS, _TRANS = 102, 111, 112
_MKL_THREADING_SEQUENTIAL = 1


def backend():
    """The backend bound in this process ("openblas" or "mkl"), or None before
    ``install``."""
    return _bound["backend"]


def _mkl_library():
    """The loaded MKL runtime (``libmkl_rt``) or None; where pip puts it first."""
    candidates = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        candidates += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
        candidates += sorted(glob.glob(os.path.join(prefix, "Library", "bin", "mkl_rt*.dll")))
    candidates += ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so", "mkl_rt.dll"]
    for name in candidates:
        try:
            # RTLD_LOCAL: loaded globally, MKL's cblas_sgemm & co. would become
            # the symbols other libraries loaded later resolve (seen: PyTorch's
            # matmul then ran on this sequential MKL, 1.6x slower).
            return ctypes.CDLL(name, mode=getattr(ctypes, "RTLD_LOCAL", 0))
        except OSError:
            continue
    return None


def _mkl_adapter(mkl):
    """A compiled function with ``numba_xxgemm``'s signature that calls MKL's
    cblas_?gemm; returns (its address, objects to keep alive)."""
    import numpy as np
    from numba import carray, cfunc, types

    mkl.MKL_Set_Threading_Layer(ctypes.c_int(_MKL_THREADING_SEQUENTIAL))
    c_int, ptr = ctypes.c_int, ctypes.c_void_p
    sgemm = ctypes.CFUNCTYPE(None, *[c_int] * 6, ctypes.c_float, ptr, c_int, ptr, c_int,
                             ctypes.c_float, ptr, c_int)(ctypes.cast(mkl.cblas_sgemm, ptr).value)
    dgemm = ctypes.CFUNCTYPE(None, *[c_int] * 6, ctypes.c_double, ptr, c_int, ptr, c_int,
                             ctypes.c_double, ptr, c_int)(ctypes.cast(mkl.cblas_dgemm, ptr).value)
    signature = types.int32(types.int8, types.int8, types.int8, types.intp, types.intp,
                            types.intp, types.voidptr, types.voidptr, types.intp, types.voidptr,
                            types.intp, types.voidptr, types.voidptr, types.intp)
    trans = ord("T")
    single = ord("s")

    @cfunc(signature)
    def mkl_xxgemm(kind, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        ta = _TRANS if transa == trans else _NO_TRANS
        tb = _TRANS if transb == trans else _NO_TRANS
        if kind == single:
            sgemm(_COL_MAJOR, ta, tb, m, n, k, carray(alpha, 1, np.float32)[0], a, lda, b, ldb,
                  carray(beta, 1, np.float32)[0], c, ldc)
        else:
            dgemm(_COL_MAJOR, ta, tb, m, n, k, carray(alpha, 1, np.float64)[0], a, lda, b, ldb,
                  carray(beta, 1, np.float64)[0], c, ldc)
        return 0

    return mkl_xxgemm.address, (mkl, sgemm, dgemm, mkl_xxgemm)


def install(requested=None):
    """Bind ``GEMM_SYMBOL`` for this process (once; later calls return the
    backend already bound).  ``requested``: a backend name, default
    ``FASTBP_BLAS`` (else "openblas").  Returns the backend bound."""
    if _bound["backend"] is not None:
        return _bound["backend"]
    import llvmlite.binding as llvm
    from numba import _helperlib

    name = (requested or os.environ.get("FASTBP_BLAS", "") or "openblas").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"FASTBP_BLAS must be one of {BACKENDS}, got {name!r}")
    address = None
    if name == "mkl":
        mkl = _mkl_library()
        if mkl is None:
            warnings.warn("fastbp: FASTBP_BLAS=mkl but no MKL runtime (libmkl_rt) was found; "
                          "install it with `pip install \"fastbp[mkl]\"`. Using OpenBLAS.",
                          RuntimeWarning, stacklevel=2)
            name = "openblas"
        else:
            address, _bound["keep"] = _mkl_adapter(mkl)
    if address is None:
        address = _helperlib.c_helpers["xxgemm"]
    vectors = ctypes.c_int(1 if name == "mkl" else 0)  # lives as long as the process
    llvm.add_symbol(GEMM_SYMBOL, address)
    llvm.add_symbol(GEMM_VECTORS_SYMBOL, ctypes.addressof(vectors))
    _bound["vectors"] = vectors
    _bound["backend"] = name
    return name
