"""Saving and loading fitted models (fastbp.persistence): pickle and joblib in a
fresh process give bitwise the same model and predictions and, with a warm
kernel cache, compile nothing; a pickle records the fastbp version and loading
another version's warns; skops round trips with fastbp's types trusted."""

import copy
import io
import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastbp
from _fit_digest import fitted_state
from fastbp import BPClassifier, BPRegressor, persistence
from fastbp.persistence import InconsistentVersionWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _models(X, y):
    Y = np.stack([y % 2, y > 4], axis=1).astype(int)
    kw = dict(hidden_layer_sizes=(12,), max_iter=5, random_state=0)
    return {
        "clf64-adam": (BPClassifier(**kw).fit(X, y), X),
        "clf32-sgd-early": (BPClassifier(solver="sgd", early_stopping=True, **kw)
                            .fit(X.astype(np.float32), y), X.astype(np.float32)),
        "clf-multilabel-lbfgs": (BPClassifier(solver="lbfgs", **kw).fit(X, Y), X),
        "clf-csr-dropout": (BPClassifier(dropout=0.2, **kw).fit(sp.csr_matrix(X), y),
                            sp.csr_matrix(X)),
        "reg-huber-rmsprop": (BPRegressor(loss="huber", solver="rmsprop", **kw).fit(X, y),
                              X),
    }


def _outputs(model, X):
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys, warnings
    import joblib, numpy as np
    from fastbp import _threads
    from fastbp._kernels import DISPATCHERS
    warnings.simplefilter("error")  # no version warning: the same fastbp
    path = sys.argv[1]
    saved = joblib.load(path)
    out = {}
    with _threads.eager_parallel():  # the kernels the parent ran (its tests open the gates)
        for name, (model, X) in saved.items():
            res = {"predict": model.predict(X).tolist()}
            if hasattr(model, "predict_proba"):
                res["predict_proba"] = model.predict_proba(X).tolist()
            out[name] = res
    misses = {k: sum(d.stats.cache_misses.values()) for k, d in DISPATCHERS.items()}
    print(json.dumps({"outputs": out, "misses": misses}))
""")


@pytest.mark.parametrize("dumper", ["pickle", "joblib"])
def test_a_fresh_process_loads_bitwise_the_same_model_and_compiles_nothing(
        data, tmp_path, dumper):
    models = _models(*data)
    expected = {name: _outputs(m, X) for name, (m, X) in models.items()}
    X_of = {name: X for name, (_, X) in models.items()}
    path = tmp_path / "models.bin"
    if dumper == "pickle":
        path.write_bytes(pickle.dumps(models))
    else:
        joblib.dump(models, path)
    for name, (m, _) in models.items():  # every fitted attribute survives, in process
        loaded = pickle.loads(pickle.dumps(m)) if dumper == "pickle" else joblib.load(path)[
            name][0]
        assert fitted_state(loaded, X_of[name]) == fitted_state(m, X_of[name]), name
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, outs in expected.items():
        for key, value in outs.items():
            got = np.array(report["outputs"][name][key], dtype=value.dtype)
            np.testing.assert_array_equal(got, value, err_msg=f"{name} {key}")
    assert all(m == 0 for m in report["misses"].values()), report["misses"]


def test_partial_fit_after_a_round_trip_continues_exactly(data):
    X, y = data
    est = BPClassifier(hidden_layer_sizes=(12,), random_state=0)
    est.partial_fit(X[:200], y[:200], classes=np.unique(y))
    loaded = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[200:], y[200:])
    loaded.partial_fit(X[200:], y[200:])
    assert fitted_state(loaded, X) == fitted_state(est, X)


def test_a_pickle_records_the_version_and_another_version_warns(data):
    est = BPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(*data)
    state = est.__getstate__()
    assert state["_fastbp_version"] == fastbp.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same version: silent, and so are copies
        pickle.loads(pickle.dumps(est))
        copy.copy(est)
        copy.deepcopy(est)
        clone(est)
    for recorded, shown in (("0.0.1", "0.0.1"), (None, "pre-0.1.0")):
        old = dict(state)
        if recorded is None:
            del old["_fastbp_version"]  # from before versions were recorded
        else:
            old["_fastbp_version"] = recorded
        fresh = BPClassifier.__new__(BPClassifier)
        with pytest.warns(InconsistentVersionWarning,
                          match=rf"BPClassifier from fastbp version {shown} when using "
                                rf"version {fastbp.__version__}") as record:
            fresh.__setstate__(old)
        assert record[0].message.original_version == shown
        assert "_fastbp_version" not in fresh.__dict__
        np.testing.assert_array_equal(fresh.predict(data[0]), est.predict(data[0]))


def test_skops_round_trip_with_fastbps_types_trusted(data, tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y = data
    for name, (model, Xm) in _models(X, y).items():
        buf = io.BytesIO()
        persistence.dump(model, buf)
        buf.seek(0)
        loaded = persistence.load(buf)
        assert fitted_state(loaded, Xm) == fitted_state(model, Xm), name
        for key, value in _outputs(model, Xm).items():
            np.testing.assert_array_equal(_outputs(loaded, Xm)[key], value)
    # a file path, and a pipeline (scikit-learn's types skops trusts itself)
    pipe = make_pipeline(StandardScaler(), BPClassifier(hidden_layer_sizes=(6,), max_iter=3,
                                                        random_state=0)).fit(X, y)
    path = tmp_path / "pipe.skops"
    persistence.dump(pipe, path)
    np.testing.assert_array_equal(persistence.load(path).predict_proba(X),
                                  pipe.predict_proba(X))
    # skops alone refuses fastbp's types until they are trusted, and names them
    untrusted = sio.get_untrusted_types(file=path)
    assert "fastbp.estimators.BPClassifier" in untrusted
    assert set(untrusted) <= set(persistence.TRUSTED_TYPES)
    with pytest.raises(Exception, match="BPClassifier"):
        sio.load(path)


def test_every_optimizer_type_is_declared_trusted():
    from fastbp import _optim

    declared = set(persistence.TRUSTED_TYPES)
    for name in dir(_optim):
        obj = getattr(_optim, name)
        if isinstance(obj, type) and name.endswith("Optimizer") and not name.startswith("_"):
            assert f"fastbp._optim.{name}" in declared, name
