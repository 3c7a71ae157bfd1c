"""BPClassifier and BPRegressor: scikit-learn's MLP estimators on a compiled engine."""

import os
import threading
from abc import ABCMeta, abstractmethod
from collections import namedtuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.callback import CallbackSupportMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from . import _callbacks, _lbfgs, _restarts, _threads, _training, persistence
from ._docs import CLASSIFIER_DOC, REGRESSOR_DOC, fitted_attr_html, params_html
from ._kernels.activations import HIDDEN_CODES
from ._kernels.losses import OUTPUT_CODES
from ._network import Network, as_kernel_array, as_kernel_input, forward_pass
from ._validation import (
    BASE_CONSTRAINTS,
    CLASSIFIER_CONSTRAINTS,
    REGRESSOR_CONSTRAINTS,
    _check_partial_fit_first_call,
    _fit_context,
    binarize_labels,
    check_n_jobs,
    check_sample_weight,
    dropout_rates,
    check_known_classes,
    class_weighted,
    fit_label_binarizer,
    check_regression_targets,
    hidden_layer_list,
    regression_output,
    validate_data,
)

__all__ = ["BPClassifier", "BPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam", "rmsprop", "adamw")
# Fitted state that is rebuilt on demand, never pickled or snapshotted.
_TRANSIENT = ("_net", "_workspace", "_fit_in_progress")
# Guards what a fit and a predict of one estimator read and write at the same time.
_STATE_LOCK = threading.Lock()
_PARAM_NAMES = {}  # estimator class -> its sorted constructor parameter names
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# What a predict computes with, read from the estimator at once (``_model``):
# the network, its hidden and output activation codes, and, to turn outputs
# into labels, the classifier's label binarizer and n_outputs_.
PredictModel = namedtuple("PredictModel", ["net", "act_code", "out_code",
                                           "label_binarizer", "n_outputs"])


class _BaseBP(CallbackSupportMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared machinery of BPClassifier and BPRegressor."""

    _parameter_constraints: dict = dict(BASE_CONSTRAINTS)
    # The notebook display's parameter and fitted-attribute tables, with the
    # docstring's tooltips (scikit-learn shows them only beside an online page,
    # which fastbp has not): fastbp/_docs.py.
    _get_params_html = params_html
    _get_fitted_attr_html = fitted_attr_html

    @abstractmethod
    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, loss, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, n_jobs, dropout, n_init, rho, weight_decay,
                 validation_metric):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_jobs = n_jobs
        self.dropout = dropout
        self.n_init = n_init
        self.rho = rho
        self.weight_decay = weight_decay
        self.validation_metric = validation_metric

    @classmethod
    def _get_param_names(cls):
        # scikit-learn parses the __init__ signature on every get_params (which
        # fit's validation, _snapshot and clone call), a noticeable share of a
        # small fit.  The signature of a class does not change: parse it once.
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = super()._get_param_names()
        return names

    # ------------------------------------------------------------------ state
    def _get_net(self):
        """The flat-buffer network behind ``coefs_``/``intercepts_`` (repacked if replaced)."""
        net = self.__dict__.get("_net")
        if net is None or not net.backs(self.coefs_, self.intercepts_):
            net = _packed(self.coefs_, self.intercepts_)
            self._expose(net)
        return net

    def _expose(self, net):
        """Make ``net`` the model: ``coefs_``/``intercepts_`` become its views.

        The lists are new objects, not the network's own: replacing an item
        (``est.coefs_[0] = W``, a scikit-learn idiom) then leaves the network's
        list untouched, so ``Network.backs`` sees the change and the next call
        repacks the user's arrays instead of ignoring them.
        """
        self._net = net
        self.coefs_ = list(net.coefs)
        self.intercepts_ = list(net.intercepts)

    def __getstate__(self):
        # a copy: on Python >= 3.11 object.__getstate__ returns the live __dict__
        state = dict(super().__getstate__())
        for key in _TRANSIENT:
            state.pop(key, None)
        return persistence.with_version(state)

    def __setstate__(self, state):
        super().__setstate__(persistence.check_version(dict(state), type(self).__name__))

    def _snapshot(self):
        """The fitted state, to put back if a fit fails (``_restore``).

        Not a deep copy (it cost a streaming partial_fit a fifth of its time):
        a fit replaces attributes rather than mutating them, except the
        weights (views of the buffer the kernels update), the optimizer's
        state (moments, step counter, rate) and the curves it appends to; those are copied, everything else is kept by reference.
        """
        params = set(self.get_params(deep=False))
        snapshot = {}
        for k, v in self.__dict__.items():
            if k in params or k in _TRANSIENT or k in _callbacks.CALLBACK_STATE:
                continue
            if k in ("coefs_", "intercepts_"):
                v = [np.array(a, copy=True) for a in v]
            elif isinstance(v, list):
                v = list(v)
            elif k == "_optimizer":
                v = v.copy()
            snapshot[k] = v
        return snapshot

    def _restore(self, snapshot):
        keep = set(self.get_params(deep=False)).union(_callbacks.CALLBACK_STATE)
        for k in [k for k in self.__dict__ if k not in keep]:
            del self.__dict__[k]
        self.__dict__.update(snapshot)

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = regression_output(self.loss, self.out_activation)
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        # Glorot-uniform, drawn exactly as scikit-learn draws it (same generator,
        # same order), so the same random_state gives the same initial weights.
        net = Network(layer_units, dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for coef, intercept in zip(net.coefs, net.intercepts):
            fan_in, fan_out = coef.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef[...] = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept[...] = self._random_state.uniform(-bound, bound, fan_out)
        self._expose(net)
        self.__dict__.pop("_optimizer", None)

        if self.solver in _STOCHASTIC_SOLVERS:
            _training.start_records(self)

    @property
    def _act_code(self):
        return HIDDEN_CODES[self.activation]

    @property
    def _out_code(self):
        return OUTPUT_CODES[(self.out_activation_, self.loss)]

    @property
    def _huber_delta(self):
        return float(getattr(self, "huber_delta", 1.0))

    # -------------------------------------------------------------------- fit
    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = hidden_layer_list(self.hidden_layer_sizes)
        check_n_jobs(self.n_jobs)
        with _STATE_LOCK:  # (a predict reads its model under this lock: see _model)
            if self.__dict__.get("_fit_in_progress") == os.getpid():
                raise RuntimeError(
                    f"This {type(self).__name__} is being fitted in another thread; "
                    "fitting it again at the same time would mix the two fits. Fit "
                    "a copy (sklearn.base.clone) in each thread.")
            self.__dict__["_fit_in_progress"] = os.getpid()
        try:
            snapshot = self._snapshot()
            try:
                self._fit_impl(X, y, sample_weight, incremental, hidden_layer_sizes)
            except _training.Diverged as exc:
                self._restore(snapshot)
                raise ValueError(
                    f"{exc} The estimator was left as it was before this call.") from None
            except BaseException:
                self._restore(snapshot)
                raise
        finally:
            self.__dict__.pop("_fit_in_progress", None)
        return self

    def _fit_impl(self, X, y, sample_weight, incremental, hidden_layer_sizes):
        rates = dropout_rates(self.dropout, len(hidden_layer_sizes))
        if self.solver == "lbfgs" and rates.any():
            raise ValueError(
                "dropout is not supported by solver='lbfgs': L-BFGS needs the same "
                "(deterministic) loss at every evaluation, and dropout makes the loss "
                "random. Use a stochastic solver ('adam', 'sgd', 'rmsprop', 'adamw') "
                "with dropout, or alpha for regularization with 'lbfgs'.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        # Three kinds of y: ``y_labels`` as the user gave them (validated; what
        # early stopping and callbacks score against, what class weights read),
        # ``y`` the targets the network outputs (a classifier's indicator
        # matrix; 2-D below) and ``Y``, those in the kernels' dtype.
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        y_labels = self.__dict__.get("_y_labels", y)
        n_samples, n_features = X.shape
        user_sample_weight = sample_weight  # (callbacks score with the user's own)
        if sample_weight is not None and self.__dict__.get("class_weight") is not None:
            check_sample_weight(sample_weight, X)  # its messages, before the product
        sample_weight = self._with_class_weight(sample_weight, y_labels, incremental)
        self._sample_weight_given = sample_weight is not None
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if not is_classifier(self):
            y_labels = y
        layer_units = [n_features] + hidden_layer_sizes + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, X.dtype)
            net = self._net
        else:
            if not is_classifier(self):  # a warm start may change loss or out_activation
                self.out_activation_ = regression_output(self.loss, self.out_activation)
            # a copy, so that a predict that read the model before this fit
            # began computes with weights no step changes under it
            net = self._get_net().copy()
            self._expose(net)
            if list(net.sizes) != layer_units:
                raise ValueError(
                    "The network shape changed since the previous fit: it has layer "
                    f"sizes {list(map(int, net.sizes))} but this call needs "
                    f"{layer_units}. With warm_start=True or partial_fit, keep "
                    "hidden_layer_sizes and the number of features and outputs fixed.")
        self.n_outputs_ = y.shape[1]

        dtype = net.dtype
        inputs = as_kernel_input(X, dtype)
        Y = as_kernel_array(y, dtype)
        if sample_weight is None:
            sw = np.ones(n_samples, dtype=dtype)
        else:
            sw = as_kernel_array(sample_weight, dtype)
        n_threads = _threads.resolve_n_threads(self.n_jobs)

        restarts = first_pass and not incremental and self.n_init > 1  # partial_fit: never
        tasks = _callbacks.FitTasks.open(
            self, X, y_labels, user_sample_weight, "partial_fit" if incremental else "fit",
            max_subtasks=1 if incremental else self.n_init if restarts else self.max_iter,
            sequential_subtasks=not restarts)  # (starts are numbered: they may run at once)
        if restarts:
            _restarts.fit_with_restarts(self, inputs, X, Y, sw, y_labels, n_threads,
                                        layer_units, tasks)
        elif self.solver in _STOCHASTIC_SOLVERS:
            _training.fit_stochastic(self, net, inputs, X, Y, sw, y_labels, incremental,
                                     n_threads, tasks=tasks)
        else:
            _lbfgs.fit_lbfgs(self, net, inputs, Y, sw, n_threads, tasks)
        if not restarts:
            self._record_one_start()
        if tasks is not None:
            tasks.end()

    def _record_one_start(self):
        """n_init=1, or a warm start / partial_fit continuing the model."""
        self.init_losses_ = np.array([getattr(self, "loss_", np.nan)], dtype=np.float64)
        self.best_init_ = 0
        early = self.solver in _STOCHASTIC_SOLVERS and self.early_stopping
        self.init_validation_scores_ = (
            np.array([self.best_validation_score_], dtype=np.float64) if early else None)


    def _with_class_weight(self, sample_weight, y, incremental):
        """``sample_weight`` times the class weights (classifiers); as is here."""
        return sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            The input data.  float32 input trains in float32; CSR/CSC input
            is never densified: the first layer runs over its non-zeros.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver)
        return True

    # ---------------------------------------------------------------- predict
    def _forward_pass_fast(self, X, check_input=True, model=None):
        """Output-layer activations of X, computed by the compiled forward pass
        (of ``model``, from ``_model``; default: the estimator's own, in a fit)."""
        n_threads = _threads.resolve_n_threads(self.n_jobs)
        if model is None:
            model = PredictModel(self._get_net(), self._act_code, self._out_code, None, None)
        net, act_code, out_code = model.net, model.act_code, model.out_code
        if not check_input:
            return forward_pass(net, X, act_code, out_code, n_threads)
        if not self._is_plain_input(X):
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            return _no_nan(forward_pass(net, X, act_code, out_code, n_threads))
        out, finite = forward_pass(net, X, act_code, out_code, n_threads, check_finite=True)
        if not finite:  # inf/nan in X (scikit-learn's message), or an overflow
            validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
            return _no_nan(out)
        return out

    def _is_plain_input(self, X):
        """Whether ``validate_data(X, reset=False)`` would return X itself, but
        for the finiteness check: a non-empty 2-D float ndarray with the fitted
        number of columns, for a model fitted without feature names.  Checked
        directly, that costs a small fraction of scikit-learn's generic checks,
        which would be most of a one-row predict's time; anything else goes
        through them, with their messages.  Whether X is finite the forward
        pass tells (``forward_pass(check_finite=True)``): a separate scan of X
        was a large share of a predict."""
        return (type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0
                and X.dtype in _FLOAT_DTYPES
                and X.shape[1] == self.__dict__.get("n_features_in_", -1)
                and "feature_names_in_" not in self.__dict__)

    def to_sklearn(self):
        """The equivalent fitted scikit-learn estimator (MLPClassifier or
        MLPRegressor): the same weights, fitted attributes and sgd/adam
        optimizer state, so the same predictions and a ``partial_fit`` that
        continues from here.

        Returns
        -------
        model : MLPClassifier or MLPRegressor
            A new fitted estimator; this one is unchanged.

        Raises
        ------
        ValueError
            For an activation or a loss scikit-learn's MLPs do not have.  Options
            that shape only the training (rmsprop/adamw, dropout, n_init, ...)
            are dropped with a warning.  See ``fastbp.interop``.
        """
        from .interop import to_sklearn

        return to_sklearn(self)

    @classmethod
    def from_sklearn(cls, model):
        """A fitted fastbp estimator equivalent to the fitted scikit-learn MLP
        ``model``: its parameters, weights, fitted attributes and sgd/adam
        optimizer state (the same predictions; ``partial_fit`` continues).

        Parameters
        ----------
        model : MLPClassifier or MLPRegressor
            A fitted scikit-learn MLP of this estimator's kind.

        Returns
        -------
        est : BPClassifier or BPRegressor
            A new fitted estimator; ``model`` is unchanged.
        """
        from .interop import from_sklearn

        return from_sklearn(cls, model)

    def _model(self):
        """What a predict computes with, read at once (a ``PredictModel``).
        A fit that begins after
        this read trains a network of its own (and new attributes), so the
        predict finishes on the model it read; during a fit there is none to
        read, and a predict says so."""
        packed = packed_from = None  # a network packed outside the lock, and from what
        while True:
            with _STATE_LOCK:
                if self.__dict__.get("_fit_in_progress") == os.getpid():
                    raise RuntimeError(
                        f"This {type(self).__name__} is being fitted in another thread: "
                        "its weights change at every step, so there is no model to "
                        "predict with until the fit returns. Predict with a copy "
                        "(copy.deepcopy) made before the fit, or after it.")
                if "coefs_" not in self.__dict__:  # (fitted: skip the generic scan)
                    check_is_fitted(self)
                coefs, intercepts = list(self.coefs_), list(self.intercepts_)
                net = self.__dict__.get("_net")
                if packed is not None and _same_arrays(packed_from, coefs + intercepts):
                    net = packed  # packed from the arrays that are still the model
                    self._expose(net)
                if net is not None and net.backs(coefs, intercepts):
                    return PredictModel(net, self._act_code, self._out_code,
                                        self.__dict__.get("_label_binarizer"),
                                        self.n_outputs_)
            # Packing copies every weight (after unpickling, or once the user
            # replaced coefs_): not under the lock every estimator's fit and
            # predict take.  Had the arrays changed meanwhile, pack them again.
            packed, packed_from = _packed(coefs, intercepts), coefs + intercepts

    def _score(self, X, y, sample_weight=None):
        return self._score_output(self._forward_pass_fast(X, check_input=False), y,
                                  sample_weight)

    def _score_output(self, output, y, sample_weight):
        """``score`` from the output layer's activations ``output`` of X (the
        training loop computes them once for the validation score and loss)."""
        y_pred = self._predict_from_output(output)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def onnx_shape_calculator(self):
        """skl2onnx's per-model shape hook (its OnnxOperatorMixin protocol):
        None, which leaves skl2onnx to its registered converters, unless it has
        none for this class; then an error that names the import registering
        them (``import fastbp`` does not, so that it does not import skl2onnx).

        skl2onnx looks for this method (``Topology.call_shape_calculator``)
        after a user's ``custom_shape_calculators`` and just before it would
        raise its own MissingShapeCalculator, so only the message changes.  It
        cannot register the converters itself: the conversion under way has
        already parsed the model without them.
        """
        from skl2onnx import get_model_alias  # (only skl2onnx calls this)
        from skl2onnx.common.exceptions import MissingShapeCalculator

        try:
            get_model_alias(type(self))
        except RuntimeError:
            # fastbp.onnx does not register subclasses: they get skl2onnx's own error
            if type(self) in (BPClassifier, BPRegressor):
                message = (
                    f"skl2onnx has no converter registered for {type(self).__name__}. "
                    "fastbp's converters are registered by `import fastbp.onnx`, which "
                    "`import fastbp` does not run (it would import skl2onnx): add "
                    "`import fastbp.onnx` before converting.")
                error = MissingShapeCalculator(message)
                error.args = (message,)  # without skl2onnx's advice to write a converter
                raise error from None
        return None


def _same_arrays(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _packed(coefs, intercepts):
    """A network holding copies of the weights ``coefs``/``intercepts`` (the
    common float dtype of the arrays; float64 for any other)."""
    coefs = [np.asarray(c) for c in coefs]
    intercepts = [np.asarray(b) for b in intercepts]
    dtype = np.result_type(*coefs, *intercepts)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    return Network.from_arrays(coefs, intercepts, dtype)


def _no_nan(out):
    """``out``, unless a finite X overflowed the forward pass into NaN (inf -
    inf, or a softmax of infinite logits): a prediction is never NaN without
    saying why.  (The scan is of the output, small next to the forward pass.)"""
    bad = np.isnan(out).any(axis=1)
    if bad.any():
        raise ValueError(
            f"The network's output is NaN for {int(bad.sum())} of the {out.shape[0]} "
            "rows of X: X is finite, but its products with the weights overflow "
            f"{out.dtype.name} in the forward pass. Scale X (e.g. with StandardScaler, "
            "as in training), or fit and predict in float64.")
    return out


class BPClassifier(ClassifierMixin, _BaseBP):
    __doc__ = CLASSIFIER_DOC

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, n_jobs=None, dropout=0.0, n_init=1,
                 rho=0.9, weight_decay=0.01, validation_metric="score", loss="log_loss",
                 class_weight=None):
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            n_jobs=n_jobs, dropout=dropout, n_init=n_init, rho=rho,
            weight_decay=weight_decay, validation_metric=validation_metric)

    _parameter_constraints: dict = dict(CLASSIFIER_CONSTRAINTS)

    def _with_class_weight(self, sample_weight, y, incremental):
        return class_weighted(self.class_weight, sample_weight, y, incremental)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = fit_label_binarizer(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            check_known_classes(self.classes_, y, self.warm_start)
        self._y_labels = y
        return X, binarize_labels(self._label_binarizer, y)

    def _fit_impl(self, X, y, sample_weight, incremental, hidden_layer_sizes):
        super()._fit_impl(X, y, sample_weight, incremental, hidden_layer_sizes)
        self.__dict__.pop("_y_labels", None)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        model = self._model()
        return self._predict_from_output(self._forward_pass_fast(X, model=model), model)

    def _predict(self, X, check_input=True):
        return self._predict_from_output(self._forward_pass_fast(X, check_input=check_input))

    def _predict_from_output(self, y_pred, model=None):
        label_binarizer, n_outputs = (self._label_binarizer, self.n_outputs_) if (
            model is None) else (model.label_binarizer, model.n_outputs)
        if n_outputs == 1:
            y_pred = y_pred.ravel()
        return label_binarizer.inverse_transform(y_pred)

    _score_function = staticmethod(accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit.  Required on the first
            call; can be omitted in later calls.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        if not _check_partial_fit_first_call(self, classes):
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)
        # the first call: classes_ (set by the check) and the binarizer go
        # again if the call is refused, as if it had never been made
        try:
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)
        except BaseException:
            if "coefs_" not in self.__dict__:
                for key in ("classes_", "_label_binarizer"):
                    self.__dict__.pop(key, None)
            raise

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The predicted log-probability of the sample for each class in the
            model, where classes are ordered as they are in `self.classes_`.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The predicted probability of the sample for each class in the
            model, where classes are ordered as they are in `self.classes_`.
        """
        model = self._model()
        y_pred = self._forward_pass_fast(X, model=model)
        if model.n_outputs == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BPRegressor(RegressorMixin, _BaseBP):
    __doc__ = REGRESSOR_DOC

    _parameter_constraints: dict = dict(REGRESSOR_CONSTRAINTS)

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu",
                 *, solver="adam", alpha=0.0001, batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, n_jobs=None,
                 dropout=0.0, n_init=1, rho=0.9, weight_decay=0.01,
                 validation_metric="score", huber_delta=1.0, out_activation=None):
        self.huber_delta = huber_delta
        self.out_activation = out_activation
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            n_jobs=n_jobs, dropout=dropout, n_init=n_init, rho=rho,
            weight_decay=weight_decay, validation_metric=validation_metric)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples, n_outputs)
            The predicted values.
        """
        return self._predict_from_output(self._forward_pass_fast(X, model=self._model()))

    def _predict(self, X, check_input=True):
        return self._predict_from_output(self._forward_pass_fast(X, check_input=check_input))

    def _predict_from_output(self, y_pred, model=None):
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    _score_function = staticmethod(r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson "
                "regression (loss='poisson').")
        check_regression_targets(y, regression_output(self.loss, self.out_activation))
        return X, y

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
