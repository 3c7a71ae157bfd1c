"""Ahead-of-time compilation of every kernel variant a fit or predict can use."""

import numpy as np

__all__ = ["precompile"]


def precompile(dtypes=("float32", "float64"), parallel=True, extended=False):
    """Compile (or load from the on-disk cache) the kernels for ``dtypes``.

    Runs a tiny fit and predict per dtype, dense and sparse input, through the
    serial variant and, when ``parallel`` is true and numba offers more than one
    thread, the parallel one.  Useful before timing, or in a worker's start-up.

    Parameters
    ----------
    dtypes : iterable of {"float32", "float64"}, default=("float32", "float64")
        Floating-point types to compile for.
    parallel : bool, default=True
        Also compile the multithreaded variants.
    extended : bool, default=False
        Also compile the extended build, which runs fastbp's own activations,
        losses and dropout (the default options never load it).

    Returns
    -------
    signatures : dict
        Kernel name -> number of compiled specializations.
    """
    import warnings

    import numba
    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning

    from ._kernels import DISPATCHERS
    from .estimators import BPClassifier

    rng = np.random.RandomState(0)
    n_jobs_list = [1]
    if parallel and numba.config.NUMBA_NUM_THREADS > 1:
        n_jobs_list.append(2)
    for dtype in dtypes:
        X = rng.rand(256, 3).astype(dtype)
        y = (X[:, 0] > 0.5).astype(int)
        for n_jobs in n_jobs_list:
            for data in (X, sp.csr_matrix(X)):
                for options in ([{}, dict(activation="gelu", dropout=0.1)] if extended
                                else [{}]):
                    clf = BPClassifier(hidden_layer_sizes=(2,), max_iter=1, n_jobs=n_jobs,
                                       random_state=0, **options)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        clf.fit(data, y)
                    clf.predict_proba(data)
    return {name: len(d.signatures) for name, d in DISPATCHERS.items()}
