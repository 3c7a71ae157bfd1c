"""Fitted models to and from scikit-learn's MLPClassifier and MLPRegressor.

``BPClassifier.to_sklearn()`` / ``BPRegressor.to_sklearn()`` return the
equivalent fitted scikit-learn estimator, and ``BPClassifier.from_sklearn(model)``
/ ``BPRegressor.from_sklearn(model)`` the equivalent fitted fastbp one.  Both
copy the weights, the fitted attributes, and the state of an sgd or adam
optimizer (velocities, moments, step count, current learning rate), so the
predictions are the same and a following ``partial_fit`` continues training
where the model left off, as it would have in the library it came from.

scikit-learn's MLPs cannot express fastbp's own activations (leaky_relu, elu,
softplus, gelu) or losses (huber, absolute_error, squared_error for a
classifier): ``to_sklearn`` refuses those.  Options that shape only the
training (the rmsprop and adamw solvers, dropout, n_init, class_weight,
validation_metric, n_jobs) leave a network scikit-learn predicts with exactly;
the converted estimator keeps scikit-learn's default in their place and a
warning names what was dropped.
"""

import copy
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from ._validation import sklearn_optimizers

__all__ = ["from_sklearn", "to_sklearn"]

_SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_SKLEARN_SOLVERS = ("lbfgs", "sgd", "adam")

# Fitted attributes both libraries define with the same meaning.
_SHARED_FITTED = ("n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_", "loss_",
                  "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_",
                  "n_features_in_", "feature_names_in_", "classes_", "_label_binarizer",
                  "_no_improvement_count")


# Parameters that change only how fast a fit runs, never its result.
_SPEED_ONLY = ("n_jobs",)


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else copy.deepcopy(value)


def _differs(a, b):
    try:
        return bool(a != b)
    except (TypeError, ValueError):  # arrays: compare them whole
        return not np.array_equal(np.asarray(a), np.asarray(b))


def _copy_fitted(source, target):
    target.coefs_ = [np.array(c, copy=True) for c in source.coefs_]
    target.intercepts_ = [np.array(b, copy=True) for b in source.intercepts_]
    for name in _SHARED_FITTED:
        if name in source.__dict__:
            setattr(target, name, _copy(source.__dict__[name]))


def _split(flat, shapes):
    """``flat`` (the buffer order: every W, then every b) as arrays of ``shapes``."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape).copy())
        start += size
    return out


def to_sklearn(est):
    """The fitted scikit-learn MLP equivalent to the fitted fastbp ``est``."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    check_is_fitted(est, "coefs_")
    if est.activation not in _SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"to_sklearn: scikit-learn's MLPs have no activation={est.activation!r} (they "
            f"have {list(_SKLEARN_ACTIVATIONS)}); this model cannot be expressed there.")
    cls = MLPClassifier if is_classifier(est) else MLPRegressor
    allowed_losses = ("log_loss",) if is_classifier(est) else ("squared_error", "poisson")
    if est.loss not in allowed_losses:
        raise ValueError(
            f"to_sklearn: scikit-learn's {cls.__name__} has no loss={est.loss!r} (it "
            f"trains with {list(allowed_losses)}); this model cannot be expressed there.")
    if not is_classifier(est) and est.out_activation_ == "logistic":
        raise ValueError(
            "to_sklearn: scikit-learn's MLPRegressor has no out_activation='logistic' "
            "(its output is the loss's own); this model cannot be expressed there.")
    names = cls().get_params(deep=False)
    mine, defaults = est.get_params(deep=False), type(est)().get_params(deep=False)
    params = {k: v for k, v in mine.items() if k in names}
    dropped = {k: v for k, v in mine.items()
               if k not in names and k not in _SPEED_ONLY and _differs(v, defaults[k])}
    dropped.pop("out_activation", None)  # (what is left of it is scikit-learn's own)
    if est.solver not in _SKLEARN_SOLVERS:
        dropped["solver"] = est.solver
        params.pop("solver")
    if dropped:
        warnings.warn(
            f"to_sklearn: {cls.__name__} has no {', '.join(f'{k}={v!r}' for k, v in dropped.items())}"
            "; it predicts exactly as this model, but further training would use "
            "scikit-learn's defaults for them.", UserWarning, stacklevel=3)
    model = cls(**params)
    _copy_fitted(est, model)
    opt = est.__dict__.get("_optimizer")
    if opt is not None and est.solver in ("sgd", "adam"):  # (rmsprop/adamw: a fresh one)
        model._optimizer = _sklearn_optimizer(est, opt)
    return model


def _sklearn_optimizer(est, opt):
    SGDOptimizer, AdamOptimizer = sklearn_optimizers()

    shapes = [c.shape for c in est.coefs_] + [b.shape for b in est.intercepts_]
    params = [np.asarray(p) for p in list(est.coefs_) + list(est.intercepts_)]
    if est.solver == "sgd":
        out = SGDOptimizer(params, opt.learning_rate_init, opt.lr_schedule, opt.momentum,
                           opt.nesterov, opt.power_t)
        out.velocities = _split(opt.moments[0], shapes)
    else:
        out = AdamOptimizer(params, opt.learning_rate_init, opt.beta_1, opt.beta_2,
                            opt.epsilon)
        out.t = opt.t
        out.ms = _split(opt.moments[0], shapes)
        out.vs = _split(opt.moments[1], shapes)
    out.learning_rate = opt.learning_rate
    return out


def from_sklearn(cls, model):
    """A fitted ``cls`` (BPClassifier or BPRegressor) equivalent to the fitted
    scikit-learn MLP ``model``."""
    from ._optim import make_optimizer

    check_is_fitted(model, "coefs_")
    if is_classifier(model) != is_classifier(cls()):
        kind = "classifier" if is_classifier(model) else "regressor"
        raise TypeError(f"{cls.__name__}.from_sklearn needs a scikit-learn MLP of its kind; "
                        f"got a {kind}, {type(model).__name__}.")
    names = cls().get_params(deep=False)
    est = cls(**{k: v for k, v in model.get_params(deep=False).items() if k in names})
    _copy_fitted(model, est)
    early = model.solver in ("sgd", "adam") and model.early_stopping
    # (scikit-learn records no validation loss: nan for each of its epochs)
    est.validation_loss_curve_ = [np.nan] * len(model.validation_scores_) if early else None
    est.best_validation_loss_ = None
    est.init_losses_ = np.array([getattr(model, "loss_", np.nan)], dtype=np.float64)
    est.best_init_ = 0
    est.init_validation_scores_ = (
        np.array([model.best_validation_score_], dtype=np.float64) if early else None)
    est._sample_weight_given = False
    opt = model.__dict__.get("_optimizer")
    if opt is not None:
        net = est._get_net()
        mine = make_optimizer(est, net.n_params, net.dtype)
        if model.solver == "sgd":
            mine.moments[0] = np.concatenate([v.ravel() for v in opt.velocities])
        else:
            mine.moments[0] = np.concatenate([m.ravel() for m in opt.ms])
            mine.moments[1] = np.concatenate([v.ravel() for v in opt.vs])
            mine.state.step[0] = opt.t
        mine.learning_rate = float(opt.learning_rate)
        est._optimizer = mine
    return est
