"""Output activation, per-row loss and output delta, fused; chosen by code.

Only the canonical (output activation, loss) pairs exist, because only for them
is d loss / d z = a_out - y (scikit-learn ``_backprop`` relies on the same fact):

    code  output    loss                     reported per-row loss (times the sample weight)
    0     identity  squared_error            0.5 * mean_k (y_k - a_k)^2       (sklearn averages outputs)
    1     logistic  binary_log_loss          -sum_k y_k log p_k + (1-y_k) log(1-p_k), p clipped to [eps, 1-eps]
    2     softmax   log_loss                 -sum_k y_k log p_k, p clipped to [eps, 1-eps]
    3     exp       poisson (half deviance)  sum_k xlogy(y_k, y_k / a_k) - y_k + a_k

Any other pair is refused in Python (``OUTPUT_CODES``) before a kernel runs.
A future squared-error loss on a sigmoid/softmax output gets a new code whose
delta multiplies by the output derivative.
"""

import math

from .._config import jit
from .activations import logistic

IDENTITY_SQUARED = 0
LOGISTIC_BINARY_LOG = 1
SOFTMAX_LOG = 2
EXP_POISSON = 3

# (out_activation_, loss) -> code
OUTPUT_CODES = {
    ("identity", "squared_error"): IDENTITY_SQUARED,
    ("logistic", "log_loss"): LOGISTIC_BINARY_LOG,
    ("softmax", "log_loss"): SOFTMAX_LOG,
    ("exp", "poisson"): EXP_POISSON,
}


@jit
def output_activate(Z, b, code):
    """A <- g(Z + b) in place for the output layer.  Shapes: Z (rows, n_out)."""
    rows, n_out = Z.shape
    for r in range(rows):
        if code == SOFTMAX_LOG:
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
        elif code == LOGISTIC_BINARY_LOG:
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
    """Per-row weighted loss and output delta D = (A - y) * sw.

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
