"""scikit-learn's estimator checks, with no expected failures."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastbp import BPClassifier, BPRegressor


@parametrize_with_checks([BPClassifier(max_iter=100), BPRegressor(max_iter=100),
                          # fastbp's own solvers pass the same checks
                          BPClassifier(solver="rmsprop", max_iter=100),
                          BPRegressor(solver="adamw", max_iter=100)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
