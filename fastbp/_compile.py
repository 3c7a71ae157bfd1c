"""Ahead-of-time compilation of every kernel variant a fit or predict can use."""

import numpy as np

__all__ = ["precompile"]


def precompile(dtypes=("float32", "float64"), parallel=True, extended=False):
    """Compile (or load from the on-disk cache) the kernels for ``dtypes``.

    Runs tiny fits and predictions per dtype (dense input on both gradient
    schedules, sparse input), through the serial variant and, when ``parallel``
    is true and numba offers more than one thread, the parallel one (which a
    short fit would otherwise not compile: ``fastbp._threads.CompileGate``).
    Useful before timing, or in a worker's start-up.

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
    from ._threads import eager_parallel
    from .estimators import BPClassifier

    rng = np.random.RandomState(0)
    n_jobs_list = [1]
    if parallel and numba.config.NUMBA_NUM_THREADS > 1:
        n_jobs_list.append(2)
    for dtype in dtypes:
        X = rng.rand(256, 3).astype(dtype)
        y = (X[:, 0] > 0.5).astype(int)
        for n_jobs in n_jobs_list:
            # dense input on both gradient schedules (16-row batches are one
            # work block: the parameter-owned one), CSR input on its one
            for data, batch_size in ((X, "auto"), (X, 16), (sp.csr_matrix(X), "auto")):
                for options in ([{}, dict(activation="gelu", dropout=0.1)] if extended
                                else [{}]):
                    # (early stopping: the validation loss's kernel too)
                    clf = BPClassifier(hidden_layer_sizes=(2,), max_iter=1, n_jobs=n_jobs,
                                       batch_size=batch_size, random_state=0,
                                       early_stopping=True, **options)
                    with warnings.catch_warnings(), eager_parallel():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        clf.fit(data, y)
                        clf.predict_proba(data)
                        clf.predict_proba(data[:2])  # a few rows: predict_rows
    return {name: len(d.signatures) for name, d in DISPATCHERS.items()}
