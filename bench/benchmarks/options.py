"""asv: fastbp's own options (issue 8) and the sparse first layer.

``BPOptions`` times a fit of the reduced mnist-like workload with each option
next to the default (the full-size table is ``bench/options.py``);
``BPSparse`` / ``MLPSparse`` fit and predict a wide CSR problem (the full-size
one is ``bench/sparse.py``).  Compile time is excluded (``setup`` fits once).
"""

import numpy as np

from .common import (
    ASV_WORKLOADS,
    OPTIONS,
    SEED,
    FitTiming,
    estimator_params,
    fit_quietly,
    make_data,
)

# the options asv tracks (bench/options.py times every one of common.OPTIONS)
TRACKED = ["default", "dropout=0.2", "gelu", "rmsprop", "adamw", "squared_error",
           "early_stopping"]


class _OptionFit(FitTiming):
    """time_fit of one workload with extra constructor parameters (``_extra``)."""

    workload_name = None  # set by subclasses

    def _extra(self, value):
        raise NotImplementedError

    def setup(self, value):
        from fastbp import BPClassifier

        self.workload = ASV_WORKLOADS[self.workload_name]
        self.X, self.y, _, _ = make_data(self.workload, "float32")
        self.params = {**estimator_params(self.workload, "adam"), **self._extra(value)}
        # Numba compilation (the option's kernel build; not timed)
        fit_quietly(BPClassifier(**self.params), self.X[:400], self.y[:400])

    def time_fit(self, value):
        from fastbp import BPClassifier

        fit_quietly(BPClassifier(**self.params), self.X, self.y)


class BPOptions(_OptionFit):
    workload_name = "mnist-like"
    param_names = ["option"]
    params = [TRACKED]

    def _extra(self, option):
        return OPTIONS[option]


class BPRestarts(_OptionFit):
    """n_init on the small workload (its starts run concurrently)."""

    workload_name = "small"
    param_names = ["n_init"]
    params = [[1, 4]]

    def _extra(self, n_init):
        return {"n_init": n_init}


def _sparse_data():
    import scipy.sparse as sp

    X = sp.random(4000, 20000, density=0.002, format="csr", random_state=SEED)
    y = np.random.RandomState(SEED).randint(0, 5, 4000)
    return X, y


class _Sparse(FitTiming):
    engine = None

    def _make(self):
        params = dict(hidden_layer_sizes=(64,), max_iter=3, random_state=SEED)
        if self.engine == "fastbp":
            from fastbp import BPClassifier

            return BPClassifier(**params)
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(**params)

    def setup(self):
        self.X, self.y = _sparse_data()
        self.fitted = fit_quietly(self._make(), self.X, self.y)
        self.fitted.predict_proba(self.X)

    def time_fit(self):
        fit_quietly(self._make(), self.X, self.y)

    def time_predict_proba(self):
        self.fitted.predict_proba(self.X)


class BPSparse(_Sparse):
    engine = "fastbp"


class MLPSparse(_Sparse):
    engine = "sklearn"
