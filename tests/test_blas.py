"""The BLAS backend (``fastbp._blas``): one symbol every kernel product calls,
bound per process from FASTBP_BLAS, and the flag that sends single-column
products there too with MKL.  The MKL cases run where the ``mkl`` package is
installed (``pip install "fastbp[mkl]"``) and are skipped elsewhere; the
fallback without MKL runs everywhere (a child that cannot load MKL)."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import tol
from fastbp import _blas

TESTS = os.path.dirname(os.path.abspath(__file__))

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
                     "lbfgs": dict(solver="lbfgs", max_iter=20),
                     "binary-adam": dict(max_iter=8),  # one output unit
                     "binary-lbfgs": dict(solver="lbfgs", max_iter=20)}}.items():
        target = y % 2 if name.startswith("binary") else y
        fits = [BPClassifier(random_state=0, n_jobs=n, **kw).fit(X, target) for n in (1, 2)]
        out[name] = [[a.tolist() for a in f.coefs_ + f.intercepts_] for f in fits]
        out[name + "-proba"] = [f.predict_proba(X[:300]).tolist() for f in fits]
    print(json.dumps(out))
""")


# Prepended to a child: MKL's runtime fails to load, as where it is not installed.
_HIDE_MKL = textwrap.dedent("""
    import ctypes

    class _NoMKL(ctypes.CDLL):
        def __init__(self, name, *args, **kwargs):
            if "mkl_rt" in str(name):
                raise OSError(f"{name}: hidden by the test")
            super().__init__(name, *args, **kwargs)

    ctypes.CDLL = _NoMKL
""")


def _child(backend, dtype="np.float32", env=None, hide_mkl=False):
    env = dict(os.environ, FASTBP_BLAS=backend, **(env or {}))
    code = (_HIDE_MKL if hide_mkl else "") + _CHILD.format(dtype=dtype)
    out = subprocess.run([sys.executable, "-c", code], env=env,
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


def test_openblas_single_column_products_stay_numbas_np_dot():
    """With OpenBLAS bound, gemm_nn leaves single-column products to numba's
    np.dot (?gemv, ?dot for one row), bit for bit: what every fit so far ran."""
    import numba

    from fastbp._kernels import linalg

    if _blas.backend() != "openblas":
        pytest.skip("MKL is bound in this process")

    @numba.njit
    def numbas_dot(A, B, C):
        np.dot(A, B, C)

    rng = np.random.RandomState(0)
    for dtype in (np.float32, np.float64):
        for m, k in ((300, 64), (1, 64), (50, 3), (7, 0)):
            A, B = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(k, 1)).astype(dtype)
            got, expected = np.full((m, 1), np.nan, dtype), np.full((m, 1), np.nan, dtype)
            linalg.gemm_nn(A, B, got)
            numbas_dot(A, B, expected)
            np.testing.assert_array_equal(got, expected)


def test_unknown_backend_is_refused():
    proc = subprocess.run([sys.executable, "-c", "import fastbp._kernels"], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, FASTBP_BLAS="blis"))
    assert proc.returncode != 0
    assert "FASTBP_BLAS must be one of ('openblas', 'mkl'), got 'blis'" in proc.stderr


@pytest.mark.slow
def test_mkl_requested_without_mkl_warns_and_uses_openblas():
    out = _child("mkl", hide_mkl=True)  # (also where MKL is installed)
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
    for name in ("adam", "sgd-deep", "lbfgs", "binary-adam", "binary-lbfgs"):
        one, two = mkl[name]
        assert one == two, name  # bitwise, any thread count
        assert mkl[name + "-proba"][0] == mkl[name + "-proba"][1]
        for a, b in zip(one, ref[name][0]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2, err_msg=name)


# A child with FASTBP_BLAS=mkl and MKL_VERBOSE=1 (MKL prints every call it
# runs to stdout; the child's own results go to the file argv[1]).  Every
# single-column product of the kernels -- the ones numba's np.dot lowers to
# ?gemv, or to ?dot for one row -- in direct calls of gemm_nn and in fits and
# predictions of single-output networks.
_VECTOR_CHILD = textwrap.dedent("""
    import hashlib, json, sys, warnings
    import numpy as np
    import _blas_spy
    openblas = _blas_spy.spy_on_numbas_blas()  # before any compiled product runs
    from fastbp import BPClassifier, BPRegressor, _blas
    from fastbp._kernels import linalg
    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    out = {"backend": _blas.backend(), "products": [], "fits": {}}
    for dtype in (np.float32, np.float64):
        for m, k in ((50, 64), (1, 64), (300, 3), (7, 0), (0, 5)):
            A, B = rng.normal(size=(m, k)), rng.normal(size=(k, 1))
            C = np.full((m, 1), np.nan, dtype)
            linalg.gemm_nn(A.astype(dtype), B.astype(dtype), C)
            out["products"].append([m, k, A.tolist(), B.tolist(), C.tolist(), str(C.dtype)])
    X = rng.normal(size=(400, 20))
    y = X @ rng.normal(size=20)
    models = {"binary-adam-f32": (BPClassifier(hidden_layer_sizes=(64,), max_iter=3,
                                               random_state=0), np.float32, y > 0),
              "reg-lbfgs-f64": (BPRegressor(hidden_layer_sizes=(32,), solver="lbfgs",
                                            max_iter=15, random_state=0), np.float64, y)}
    for name, (est, dtype, target) in models.items():
        Xd, runs = X.astype(dtype), []
        for n_jobs in (1, 2):
            est.set_params(n_jobs=n_jobs).fit(Xd, target)
            pred = est.predict_proba(Xd)[:, 1] if hasattr(est, "classes_") else est.predict(Xd)
            arrays = est.coefs_ + est.intercepts_ + [pred]
            runs.append(hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest())
        out["fits"][name] = {"digests": runs, "X": Xd.tolist(), "pred": pred.tolist(),
                             "coefs": [a.tolist() for a in est.coefs_],
                             "intercepts": [a.tolist() for a in est.intercepts_]}
    out["openblas_calls"] = dict(openblas)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
""")

_MKL_GEMM = re.compile(r"^MKL_VERBOSE ([SD]GEMM)\(([NT]),([NT]),(\d+),(\d+),(\d+),")
_MKL_CALL = re.compile(r"^MKL_VERBOSE ([A-Z0-9_]+)\(")


def _mkl_calls(stdout):
    """(routine, column-major m, n, k) of every call MKL_VERBOSE reported,
    and the names of the other routines it ran."""
    gemms, others = [], []
    for line in stdout.splitlines():
        found = _MKL_GEMM.match(line)
        if found:
            gemms.append((found[1], int(found[4]), int(found[5]), int(found[6])))
        elif _MKL_CALL.match(line):
            others.append(_MKL_CALL.match(line)[1])
    return gemms, others


@pytest.mark.skipif(not _mkl_installed(), reason="the mkl package is not installed")
def test_mkl_runs_single_column_products_and_openblas_none(tmp_path):
    """FASTBP_BLAS=mkl: the products of single-output layers (np.dot's ?gemv
    and ?dot on OpenBLAS) go to MKL's ?gemm too.  numba's OpenBLAS bridge is
    never called (its capsules are spied on), MKL reports ?gemm calls with one
    column, the products equal NumPy's and the fits predict as the NumPy forward
    pass of their weights, bitwise the same for n_jobs=1 and 2."""
    from _reference import forward

    result = tmp_path / "out.json"
    env = dict(os.environ, FASTBP_BLAS="mkl", MKL_VERBOSE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")])))
    env.pop("MKL_VERBOSE_OUTPUT_FILE", None)
    proc = subprocess.run([sys.executable, "-c", _VECTOR_CHILD, str(result)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(result.read_text())
    assert out["backend"] == "mkl"
    assert out["openblas_calls"] == {}, "kernel products ran on OpenBLAS"
    gemms, others = _mkl_calls(proc.stdout)
    # row-major C (rows x 1) = A @ B is column-major C^T (1 x rows): m == 1
    single = {(name, n, k) for name, m, n, k in gemms if m == 1}
    assert {name for name, _, _ in single} == {"SGEMM", "DGEMM"}, (gemms, others)
    assert ("SGEMM", 1, 64) in single and ("DGEMM", 50, 64) in single  # ?dot, ?gemv shapes
    assert not others, others
    for m, k, A, B, C, dtype in out["products"]:
        expected = np.reshape(A, (m, k)) @ np.reshape(B, (k, 1))
        np.testing.assert_allclose(np.reshape(C, (m, 1)), expected, **tol(dtype))
    for name, fit in out["fits"].items():
        one, two = fit["digests"]
        assert one == two, name  # bitwise, any thread count
        dtype = np.float32 if name.endswith("f32") else np.float64
        out_act = "logistic" if name.startswith("binary") else "identity"
        activations = forward([np.asarray(a) for a in fit["coefs"]],
                              [np.asarray(b) for b in fit["intercepts"]],
                              np.asarray(fit["X"]), "relu", out_act)
        np.testing.assert_allclose(fit["pred"], activations[-1][:, 0], **tol(dtype),
                                   err_msg=name)
