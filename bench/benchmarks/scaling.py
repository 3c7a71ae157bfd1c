"""asv: time of one training epoch as the number of rows grows, fastbp vs MLPClassifier.

``n`` rows x 100 float32 features of ``common.scaling_data`` (a learnable binary
target), a (64,) relu network, batch 200, exactly one epoch (``max_iter=1``,
``tol=0``).  The time should grow linearly in ``n``; ``bench/compare.py --series
scaling`` prints the same series with the cost per sample (and PyTorch).
Compile time is excluded: ``setup`` fits the same network on 1000 rows first.
"""

from .common import (
    SCALING_N,
    FitTiming,
    fit_quietly,
    make_estimator,
    scaling_data,
    scaling_workload,
)


class _EpochScaling(FitTiming):
    engine = None  # set by subclasses
    param_names = ["n", "solver"]
    params = [list(SCALING_N), ["sgd", "adam"]]

    def setup(self, n, solver):
        self.workload = scaling_workload(n)
        self.X, self.y = scaling_data(n)  # memoized: setup re-runs before every sample
        # Numba compilation (a tiny fit of the same network; not timed)
        est = make_estimator(self.engine, self.workload, solver)
        fit_quietly(est, self.X[:1000], self.y[:1000])

    def time_epoch(self, n, solver):
        fit_quietly(make_estimator(self.engine, self.workload, solver), self.X, self.y)


class BPEpochScaling(_EpochScaling):
    engine = "fastbp"


class MLPEpochScaling(_EpochScaling):
    engine = "sklearn"
