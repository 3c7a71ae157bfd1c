"""Output activation, per-row loss and output delta, fused; chosen by code.

Each code is one (output activation, loss) pair; the delta is d loss / d z at
the output, times the sample weight:

    code  output    loss            per-row loss (times the sample weight)          delta / sw
    0     identity  squared_error   0.5 * mean_k (y_k - a_k)^2  (sklearn: mean)      a - y
    1     logistic  log_loss        -sum_k y_k log p_k + (1-y_k) log(1-p_k)          a - y
    2     softmax   log_loss        -sum_k y_k log p_k                               a - y
    3     exp       poisson         sum_k xlogy(y_k, y_k / a_k) - y_k + a_k          a - y
    4     logistic  squared_error   0.5 * sum_k (a_k - y_k)^2                        (a - y) a (1 - a)
    5     softmax   squared_error   0.5 * sum_k (a_k - y_k)^2                        J^T (a - y), J the softmax Jacobian
    6     identity  absolute_error  mean_k |a_k - y_k|                               sign(a - y) / n_out
    7     identity  huber           mean_k H_delta(a_k - y_k)                        clip(a - y, -delta, delta) / n_out

(log losses clip p to [eps, 1 - eps]; H_delta(r) = r^2 / 2 for |r| <= delta,
else delta (|r| - delta / 2).)  For codes 0-3 d loss / d z = a - y, the fact
scikit-learn's ``_backprop`` relies on; code 0 keeps scikit-learn's pairing of
a loss averaged over outputs with the un-averaged delta (the two agree for one
output), codes 4-7 are consistent for any number of outputs.  The softmax
Jacobian J_jk = a_j (1[j = k] - a_k) gives delta_k = a_k ((a_k - y_k) -
sum_j (a_j - y_j) a_j): the full Jacobian, not its diagonal.

Any other pair is refused in Python (``OUTPUT_CODES``) before a kernel runs.
"""

import math

from .._config import jit
from .activations import logistic

IDENTITY_SQUARED = 0
LOGISTIC_BINARY_LOG = 1
SOFTMAX_LOG = 2
EXP_POISSON = 3
LOGISTIC_SQUARED = 4
SOFTMAX_SQUARED = 5
IDENTITY_ABSOLUTE = 6
IDENTITY_HUBER = 7

# (out_activation_, loss) -> code
OUTPUT_CODES = {
    ("identity", "squared_error"): IDENTITY_SQUARED,
    ("logistic", "log_loss"): LOGISTIC_BINARY_LOG,
    ("softmax", "log_loss"): SOFTMAX_LOG,
    ("exp", "poisson"): EXP_POISSON,
    ("logistic", "squared_error"): LOGISTIC_SQUARED,
    ("softmax", "squared_error"): SOFTMAX_SQUARED,
    ("identity", "absolute_error"): IDENTITY_ABSOLUTE,
    ("identity", "huber"): IDENTITY_HUBER,
}


@jit
def output_activate(Z, b, code):
    """A <- g(Z + b) in place for the output layer.  Shapes: Z (rows, n_out)."""
    rows, n_out = Z.shape
    for r in range(rows):
        if code == SOFTMAX_LOG or code == SOFTMAX_SQUARED:
            zmax = -math.inf
            for k in range(n_out):
                v = Z[r, k] + b[k]
                Z[r, k] = v
                if v > zmax:
                    zmax = v
            s = 0.0
            for k in range(n_out):
                e = math.exp(Z[r, k] - zmax)
                Z[r, k] = e
                s += Z[r, k]
            for k in range(n_out):
                Z[r, k] = Z[r, k] / s
        elif code == LOGISTIC_BINARY_LOG or code == LOGISTIC_SQUARED:
            for k in range(n_out):
                Z[r, k] = logistic(Z[r, k] + b[k])
        elif code == EXP_POISSON:
            for k in range(n_out):
                Z[r, k] = math.exp(Z[r, k] + b[k])
        else:
            for k in range(n_out):
                Z[r, k] = Z[r, k] + b[k]


@jit
def loss_and_delta(A, Y, sw, rows_idx, D, rowloss, code, clip_eps):
    """Per-row weighted loss and output delta D = (A - y) * sw for the canonical
    codes 0-3 (the core kernels' only ones).

    Shapes: A, D (rows, n_out) batch-local; Y (n_samples, n_out); sw (n_samples,);
    rows_idx (rows,) sample index of each batch row; rowloss (rows,).
    Mutates D and rowloss.  Returns None.
    """
    rows, n_out = A.shape
    for r in range(rows):
        i = rows_idx[r]
        w = sw[i]
        acc = 0.0
        for k in range(n_out):
            a = A[r, k]
            y = Y[i, k]
            D[r, k] = (a - y) * w
            if code == IDENTITY_SQUARED:
                acc += (y - a) * (y - a)
            elif code == EXP_POISSON:
                if y > 0:
                    acc += y * math.log(y / a)
                acc += a - y
            else:
                p = min(max(a, clip_eps), 1.0 - clip_eps)
                if y != 0:
                    acc -= y * math.log(p)
                if code == LOGISTIC_BINARY_LOG and y != 1:
                    acc -= (1.0 - y) * math.log(1.0 - p)
        if code == IDENTITY_SQUARED:
            acc = 0.5 * acc / n_out
        rowloss[r] = w * acc


@jit
def loss_and_delta_any(A, Y, sw, rows_idx, D, rowloss, code, clip_eps, huber_delta):
    """``loss_and_delta`` for every code (the extended kernels'): codes 4-7,
    whose delta is not a - y, in a loop of their own."""
    if code <= EXP_POISSON:
        loss_and_delta(A, Y, sw, rows_idx, D, rowloss, code, clip_eps)
        return
    rows, n_out = A.shape
    for r in range(rows):
        i = rows_idx[r]
        w = sw[i]
        acc = 0.0
        if code == SOFTMAX_SQUARED:
            dot = 0.0  # sum_j (a_j - y_j) a_j
            for k in range(n_out):
                e = A[r, k] - Y[i, k]
                acc += e * e
                dot += e * A[r, k]
            for k in range(n_out):
                a = A[r, k]
                D[r, k] = a * ((a - Y[i, k]) - dot) * w
            acc = 0.5 * acc
        elif code == LOGISTIC_SQUARED:
            for k in range(n_out):
                a = A[r, k]
                e = a - Y[i, k]
                acc += e * e
                D[r, k] = e * (a * (1.0 - a)) * w
            acc = 0.5 * acc
        elif code == IDENTITY_ABSOLUTE:
            for k in range(n_out):
                e = A[r, k] - Y[i, k]
                acc += abs(e)
                s = 1.0 if e > 0 else (-1.0 if e < 0 else 0.0)
                D[r, k] = s * w / n_out
            acc = acc / n_out
        else:  # IDENTITY_HUBER
            for k in range(n_out):
                e = A[r, k] - Y[i, k]
                if abs(e) <= huber_delta:
                    acc += 0.5 * e * e
                    g = e
                else:
                    acc += huber_delta * (abs(e) - 0.5 * huber_delta)
                    g = huber_delta if e > 0 else -huber_delta
                D[r, k] = g * w / n_out
            acc = acc / n_out
        rowloss[r] = w * acc
