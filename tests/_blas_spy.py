"""Count the calls compiled code makes into scipy's OpenBLAS (for tests/test_blas.py).

numba's BLAS bridge (``numba_xxgemm``, ``numba_xxgemv``, ``numba_xxdot``: what
``np.dot`` calls in compiled code, and what fastbp's GEMM symbol is bound to by
default) looks each BLAS function up in ``scipy.linalg.cython_blas.__pyx_capi__``
on its first call and keeps the pointer.  ``spy_on_numbas_blas``, called before
any compiled product runs, puts counting forwarders in those capsules' place, so
every call the kernels make into OpenBLAS through numba is counted (and still
computed by OpenBLAS).  scipy's own Python-level BLAS (L-BFGS-B's) does not go
through these capsules and is not counted.
"""

import collections
import ctypes
import threading

# name -> (result type, number of pointer arguments): cython_blas's C signatures
_SIGNATURES = {
    "sgemm": (None, 13), "dgemm": (None, 13),
    "sgemv": (None, 11), "dgemv": (None, 11),
    "sdot": (ctypes.c_float, 5), "ddot": (ctypes.c_double, 5),
}

_keep = []


def _capsule_api():
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    api.PyCapsule_New.restype = ctypes.py_object
    api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return api


def spy_on_numbas_blas():
    """Replace scipy's BLAS capsules by counting forwarders; returns the counts
    (a Counter by BLAS function name, updated as compiled code calls them)."""
    import scipy.linalg.cython_blas as cython_blas

    api = _capsule_api()
    capi = cython_blas.__pyx_capi__
    counts = collections.Counter()
    lock = threading.Lock()  # numba's threads call concurrently
    for name, (restype, n_args) in _SIGNATURES.items():
        capsule = capi[name]
        capsule_name = api.PyCapsule_GetName(capsule)
        proto = ctypes.CFUNCTYPE(restype, *[ctypes.c_void_p] * n_args)
        real = proto(api.PyCapsule_GetPointer(capsule, capsule_name))

        def forward(*args, _real=real, _name=name):
            with lock:
                counts[_name] += 1
            return _real(*args)

        spy = proto(forward)
        name_bytes = ctypes.create_string_buffer(capsule_name)  # the capsule keeps a pointer
        _keep.extend([capsule, real, spy, name_bytes])
        capi[name] = api.PyCapsule_New(ctypes.cast(spy, ctypes.c_void_p), name_bytes, None)
    return counts
