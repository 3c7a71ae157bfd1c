"""Hidden-layer activations, chosen inside kernels by an integer code.

Derivatives are computed from the activation *output* ``a = f(z)`` (as in
scikit-learn's ``inplace_*_derivative``): logistic a(1-a), tanh 1-a^2, relu
1[a > 0], identity 1.  New activations (leaky_relu, elu, softplus, gelu) get a
new code here plus one branch in each function; no kernel signature changes.
"""

import math

from .._config import jit

IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3

HIDDEN_CODES = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU}


@jit
def logistic(z):
    """Numerically stable 1 / (1 + exp(-z)) for a scalar."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit
def bias_activate(Z, b, code):
    """Z <- f(Z + b) in place.  Shapes: Z (rows, width), b (width,). Returns None."""
    rows, width = Z.shape
    for r in range(rows):
        z = Z[r]  # row views: the loops vectorize
        if code == RELU:
            for j in range(width):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0.0
        elif code == TANH:
            for j in range(width):
                z[j] = math.tanh(z[j] + b[j])
        elif code == LOGISTIC:
            for j in range(width):
                z[j] = logistic(z[j] + b[j])
        else:
            for j in range(width):
                z[j] = z[j] + b[j]


@jit
def mul_derivative(A, D, code):
    """D <- D * f'(z), with f' computed from A = f(z).  Shapes: A, D (rows, width).

    Mutates D.  Returns None.
    """
    rows, width = A.shape
    if code == IDENTITY:
        return
    for r in range(rows):
        a = A[r]
        d = D[r]
        if code == RELU:
            for j in range(width):  # a select, not a branch: it vectorizes
                d[j] = d[j] if a[j] > 0 else 0.0
        elif code == TANH:
            for j in range(width):
                d[j] = d[j] * (1.0 - a[j] * a[j])
        else:  # LOGISTIC
            for j in range(width):
                d[j] = d[j] * (a[j] * (1.0 - a[j]))
