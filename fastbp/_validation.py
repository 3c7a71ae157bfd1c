"""Parameter constraints, data validation and every private scikit-learn import.

scikit-learn's constraint helpers (``Interval``, ``StrOptions``, ``Options``),
``_fit_context``, ``_check_sample_weight``, ``_check_partial_fit_first_call``,
``_check_optimize_result``, ``_get_additional_lbfgs_options_dict`` and its MLP
optimizers (``sklearn_optimizers``, for ``fastbp.interop``) are private; they
are imported here and nowhere else in the package, so a scikit-learn release
that moves one breaks one file.  (scikit-learn >= 1.9 is required: no
fallbacks for older releases.)
"""

from numbers import Integral, Real

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import validate_data

from sklearn.base import _fit_context
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.multiclass import _check_partial_fit_first_call  # noqa: F401
from sklearn.utils.optimize import _check_optimize_result  # noqa: F401
from sklearn.utils.validation import _check_sample_weight

__all__ = [  # what the rest of the package imports from here
    "BASE_CONSTRAINTS", "CLASSIFIER_CONSTRAINTS", "REGRESSOR_CONSTRAINTS",
    "binarize_labels", "check_known_classes", "check_n_jobs",
    "check_regression_targets", "check_sample_weight", "class_weighted",
    "dropout_rates", "fit_label_binarizer", "hidden_layer_list", "lbfgs_iprint_options",
    "regression_output", "sklearn_optimizers", "validate_data",
    "_check_optimize_result", "_check_partial_fit_first_call", "_fit_context",
]

# Same constraints (and so the same error messages) as sklearn 1.9's MLP, plus
# n_jobs and fastbp's own parameters.
BASE_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu", "leaky_relu", "elu",
                               "softplus", "gelu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam", "rmsprop", "adamw"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "n_jobs": [None, Integral],
    # fastbp's own (issue 8), after n_jobs
    "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
    "n_init": [Interval(Integral, 1, None, closed="left")],
    "rho": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "validation_metric": [StrOptions({"score", "loss"})],
}

CLASSIFIER_CONSTRAINTS = {
    **BASE_CONSTRAINTS,
    # as in scikit-learn's classifiers (a list of dicts for multilabel y)
    "loss": [StrOptions({"log_loss", "squared_error"})],
    "class_weight": [StrOptions({"balanced"}), dict, list, None],
}

REGRESSOR_CONSTRAINTS = {
    **BASE_CONSTRAINTS,
    "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
    "huber_delta": [Interval(Real, 0, None, closed="neither")],
    "out_activation": [StrOptions({"identity", "logistic"}), None],
}


def regression_output(loss, out_activation):
    """A regressor's output activation: ``out_activation``, or its loss's own
    (None: 'exp' for poisson, 'identity' otherwise).  A logistic output goes
    with the squared error only, the one pair the kernels have a delta for
    besides the canonical ones (``fastbp._kernels.losses.OUTPUT_CODES``)."""
    own = "exp" if loss == "poisson" else "identity"
    if out_activation is None or out_activation == own:
        return own
    if out_activation == "logistic" and loss == "squared_error":
        return "logistic"
    raise ValueError(
        f"out_activation={out_activation!r} does not go with loss={loss!r}: "
        + ("loss='poisson' needs the exponential output (out_activation=None)."
           if loss == "poisson" else
           "a logistic output is trained with loss='squared_error' only."))


def check_regression_targets(y, out_activation):
    """Targets a logistic output can reach: within [0, 1]."""
    if out_activation == "logistic" and y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(
            "out_activation='logistic' predicts values in (0, 1), but y has values "
            f"in [{y.min():g}, {y.max():g}]. Scale y into [0, 1] (e.g. with "
            "MinMaxScaler in a TransformedTargetRegressor) or use out_activation=None.")


def check_sample_weight(sample_weight, X):
    """sklearn's checks (shape, finiteness, not all zero), as X's dtype.

    Three more, so that the message names the problem:

    - a scalar weight must be finite in X's dtype (sklearn checks arrays only:
      ``sample_weight=np.nan`` went on to a "non-finite parameter weights"
      error that blamed the learning rate);
    - non-zero weights that all underflow to 0 in float32 say so (sklearn's
      message said they were all zero);
    - the weights must not sum to zero, up to rounding (negative ones
      cancelling the positive ones): the loss is their weighted mean, and the
      kernels skip a batch of zero weight, so such a fit trained nothing and
      reported a loss of 0 (sklearn's MLP raises ZeroDivisionError when its
      sum is exactly 0).  Only weights of both signs can cancel (all >= 0 and
      not all 0 sum to more than 0), and their sum is taken in float64, so
      "zero up to rounding" is float64's error bound for a sum of n terms in
      any order, about ``(n - 1) * eps64 / 2 * sum(|w|)`` (``weights_cancel``).
    """
    if isinstance(sample_weight, Real):
        with np.errstate(over="ignore"):
            as_dtype = np.asarray(sample_weight, dtype=X.dtype)
        if not np.isfinite(as_dtype):
            raise ValueError(
                "Input sample_weight contains NaN." if np.isnan(as_dtype) else
                "Input sample_weight contains infinity or a value too large for "
                f"dtype({X.dtype.name!r}).")
    try:
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
    except ValueError as exc:
        if X.dtype == np.float32 and "at least one non-zero" in str(exc):
            largest = float(np.max(np.abs(np.asarray(sample_weight, dtype=np.float64))))
            if largest > 0:
                raise ValueError(
                    "Sample weights must contain at least one non-zero number in "
                    "float32, the dtype this fit computes in (X is float32): every "
                    f"weight underflows to 0 there (the largest is {largest:g}). Scale "
                    "sample_weight up or pass X as float64.") from None
        raise
    if weights_cancel(sample_weight):
        raise ValueError(
            "Sample weights must not sum to zero: the loss is their weighted mean. "
            "sample_weight's negative weights cancel its positive ones.")
    return sample_weight


def weights_cancel(sample_weight):
    """Whether ``sample_weight`` (finite, 1-D) sums to zero up to the rounding
    of its float64 sum: zero, or within the worst-case error of a sum of n
    terms in any order, ``gamma_(n-1) * sum(|w|)`` with ``gamma_k = k u / (1 -
    k u)``, ``u = eps64 / 2`` (Higham, Accuracy and Stability of Numerical
    Algorithms, 2nd ed., section 4.2), so that the order numpy adds in cannot
    decide.  Weights of one sign never cancel."""
    if not (sample_weight < 0).any():
        return False  # (all zero is scikit-learn's own check, made before)
    total = abs(float(np.sum(sample_weight, dtype=np.float64)))
    magnitude = float(np.sum(np.abs(sample_weight), dtype=np.float64))
    k_u = (sample_weight.shape[0] - 1) * float(np.finfo(np.float64).eps) / 2
    bound = k_u / (1 - k_u) * magnitude  # gamma_(n-1) * sum(|w|)
    return bool(np.isfinite(total) and total <= bound)


def sklearn_optimizers():
    """scikit-learn's MLP optimizer classes ``(SGDOptimizer, AdamOptimizer)``
    (imported when asked: only ``fastbp.interop.to_sklearn`` needs them)."""
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

    return SGDOptimizer, AdamOptimizer


def lbfgs_iprint_options(verbose):
    iprint = 1 if (verbose is True or verbose >= 1) else -1
    return _get_additional_lbfgs_options_dict("iprint", iprint)


def hidden_layer_list(hidden_layer_sizes):
    """``hidden_layer_sizes`` as a list of ints, with sklearn's message when a size is < 1.

    A size that is no integer (3.5, 3.0, True, nan, "3", [3], a 0-d array)
    raises a TypeError naming ``hidden_layer_sizes``, where scikit-learn fails
    later with numpy's message (or fastbp truncated 3.5 to 3, silently).
    """
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    try:
        sizes = list(sizes)
    except TypeError:  # a 0-d array
        sizes = None
    if sizes is None or not all(isinstance(s, Integral) and not isinstance(s, bool)
                                for s in sizes):
        raise TypeError(
            "hidden_layer_sizes must be an int or a sequence of ints (the width of "
            f"each hidden layer), got {hidden_layer_sizes!r}.")
    if any(s <= 0 for s in sizes):
        raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
    return [int(s) for s in sizes]


def dropout_rates(dropout, n_hidden):
    """``dropout`` as a float64 array of one rate per hidden layer, each in [0, 1).

    A scalar applies to every hidden layer; a sequence must have one rate per
    hidden layer.
    """
    if np.ndim(dropout) == 0:
        # (a 0-d array or a set passes the 'array-like' constraint unchecked)
        try:
            rate = float(dropout)
        except (TypeError, ValueError):
            raise ValueError(
                "The 'dropout' parameter must be a float in [0, 1) or a flat sequence "
                f"of such floats, one per hidden layer. Got {dropout!r} instead.") from None
        if not 0 <= rate < 1:
            raise ValueError(
                "Each rate in dropout must be in [0, 1) (the probability of dropping a "
                f"unit). Got dropout={dropout!r}.")
        if n_hidden == 0 and float(dropout) > 0:
            raise ValueError(
                f"dropout={dropout!r} needs hidden layers to drop units from, but "
                "hidden_layer_sizes has none. Use dropout=0.0 or add a hidden layer.")
        return np.full(n_hidden, float(dropout), dtype=np.float64)
    try:
        rates = np.asarray(dropout, dtype=np.float64)
    except (TypeError, ValueError):
        rates = None
    if rates is None or rates.ndim != 1:
        raise ValueError(
            "The 'dropout' parameter must be a float in [0, 1) or a flat sequence of "
            f"such floats, one per hidden layer. Got {dropout!r} instead.")
    if rates.shape[0] != n_hidden:
        raise ValueError(
            f"dropout has {rates.size} rate(s) but the network has {n_hidden} hidden "
            f"layer(s) (hidden_layer_sizes): give one rate per hidden layer, or one "
            f"float for all of them. Got dropout={dropout!r}.")
    if not np.all((rates >= 0) & (rates < 1)):
        raise ValueError(
            "Each rate in dropout must be in [0, 1) (the probability of dropping a "
            f"unit). Got dropout={dropout!r}.")
    return rates


def check_n_jobs(n_jobs):
    if n_jobs == 0:
        raise ValueError(
            "The 'n_jobs' parameter must be None or a non-zero integer "
            "(negative values count back from all threads). Got 0 instead.")


def binarize_labels(label_binarizer, y):
    """``label_binarizer.transform(y).astype(bool)``, directly for 1-D labels.

    The common case (binary or multiclass labels, all in ``classes_``) is one
    ``searchsorted``; sklearn's generic path re-derives the target type twice,
    a noticeable share of a small fit.  Anything else
    (multilabel, unseen labels) goes through the binarizer.
    """
    classes = label_binarizer.classes_
    if y.ndim == 1 and classes.shape[0] >= 2 and label_binarizer.y_type_ in (
            "binary", "multiclass") and y.shape[0] > 0:
        idx = np.searchsorted(classes, y)
        idx = np.minimum(idx, classes.shape[0] - 1)
        if np.array_equal(classes[idx], y):
            if classes.shape[0] == 2:
                return (idx == 1).reshape(-1, 1)
            Y = np.zeros((y.shape[0], classes.shape[0]), dtype=bool)
            Y[np.arange(y.shape[0]), idx] = True
            return Y
    return label_binarizer.transform(y).astype(bool)


def check_class_weight(class_weight, n_outputs):
    """class_weight's values before scikit-learn's compute_sample_weight sees
    them (it says "float()" or "sample_weight", or raises IndexError): a dict
    (one output) or a list of dicts (one per output) of finite weights >= 0,
    not all zero."""
    if isinstance(class_weight, str) or class_weight is None:
        return
    if isinstance(class_weight, dict):
        dicts = [class_weight]
        if n_outputs != 1:
            raise ValueError(
                f"class_weight is one dict, but y has {n_outputs} outputs: pass a list "
                "of dicts, one per output (or 'balanced').")
    else:
        dicts = list(class_weight)
        if n_outputs == 1 or not all(isinstance(d, dict) for d in dicts):
            raise ValueError(
                "class_weight is a list, which means one dict per output, but y has "
                f"{'a single output' if n_outputs == 1 else f'{n_outputs} outputs'} and "
                f"the list is {class_weight!r}: pass a dict {{label: weight}}"
                + (" (or 'balanced')." if n_outputs == 1 else " for each output."))
    for weights in dicts:
        values = list(weights.values())
        try:
            as_float = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"class_weight's weights must be numbers, got {weights!r}.") from None
        if not np.isfinite(as_float).all() or (as_float < 0).any():
            raise ValueError(
                f"class_weight's weights must be finite and >= 0, got {weights!r}.")
        if as_float.size and not as_float.any():
            raise ValueError(
                f"class_weight's weights are all zero ({weights!r}): nothing would "
                "be learned. Give at least one class a positive weight.")


def fit_label_binarizer(y):
    """A LabelBinarizer fitted on the labels ``y`` (a classifier's first pass)."""
    binarizer = LabelBinarizer()
    try:
        binarizer.fit(y)
    except TypeError as exc:  # numpy cannot sort labels of mixed types
        raise TypeError(
            f"{exc}: the class labels in y mix types that cannot be ordered "
            "(e.g. strings and numbers); give every label one type.") from None
    return binarizer


def check_known_classes(classes_, y, warm_start):
    """The labels of a warm start or a later partial_fit against the fitted
    ``classes_``, with scikit-learn's messages: a warm start needs exactly
    those classes, partial_fit no others."""
    if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iub":
        classes = np.unique(y)  # what unique_labels gives, without its checks' cost
    else:
        classes = unique_labels(y)
    if warm_start:
        if set(classes) != set(classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same "
                "classes as in the previous call to fit. Previously "
                f"got {classes_}, `y` has {classes}")
    elif len(np.setdiff1d(classes, classes_, assume_unique=True)):
        raise ValueError(
            "`y` has classes not in `self.classes_`. "
            f"`self.classes_` has {classes_}. 'y' has {classes}.")


def class_weighted(class_weight, sample_weight, y, incremental):
    """``sample_weight`` times ``compute_sample_weight(class_weight, y)``
    (float64; ``sample_weight`` itself when class_weight is None).

    ``y`` are the user's labels (or the multilabel indicator).  'balanced'
    needs the class frequencies of the whole training set, which one
    partial_fit call does not see (scikit-learn's SGDClassifier refuses it
    there for the same reason).
    """
    if class_weight is None:
        return sample_weight
    check_class_weight(class_weight, 1 if y.ndim == 1 else y.shape[1])
    if incremental and isinstance(class_weight, str):
        raise ValueError(
            "class_weight 'balanced' is not supported for partial_fit. In order "
            "to use 'balanced' weights, use compute_class_weight('balanced', "
            "classes=classes, y=y). In place of y you can use a large enough "
            "sample of the full training set target to properly estimate the "
            "class frequency distributions. Pass the resulting weights as the "
            "class_weight parameter.")
    weights = compute_sample_weight(class_weight, y)
    if sample_weight is None:
        return weights
    return weights * np.asarray(sample_weight, dtype=np.float64)
