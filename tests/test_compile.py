"""Compilation: few specializations, and a warm on-disk cache means no recompiling."""

import inspect
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from conftest import all_dispatchers
from fastbp import BPClassifier, BPRegressor, _config, _threads
from fastbp._kernels import DISPATCHERS

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
# fastbp's own options, run by the extended kernels: cycled through per input
EXTENDED_OPTIONS = [dict(activation="gelu"), dict(activation="leaky_relu", dropout=0.2),
                    dict(activation="elu", loss="squared_error"),
                    dict(activation="softplus", dropout=[0.1] * 3)]

# Tests of the on-disk cache itself; the rest of the file runs either way.
needs_cache = pytest.mark.skipif(
    not _config.CACHE,
    reason="FASTBP_CACHE=0: fastbp's kernels have no on-disk cache (numba gives "
           "them a NullCache) and there is no cache directory to check")


# The arguments whose type is meant to select a specialization besides the
# dtype: ``csr`` (None for dense input) and ``partials`` (2-D on its schedule,
# 1-D on the other); see fastbp/_kernels/state.py.
_KIND_ARGS = ("csr", "partials")


def _leaf_types(t):
    """The types inside a (named) tuple type, recursively; else ``[t]``."""
    if isinstance(t, numba.types.BaseTuple):
        return [leaf for inner in t.types for leaf in _leaf_types(inner)]
    return [t]


def _kind(dispatcher, sig):
    """What a specialization is meant to differ by: the float dtypes of its
    arrays (also those inside its namedtuple arguments) and the types of
    ``_KIND_ARGS``."""
    names = list(inspect.signature(dispatcher.py_func).parameters)
    dtypes = sorted({str(getattr(t, "dtype", t)) for arg in sig for t in _leaf_types(arg)
                     if "float" in str(getattr(t, "dtype", t))})  # arrays and scalars
    return (tuple(dtypes), tuple(str(t) for n, t in zip(names, sig) if n in _KIND_ARGS))


def _duplicate_specializations():
    """Dispatchers with two specializations of one kind (say a read-only or a
    literal argument compiled another): name -> their differing arguments."""
    duplicates = {}
    for name, d in all_dispatchers().items():
        seen = {}
        names = list(inspect.signature(d.py_func).parameters)
        for sig in d.signatures:
            other = seen.setdefault(_kind(d, sig), sig)
            if other is not sig:
                duplicates.setdefault(name, []).append(
                    {names[i]: (str(a), str(b)) for i, (a, b) in enumerate(zip(sig, other))
                     if a != b})
    return duplicates


def test_one_specialization_per_dtype_and_kind(tmp_path):
    """Every option, depth and layout reuses the builds of its dtype, input kind
    (dense or CSR) and gradient schedule: nothing else compiles another."""
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
                    est.predict_proba(data[:3])  # a few rows: predict_rows
                    # one work block per batch: the parameter-owned schedule
                    BPClassifier(hidden_layer_sizes=depth, solver=solver, batch_size=16,
                                 max_iter=2, n_jobs=n_jobs).fit(data, y)
                    BPClassifier(hidden_layer_sizes=depth, max_iter=2, n_jobs=n_jobs).fit(
                        data, np.c_[y, 1 - y]).predict(data)
                    BPRegressor(loss="poisson", hidden_layer_sizes=depth, solver=solver,
                                max_iter=2, n_jobs=n_jobs).fit(data, X[:, 1]).predict(data)
                    options = dict(EXTENDED_OPTIONS[i % 4])
                    if solver == "lbfgs":
                        options.pop("dropout", None)
                    if "dropout" in options and np.ndim(options["dropout"]):
                        options["dropout"] = options["dropout"][:len(depth)]
                    ext = BPClassifier(hidden_layer_sizes=depth, solver=solver, max_iter=2,
                                       n_jobs=n_jobs, random_state=0, **options).fit(data, y)
                    ext.predict_proba(data)
                    ext.predict_proba(data[:3])
                    BPRegressor(loss=("huber", "absolute_error")[i % 2],
                                hidden_layer_sizes=depth, solver=solver, max_iter=2,
                                n_jobs=n_jobs).fit(data, X[:, 1]).predict(data)
    assert all(d.signatures for d in DISPATCHERS.values())  # each one was used
    # The compiled helpers the kernels call, too (a literal argument at one
    # call site, say, would compile another build and cost seconds).
    assert not _duplicate_specializations(), _duplicate_specializations()
    kinds = {name: {_kind(d, sig) for sig in d.signatures} for name, d in DISPATCHERS.items()}
    # dense with either schedule (one CPU: one work block, the owned one only),
    # CSR with the owned one; in two dtypes
    n_kinds = 6 if _threads.MACHINE_CPUS > 1 else 4
    assert len(kinds["train_batches_parallel"]) == n_kinds, kinds["train_batches_parallel"]
    assert len(kinds["predict_serial"]) == 4, kinds["predict_serial"]

    # Read-only targets and weights (a joblib memmap in a grid-search worker,
    # np.load(mmap_mode="r")): numba types a read-only array apart from a
    # writeable one, so one passed through as is would compile a third build.
    # Each is saved in both dtypes and used with X of both dtypes: a dtype
    # match reaches the kernels uncopied.
    def readonly(name, values):
        np.save(tmp_path / name, values)
        arr = np.load(tmp_path / name, mmap_mode="r")
        assert not arr.flags.writeable
        return arr

    y_reg = {dt: readonly(f"y_{dt.__name__}.npy", X[:, 1].astype(dt))
             for dt in (np.float64, np.float32)}
    weights = {dt: readonly(f"sw_{dt.__name__}.npy", rng.rand(len(X)).astype(dt) + 0.5)
               for dt in (np.float64, np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for data in (X, X.astype(np.float32)):
            for solver in ("sgd", "adam", "lbfgs"):
                for n_jobs in (1, 2):
                    options = dict(hidden_layer_sizes=(3,), solver=solver, max_iter=2,
                                   n_jobs=n_jobs, random_state=0)
                    for y_ro in y_reg.values():
                        BPRegressor(**options).fit(data, y_ro)
                    for sw in weights.values():
                        BPRegressor(**options).fit(data, X[:, 1], sample_weight=sw)
                        BPClassifier(**options).fit(data, y, sample_weight=sw)
    assert not _duplicate_specializations(), (
        "a read-only y or sample_weight compiled another specialization",
        _duplicate_specializations())


_CHILD = textwrap.dedent("""
    import json, warnings
    import numpy as np
    from fastbp import BPClassifier
    from contextlib import nullcontext
    from fastbp._kernels import DISPATCHERS
    from fastbp._threads import eager_parallel
    warnings.simplefilter("ignore")
    X = np.random.RandomState(0).rand(300, 5)
    y = (X[:, 0] > 0.5).astype(int)
    clf = BPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, n_jobs={n_jobs})
    with eager_parallel() if {eager} else nullcontext():
        clf.fit(X, y).predict_proba(X)
    stats = {{name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
             for name, d in DISPATCHERS.items() if d.signatures}}
    print(json.dumps({{"stats": stats, "coef": clf.coefs_[0].tolist()}}))
""")


def _run_child(cache_dir, n_jobs, threads, eager=True):
    # Caching on (parallel kernels too) whatever the parent's environment says:
    # the test is about the cache, in its default configuration.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS=str(threads),
               FASTBP_CACHE="1", FASTBP_PARALLEL_CACHE="1")
    out = subprocess.run([sys.executable, "-c", _CHILD.format(n_jobs=n_jobs, eager=eager)],
                         env=env,
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


@pytest.mark.slow
def test_a_short_fit_compiles_no_parallel_kernel_unless_cached(tmp_path):
    """With an empty cache, a tiny fit and predict asking for 2 threads compile
    the serial kernels only (the parallel ones could not pay back); once the
    parallel ones are in the disk cache, the same fit loads and runs them.
    The weights are the same bits either way."""
    cold = _run_child(tmp_path, n_jobs=2, threads=2, eager=False)
    assert set(cold["stats"]) == {"train_batches_serial", "predict_serial"}, cold["stats"]
    _run_child(tmp_path, n_jobs=2, threads=2, eager=True)  # compiles the parallel ones
    warm = _run_child(tmp_path, n_jobs=2, threads=2, eager=False)
    assert {"train_batches_parallel", "predict_parallel"} <= set(warm["stats"]), warm["stats"]
    assert all(m == 0 for _, m in warm["stats"].values()), warm["stats"]
    np.testing.assert_array_equal(cold["coef"], warm["coef"])


_CHILD_EARLY_STOPPING = textwrap.dedent("""
    import json, warnings
    import numpy as np
    from fastbp import BPClassifier
    from conftest import all_dispatchers
    warnings.simplefilter("ignore")
    X = np.random.RandomState(0).rand(300, 5)
    y = (X[:, 0] > 0.5).astype(int)
    BPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, n_jobs=1,
                 early_stopping=True, validation_metric="loss").fit(X, y)
    print(json.dumps(sorted(n for n, d in all_dispatchers().items() if d.signatures)))
""")


@pytest.mark.slow
def test_an_early_stopping_fit_with_default_options_compiles_no_extended_code():
    """The validation loss linked every loss's code (codes 4-7 of
    ``loss_and_delta_any``) into every early-stopping fit, where the README says
    the default options never compile the extended build.  Compiled without a
    cache, so that each function a fit needs is compiled in the child and shows."""
    env = dict(os.environ, FASTBP_CACHE="0",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                           os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _CHILD_EARLY_STOPPING], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    compiled = json.loads(out.stdout.strip().splitlines()[-1])
    assert any("dataset_loss" in name for name in compiled), compiled
    assert not [name for name in compiled if "extended" in name or name.endswith("_any")], (
        compiled)


def test_cache_falls_back_when_no_directory_is_writable(monkeypatch):
    import numba

    # jit() asks numba for a cache only when caching is on (read at call time)
    monkeypatch.setattr(_config, "CACHE", True)
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


def _fake_dispatcher(cache_dir):
    """A stand-in for a cached numba dispatcher whose cache lives in *cache_dir*."""
    class FakeCache:
        _cache_path = str(cache_dir)

    class FakeDispatcher:
        __name__ = "fake_kernel"
        _cache = FakeCache()

    return FakeDispatcher()


def _stale_cache(cache_dir, stamp):
    cache_dir.mkdir()
    (cache_dir / "network._train_batches_serial-1.py311.nbi").write_text("stale")
    (cache_dir / "network._train_batches_serial-1.py311.1.nbc").write_text("stale")
    (cache_dir / "fastbp-kernel-sources.sha256").write_text(stamp + "\n")
    (cache_dir / "keep.pyc").write_text("not ours")


def test_stale_cache_from_changed_sources_is_dropped(tmp_path, monkeypatch):
    """A cache whose stamp does not match the kernel sources is removed, once per
    process; a current one is kept."""
    import numba

    monkeypatch.setattr(_config, "CACHE", True)  # the check, not numba's cache
    fake = tmp_path / "cache"
    _stale_cache(fake, "0" * 64)
    monkeypatch.setitem(_config._fresh, "checked", False)
    _config.ensure_cache_fresh([_fake_dispatcher(fake)])
    assert sorted(p.name for p in fake.iterdir()) == ["fastbp-kernel-sources.sha256", "keep.pyc"]
    stamp = (fake / "fastbp-kernel-sources.sha256").read_text().strip()
    assert len(stamp) == 64 and stamp != "0" * 64
    # a second check in the same process does nothing, even on a stale stamp
    (fake / "x.nbi").write_text("new")
    (fake / "fastbp-kernel-sources.sha256").write_text("0" * 64 + "\n")
    _config.ensure_cache_fresh([_fake_dispatcher(fake)])
    assert (fake / "x.nbi").exists()

    # the next process, same sources: the stamp matches, the cache is kept
    current = tmp_path / "current"
    _stale_cache(current, stamp)
    monkeypatch.setitem(_config._fresh, "checked", False)
    _config.ensure_cache_fresh([_fake_dispatcher(current)])
    assert len(list(current.glob("*.nb[ic]"))) == 2

    # numba's version is part of the digest: after an upgrade the cache is
    # dropped and stamped anew
    monkeypatch.setattr(numba, "__version__", numba.__version__ + ".test")
    monkeypatch.setitem(_config._fresh, "checked", False)
    _config.ensure_cache_fresh([_fake_dispatcher(current)])
    assert list(current.glob("*.nb[ic]")) == []
    new_stamp = (current / "fastbp-kernel-sources.sha256").read_text().strip()
    assert len(new_stamp) == 64 and new_stamp != stamp


def test_concurrent_first_calls_wait_for_the_cache_check(tmp_path, monkeypatch):
    """The check runs once, and a second thread that arrives while it runs
    waits for it to finish (it would otherwise go on to load kernel files the
    check is deleting: a restart pool's first fit calls from several threads)."""
    import threading

    monkeypatch.setattr(_config, "CACHE", True)
    monkeypatch.setitem(_config._fresh, "checked", False)
    fake = tmp_path / "cache"
    _stale_cache(fake, "0" * 64)
    inside, release = threading.Event(), threading.Event()
    runs = []
    real_cache_dir = _config._cache_dir

    def slow_cache_dir(dispatcher):  # the first thread stops inside the check
        runs.append(threading.get_ident())
        inside.set()
        assert release.wait(10)
        return real_cache_dir(dispatcher)

    monkeypatch.setattr(_config, "_cache_dir", slow_cache_dir)
    first = threading.Thread(target=_config.ensure_cache_fresh,
                             args=([_fake_dispatcher(fake)],))
    first.start()
    assert inside.wait(10)
    second_done = threading.Event()
    second = threading.Thread(target=lambda: (
        _config.ensure_cache_fresh([_fake_dispatcher(fake)]), second_done.set()))
    second.start()
    # the second caller must still be waiting: the stale files are not gone yet
    assert not second_done.wait(0.5)
    assert list(fake.glob("*.nb[ic]"))
    release.set()
    first.join(10)
    second.join(10)
    assert second_done.is_set()
    assert list(fake.glob("*.nb[ic]")) == []  # dropped before the second returned
    assert len(runs) == 1  # by one thread, once


def test_numpy_major_version_is_part_of_the_digest(monkeypatch):
    """A kernel compiled under numpy 1 rounds Adam's float32 update otherwise
    (``optimizers.ADAM_UPDATE_IN_FLOAT64``): a cache from the other major
    version must not be loaded."""
    import numpy

    digest = _config.kernel_sources_digest()
    monkeypatch.setattr(numpy, "__version__", "1.26.4")
    other = _config.kernel_sources_digest()
    monkeypatch.setattr(numpy, "__version__", "2.99.0")
    assert (other == digest) != (_config.kernel_sources_digest() == digest)


@needs_cache
def test_real_cache_directory_carries_the_sources_digest(tmp_path, monkeypatch):
    """The check finds numba's real cache directory and stamps it with the same
    digest as any other (establishes it itself: no kernel needs to have run)."""
    from pathlib import Path

    fake = tmp_path / "cache"
    _stale_cache(fake, "0" * 64)
    real = DISPATCHERS["train_batches_serial"]
    # (a stale real cache is dropped here, as this process's first fit would)
    monkeypatch.setitem(_config._fresh, "checked", False)
    with warnings.catch_warnings():
        # not finding the real directory would warn (see test_numba_contract)
        warnings.simplefilter("error", RuntimeWarning)
        _config.ensure_cache_fresh([_fake_dispatcher(fake), *DISPATCHERS.values()])
    stamp = (fake / "fastbp-kernel-sources.sha256").read_text().strip()
    real_dir = Path(real._cache._cache_path)
    assert (real_dir / "fastbp-kernel-sources.sha256").read_text().strip() == stamp


def test_precompile_builds_every_variant_it_names():
    import fastbp

    counts = fastbp.precompile(dtypes=("float64",), extended=True)
    assert set(counts) == set(DISPATCHERS)
    for build in ("train_batches", "predict", "train_batches_extended", "predict_extended"):
        assert counts[f"{build}_serial"] >= 1
        if fastbp._threads.numba.config.NUMBA_NUM_THREADS > 1:
            assert counts[f"{build}_parallel"] >= 1


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
    assert users == ["linalg.py", "network.py", "sparse.py"]
    assert "math.exp" not in (root / "_kernels" / "linalg.py").read_text()
