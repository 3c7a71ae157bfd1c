"""Compilation: few specializations, and a warm on-disk cache means no recompiling."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPClassifier, BPRegressor
from numba.core.registry import CPUDispatcher as Dispatcher

from fastbp._kernels import DISPATCHERS
from fastbp._kernels import activations as KA
from fastbp._kernels import linalg as KLIN
from fastbp._kernels import losses as KL
from fastbp._kernels import network as KN
from fastbp._kernels import optimizers as KO

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def test_at_most_two_specializations_per_kernel(tmp_path):
    """Every option, depth, input kind and layout reuses the float32/float64 builds."""
    rng = np.random.RandomState(0)
    X = rng.rand(200, 4)
    path = tmp_path / "X.npy"
    np.save(path, X)
    inputs = [X, sp.csr_matrix(X), np.asfortranarray(X), X[:, ::-1][:, ::-1],
              np.load(path, mmap_mode="r"), X.astype(np.float32),
              sp.csr_matrix(X.astype(np.float32))]
    y = (X[:, 0] > 0.5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, data in enumerate(inputs):
            for solver in ("sgd", "adam", "lbfgs"):
                for n_jobs in (1, 2):
                    depth = (3,) * (1 + i % 3)
                    est = BPClassifier(hidden_layer_sizes=depth, solver=solver, max_iter=2,
                                       activation=ACTIVATIONS[i % 4], n_jobs=n_jobs,
                                       random_state=0)
                    est.fit(data, y).predict_proba(data)
                    BPClassifier(hidden_layer_sizes=depth, max_iter=2, n_jobs=n_jobs).fit(
                        data, np.c_[y, 1 - y]).predict(data)
                    BPRegressor(loss="poisson", hidden_layer_sizes=depth, solver=solver,
                                max_iter=2, n_jobs=n_jobs).fit(data, X[:, 1]).predict(data)
    counts = {name: len(d.signatures) for name, d in DISPATCHERS.items()}
    assert all(1 <= c <= 2 for c in counts.values()), counts  # each one was used
    # The compiled helpers the kernels call, too: one build per dtype (a literal
    # argument at one call site, say, would compile a third and cost seconds).
    leaves = {f"{mod.__name__}.{name}": len(obj.signatures)
              for mod in (KA, KL, KLIN, KN, KO)
              for name, obj in vars(mod).items()
              if isinstance(obj, Dispatcher) and obj not in DISPATCHERS.values()}
    assert leaves and all(c <= 2 for c in leaves.values()), leaves


_CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    from fastbp import BPClassifier
    from fastbp._kernels import DISPATCHERS
    warnings.simplefilter("ignore")
    X = np.random.RandomState(0).rand(300, 5)
    y = (X[:, 0] > 0.5).astype(int)
    clf = BPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, n_jobs={n_jobs})
    clf.fit(X, y).predict_proba(X)
    stats = {{name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
             for name, d in DISPATCHERS.items() if d.signatures}}
    print(json.dumps({{"stats": stats, "coef": clf.coefs_[0].tolist()}}))
""")


def _run_child(cache_dir, n_jobs, threads):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _CHILD.format(n_jobs=n_jobs)], env=env,
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_warm_cache_does_not_recompile(tmp_path):
    """A cold process compiles; a fresh one with the warm cache loads, even with
    another thread count (parallel kernels are cached too)."""
    cold = _run_child(tmp_path, n_jobs=2, threads=2)
    assert all(misses >= 1 for _, misses in cold["stats"].values()), cold["stats"]
    warm = _run_child(tmp_path, n_jobs=2, threads=2)
    assert all(hits >= 1 and misses == 0 for hits, misses in warm["stats"].values()), warm["stats"]
    other = _run_child(tmp_path, n_jobs=-1, threads=3)
    assert all(hits >= 1 and misses == 0 for hits, misses in other["stats"].values()), other["stats"]
    np.testing.assert_array_equal(cold["coef"], warm["coef"])
    np.testing.assert_array_equal(cold["coef"], other["coef"])
    serial_cold = _run_child(tmp_path, n_jobs=1, threads=1)
    serial_warm = _run_child(tmp_path, n_jobs=1, threads=1)
    # (the parallel fits above already cached the serial training kernel: the
    # Pacer runs it too; predict_serial is compiled here for the first time)
    assert serial_cold["stats"]["predict_serial"][1] >= 1, serial_cold["stats"]
    assert all(h >= 1 and m == 0 for h, m in serial_warm["stats"].values()), serial_warm["stats"]
    np.testing.assert_array_equal(cold["coef"], serial_warm["coef"])


def test_cache_falls_back_when_no_directory_is_writable(monkeypatch):
    import numba

    from fastbp import _config

    real_njit = numba.njit

    def njit(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)

    def f(x):
        return x + 1

    with pytest.warns(RuntimeWarning, match="cannot cache compiled kernel 'f'.*NUMBA_CACHE_DIR"):
        compiled = _config.jit(f)
    assert compiled(41) == 42
    assert compiled.signatures  # compiled, without a cache


def test_stale_cache_from_changed_sources_is_dropped(tmp_path, monkeypatch):
    """A cache whose stamp does not match the kernel sources is removed."""
    from pathlib import Path

    from fastbp import _config
    from fastbp._kernels import DISPATCHERS

    cache_dir = Path(DISPATCHERS["train_batches_serial"]._cache._cache_path)
    fake = tmp_path / "cache"
    fake.mkdir()
    (fake / "network._train_batches_serial-1.py311.nbi").write_text("stale")
    (fake / "network._train_batches_serial-1.py311.1.nbc").write_text("stale")
    (fake / "fastbp-kernel-sources.sha256").write_text("0" * 64 + "\n")
    (fake / "keep.pyc").write_text("not ours")

    class FakeCache:
        _cache_path = str(fake)

    class FakeDispatcher:
        _cache = FakeCache()

    monkeypatch.setitem(_config._fresh, "checked", False)
    _config.ensure_cache_fresh([FakeDispatcher()])
    assert sorted(p.name for p in fake.iterdir()) == ["fastbp-kernel-sources.sha256", "keep.pyc"]
    stamp = (fake / "fastbp-kernel-sources.sha256").read_text().strip()
    assert stamp != "0" * 64
    # the real cache directory carries the same digest: it is up to date
    assert (cache_dir / "fastbp-kernel-sources.sha256").read_text().strip() == stamp
    # a second check in the same process does nothing
    (fake / "x.nbi").write_text("new")
    _config.ensure_cache_fresh([FakeDispatcher()])
    assert (fake / "x.nbi").exists()


def test_precompile_builds_every_variant_it_names():
    import fastbp

    counts = fastbp.precompile(dtypes=("float64",))
    assert set(counts) == set(DISPATCHERS)
    assert counts["train_batches_serial"] >= 1 and counts["predict_serial"] >= 1
    if fastbp._threads.numba.config.NUMBA_NUM_THREADS > 1:
        assert counts["train_batches_parallel"] >= 1


def test_no_hard_coded_fastmath_outside_config():
    """fastmath flags come from fastbp._config (FASTMATH_SAFE) only, and never on
    kernels with exp/log/division/sqrt (STYLE practice 7)."""
    import re
    from pathlib import Path

    import fastbp

    root = Path(fastbp.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"fastmath\s*=\s*(True|\{)", line) and path.name != "_config.py":
                offenders.append(f"{path.name}:{lineno}")
    assert offenders == []
    # the only modules that opt in are the pure multiply-add ones
    users = sorted(p.name for p in root.rglob("*.py") if "fastmath=FASTMATH_SAFE" in p.read_text())
    assert users == ["linalg.py", "network.py"]
    assert "math.exp" not in (root / "_kernels" / "linalg.py").read_text()
