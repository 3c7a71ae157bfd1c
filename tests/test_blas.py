"""The BLAS backend (``fastbp._blas``): one symbol every kernel product calls,
bound per process from FASTBP_BLAS.  The MKL cases run where the ``mkl``
package is installed (``pip install "fastbp[mkl]"``) and are skipped elsewhere."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastbp import _blas

_CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    from sklearn.datasets import load_digits
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        from fastbp import BPClassifier, _blas  # imports the kernels: binds the symbol
        caught = [str(x.message) for x in w if "FASTBP_BLAS" in str(x.message)]
    warnings.simplefilter("ignore")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype({dtype})
    out = {{"backend": _blas.backend(), "warnings": caught}}
    for name, kw in {{"adam": dict(max_iter=8),
                     "sgd-deep": dict(solver="sgd", hidden_layer_sizes=(300, 50), max_iter=8),
                     "lbfgs": dict(solver="lbfgs", max_iter=20)}}.items():
        fits = [BPClassifier(random_state=0, n_jobs=n, **kw).fit(X, y) for n in (1, 2)]
        out[name] = [[a.tolist() for a in f.coefs_ + f.intercepts_] for f in fits]
        out[name + "-proba"] = [f.predict_proba(X[:300]).tolist() for f in fits]
    print(json.dumps(out))
""")


def _child(backend, dtype="np.float32", env=None):
    env = dict(os.environ, FASTBP_BLAS=backend, **(env or {}))
    out = subprocess.run([sys.executable, "-c", _CHILD.format(dtype=dtype)], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mkl_installed():
    return _blas._mkl_library() is not None


def test_default_backend_is_numbas_openblas_bridge():
    from numba import _helperlib

    assert _blas.backend() in _blas.BACKENDS
    if not os.environ.get("FASTBP_BLAS"):
        assert _blas.backend() == "openblas"
    assert _blas.install() == _blas.backend()  # bound once: later calls change nothing
    assert "xxgemm" in _helperlib.c_helpers


def test_unknown_backend_is_refused():
    proc = subprocess.run([sys.executable, "-c", "import fastbp._kernels"], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, FASTBP_BLAS="blis"))
    assert proc.returncode != 0
    assert "FASTBP_BLAS must be one of ('openblas', 'mkl'), got 'blis'" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(_mkl_installed(), reason="MKL is installed here: it would be used")
def test_mkl_requested_without_mkl_warns_and_uses_openblas():
    out = _child("mkl")
    assert out["backend"] == "openblas"
    assert out["warnings"] and "no MKL runtime" in out["warnings"][0]


@pytest.mark.slow
@pytest.mark.skipif(not _mkl_installed(), reason="the mkl package is not installed")
@pytest.mark.parametrize("dtype", ["np.float32", "np.float64"])
def test_mkl_fits_are_thread_invariant_and_agree_with_openblas(dtype):
    """Every kernel product through MKL: n_jobs=1 and 2, and another process,
    give the same bits (the blocks do not change), and the model agrees with OpenBLAS's to
    rounding (float64) or float32 rounding compounded over 8 epochs."""
    mkl, ref = _child("mkl", dtype), _child("openblas", dtype)
    assert mkl["backend"] == "mkl" and ref["backend"] == "openblas"
    # another process (its arrays at other addresses): the same bits
    assert _child("mkl", dtype) == mkl
    rtol = 1e-8 if "64" in dtype else 2e-2
    for name in ("adam", "sgd-deep", "lbfgs"):
        one, two = mkl[name]
        assert one == two, name  # bitwise, any thread count
        assert mkl[name + "-proba"][0] == mkl[name + "-proba"][1]
        for a, b in zip(one, ref[name][0]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2, err_msg=name)
