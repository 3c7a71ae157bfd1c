"""scikit-learn's callbacks (``sklearn.callback``) around a fit's tasks.

The estimators are ``CallbackSupportMixin`` estimators: ``set_callbacks``
attaches callbacks (``ProgressBar``, ``ScoringMonitor`` or one's own), and a
``GridSearchCV`` or ``Pipeline`` that has them propagates them into fastbp's
fits.  A fit reports this task tree::

    fit                      (max_subtasks: max_iter, or n_init)
      init #s                (n_init > 1: one per start, each as below)
        epoch #e             (sgd, adam, rmsprop, adamw)
          batches #b         (only in epochs of more than REPORT_FLOPS work)
        lbfgs-iter #i        (lbfgs, scikit-learn's name for its iterations)
    partial_fit              (one epoch)

Hooks run in Python between compiled calls, never inside one.  Each task's
end offers the callbacks a ``fitted_estimator``: a copy of the estimator
with the weights as they are at that point (built only if a callback asks
for it).  A callback whose ``on_fit_task_end`` returns True at an epoch (or
an L-BFGS iteration) ends training there, as an interrupt would: the model
is that epoch's (with early stopping, the best one so far), without a
ConvergenceWarning.  At a start's end it skips the starts not yet begun; a
``batches`` task's request takes effect at the end of its epoch.

With no callback set, ``FitTasks.open`` returns None and the training loops
pay one ``is None`` test per epoch.
"""

import math

import numpy as np

from ._network import Network

__all__ = ["FitTasks", "Task", "CALLBACK_STATE", "REPORT_FLOPS", "batches_per_report",
           "end_cut_short"]

# The estimator's callback bookkeeping (scikit-learn's names): a failed fit
# puts the fitted state back but must leave these, so that teardown still runs.
CALLBACK_STATE = ("_skl_callbacks", "_callback_fit_ctx", "_skl_callbacks_to_teardown",
                  "_parent_callback_ctx")

# Work (multiply-adds of the forward and backward passes) above which an epoch
# reports its progress in parts of about this much: seconds per part on
# current cores, so an hours-long run on huge epochs still moves a progress bar.
REPORT_FLOPS = 2e11


def fitted_attributes(model, params=None, attrs=None):
    """The fitted attributes of ``model`` now, copied, with ``params`` (the
    flat buffer's contents; default: the current weights) as its weights and
    ``attrs`` over the rest: what ``fitted_estimator`` needs to predict (and
    report ``n_iter_``, ``loss_``) as if fit had stopped here."""
    net = model._net
    weights = Network(net.sizes, net.dtype,
                      np.array(net.params if params is None else params, dtype=net.dtype))
    out = {}
    for key, value in model.__dict__.items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, list):
            value = list(value)
        out[key] = value
    out.update(attrs or {})
    out.update(_net=weights, coefs_=list(weights.coefs),
               intercepts_=list(weights.intercepts))
    return out


class FitTasks:
    """What the hooks are given, for every task of one fit: the estimator,
    the training data and its sample weights."""

    __slots__ = ("estimator", "X", "y", "metadata")

    def __init__(self, estimator, X, y, sample_weight):
        self.estimator = estimator
        self.X = X
        self.y = y
        self.metadata = None if sample_weight is None else {"sample_weight": sample_weight}

    @classmethod
    def open(cls, est, X, y, sample_weight, task_name, max_subtasks,
             sequential_subtasks=True):
        """The root task of ``est``'s fit, begun; None without callbacks."""
        if not getattr(est, "_skl_callbacks", None):
            return None
        ctx = est._init_callback_context(task_name=task_name, max_subtasks=max_subtasks,
                                         sequential_subtasks=sequential_subtasks)
        return Task(cls(est, X, y, sample_weight), ctx, est)


class Task:
    """One begun task: ``subtask`` begins a child, ``end`` ends this one."""

    __slots__ = ("fit", "ctx", "model", "stop_requested")

    def __init__(self, fit, ctx, model):
        self.fit = fit
        self.ctx = ctx
        self.model = model  # whose weights the task trains (a restart: its start)
        self.stop_requested = False  # by a child whose request takes effect here
        ctx.call_on_fit_task_begin(
            estimator=fit.estimator, X=fit.X, y=fit.y, metadata=fit.metadata,
            reconstruction_attributes=lambda: fitted_attributes(model))

    def subtask(self, task_name, max_subtasks=0, task_id=None, model=None,
                sequential_subtasks=True):
        ctx = self.ctx.subcontext(task_name=task_name, task_id=task_id,
                                  max_subtasks=max_subtasks,
                                  sequential_subtasks=sequential_subtasks)
        return Task(self.fit, ctx, self.model if model is None else model)

    def end(self, params=None, attrs=None, empty=False):
        """End the task; True if a callback asks to stop.  ``params``: the
        weights it ended with, when they are not the buffer's (L-BFGS: the
        iterate, not the last point its line search tried), and ``attrs``
        fitted attributes the estimator sets only later (L-BFGS's ``n_iter_``
        and ``loss_``); ``empty``: a task cut short (an interrupt, a
        divergence), ended with no model."""
        fit = self.fit
        if empty:
            return bool(self.ctx.call_on_fit_task_end(estimator=fit.estimator))
        model = self.model
        return bool(self.ctx.call_on_fit_task_end(
            estimator=fit.estimator, X=fit.X, y=fit.y, metadata=fit.metadata,
            reconstruction_attributes=lambda: fitted_attributes(model, params, attrs)))


def batches_per_report(n_batches, flops_per_batch):
    """Batches per ``batches`` task (one progress report) of an epoch, or 0:
    an epoch of at most ``REPORT_FLOPS`` work is one task."""
    work = n_batches * flops_per_batch
    if work <= REPORT_FLOPS:
        return 0
    return max(1, math.ceil(n_batches / math.ceil(work / REPORT_FLOPS)))


def end_cut_short(*tasks):
    """End the begun ``tasks`` (innermost first; None: none) that an
    interrupt or a divergence cut short, with no model: every begin has its
    end."""
    for task in tasks:
        if task is not None:
            task.end(empty=True)
