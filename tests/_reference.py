"""Plain-NumPy reference implementation of MLP backprop (the test oracle).

This module is deliberately slow, readable and independent: it imports only
NumPy (no numba, no scipy, no scikit-learn) and is written directly from the
equations.  It follows scikit-learn's ``MLPClassifier`` / ``MLPRegressor``
conventions exactly, so that the compiled engine in ``fastbp`` can be checked
against it and, through ``tests/test_reference.py``, against scikit-learn.

Conventions
-----------
* ``layer_sizes = [n_features, h_1, ..., h_k, n_outputs]``.
* Parameters are ``coefs`` (list of ``(fan_in, fan_out)`` arrays) and
  ``intercepts`` (list of ``(fan_out,)`` arrays).  Layer ``l`` computes
  ``z_l = a_{l-1} @ W_l + b_l`` followed by the hidden activation (all but the
  last layer) or the output activation (last layer).
* ``X`` is ``(n_samples, n_features)``; ``Y`` is always 2-D
  ``(n_samples, n_outputs)`` (binary classification = one column holding the
  indicator of the positive class, multiclass = one-hot, multilabel =
  indicator matrix).  ``sw`` is a ``(n_samples,)`` array of sample weights or
  ``None`` (= all ones).
* Output activation / loss pairs (canonical links, so that the output delta
  is simply ``a_out - y``)::

      identity  <-> "squared_error"
      logistic  <-> "binary_log_loss"  (sklearn's "log_loss" with a logistic
                                        output is accepted as an alias)
      softmax   <-> "log_loss"
      exp       <-> "poisson"

Loss vs. objective
------------------
:func:`reported_loss` is what scikit-learn reports (``loss_``,
``loss_curve_``, the first return value of ``_backprop``).  Its
``squared_error`` term averages over outputs, but sklearn's gradient does not
divide by ``n_outputs``; and the log-losses clip probabilities to
``[eps, 1 - eps]``.  :func:`objective` is the smooth function whose exact
gradient is what :func:`backprop` returns (and what sklearn returns); it is
the function to finite-difference.  For a single output, and away from the
clipping region, the two coincide.

Optimizers
----------
``params`` is the flat list ``coefs + intercepts`` (sklearn's order), updated
in place.  Optimizer state lives in a dict made by :func:`init_opt_state`:

* sgd:  ``{"velocities": [zeros_like(p) for p in params]}``
* adam, adamw: ``{"t": 0, "ms": [zeros...], "vs": [zeros...]}``
* rmsprop: ``{"vs": [zeros...]}``

Hyper-parameters are a dict (see :data:`SGD_DEFAULTS`, :data:`ADAM_DEFAULTS`
for the keys and sklearn's defaults):

* sgd:  ``{"learning_rate": float, "momentum": float, "nesterov": bool}`` --
  ``learning_rate`` is the *current* rate (sklearn's
  ``_optimizer.learning_rate``); schedules ("invscaling", "adaptive") change
  it between epochs and are the caller's business.
* adam: ``{"learning_rate_init": float, "beta_1": float, "beta_2": float,
  "epsilon": float}``.
* rmsprop: ``{"learning_rate_init": float, "rho": float, "epsilon": float}``
  (:data:`RMSPROP_DEFAULTS`; the rate is constant).
* adamw: adam's keys plus ``"weight_decay"`` (:data:`ADAMW_DEFAULTS`).

rmsprop and adamw are fastbp's own solvers (no scikit-learn counterpart).
:func:`adamw_step` decays the weight matrices only, never the intercepts; it
tells them apart by the ``params`` convention above: the first half of the
list are the coefs, the second half the intercepts (``coefs + intercepts``,
one of each per layer).

scikit-learn's ``fit`` (including ``warm_start=True``) builds a fresh optimizer
-- zero velocities / moments, ``t = 0`` -- at every call, while
``partial_fit`` keeps it between calls.

fastbp's own options (no scikit-learn counterpart)
--------------------------------------------------
* Hidden activations :data:`EXTENDED_HIDDEN_ACTIVATIONS`: ``leaky_relu``
  (slope :data:`LEAKY_RELU_SLOPE` for z <= 0), ``elu`` (alpha 1: z for z > 0,
  else expm1(z)), ``softplus`` (log(1 + e^z)) and ``gelu`` (the tanh
  approximation 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))).
  :func:`apply_activation` computes them; :func:`activation_derivative_z`
  gives f'(z) of every hidden activation from ``z`` (gelu's cannot be written
  through its output).  :func:`init_params` stays scikit-learn's and knows
  only scikit-learn's four (fastbp draws the others with relu's factor 6).
* Output/loss pairs :data:`EXTENDED_OUTPUT_LOSSES`, whose output delta is *not*
  ``a - y``: ``squared_error`` on a logistic or softmax output (a classifier's
  ``loss="squared_error"``: per-sample loss 0.5 * SUM_k (a_k - y_k)^2),
  ``absolute_error`` (per-sample MEAN_k |a_k - y_k|) and ``huber`` (per-sample
  MEAN_k H(a_k - y_k), H(r) = r^2 / 2 for |r| <= delta, else
  delta (|r| - delta / 2)) on an identity output.  Their reported loss *is*
  their objective for any number of outputs (no clipping, no 1 / n_out
  mismatch).  :func:`output_delta` is d(sw_i * loss_i) / dz for every pair --
  for a softmax output through the full Jacobian, built explicitly.
* Dropout (inverted): hidden layer ``l`` (0-based) with rate ``p_l`` outputs
  ``f(z) * m / (1 - p_l)`` in training, ``m`` a 0/1 mask the caller gives.
  :func:`forward_general`, :func:`backprop_general` and
  :func:`objective_general` take explicit ``masks``; with no masks (and a
  scikit-learn activation and canonical pair) they equal :func:`forward`,
  :func:`backprop` and :func:`objective`.  Prediction is the plain forward
  pass.
"""

import numpy as np

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")

#: fastbp's hidden activations beyond scikit-learn's
EXTENDED_HIDDEN_ACTIVATIONS = ("leaky_relu", "elu", "softplus", "gelu")
ALL_HIDDEN_ACTIVATIONS = HIDDEN_ACTIVATIONS + EXTENDED_HIDDEN_ACTIVATIONS
LEAKY_RELU_SLOPE = 0.01
GELU_C = np.sqrt(2.0 / np.pi)
GELU_A = 0.044715

#: fastbp's (output activation, loss) pairs beyond the canonical ones
EXTENDED_OUTPUT_LOSSES = (
    ("logistic", "squared_error"),
    ("softmax", "squared_error"),
    ("identity", "absolute_error"),
    ("identity", "huber"),
)

#: canonical loss of each output activation
CANONICAL_LOSS = {
    "identity": "squared_error",
    "logistic": "binary_log_loss",
    "softmax": "log_loss",
    "exp": "poisson",
}


def make_targets(rng, loss, n, n_out):
    """Test data, not part of the oracle: targets for a loss: floats, 0/1 indicators, one-hot or counts."""
    if loss == "squared_error":
        return rng.normal(size=(n, n_out))
    if loss == "binary_log_loss":
        return rng.integers(0, 2, size=(n, n_out)).astype(float)
    if loss == "log_loss":
        return np.eye(n_out)[rng.integers(0, n_out, size=n)]
    if loss == "poisson":
        return rng.poisson(1.5, size=(n, n_out)).astype(float)
    raise AssertionError(loss)


SGD_DEFAULTS = {"learning_rate": 1e-3, "momentum": 0.9, "nesterov": True}
ADAM_DEFAULTS = {
    "learning_rate_init": 1e-3,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-8,
}
RMSPROP_DEFAULTS = {"learning_rate_init": 1e-3, "rho": 0.9, "epsilon": 1e-8}
ADAMW_DEFAULTS = dict(ADAM_DEFAULTS, weight_decay=0.01)

_SOLVERS = ("sgd", "adam", "rmsprop", "adamw")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _canonical_loss(out_activation, loss):
    """Validate an (output activation, loss) pair; return the loss name."""
    if out_activation not in CANONICAL_LOSS:
        raise ValueError(
            f"unknown output activation {out_activation!r}; "
            f"expected one of {OUTPUT_ACTIVATIONS}"
        )
    if out_activation == "logistic" and loss == "log_loss":
        loss = "binary_log_loss"  # same aliasing as sklearn's _backprop
    expected = CANONICAL_LOSS[out_activation]
    if loss != expected:
        raise ValueError(
            f"loss {loss!r} is not the canonical loss of output activation "
            f"{out_activation!r} (expected {expected!r})"
        )
    return loss


def _weights(sw, n_samples, dtype):
    """Sample weights as a ``dtype`` array (all ones for ``None``).

    sklearn casts sample weights to the dtype of X (``_check_sample_weight``).
    """
    if sw is None:
        return np.ones(n_samples, dtype=dtype)
    sw = np.asarray(sw, dtype=dtype)
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample weights must have shape ({n_samples},), got {sw.shape}"
        )
    return sw


def _weighted_mean_over_samples(values, sw):
    """Per-column weighted mean: sum_i sw_i * values_ij / sum_i sw_i."""
    return (sw[:, None] * values).sum(axis=0) / sw.sum()


def xlogy(x, y):
    """``x * log(y)``, defined as 0 where ``x == 0`` (whatever ``y`` is)."""
    x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
    out = np.zeros(np.shape(x), dtype=np.result_type(x, y, 1.0))
    nz = x != 0
    out[nz] = x[nz] * np.log(y[nz])
    return out


def l2_penalty(coefs, alpha, sw_sum):
    """``0.5 * alpha * sum_l ||W_l||_F^2 / sw_sum`` (weights only)."""
    squared_norm = sum(float(np.dot(W.ravel(), W.ravel())) for W in coefs)
    return 0.5 * alpha * squared_norm / sw_sum


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------
def apply_activation(z, name):
    """Return ``f(z)`` (a new array) for a hidden or output activation."""
    if name == "identity":
        return z.copy()
    if name == "logistic":
        # numerically stable 1 / (1 + exp(-z))
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_RELU_SLOPE * z).astype(z.dtype)
    if name == "elu":
        # expm1 of min(z, 0): the z > 0 branch never overflows
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0))).astype(z.dtype)
    if name == "softplus":
        return np.logaddexp(0, z).astype(z.dtype)  # log(e^0 + e^z), stable
    if name == "gelu":
        inner = GELU_C * (z + GELU_A * z**3)
        return (0.5 * z * (1 + np.tanh(inner))).astype(z.dtype)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(a, name):
    """``f'(z)`` expressed through the activation OUTPUT ``a = f(z)``."""
    if name == "identity":
        return np.ones_like(a)
    if name == "logistic":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a**2
    if name == "relu":
        return (a > 0).astype(a.dtype)
    raise ValueError(f"unknown hidden activation {name!r}")


def activation_derivative_z(z, name):
    """``f'(z)`` from the pre-activation ``z``, for every hidden activation.

    Written from the definitions (not through ``f(z)``): logistic sigma(z)
    (1 - sigma(z)), tanh 1 - tanh(z)^2, relu and leaky_relu 1 for z > 0 else
    0 / the slope, elu 1 for z > 0 else e^z, softplus sigma(z), and gelu the
    product rule on 0.5 z (1 + tanh(u)), u = c (z + a z^3):
    0.5 (1 + tanh u) + 0.5 z (1 - tanh(u)^2) c (1 + 3 a z^2).
    """
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = apply_activation(z, "logistic")
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE).astype(z.dtype)
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))).astype(z.dtype)
    if name == "softplus":
        return apply_activation(z, "logistic")
    if name == "gelu":
        t = np.tanh(GELU_C * (z + GELU_A * z**3))
        return (0.5 * (1 + t) + 0.5 * z * (1 - t**2) * GELU_C * (1 + 3 * GELU_A * z**2)
                ).astype(z.dtype)
    raise ValueError(f"unknown hidden activation {name!r}")


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
def init_params(layer_sizes, activation, random_state, dtype=np.float64):
    """Glorot-uniform initialisation, draw-for-draw identical to sklearn.

    ``random_state`` is an int seed or a ``np.random.RandomState`` (used and
    advanced in place).  For each layer, in order: ``coef`` of shape
    ``(fan_in, fan_out)``, then ``intercept`` of shape ``(fan_out,)``, both
    ``U(-bound, bound)`` with ``bound = sqrt(factor / (fan_in + fan_out))``,
    ``factor = 2`` for a logistic hidden activation, else 6.  Draws are made
    in float64 and then cast to ``dtype``.

    Returns ``(coefs, intercepts)``.
    """
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {activation!r}")
    rs = random_state
    if not isinstance(rs, np.random.RandomState):
        rs = np.random.RandomState(rs)
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rs.uniform(-bound, bound, (fan_in, fan_out))
        intercept = rs.uniform(-bound, bound, fan_out)
        coefs.append(coef.astype(dtype, copy=False))
        intercepts.append(intercept.astype(dtype, copy=False))
    return coefs, intercepts


def pack(coefs, intercepts):
    """Flatten to one vector: all coefs (C order), then all intercepts."""
    return np.concatenate([p.ravel() for p in list(coefs) + list(intercepts)])


def unpack(vector, layer_sizes):
    """Inverse of :func:`pack`; returns ``(coefs, intercepts)`` (copies)."""
    vector = np.asarray(vector)
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    n_expected = sum(i * o + o for i, o in pairs)
    if vector.shape != (n_expected,):
        raise ValueError(
            f"vector has shape {vector.shape}, layer sizes {list(layer_sizes)} "
            f"need ({n_expected},)"
        )
    coefs, intercepts, start = [], [], 0
    for fan_in, fan_out in pairs:
        end = start + fan_in * fan_out
        coefs.append(vector[start:end].reshape(fan_in, fan_out).copy())
        start = end
    for _, fan_out in pairs:
        end = start + fan_out
        intercepts.append(vector[start:end].copy())
        start = end
    return coefs, intercepts


# --------------------------------------------------------------------------
# forward pass and losses
# --------------------------------------------------------------------------
def forward(coefs, intercepts, X, activation, out_activation):
    """Return the list of activations ``[X, a_1, ..., a_out]`` (no dropout:
    also the prediction of a network trained with dropout)."""
    if activation not in ALL_HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {activation!r}")
    if out_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"unknown output activation {out_activation!r}")
    activations = [X]
    n_layers = len(coefs)
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        z = activations[-1] @ W + b
        name = out_activation if layer == n_layers - 1 else activation
        activations.append(apply_activation(z, name))
    return activations


def data_loss(Y, P, loss, sw=None, clip=True):
    """sklearn's per-batch data loss (no L2 term).

    ``P`` is the network output.  With ``clip=False`` the log-losses are not
    clipped and squared_error sums (instead of averages) over outputs: that is
    the data part of :func:`objective`.
    """
    Y = np.asarray(Y)
    P = np.asarray(P)
    if Y.ndim != 2 or Y.shape != P.shape:
        raise ValueError(f"Y {Y.shape} and predictions {P.shape} must be equal 2-D")
    sw = _weights(sw, Y.shape[0], P.dtype)
    if loss == "squared_error":
        per_output = _weighted_mean_over_samples((Y - P) ** 2, sw)
        return 0.5 * (per_output.mean() if clip else per_output.sum())
    if loss in ("binary_log_loss", "log_loss"):
        if clip:
            eps = np.finfo(P.dtype).eps
            P = np.clip(P, eps, 1 - eps)
        if loss == "binary_log_loss":
            ll = xlogy(Y, P) + xlogy(1 - Y, 1 - P)
        else:
            ll = xlogy(Y, P)
        return -_weighted_mean_over_samples(ll, sw).sum()
    if loss == "poisson":
        # half Poisson deviance, including the constant xlogy(y, y) - y
        dev = xlogy(Y, Y / P) - Y + P
        return _weighted_mean_over_samples(dev, sw).sum()
    raise ValueError(f"unknown loss {loss!r}")


def reported_loss(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha):
    """The loss sklearn reports for one batch (clipped, + L2 / sw_sum)."""
    loss = _canonical_loss(out_activation, loss)
    P = forward(coefs, intercepts, X, activation, out_activation)[-1]
    sw_sum = _weights(sw, X.shape[0], P.dtype).sum()
    return data_loss(Y, P, loss, sw, clip=True) + l2_penalty(coefs, alpha, sw_sum)


def objective(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha):
    """The function whose exact gradient :func:`backprop` returns.

    * squared_error: ``0.5 * SUM over outputs of weighted-mean sq. error``
      (sklearn's reported loss uses the MEAN over outputs, but its gradient
      is that of the sum);
    * binary_log_loss, log_loss, poisson: the reported loss without clipping
      of the probabilities (softmax's gradient ``p - y`` additionally needs
      every row of ``Y`` to sum to 1);

    plus ``0.5 * alpha * sum_l ||W_l||^2 / sw_sum``.
    """
    loss = _canonical_loss(out_activation, loss)
    P = forward(coefs, intercepts, X, activation, out_activation)[-1]
    sw_sum = _weights(sw, X.shape[0], P.dtype).sum()
    return data_loss(Y, P, loss, sw, clip=False) + l2_penalty(coefs, alpha, sw_sum)


def backprop(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha):
    """Loss and gradients exactly as sklearn's ``_backprop``.

    Returns ``(loss, coef_grads, intercept_grads)`` where ``loss`` is
    :func:`reported_loss` and the gradients are those of :func:`objective`:

    * ``delta_out = (a_out - Y) * sw[:, None]``
    * ``delta_l = (delta_{l+1} @ W_{l+1}.T) * f'(a_l)`` for hidden layers
    * ``dW_l = (a_{l-1}.T @ delta_l + alpha * W_l) / sw_sum``
    * ``db_l = delta_l.sum(0) / sw_sum``
    """
    loss = _canonical_loss(out_activation, loss)
    activations = forward(coefs, intercepts, X, activation, out_activation)
    P = activations[-1]
    sw_arr = _weights(sw, X.shape[0], P.dtype)
    sw_sum = sw_arr.sum()
    value = data_loss(Y, P, loss, sw, clip=True) + l2_penalty(coefs, alpha, sw_sum)

    n_layers = len(coefs)
    coef_grads = [None] * n_layers
    intercept_grads = [None] * n_layers
    delta = (P - Y) * sw_arr[:, None]
    for layer in range(n_layers - 1, -1, -1):
        a_prev = activations[layer]
        coef_grads[layer] = (a_prev.T @ delta + alpha * coefs[layer]) / sw_sum
        intercept_grads[layer] = delta.sum(axis=0) / sw_sum
        if layer > 0:  # no delta for the input layer
            delta = (delta @ coefs[layer].T) * activation_derivative(a_prev, activation)
    return value, coef_grads, intercept_grads


# --------------------------------------------------------------------------
# fastbp's own losses and dropout (see the module doc)
# --------------------------------------------------------------------------
def _check_pair(out_activation, loss):
    """Validate a canonical or extended (output activation, loss) pair; return
    the loss name (``binary_log_loss`` for a logistic ``log_loss``)."""
    if (out_activation, loss) in EXTENDED_OUTPUT_LOSSES:
        return loss
    return _canonical_loss(out_activation, loss)


def sample_losses(Y, P, out_activation, loss, huber_delta=1.0):
    """Per-sample loss (unweighted, shape ``(n,)``) of an extended pair.

    * logistic / softmax + squared_error: ``0.5 * sum_k (p_k - y_k)^2``;
    * absolute_error: ``mean_k |a_k - y_k|``;
    * huber: ``mean_k H(a_k - y_k)``, H(r) = r^2 / 2 if |r| <= delta else
      delta (|r| - delta / 2).
    """
    loss = _check_pair(out_activation, loss)
    if (out_activation, loss) not in EXTENDED_OUTPUT_LOSSES:
        raise ValueError(f"{(out_activation, loss)} is not an extended pair")
    R = np.asarray(P) - np.asarray(Y)
    if loss == "squared_error":
        return 0.5 * (R**2).sum(axis=1)
    if loss == "absolute_error":
        return np.abs(R).mean(axis=1)
    A = np.abs(R)
    H = np.where(A <= huber_delta, 0.5 * R**2, huber_delta * (A - 0.5 * huber_delta))
    return H.mean(axis=1)


def data_loss_general(Y, P, out_activation, loss, sw=None, huber_delta=1.0, clip=True):
    """:func:`data_loss` for every pair: the extended pairs' weighted mean of
    :func:`sample_losses` (``clip`` does not apply to them), the canonical
    ones as :func:`data_loss`."""
    loss = _check_pair(out_activation, loss)
    if (out_activation, loss) not in EXTENDED_OUTPUT_LOSSES:
        return data_loss(Y, P, loss, sw, clip=clip)
    sw = _weights(sw, np.shape(Y)[0], np.asarray(P).dtype)
    per_sample = sample_losses(Y, P, out_activation, loss, huber_delta)
    return float((sw * per_sample).sum() / sw.sum())


def softmax_jacobian(P):
    """``J[i, j, k] = d p_ij / d z_ik = p_ij (1[j = k] - p_ik)``, shape (n, K, K)."""
    n, K = P.shape
    return P[:, :, None] * (np.eye(K)[None, :, :] - P[:, None, :])


def output_delta(Y, P, out_activation, loss, sw=None, huber_delta=1.0):
    """``d (sw_i * loss_i) / d z_out`` (n, n_out): the output delta of backprop.

    Canonical pairs: ``(a - y) * sw`` (scikit-learn's; for squared_error the
    gradient of the SUM over outputs).  Extended pairs, by the chain rule on
    :func:`sample_losses`:

    * logistic + squared_error: ``(p - y) * p (1 - p)`` (diagonal Jacobian);
    * softmax + squared_error: ``J^T (p - y)`` with the full Jacobian of
      :func:`softmax_jacobian` (contracted explicitly, not a closed form);
    * absolute_error: ``sign(a - y) / n_out`` (0 at r = 0);
    * huber: ``clip(a - y, -delta, delta) / n_out``;

    all times ``sw``.
    """
    loss = _check_pair(out_activation, loss)
    Y = np.asarray(Y)
    P = np.asarray(P)
    sw = _weights(sw, Y.shape[0], P.dtype)
    R = P - Y
    n_out = P.shape[1]
    if (out_activation, loss) not in EXTENDED_OUTPUT_LOSSES:
        D = R
    elif out_activation == "logistic":
        D = R * P * (1 - P)
    elif out_activation == "softmax":
        # dL/dz_k = sum_j (dL/dp_j) (dp_j/dz_k) = sum_j R_j J[j, k]
        D = np.einsum("ij,ijk->ik", R, softmax_jacobian(P))
    elif loss == "absolute_error":
        D = np.sign(R) / n_out
    else:  # huber
        D = np.clip(R, -huber_delta, huber_delta) / n_out
    return D * sw[:, None]


def dropout_scale(mask, rate):
    """A 0/1 ``mask`` as inverted dropout's multiplier: ``mask / (1 - rate)``."""
    return np.asarray(mask, dtype=np.float64) / (1.0 - rate)


def forward_general(coefs, intercepts, X, activation, out_activation, masks=None,
                    rates=None):
    """The training forward pass with optional dropout.

    ``masks`` is None (no dropout) or one entry per hidden layer: None (that
    layer has no dropout) or a 0/1 array of its shape ``(n, width)``; ``rates``
    the matching rates.  Hidden layer ``l`` outputs ``f(z_l) * masks[l] /
    (1 - rates[l])``.

    Returns ``(zs, activations)``: the pre-activations ``[z_1, ..., z_out]``
    and ``[X, a_1, ..., a_out]`` (hidden ones after the mask).
    """
    if activation not in ALL_HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {activation!r}")
    n_hidden = len(coefs) - 1
    if masks is None:
        masks, rates = [None] * n_hidden, [0.0] * n_hidden
    if len(masks) != n_hidden or len(rates) != n_hidden:
        raise ValueError(f"need one mask and rate per hidden layer ({n_hidden})")
    zs, activations = [], [X]
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        z = activations[-1] @ W + b
        zs.append(z)
        if layer == n_hidden:
            activations.append(apply_activation(z, out_activation))
            break
        a = apply_activation(z, activation)
        if masks[layer] is not None:
            if masks[layer].shape != a.shape:
                raise ValueError(f"mask {layer} has shape {masks[layer].shape}, "
                                 f"layer {layer} {a.shape}")
            a = a * dropout_scale(masks[layer], rates[layer])
        activations.append(a)
    return zs, activations


def objective_general(coefs, intercepts, X, Y, sw, activation, out_activation, loss,
                      alpha, huber_delta=1.0, masks=None, rates=None):
    """The function whose exact gradient :func:`backprop_general` returns:
    the unclipped data loss (canonical squared_error summed over outputs, as in
    :func:`objective`; extended pairs as reported) through the masked forward
    pass, plus the L2 term."""
    loss = _check_pair(out_activation, loss)
    P = forward_general(coefs, intercepts, X, activation, out_activation, masks, rates)[1][-1]
    sw_sum = _weights(sw, X.shape[0], P.dtype).sum()
    return (data_loss_general(Y, P, out_activation, loss, sw, huber_delta, clip=False)
            + l2_penalty(coefs, alpha, sw_sum))


def reported_loss_general(coefs, intercepts, X, Y, sw, activation, out_activation, loss,
                          alpha, huber_delta=1.0, masks=None, rates=None):
    """:func:`reported_loss` for every activation and pair, with optional
    dropout masks (what fastbp reports as ``loss_``)."""
    loss = _check_pair(out_activation, loss)
    P = forward_general(coefs, intercepts, X, activation, out_activation, masks, rates)[1][-1]
    sw_sum = _weights(sw, X.shape[0], P.dtype).sum()
    return (data_loss_general(Y, P, out_activation, loss, sw, huber_delta, clip=True)
            + l2_penalty(coefs, alpha, sw_sum))


def backprop_general(coefs, intercepts, X, Y, sw, activation, out_activation, loss, alpha,
                     huber_delta=1.0, masks=None, rates=None):
    """:func:`backprop` for every hidden activation and pair, with optional
    dropout masks (see :func:`forward_general`).

    * ``delta_out`` = :func:`output_delta`;
    * ``delta_l = (delta_{l+1} @ W_{l+1}.T) * masks[l] / (1 - rates[l]) * f'(z_l)``
      -- the mask of the forward pass (a dropped unit's delta is 0), and f'
      from z (:func:`activation_derivative_z`);
    * ``dW_l = (a_{l-1}.T @ delta_l + alpha * W_l) / sw_sum`` with the masked
      activations, ``db_l = delta_l.sum(0) / sw_sum``.

    Returns ``(reported loss, coef_grads, intercept_grads)``.
    """
    loss = _check_pair(out_activation, loss)
    n_hidden = len(coefs) - 1
    if masks is None:
        masks, rates = [None] * n_hidden, [0.0] * n_hidden
    zs, activations = forward_general(coefs, intercepts, X, activation, out_activation,
                                      masks, rates)
    P = activations[-1]
    sw_arr = _weights(sw, X.shape[0], P.dtype)
    sw_sum = sw_arr.sum()
    value = (data_loss_general(Y, P, out_activation, loss, sw, huber_delta, clip=True)
             + l2_penalty(coefs, alpha, sw_sum))
    n_layers = len(coefs)
    coef_grads = [None] * n_layers
    intercept_grads = [None] * n_layers
    delta = output_delta(Y, P, out_activation, loss, sw_arr, huber_delta)
    for layer in range(n_layers - 1, -1, -1):
        coef_grads[layer] = (activations[layer].T @ delta + alpha * coefs[layer]) / sw_sum
        intercept_grads[layer] = delta.sum(axis=0) / sw_sum
        if layer > 0:
            delta = delta @ coefs[layer].T
            hidden = layer - 1  # the hidden layer whose output fed this one
            if masks[hidden] is not None:
                delta = delta * dropout_scale(masks[hidden], rates[hidden])
            delta = delta * activation_derivative_z(zs[hidden], activation)
    return value, coef_grads, intercept_grads


# --------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------
def init_opt_state(solver, params):
    """Fresh optimizer state (zeros), like a newly built sklearn optimizer."""
    if solver == "sgd":
        return {"velocities": [np.zeros_like(p) for p in params]}
    if solver in ("adam", "adamw"):
        return {
            "t": 0,
            "ms": [np.zeros_like(p) for p in params],
            "vs": [np.zeros_like(p) for p in params],
        }
    if solver == "rmsprop":
        return {"vs": [np.zeros_like(p) for p in params]}
    raise ValueError(f"unknown solver {solver!r}; expected one of {_SOLVERS}")


def sgd_step(params, grads, state, hp):
    """One SGD-with-momentum step, in place on ``params`` and ``state``.

    ``v = momentum * v - lr * g``;  update = ``momentum * v - lr * g`` with
    Nesterov momentum, else ``v``;  ``param += update``.
    """
    lr, momentum = hp["learning_rate"], hp["momentum"]
    for p, g, v in zip(params, grads, state["velocities"]):
        v[...] = momentum * v - lr * g
        update = momentum * v - lr * g if hp["nesterov"] else v
        p += update


def adam_step(params, grads, state, hp):
    """One Adam step, in place on ``params`` and ``state``.

    ``t += 1``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``lr_t = lr_init * sqrt(1 - b2^t) / (1 - b1^t)``;
    ``param += -lr_t * m / (sqrt(v) + eps)``.
    """
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    state["t"] += 1
    t = state["t"]
    # np.sqrt makes lr_t a float64 NumPy scalar, exactly as in sklearn (this
    # matters for float32 parameters: the update is computed in float64).
    lr_t = hp["learning_rate_init"] * np.sqrt(1 - b2**t) / (1 - b1**t)
    for p, g, m, v in zip(params, grads, state["ms"], state["vs"]):
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g**2
        p += -lr_t * m / (np.sqrt(v) + eps)


def rmsprop_step(params, grads, state, hp):
    """One RMSprop step, in place on ``params`` and ``state``.

    ``v = rho v + (1 - rho) g^2``;  ``param -= lr * g / (sqrt(v) + eps)`` with
    the constant ``lr = learning_rate_init`` (no bias correction, no step
    counter).
    """
    lr, rho, eps = hp["learning_rate_init"], hp["rho"], hp["epsilon"]
    for p, g, v in zip(params, grads, state["vs"]):
        v[...] = rho * v + (1 - rho) * g**2
        p -= lr * g / (np.sqrt(v) + eps)


def _n_coefs(params):
    """Number of weight matrices in ``params = coefs + intercepts``: half of it."""
    if len(params) % 2:
        raise ValueError(
            f"params must be coefs + intercepts (an even count), got {len(params)}"
        )
    return len(params) // 2


def adamw_step(params, grads, state, hp):
    """One AdamW step (Adam with decoupled weight decay), in place.

    ``t``, ``m``, ``v`` and ``lr_t`` exactly as :func:`adam_step`, with ``g``
    the gradient at the weights *before* the decay (``grads`` were computed
    there); then, for the weight matrices only (the first half of ``params``,
    see the module doc), ``param *= 1 - learning_rate_init * weight_decay``
    (the initial rate, not the bias-corrected ``lr_t``); then every parameter
    takes Adam's step ``param += -lr_t * m / (sqrt(v) + eps)``.  Intercepts are
    therefore stepped exactly as by :func:`adam_step`.
    """
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    keep = 1.0 - hp["learning_rate_init"] * hp["weight_decay"]
    n_coefs = _n_coefs(params)
    state["t"] += 1
    t = state["t"]
    lr_t = hp["learning_rate_init"] * np.sqrt(1 - b2**t) / (1 - b1**t)
    for k, (p, g, m, v) in enumerate(zip(params, grads, state["ms"], state["vs"])):
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g**2
        if k < n_coefs:
            p *= keep
        p += -lr_t * m / (np.sqrt(v) + eps)


# --------------------------------------------------------------------------
# one epoch
# --------------------------------------------------------------------------
def run_epoch(
    coefs,
    intercepts,
    X,
    Y,
    sw,
    order,
    batch_size,
    activation,
    out_activation,
    loss,
    alpha,
    solver,
    opt_state,
    hp,
):
    """One epoch of mini-batch training, in place on the parameter lists.

    Batches are consecutive slices of ``order`` (row indices; the last batch
    may be smaller).  For each batch: :func:`backprop` on ``X[idx]``,
    ``Y[idx]``, ``sw[idx]`` and then one :func:`sgd_step` / :func:`adam_step`
    / :func:`rmsprop_step` / :func:`adamw_step` on ``coefs + intercepts``
    with ``opt_state`` / ``hp`` (see module doc).

    Returns the epoch loss as sklearn computes it:
    ``sum_batches(batch_loss * batch_len) / len(order)`` -- batches are
    weighted by their row count, not by their sample-weight sum.
    """
    if solver == "sgd":
        step = sgd_step
    elif solver == "adam":
        step = adam_step
    elif solver == "rmsprop":
        step = rmsprop_step
    elif solver == "adamw":
        step = adamw_step
    else:
        raise ValueError(f"unknown solver {solver!r}; expected one of {_SOLVERS}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.asarray(order)
    params = list(coefs) + list(intercepts)
    accumulated = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        sw_batch = None if sw is None else sw[idx]
        batch_loss, coef_grads, intercept_grads = backprop(
            coefs, intercepts, X[idx], Y[idx], sw_batch,
            activation, out_activation, loss, alpha,
        )
        accumulated += batch_loss * len(idx)
        step(params, coef_grads + intercept_grads, opt_state, hp)
    return accumulated / len(order)


def fd_gradient(f, theta, h=1e-6):
    """Test utility, not part of the oracle: central differences of f at theta."""
    grad = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        grad[k] = (f(theta + e) - f(theta - e)) / (2 * h)
    return grad
