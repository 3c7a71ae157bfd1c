"""Ctrl-C at any line of an epoch's bookkeeping leaves whole epochs recorded
(issue 17): ``loss_curve_``, ``validation_scores_``, ``validation_loss_curve_``,
``n_iter_``, ``t_``, ``loss_`` and the best values all describe the same epochs.

A KeyboardInterrupt can land between any two bytecodes of the Python that runs
between compiled calls.  Here a trace function raises it at the k-th line that
``fastbp/_training.py`` runs, for every k of a short fit, and each outcome is
checked: either the fit is refused whole (an interrupt before training began,
or while the best weights were being put back: the model is as before the
call), or it returns with scikit-learn's warning and consistent records, and
weights bitwise those of an uninterrupted fit of as many epochs.
"""

import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import fastbp._training
from fastbp import BPClassifier

TRAINING_FILE = fastbp._training.__file__


def _lines_run(fit, stop_at=None):
    """Run ``fit()`` counting the lines of ``_training.py`` it runs; raise
    KeyboardInterrupt at line number ``stop_at`` (0-based) of that count."""
    count = [0]

    def local(frame, event, arg):
        if event == "line":
            if count[0] == stop_at:
                count[0] += 1
                raise KeyboardInterrupt
            count[0] += 1
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename == TRAINING_FILE else None

    sys.settrace(global_)
    try:
        fit()
    finally:
        sys.settrace(None)
    return count[0]


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:150] / 16.0, y[:150]


PARAMS = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0, n_jobs=1,
              batch_size=50)


def _check_whole_epochs(est, n_train, params, X, y):
    n = est.n_iter_
    assert len(est.loss_curve_) == n
    assert est.t_ == n * n_train
    if n:
        assert est.loss_ == est.loss_curve_[-1]
    if params.get("early_stopping"):
        assert len(est.validation_scores_) == n == len(est.validation_loss_curve_)
        if n:
            assert est.best_validation_score_ == max(est.validation_scores_)
            if params.get("validation_metric") == "loss":
                assert est.best_validation_loss_ == min(est.validation_loss_curve_)
    elif n:
        assert est.best_loss_ == min(est.loss_curve_)
    if n and params.get("early_stopping"):
        # the weights kept are the best of the recorded epochs: an
        # uninterrupted fit of n epochs keeps the same
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            replay = BPClassifier(**{**params, "max_iter": n}).fit(X, y)
        for a, b in zip(est.coefs_ + est.intercepts_, replay.coefs_ + replay.intercepts_):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [
    {},
    {"early_stopping": True},
    {"early_stopping": True, "validation_metric": "loss"},
], ids=["no-early-stopping", "score", "loss"])
def test_ctrl_c_at_any_line_keeps_whole_epochs(data, params):
    X, y = data
    params = {**PARAMS, **params}
    n_train = X.shape[0] - (round(0.1 * X.shape[0]) if params.get("early_stopping") else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        total = _lines_run(lambda: BPClassifier(**params).fit(X, y))
    outcomes = {"refused": 0, "interrupted": 0}
    for k in range(total):
        est = BPClassifier(**params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                _lines_run(lambda: est.fit(X, y), stop_at=k)
            except KeyboardInterrupt:
                assert not hasattr(est, "coefs_"), f"line {k}"
                outcomes["refused"] += 1
                continue
        messages = [str(w.message) for w in caught]
        if "Training interrupted by user." not in messages:
            continue  # the interrupt landed where it is caught as one (none such yet)
        outcomes["interrupted"] += 1
        try:
            _check_whole_epochs(est, n_train, params, X, y)
        except AssertionError as exc:
            raise AssertionError(f"Ctrl-C at line event {k} of {total}: {exc}") from None
    assert outcomes["interrupted"] > 50 and outcomes["refused"] > 0, outcomes
