"""scikit-learn's callbacks (sklearn.callback) in fastbp's fits.

A recording callback checks the task tree each fit reports, that every begin
has its end, what ``fitted_estimator`` holds at each task's end (the model as
a fit stopped there would leave it: bitwise a fit with that max_iter), and
that a callback's request to stop ends training there.  The real ProgressBar
and ScoringMonitor run too, alone and propagated from a search and a pipeline.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import diverging_regression
from fastbp import BPClassifier, BPRegressor, _callbacks

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Recorder:
    """Records every hook call: (hook, path of task ids, task name, max_subtasks,
    and at ends the fitted_estimator's weights and n_iter_)."""

    def __init__(self, stop_at=None, propagate=False):
        self.events = []
        self.stop_at = stop_at  # (task_name, task_id): return True at its end
        self.setups = self.teardowns = 0
        if propagate:
            self.max_propagation_depth = None  # an AutoPropagatedCallback

    def setup(self, estimator, context):
        self.setups += 1

    def teardown(self, estimator, context):
        self.teardowns += 1

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", _path(context), context.task_name,
                            context.max_subtasks, context.estimator_name))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, X=None, y=None):
        state = None
        if fitted_estimator is not None and hasattr(fitted_estimator, "coefs_"):
            state = dict(coefs=[c.copy() for c in fitted_estimator.coefs_],
                         intercepts=[b.copy() for b in fitted_estimator.intercepts_],
                         n_iter=fitted_estimator.n_iter_, estimator=fitted_estimator,
                         n_rows=None if X is None else X.shape[0])
        self.events.append(("end", _path(context), context.task_name, None, state))
        return self.stop_at == (context.task_name, context.task_id)

    def ends(self, task_name):
        return [e for e in self.events if e[0] == "end" and e[2] == task_name]

    def begins(self, task_name):
        return [e for e in self.events if e[0] == "begin" and e[2] == task_name]


def _path(context):
    path = []
    while context is not None:
        path.append(context.task_id)
        context = context.parent
    return tuple(reversed(path))


def _balanced(events):
    """Every begun task ends once, after its children."""
    open_paths = []
    for kind, path, *_ in events:
        if kind == "begin":
            open_paths.append(path)
        else:
            assert open_paths and open_paths[-1] == path, (path, open_paths)
            open_paths.pop()
    return not open_paths


def _same_weights(a, b):
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


KW = dict(hidden_layer_sizes=(16,), random_state=0, tol=0, n_iter_no_change=100)


def test_epochs_are_the_fit_tasks_subtasks_and_their_models_are_the_fits_so_far(digits):
    X, y = digits
    rec = Recorder()
    clf = BPClassifier(max_iter=6, **KW).set_callbacks(rec).fit(X, y)
    assert rec.setups == rec.teardowns == 1
    assert _balanced(rec.events)
    root = rec.events[0]
    assert root[:4] == ("begin", (0,), "fit", 6)
    epochs = rec.ends("epoch")
    assert [e[1] for e in epochs] == [(0, e) for e in range(6)]
    assert all(b[3] == 0 for b in rec.begins("epoch"))  # leaves
    for k, (_, _, _, _, state) in enumerate(epochs, start=1):
        assert state["n_iter"] == k and state["n_rows"] == 400
        if k in (1, 4):  # the model after k epochs is a fit of max_iter=k, bitwise
            _same_weights(state["estimator"], BPClassifier(max_iter=k, **KW).fit(X, y))
    # the fit task's own end: the final model
    _same_weights(rec.ends("fit")[0][4]["estimator"], clf)
    # and the callbacks changed nothing
    _same_weights(clf, BPClassifier(max_iter=6, **KW).fit(X, y))


def test_fitted_estimator_is_a_copy_that_predicts(digits):
    X, y = digits
    rec = Recorder()
    clf = BPClassifier(max_iter=3, **KW).set_callbacks(rec).fit(X, y)
    first = rec.ends("epoch")[0][4]["estimator"]
    assert first is not clf and first.n_iter_ == 1 and len(first.loss_curve_) == 1
    assert first.predict_proba(X[:5]).shape == (5, 10)
    assert not np.array_equal(first.predict_proba(X), clf.predict_proba(X))


def test_a_callback_asking_to_stop_ends_training_after_that_epoch(digits):
    X, y = digits
    rec = Recorder(stop_at=("epoch", 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop is not a failure
        clf = BPClassifier(max_iter=50, **KW).set_callbacks(rec).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert len(rec.ends("epoch")) == 3 and _balanced(rec.events)
    _same_weights(clf, BPClassifier(max_iter=3, **KW).fit(X, y))
    assert clf.t_ == 3 * 400


def test_a_stop_with_early_stopping_keeps_the_best_epoch(digits):
    X, y = digits
    kw = dict(KW, early_stopping=True, learning_rate_init=0.05)
    rec = Recorder(stop_at=("epoch", 7))
    clf = BPClassifier(max_iter=50, **kw).set_callbacks(rec).fit(X, y)
    assert clf.n_iter_ == 8
    best = int(np.argmax(clf.validation_scores_))
    # the model is the best epoch's: the one a callback saw at that epoch's end
    _same_weights(clf, rec.ends("epoch")[best][4]["estimator"])


def test_lbfgs_iterations_are_subtasks_and_can_be_stopped(digits):
    X, y = digits
    kw = dict(KW, solver="lbfgs")
    rec = Recorder()
    clf = BPClassifier(max_iter=8, **kw).set_callbacks(rec).fit(X, y)
    iters = rec.ends("lbfgs-iter")
    assert len(iters) == clf.n_iter_ == 8 and _balanced(rec.events)
    assert [e[4]["n_iter"] for e in iters] == list(range(1, 9))
    assert iters[-1][4]["estimator"].loss_ == clf.loss_
    _same_weights(iters[2][4]["estimator"], BPClassifier(max_iter=3, **kw).fit(X, y))

    stop = Recorder(stop_at=("lbfgs-iter", 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = BPClassifier(max_iter=50, **kw).set_callbacks(stop).fit(X, y)
    assert stopped.n_iter_ == 4
    _same_weights(stopped, BPClassifier(max_iter=4, **kw).fit(X, y))
    assert stopped.loss_ == BPClassifier(max_iter=4, **kw).fit(X, y).loss_


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_restarts_are_init_subtasks_and_a_stop_skips_the_rest(digits, n_jobs):
    X, y = digits
    kw = dict(KW, n_init=3, max_iter=4, n_jobs=n_jobs)
    rec = Recorder()
    clf = BPClassifier(**kw).set_callbacks(rec).fit(X, y)
    assert rec.events[0][:4] == ("begin", (0,), "fit", 3)
    assert sorted(e[1] for e in rec.ends("init")) == [(0, 0), (0, 1), (0, 2)]
    assert sorted(e[1] for e in rec.ends("epoch")) == [(0, s, e) for s in range(3)
                                                         for e in range(4)]
    inits = {e[1][1]: e[4]["estimator"] for e in rec.ends("init")}
    _same_weights(inits[clf.best_init_], clf)
    _same_weights(clf, BPClassifier(**kw).fit(X, y))

    if n_jobs == 1:  # one start after another: a stop at start 0's end skips 1 and 2
        stop = Recorder(stop_at=("init", 0))
        first = BPClassifier(**kw).set_callbacks(stop).fit(X, y)
        assert [e[1] for e in stop.ends("init")] == [(0, 0)]
        assert first.best_init_ == 0 and np.isnan(first.init_losses_[1:]).all()


def test_partial_fit_is_one_epoch_task(digits):
    X, y = digits
    rec = Recorder()
    clf = BPClassifier(**KW).set_callbacks(rec)
    clf.partial_fit(X[:200], y[:200], classes=np.unique(y))
    clf.partial_fit(X[200:], y[200:])
    roots = [e for e in rec.events if e[1] == (0,)]
    assert [e[:3] for e in roots] == [("begin", (0,), "partial_fit"),
                                       ("end", (0,), "partial_fit")] * 2
    assert len(rec.ends("epoch")) == 2 and rec.ends("epoch")[1][4]["n_rows"] == 200


def test_huge_epochs_report_blocks_of_batches(digits, monkeypatch):
    X, y = digits
    kw = dict(KW, batch_size=10, max_iter=2)  # 40 batches an epoch
    flops_per_batch = 6.0 * (64 * 16 + 16 * 10) * 10
    monkeypatch.setattr(_callbacks, "REPORT_FLOPS", 12 * flops_per_batch)  # 4 reports of 10
    rec = Recorder()
    clf = BPClassifier(**kw).set_callbacks(rec).fit(X, y)
    assert [b[3] for b in rec.begins("epoch")] == [4, 4]
    assert [e[1] for e in rec.ends("batches")] == [(0, e, b) for e in range(2)
                                                   for b in range(4)]
    assert _balanced(rec.events)
    # the progress reports change how calls are cut, never the model
    _same_weights(clf, BPClassifier(**kw).fit(X, y))
    # a block's stop request ends training at its epoch's end
    stop = Recorder(stop_at=("batches", 1))
    assert BPClassifier(**dict(kw, max_iter=5)).set_callbacks(stop).fit(X, y).n_iter_ == 1


def test_a_failed_fit_tears_down_and_keeps_the_model(digits):
    X, y, params = diverging_regression()
    params = dict(params, early_stopping=False, warm_start=True)
    rec = Recorder()
    reg = BPRegressor(**dict(params, max_iter=2)).set_callbacks(rec).fit(X, y)
    before = [c.copy() for c in reg.coefs_]
    with pytest.raises(ValueError, match="left as it was before this call"):
        reg.set_params(max_iter=100).fit(X, y)  # diverges in training
    assert rec.setups == rec.teardowns == 2
    for c, c0 in zip(reg.coefs_, before):
        np.testing.assert_array_equal(c, c0)
    assert reg._skl_callbacks == [rec] and not hasattr(reg, "_callback_fit_ctx")
    # input refused before training begins: no task, nothing to tear down
    with pytest.raises(ValueError, match="y has values"):
        BPRegressor(out_activation="logistic", **KW).set_callbacks(rec).fit(*digits)
    assert rec.setups == rec.teardowns == 2


def test_divergence_with_early_stopping_ends_its_epoch_empty():
    X, y, params = diverging_regression()
    rec = Recorder()
    with pytest.warns(ConvergenceWarning, match="non-finite in epoch 6"):
        reg = BPRegressor(**params).set_callbacks(rec).fit(X, y)
    assert _balanced(rec.events)
    epochs = rec.ends("epoch")
    assert len(epochs) == 6 and epochs[-1][4] is None  # cut short: no model offered
    assert all(e[4] is not None for e in epochs[:5])
    _same_weights(rec.ends("fit")[0][4]["estimator"], reg)  # epoch 4's, restored


def test_progress_bar_advances_per_epoch(digits, capsys):
    X, y = digits
    BPClassifier(max_iter=4, **KW).set_callbacks(ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert re.search(r"BPClassifier - fit .*100%", out), out


def test_scoring_monitor_records_each_epochs_score(digits):
    X, y = digits
    monitor = ScoringMonitor(scoring="accuracy")
    clf = BPClassifier(max_iter=5, **KW).set_callbacks(monitor).fit(X, y)
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    assert [r["task_id"] for r in rows] == list(range(5))
    assert rows[-1]["accuracy"] == clf.score(X, y)
    assert rows[0]["accuracy"] < rows[-1]["accuracy"]


def test_callbacks_propagate_from_a_search_over_a_pipeline(digits):
    X, y = digits
    rec = Recorder(propagate=True)
    search = GridSearchCV(make_pipeline(StandardScaler(), BPClassifier(max_iter=3, **KW)),
                          {"bpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(rec).fit(X, y)
    # fastbp's fit tasks, merged into the search's tree
    fits = [e for e in rec.begins("fit") if e[4] == "BPClassifier"]
    assert len(fits) == 2 * 2 + 1  # candidates x splits, and the refit
    epochs = rec.ends("epoch")
    assert len(epochs) == 5 * 3
    assert all(len(e[1]) > 3 for e in epochs)  # nested below search and pipeline tasks
    assert rec.setups == rec.teardowns == 1  # an auto-propagated callback: once


def test_callbacks_propagate_from_successive_halving(digits):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    X, y = digits
    rec = Recorder(propagate=True)
    search = HalvingRandomSearchCV(BPClassifier(max_iter=3, **KW),
                                   {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}, n_candidates=4,
                                   cv=2, random_state=0)
    search.set_callbacks(rec).fit(X, y)
    fits = [e for e in rec.begins("fit") if e[4] == "BPClassifier"]
    # every candidate of every halving iteration on each split, and the refit
    assert len(fits) == 2 * sum(search.n_candidates_) + 1 >= 2 * (4 + 2) + 1
    assert len(rec.ends("epoch")) == 3 * len(fits)
    # fastbp's fits nest below the search's halving iterations (search fit >
    # halving-iteration > search > fit), the refit below the search's fit
    assert all(len(e[1]) >= 4 for e in fits[:-1]) and len(fits[-1][1]) >= 2
    assert rec.setups == rec.teardowns == 1


@pytest.mark.slow
def test_progress_bar_nests_under_a_parallel_grid_search(digits, capsys):
    X, y = digits
    search = GridSearchCV(BPClassifier(max_iter=3, **KW), {"alpha": [1e-4, 1e-2]}, cv=2,
                          n_jobs=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X, y)
    out = capsys.readouterr().out
    assert "GridSearchCV - fit" in out and "BPClassifier - fit" in out, out


def test_no_callbacks_no_context():
    clf = BPClassifier(max_iter=2, **KW).fit(np.eye(4), [0, 1, 0, 1])
    assert not hasattr(clf, "_callback_fit_ctx") and not hasattr(clf, "_skl_callbacks")
    assert _callbacks.FitTasks.open(clf, None, None, None, "fit", 2) is None
