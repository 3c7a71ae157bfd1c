"""Plots of a fitted estimator, with scikit-learn's Display conventions.

``LossCurveDisplay.from_estimator(est)`` draws ``loss_curve_`` (the training
loss per epoch) and, with early stopping, ``validation_loss_curve_`` on the
same axes and ``validation_scores_`` on a second y axis (a score and a loss
have different scales).  As scikit-learn's displays do, the display keeps the
data it plots, ``plot(ax=...)`` draws into given axes, and the artists are
attributes: ``figure_``, ``ax_`` (the loss axes), ``ax_score_`` (the score
axes, or None) and ``lines_`` (name -> Line2D).  matplotlib is imported only
when something is drawn (``pip install "fastbp[examples]"``).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["LossCurveDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the message scikit-learn's displays give
        raise ImportError(
            "LossCurveDisplay requires matplotlib. You can install matplotlib with "
            '`pip install matplotlib` (or `pip install "fastbp[examples]"`).') from exc
    return plt


class LossCurveDisplay:
    """Training loss, validation loss and validation score per epoch.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        The training loss of each epoch (an estimator's ``loss_curve_``).
    validation_loss_curve : array-like of shape (n_epochs,), default=None
        The validation loss of each epoch (``validation_loss_curve_``); nan
        entries (epochs whose validation loss is unknown) are not drawn.
    validation_scores : array-like of shape (n_epochs,), default=None
        The validation score of each epoch (``validation_scores_``), drawn on
        a second y axis.
    estimator_name : str, default=None
        The title of the plot.

    Attributes
    ----------
    figure_ : matplotlib Figure
    ax_ : matplotlib Axes
        The axes of the losses.
    ax_score_ : matplotlib Axes or None
        The twin axes of the validation score, when there is one.
    lines_ : dict of str to matplotlib Line2D
        "training loss", "validation loss", "validation score": those drawn.
    """

    def __init__(self, *, loss_curve, validation_loss_curve=None, validation_scores=None,
                 estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, **kwargs):
        """Plot the curves a fitted stochastic-solver estimator recorded.

        Parameters
        ----------
        estimator : BPClassifier, BPRegressor, MLPClassifier or MLPRegressor
            Fitted with 'sgd', 'adam', 'rmsprop' or 'adamw' (L-BFGS records no
            curve).
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when None.
        name : str, default=None
            The title; the estimator's class name when None.
        **kwargs : dict
            Passed to matplotlib's ``plot`` for every line.

        Returns
        -------
        display : LossCurveDisplay
        """
        check_is_fitted(estimator, "coefs_")
        loss_curve = getattr(estimator, "loss_curve_", None)
        if loss_curve is None:
            raise ValueError(
                f"{type(estimator).__name__} fitted with solver={estimator.solver!r} has no "
                "loss_curve_ (only the stochastic solvers record one per epoch).")
        display = cls(loss_curve=loss_curve,
                      validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
                      validation_scores=getattr(estimator, "validation_scores_", None),
                      estimator_name=name or type(estimator).__name__)
        return display.plot(ax=ax, **kwargs)

    def plot(self, ax=None, *, name=None, **kwargs):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when None.
        name : str, default=None
            The title; ``estimator_name`` when None.
        **kwargs : dict
            Passed to matplotlib's ``plot`` for every line.

        Returns
        -------
        display : LossCurveDisplay
            This object, with ``figure_``, ``ax_``, ``ax_score_`` and ``lines_``.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        self.lines_ = {}
        loss = np.asarray(self.loss_curve, dtype=float)
        epochs = np.arange(1, loss.shape[0] + 1)
        (self.lines_["training loss"],) = ax.plot(epochs, loss, label="training loss",
                                                  **kwargs)
        if self.validation_loss_curve is not None:
            val = np.asarray(self.validation_loss_curve, dtype=float)
            if np.isfinite(val).any():
                (self.lines_["validation loss"],) = ax.plot(
                    np.arange(1, val.shape[0] + 1), val, label="validation loss", **kwargs)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self.ax_score_ = None
        if self.validation_scores is not None and len(self.validation_scores):
            scores = np.asarray(self.validation_scores, dtype=float)
            self.ax_score_ = ax.twinx()
            (self.lines_["validation score"],) = self.ax_score_.plot(
                np.arange(1, scores.shape[0] + 1), scores, label="validation score",
                color="C2", linestyle="--", **kwargs)
            self.ax_score_.set_ylabel("validation score")
        lines = list(self.lines_.values())
        # (right middle: losses fall to the bottom, scores rise to the top there)
        ax.legend(lines, [line.get_label() for line in lines], loc="center right")
        title = name or self.estimator_name
        if title:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
