"""What a user migrating from MLPClassifier writes to silence training warnings
(issue 17): scikit-learn's gallery silences them with
``warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")``,
which matches the module a warning is issued from.  fastbp issues every
training warning from its own package, so the same line with ``module="fastbp"``
silences them all -- in restarts run in worker threads, in a fit that a
Pipeline or a grid search calls, for lbfgs (whose convergence check is
scikit-learn's) -- and a filter on the category alone silences both
libraries' (the README's migration notes).
"""

import os
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp import BPClassifier, BPRegressor
from conftest import diverging_regression

FASTBP_DIR = os.path.dirname(fastbp.__file__)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:200] / 16.0, y[:200]


def _max_iter(solver, **kw):
    return BPClassifier(hidden_layer_sizes=(8,), max_iter=2, solver=solver,
                        random_state=0, **kw)


def _fits(digits):
    """name -> a call that warns a ConvergenceWarning from fastbp."""
    X, y = digits
    Xr, yr, diverging = diverging_regression()
    return {
        "adam": lambda: _max_iter("adam").fit(X, y),
        "sgd": lambda: _max_iter("sgd").fit(X, y),
        "lbfgs": lambda: _max_iter("lbfgs").fit(X, y),
        # restarts run concurrently, each start in a worker thread
        "restarts": lambda: _max_iter("adam", n_init=2, n_jobs=2).fit(X, y),
        "pipeline": lambda: make_pipeline(StandardScaler(), _max_iter("adam")).fit(X, y),
        "grid-search": lambda: GridSearchCV(_max_iter("adam"), {"alpha": [1e-4, 1e-3]},
                                            cv=2).fit(X, y),
        "divergence": lambda: BPRegressor(**diverging).fit(Xr, yr),
    }


CASES = ["adam", "sgd", "lbfgs", "restarts", "pipeline", "grid-search",
         "divergence"]


@pytest.mark.parametrize("case", CASES)
def test_without_a_filter_the_warning_comes_from_fastbp(digits, case):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fits(digits)[case]()
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert convergence, [str(w.message) for w in caught]
    for w in convergence:
        assert w.filename.startswith(FASTBP_DIR), (w.filename, str(w.message))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("module", ["fastbp", None], ids=["module-fastbp", "any-module"])
def test_the_gallery_filter_with_fastbp_silences_it(digits, case, module):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if module is None:
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
        else:
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module=module)
        _fits(digits)[case]()
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)], [
        str(w.message) for w in caught]
