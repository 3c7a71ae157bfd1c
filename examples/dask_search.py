"""fastbp on a Dask cluster: searches over the workers, training on blocks.

1. GridSearchCV and HalvingRandomSearchCV run their fits on the workers through
   joblib's dask backend; on a local cluster the scores equal a local run's bit
   for bit (fastbp is deterministic on a machine, whatever process or threads).
2. dask_ml.wrappers.Incremental trains on a dask array made on the workers
   block by block, larger than a worker's memory: each partial_fit task sees
   one block, never the whole array (blocks made ahead of the training spill
   to disk).
3. dask-ml's HyperbandSearchCV, which fails as documented against dask >= 2025.3,
   runs with the workaround ``dask.config.set(scheduler=client.get)``.

Needs ``pip install "fastbp[dask]"``.  Run:

    python examples/dask_search.py                               # starts a LocalCluster
    python examples/dask_search.py --scheduler tcp://host:8786   # a running cluster

A real cluster's workers need fastbp installed (the same version as here).
"""

import argparse
import tempfile
import time
import warnings

import dask
import dask.array as da
import joblib
import numpy as np
from distributed import Client, LocalCluster
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingRandomSearchCV

from fastbp import BPClassifier


def quiet():
    warnings.filterwarnings("ignore", category=ConvergenceWarning)


def searches(X, y, local_cluster):
    est = BPClassifier(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=0.01,
                       random_state=0)
    make = {
        "GridSearchCV": lambda: GridSearchCV(
            est, {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2, 1.0]}, cv=3),
        "HalvingRandomSearchCV": lambda: HalvingRandomSearchCV(
            est, {"alpha": loguniform(1e-5, 1.0), "learning_rate_init": loguniform(1e-3, 1e-1)},
            n_candidates=8, factor=2, cv=3, random_state=0),
    }
    for name, new_search in make.items():
        t = time.perf_counter()
        with joblib.parallel_backend("dask"):  # the fits run on the workers
            search = new_search().fit(X, y)
        elapsed = time.perf_counter() - t
        best = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in search.best_params_.items())
        print(f"{name:<22} on the cluster {elapsed:5.2f}s  best {best}  "
              f"cv accuracy {search.best_score_:.4f}")
        if local_cluster:  # same machine: bitwise the same scores as here
            local = new_search().fit(X, y)
            same = all(np.array_equal(search.cv_results_[k], local.cv_results_[k])
                       for k in local.cv_results_ if k.endswith("test_score"))
            print(f"{'':<22} local run: the same test scores, bit for bit: {same}")


def label(block):
    """A non-linear two-class rule, computed where the block lives."""
    return ((block[:, 0] * block[:, 1] + np.sin(2 * block[:, 2])) > 0).astype(np.int64)


def incremental(client, n_rows, n_features=32, block_rows=125_000):
    from dask_ml.wrappers import Incremental

    rng = da.random.default_rng(0)
    X = rng.standard_normal((n_rows, n_features), chunks=(block_rows, n_features),
                            dtype=np.float32)
    y = X.map_blocks(label, drop_axis=1, dtype=np.int64)
    X_test = rng.standard_normal((100_000, n_features), chunks=(50_000, n_features),
                                 dtype=np.float32)
    y_test = X_test.map_blocks(label, drop_axis=1, dtype=np.int64)
    limits = [w["memory_limit"] / 2**20 for w in client.scheduler_info()["workers"].values()]
    print(f"Incremental: X {n_rows} x {n_features} float32 = {X.nbytes / 2**20:.0f} MiB in "
          f"{X.numblocks[0]} blocks of {block_rows * n_features * 4 / 2**20:.1f} MiB, made on "
          f"the workers (memory limits: {', '.join(f'{m:.0f}' for m in limits)} MiB)")
    inc = Incremental(BPClassifier(hidden_layer_sizes=(16,), batch_size=1000,
                                   learning_rate_init=0.003, random_state=0),
                      scoring="accuracy", shuffle_blocks=True, random_state=0)
    t = time.perf_counter()
    for epoch in range(2):  # each call: one partial_fit per block, in a shuffled order
        inc.partial_fit(X, y, classes=[0, 1])
        print(f"  pass {epoch + 1}: {time.perf_counter() - t:5.2f}s  "
              f"held-out accuracy {inc.score(X_test, y_test):.4f}")


def hyperband(X, y, client):
    from dask_ml.model_selection import HyperbandSearchCV

    dX, dy = da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=200)
    search = HyperbandSearchCV(
        BPClassifier(hidden_layer_sizes=(32,), random_state=0),
        {"alpha": loguniform(1e-5, 1.0), "learning_rate_init": loguniform(1e-3, 1e-1)},
        max_iter=9, random_state=0)
    t = time.perf_counter()
    # Without this line: RuntimeError: Attempting to use an asynchronous Client in
    # a synchronous context of `dask.compute` (dask-ml 2025.1, dask >= 2025.3).
    with dask.config.set(scheduler=client.get):
        search.fit(dX, dy, classes=np.unique(y))
    print(f"HyperbandSearchCV      on the cluster {time.perf_counter() - t:5.2f}s  "
          f"{search.metadata_['n_models']} models, best validation accuracy "
          f"{search.best_score_:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a running scheduler, e.g. tcp://host:8786 "
                             "(default: start a LocalCluster of 2 workers here)")
    parser.add_argument("--rows", type=int, default=6_000_000,
                        help="rows of the Incremental example's data (6,000,000: 732 MiB)")
    args = parser.parse_args()
    quiet()
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with dask.config.set({"temporary-directory": tempfile.mkdtemp()}):
        if args.scheduler:
            client = Client(args.scheduler)
        else:
            # one thread per worker; the nanny sets OMP_NUM_THREADS=1 in each, so
            # fastbp's n_jobs=None fits on one thread there (see the README).
            # 700 MiB per worker, less than the Incremental example's data.
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   memory_limit="700MiB", host="127.0.0.1",
                                   dashboard_address="127.0.0.1:0")
            client = Client(cluster)
        with client:
            client.run(quiet)
            print(f"cluster: {len(client.scheduler_info()['workers'])} workers at "
                  f"{client.scheduler.address}")
            searches(X, y, local_cluster=not args.scheduler)
            incremental(client, args.rows)
            hyperband(X, y, client)
        if not args.scheduler:
            cluster.close()


if __name__ == "__main__":
    main()
