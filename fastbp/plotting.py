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

# matplotlib's short names of Line2D properties (those of scikit-learn's
# _validate_style_kwargs that apply to lines): a user's ``c`` has to replace a
# default ``color``, where passing both to matplotlib would raise.
_ALIASES = {"c": "color", "ls": "linestyle", "lw": "linewidth", "ms": "markersize",
            "mec": "markeredgecolor", "mew": "markeredgewidth", "mfc": "markerfacecolor",
            "mfcalt": "markerfacecoloralt", "aa": "antialiased", "ds": "drawstyle"}
# What each line looks like unless the user says otherwise.  The losses take
# their colors from the loss axes' cycle; the score, alone on the twin axes
# (whose cycle would start again at C0), is given the next color and dashes.
_DEFAULT_STYLE = {"training loss": {}, "validation loss": {},
                  "validation score": {"color": "C2", "linestyle": "--"}}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the message scikit-learn's displays give
        raise ImportError(
            "LossCurveDisplay requires matplotlib. You can install matplotlib with "
            '`pip install matplotlib` (or `pip install "fastbp[examples]"`).') from exc
    return plt


def _user_style(kwargs):
    """``kwargs`` with matplotlib's aliases spelled out; an alias given together
    with its full name raises, as matplotlib and scikit-learn's displays do."""
    for short, full in _ALIASES.items():
        if short in kwargs and full in kwargs:
            raise TypeError(f"Got both {short!r} and {full!r}, which are aliases of one "
                            "another")
    return {_ALIASES.get(key, key): value for key, value in kwargs.items()}


def _line_styles(names, kwargs):
    """The ``plot`` keyword arguments of each line in ``names`` (drawn in that
    order): fastbp's defaults, overridden by the user's ``kwargs``.

    A user's ``label`` names what the lines show together, so, as in
    scikit-learn's multi-curve displays (one dict of kwargs for several curves:
    one legend entry), it labels the first line and keeps the others out of the
    legend instead of repeating itself there.
    """
    user = _user_style(kwargs)
    styles = {}
    for i, name in enumerate(names):
        style = {"label": name, **_DEFAULT_STYLE[name], **user}
        if "label" in user and i > 0:
            style["label"] = "_nolegend_"
        styles[name] = style
    return styles


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
            Keyword arguments of matplotlib's ``plot`` for every line, passed
            to :meth:`plot` (which says how they combine with the defaults).

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
            Keyword arguments of matplotlib's ``plot`` (Line2D properties, and
            their aliases ``c``, ``ls``, ``lw``, ...), applied to every line.
            They override fastbp's defaults, as in scikit-learn's displays: a
            ``color`` replaces the losses' colors (the axes' color cycle) and
            the validation score's 'C2', a ``linestyle`` the score's '--'; a
            default not overridden stays.  A ``label`` is the plot's single
            legend entry, as one set of keyword arguments for several curves
            is in scikit-learn's multi-curve displays: the training loss line
            carries it, and the validation lines, still drawn, get the label
            '_nolegend_' (``label=None``: no legend).  An alias given with its
            full name (``c`` and ``color``) raises a TypeError.

        Returns
        -------
        display : LossCurveDisplay
            This object, with ``figure_``, ``ax_``, ``ax_score_`` and ``lines_``.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        curves = {"training loss": np.asarray(self.loss_curve, dtype=float)}
        if self.validation_loss_curve is not None:
            val = np.asarray(self.validation_loss_curve, dtype=float)
            if np.isfinite(val).any():
                curves["validation loss"] = val
        if self.validation_scores is not None and len(self.validation_scores):
            curves["validation score"] = np.asarray(self.validation_scores, dtype=float)
        styles = _line_styles(list(curves), kwargs)
        self.ax_score_ = ax.twinx() if "validation score" in curves else None
        self.lines_ = {}
        for curve, values in curves.items():
            target = self.ax_score_ if curve == "validation score" else ax
            (self.lines_[curve],) = target.plot(np.arange(1, values.shape[0] + 1), values,
                                                **styles[curve])
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if self.ax_score_ is not None:
            self.ax_score_.set_ylabel("validation score")
        shown = [line for line in self.lines_.values()
                 if not str(line.get_label()).startswith("_")]
        # (right middle: losses fall to the bottom, scores rise to the top there)
        if shown:
            ax.legend(shown, [line.get_label() for line in shown], loc="center right")
        title = name or self.estimator_name
        if title:
            ax.set_title(title)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
