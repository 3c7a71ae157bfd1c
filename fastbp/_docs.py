"""The numpydoc of BPClassifier and BPRegressor: their class docstrings and
the parameters and attributes they share (kept out of estimators.py so that
module stays the estimators' code), and the tooltips the notebook display
(``sklearn.utils.estimator_html_repr``) shows from them."""

import html
import inspect
import re
import textwrap
from functools import lru_cache

from sklearn.base import BaseEstimator

PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element represents the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', \
            'softplus', 'gelu'}, default='relu'
        Activation function for the hidden layers: 'identity' f(x) = x,
        'logistic' f(x) = 1 / (1 + exp(-x)), 'tanh' f(x) = tanh(x),
        'relu' f(x) = max(0, x); fastbp's own: 'leaky_relu' f(x) = x for x > 0
        else 0.01 x, 'elu' f(x) = x for x > 0 else exp(x) - 1, 'softplus'
        f(x) = log(1 + exp(x)), 'gelu' f(x) = x/2 (1 + tanh(sqrt(2/pi) (x +
        0.044715 x^3))) (the tanh approximation).  All but 'logistic' start
        from scikit-learn's Glorot-uniform bound sqrt(6 / (fan_in + fan_out)).

    solver : {'lbfgs', 'sgd', 'adam', 'rmsprop', 'adamw'}, default='adam'
        The solver for weight optimization: 'lbfgs' (scipy's L-BFGS-B on the
        compiled full-batch loss and gradient), 'sgd' (stochastic gradient
        descent), 'adam' (Kingma & Ba), 'rmsprop' (Tieleman & Hinton: the
        gradient divided by a running root mean square, ``rho``) or 'adamw'
        (Adam with decoupled weight decay, ``weight_decay``; Loshchilov &
        Hutter).  'rmsprop' and 'adamw' are fastbp's own; like 'adam' they use
        a constant ``learning_rate_init``, ``alpha`` as an L2 term in the loss,
        early stopping and ``n_iter_no_change``.

    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size (or
        the sample-weight sum) when added to the loss.

    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers. When 'auto',
        ``batch_size=min(200, n_samples)``. Not used by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for weight updates. Only used when solver='sgd'.
        'invscaling' uses ``learning_rate_init / pow(t, power_t)`` with t the
        number of samples seen; 'adaptive' divides the rate by 5 each time two
        consecutive epochs fail to improve by ``tol``.

    learning_rate_init : float, default=0.001
        The initial learning rate. Not used when solver='lbfgs'.

    power_t : float, default=0.5
        The exponent for inverse scaling learning rate. Only used when
        solver='sgd' and learning_rate='invscaling'.

    max_iter : int, default=200
        Maximum number of iterations: epochs for 'sgd'/'adam', iterations for
        'lbfgs'.

    shuffle : bool, default=True
        Whether to shuffle samples in each iteration. Only used when
        solver is stochastic (not 'lbfgs').

    random_state : int, RandomState instance, default=None
        Determines the weight and bias initialization, the train-test split
        for early stopping and the batch sampling.  The draws are the same as
        scikit-learn's, so an int gives the same initial weights and batches
        as the MLP estimator with that int.

    tol : float, default=1e-4
        Tolerance for the optimization: when the loss or score does not
        improve by at least ``tol`` for ``n_iter_no_change`` consecutive
        epochs, convergence is considered reached and training stops (unless
        learning_rate='adaptive').

    verbose : bool, default=False
        Whether to print progress messages to stdout.

    warm_start : bool, default=False
        When True, reuse the solution of the previous call to fit as
        initialization, otherwise erase the previous solution.

    momentum : float, default=0.9
        Momentum for gradient descent update, in [0, 1]. Only used when
        solver='sgd'.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum. Only used when solver='sgd' and
        momentum > 0.

    early_stopping : bool, default=False
        Whether to use early stopping: a ``validation_fraction`` of the
        training data is set aside (stratified for binary classification, as
        in scikit-learn) and training stops when the validation score does not
        improve by ``tol`` for ``n_iter_no_change`` epochs; the best weights
        are restored.  If the loss becomes non-finite, that epoch is recorded
        with a ``nan`` validation score, training stops, the best weights are
        restored and a ConvergenceWarning says so.  Only effective when
        solver is stochastic (not 'lbfgs').

    validation_fraction : float, default=0.1
        The proportion of training data to set aside as validation set for
        early stopping. Only used if early_stopping is True.

    beta_1 : float, default=0.9
        Exponential decay rate for estimates of first moment vector in adam,
        in [0, 1). Only used when solver='adam' or 'adamw'.

    beta_2 : float, default=0.999
        Exponential decay rate for estimates of second moment vector in adam,
        in [0, 1). Only used when solver='adam' or 'adamw'.

    epsilon : float, default=1e-8
        Value for numerical stability in adam, adamw and rmsprop (added to the
        root mean square). Not used when solver='sgd' or 'lbfgs'.

    n_iter_no_change : int, default=10
        Maximum number of epochs to not meet ``tol`` improvement. Only
        effective when solver is stochastic (not 'lbfgs').

    max_fun : int, default=15000
        Only used when solver='lbfgs'. Maximum number of loss function calls.

    n_jobs : int, default=None
        Number of threads for training and prediction.  None uses numba's
        current thread count (all cores unless the process limits it, e.g.
        loky workers set NUMBA_NUM_THREADS to cpu_count() // n_jobs), capped by
        OMP_NUM_THREADS when set; a negative value counts back from all threads
        (-1 = all); 0 is an error.  BLAS runs single-threaded inside fastbp's
        parallel regions, so the two never oversubscribe the cores.  n_jobs
        changes only the speed: on one machine the fitted model is bitwise the
        same for every n_jobs (and thread setting or process), see the README's
        "Determinism".

    dropout : float or array-like of shape (n_layers - 2,), default=0.0
        Probability of dropping each hidden unit in training (inverted
        dropout: kept units are scaled by 1 / (1 - p), so predictions are the
        plain forward pass through ``coefs_`` and ``intercepts_``).  One float
        for every hidden layer, or one per hidden layer, each in [0, 1).  The
        masks are a hash of ``random_state``, the epoch, the sample and the
        unit, so a fit is reproducible and the same for every ``n_jobs``.  Only
        used by the stochastic solvers; solver='lbfgs' with dropout > 0 raises
        a ValueError.

    n_init : int, default=1
        Number of training runs from different initial weights; the model
        kept is the one with the lowest final ``loss_`` or, with
        ``early_stopping=True``, the best ``best_validation_score_`` (the
        lowest ``best_validation_loss_`` with ``validation_metric='loss'``).
        Start 0 uses ``random_state`` exactly as n_init=1 does; the others'
        seeds derive from it, and all starts share start 0's validation split.
        ``init_losses_`` and ``best_init_`` tell how the starts ended.  Small
        networks train their starts concurrently on the available threads
        (bitwise the same result).  Ignored by partial_fit and warm starts,
        which continue the kept model.

    rho : float, default=0.9
        Decay of RMSprop's running average of squared gradients, in [0, 1).
        Only used when solver='rmsprop'.

    weight_decay : float, default=0.01
        Decoupled weight decay of AdamW: before each Adam step every weight
        (not the intercepts) shrinks by ``learning_rate_init * weight_decay``
        of itself.  Unlike ``alpha`` it is not part of the loss.  Only used
        when solver='adamw'.

    validation_metric : {'score', 'loss'}, default='score'
        What early stopping follows on the validation set: 'score' (accuracy
        or R^2, scikit-learn's rule) or 'loss' (the validation loss of
        ``validation_loss_curve_``, lower is better): the stopping test and the
        weights restored at the end follow it.  Only used when
        ``early_stopping=True``.
"""

ATTRS_DOC = """
    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached by the solver throughout fitting. None when
        ``early_stopping=True``.  Only for stochastic solvers.

    loss_curve_ : list of shape (n_iter_,)
        The loss at the end of each training step (stochastic solvers).

    validation_scores_ : list of shape (n_iter_,) or None
        The score at each iteration on the held-out validation set (only with
        ``early_stopping=True``).

    best_validation_score_ : float or None
        The best validation score (only with ``early_stopping=True``); with
        ``validation_metric='loss'``, the score of the epoch kept.

    validation_loss_curve_ : list of shape (n_iter_,) or None
        The validation loss at each epoch (only with ``early_stopping=True``):
        the loss of ``loss_curve_`` (same loss, sample weights and L2 term)
        on the held-out set as one batch: sum of weighted per-sample losses
        / sum of their weights + alpha / 2 * ||W||^2 / sum of their weights.

    best_validation_loss_ : float or None
        The lowest validation loss, when ``validation_metric='loss'`` and
        ``early_stopping=True``; None otherwise.

    init_losses_ : ndarray of shape (n_init,)
        The final ``loss_`` of each start (see ``n_init``).

    init_validation_scores_ : ndarray of shape (n_init,) or None
        Each start's ``best_validation_score_`` (with early stopping).

    best_init_ : int
        The index of the start kept.

    t_ : int
        The number of training samples seen by the solver during fitting.

    coefs_ : list of shape (n_layers - 1,)
        The ith element is the weight matrix (fan_in, fan_out) of layer i.  All
        are views into one flat parameter buffer; assigning new arrays is allowed
        (they are repacked on the next call).

    intercepts_ : list of shape (n_layers - 1,)
        The ith element is the bias vector of layer i + 1.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit (only when X has string column names).

    n_iter_ : int
        The number of iterations the solver has run.

    n_layers_ : int
        Number of layers.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.
"""

CLASSIFIER_PARAMS_DOC = """
    loss : {'log_loss', 'squared_error'}, default='log_loss'
        The loss: 'log_loss' (cross-entropy, scikit-learn's) or 'squared_error'
        on the same logistic/softmax output, J = sum_i sw_i * 1/2 * ||p_i -
        y_i||^2 / sum_i sw_i + the L2 term (the classic backpropagation
        formulation; softmax's gradient uses its full Jacobian).
        ``predict_proba`` means the same with either.

    class_weight : dict, list of dict or 'balanced', default=None
        Weights of the classes, multiplied into ``sample_weight`` exactly as
        :func:`sklearn.utils.class_weight.compute_sample_weight` computes them:
        a dict ``{label: weight}``, 'balanced' (``n_samples / (n_classes *
        np.bincount(y))``), or for multilabel y a list of dicts (one per
        output, keys 0 and 1) or 'balanced'.  The weights enter the loss, its
        gradient and, with early stopping, the validation score of the held-out
        samples.  'balanced' is refused by partial_fit (one batch does not know
        the class frequencies): pass a dict there.
"""

# Both estimators' References: scikit-learn's two, then the sources of what
# fastbp adds (its optimizers, activations and dropout).
REFERENCES_DOC = """
    References
    ----------
    Glorot, Xavier, and Yoshua Bengio. "Understanding the difficulty of
    training deep feedforward neural networks." AISTATS 2010.

    Kingma, Diederik, and Jimmy Ba (2014). "Adam: A method for stochastic
    optimization." arXiv:1412.6980.

    Loshchilov, Ilya, and Frank Hutter (2019). "Decoupled weight decay
    regularization." ICLR 2019 (adamw).

    Tieleman, Tijmen, and Geoffrey Hinton (2012). "Lecture 6.5 - RMSProp."
    COURSERA: Neural Networks for Machine Learning (rmsprop).

    Srivastava, Nitish, et al. (2014). "Dropout: a simple way to prevent
    neural networks from overfitting." JMLR 15 (dropout).

    Clevert, Djork-Arne, Thomas Unterthiner, and Sepp Hochreiter (2016). "Fast
    and accurate deep network learning by exponential linear units (ELUs)."
    ICLR 2016 (elu).

    Hendrycks, Dan, and Kevin Gimpel (2016). "Gaussian error linear units
    (GELUs)." arXiv:1606.08415 (gelu).
"""

CLASSIFIER_DOC = """Multi-layer perceptron classifier trained by compiled backpropagation.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters, mathematics, random draws and fitted attributes, with every
    mini-batch of an epoch run inside one Numba-compiled call.  It optimizes the
    log-loss with L-BFGS or stochastic gradient descent.

    Parameters
    ----------""" + PARAMS_DOC + CLASSIFIER_PARAMS_DOC + """
    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
""" + ATTRS_DOC + """
    See Also
    --------
    BPRegressor : Multi-layer perceptron regressor.
    sklearn.neural_network.MLPClassifier : The reference implementation.
""" + REFERENCES_DOC + """
    Examples
    --------
    >>> from fastbp import BPClassifier
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = BPClassifier(random_state=0, max_iter=50).fit(X / 16.0, y)
    >>> clf.score(X / 16.0, y) > 0.95
    True
    """

REGRESSOR_DOC = """Multi-layer perceptron regressor trained by compiled backpropagation.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`: the same
    parameters, mathematics, random draws and fitted attributes, with every
    mini-batch of an epoch run inside one Numba-compiled call.  It optimizes
    the squared error (or the Poisson deviance) with L-BFGS or stochastic
    gradient descent.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, \
            default='squared_error'
        The loss function: half squared error with an identity output, or half
        Poisson deviance with an exponential output (log-link), which requires
        ``y >= 0``; fastbp's own: 'absolute_error' (mean over outputs of
        |y - p|) and 'huber' (mean over outputs of r^2 / 2 for |r| <=
        ``huber_delta``, else huber_delta * (|r| - huber_delta / 2), r = p - y),
        each weighted and divided by the sample-weight sum like the others.
""" + PARAMS_DOC + """
    huber_delta : float, default=1.0
        The threshold of the huber loss, > 0.  Only used when loss='huber'.

    out_activation : {None, 'identity', 'logistic'}, default=None
        The output layer's activation (``out_activation_``).  None: the loss's
        own, 'identity' (or 'exp' for loss='poisson'), as in scikit-learn.
        fastbp's own: 'logistic' squashes every output into (0, 1) for targets
        in [0, 1] (proportions, rates), trained with loss='squared_error' as
        half the sum over outputs of (p - y)^2 (the output delta then carries
        the sigmoid's derivative p (1 - p)); y outside [0, 1] is refused.
""" + """
    Attributes
    ----------""" + ATTRS_DOC + """
    See Also
    --------
    BPClassifier : Multi-layer perceptron classifier.
    sklearn.neural_network.MLPRegressor : The reference implementation.
""" + REFERENCES_DOC + """
    Examples
    --------
    >>> from fastbp import BPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> regr = BPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X, y)
    >>> regr.score(X, y) > 0.9
    True
    """


def _join_continued_lines(doc):
    """One space where a type line was continued with a backslash (numpydoc
    wants the type on one line; the continuation keeps the source under 100
    columns, but leaves the next line's indentation in the text)."""
    return re.sub(r"(?<=,) {2,}(?=[\w'{])", " ", doc)


CLASSIFIER_DOC = _join_continued_lines(CLASSIFIER_DOC)
REGRESSOR_DOC = _join_continued_lines(REGRESSOR_DOC)


# ---------------------------------------------------------------- notebook display
# scikit-learn's parameter and fitted-attribute tables show an entry's
# docstring as a tooltip only inside a link to the entry on the estimator's
# online page (BaseEstimator._get_doc_link).  fastbp has no hosted
# documentation, so that link is "" (scikit-learn's template would make a
# scikit-learn.org URL of a fastbp class), and the tables show bare names.  The
# two functions below are the estimators' _get_params_html and
# _get_fitted_attr_html: scikit-learn's tables, with each bare name that has a
# docstring entry given scikit-learn's tooltip markup and text, minus the href.

# A name cell of scikit-learn 1.9's tables (sklearn/utils/_repr_html/params.py
# and fitted_attributes.py), bare and with its tooltip.  Should scikit-learn's
# markup change, the names stay bare (no wrong link): tests/test_html_repr.py
# notices.
_PARAM_CELL = ('<td class="param">{name}</td>', '<td class="param">{tooltip}</td>')
_ATTR_CELL = ('<a class="param-doc-link" style="text-decoration:none;">{name}</a>',
              '{tooltip}')
_TOOLTIP = ('<a class="param-doc-link" style="anchor-name: --doc-link-{name};">{name}'
            '<span class="param-doc-description" style="position-anchor: '
            '--doc-link-{name};">{description}</span></a>')


@lru_cache
def _section_entries(doc, section):
    """name -> (type, description lines) of the numpydoc ``section`` of ``doc``
    (a docstring as inspect.getdoc cleans it), split as numpydoc's docscrape
    (which scikit-learn reads its tooltips with) splits it: an entry is an
    unindented 'name : type' line, its description the indented lines under
    it, dedented, without leading or trailing blank lines."""
    lines = doc.splitlines()
    entries, inside, current = {}, False, None
    for i, line in enumerate(lines):
        if re.fullmatch(r"-{3,}", line.strip()):
            continue
        if line and not line[0].isspace():
            if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
                inside, current = line.strip() == section, None
            elif inside:
                current, _, type_ = line.strip().partition(" : ")
                entries[current] = (type_, [])
        elif inside and current is not None:
            entries[current][1].append(line)
    for name, (type_, desc) in entries.items():
        desc = textwrap.dedent("\n".join(desc)).split("\n")
        while desc and not desc[0].strip():
            del desc[0]
        while desc and not desc[-1].strip():
            del desc[-1]
        entries[name] = (type_, tuple(desc))
    return entries


def _tooltip(name, type_, description):
    """scikit-learn's tooltip (sklearn/utils/_repr_html/common.py get_docstring)
    without its link: 'name: type', a blank line, the description's lines."""
    text = (f"{html.escape(name)}: {html.escape(type_)}<br><br>"
            + "<br>".join(html.escape(line) for line in description))
    return _TOOLTIP.format(name=html.escape(name), description=text)


def _with_tooltips(table, estimator_class, section, cell):
    """``table`` (scikit-learn's ParamsDict or AttrsDict, whose ``_html_repr``
    draws it) drawing a tooltip for each of its names documented in
    ``section`` of ``estimator_class``'s docstring."""
    entries = _section_entries(inspect.getdoc(estimator_class) or "", section)
    draw = table._html_repr
    bare, with_tooltip = cell

    def draw_with_tooltips():
        out = draw()
        for name in table:
            if name in entries:
                out = out.replace(bare.format(name=html.escape(name)),
                                  with_tooltip.format(tooltip=_tooltip(name, *entries[name])),
                                  1)
        return out

    # scikit-learn calls the instance's _html_repr (ReprHTMLMixin._repr_html_inner)
    table._html_repr = draw_with_tooltips
    return table


def params_html(self, deep=True, doc_link=""):
    """``_get_params_html`` of BPClassifier and BPRegressor (see above)."""
    table = BaseEstimator._get_params_html(self, deep=deep, doc_link=doc_link)
    return _with_tooltips(table, type(self), "Parameters", _PARAM_CELL)


def fitted_attr_html(self, doc_link=""):
    """``_get_fitted_attr_html`` of BPClassifier and BPRegressor (see above)."""
    table = BaseEstimator._get_fitted_attr_html(self, doc_link=doc_link)
    return _with_tooltips(table, type(self), "Attributes", _ATTR_CELL)
