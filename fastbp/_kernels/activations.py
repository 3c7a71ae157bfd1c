"""Hidden-layer activations, chosen inside kernels by an integer code.

Derivatives are computed from the activation *output* ``a = f(z)`` where that
is possible (as in scikit-learn's ``inplace_*_derivative``): logistic a(1-a),
tanh 1-a^2, relu 1[a > 0], identity 1, leaky_relu 1 or 0.01 by the sign of a,
elu 1 or a + 1 (= exp(z) for z <= 0), softplus sigma(z) = 1 - exp(-a).  gelu's
derivative needs z itself: the training kernel computes it with f, in the
forward pass, into its ``pre`` workspace (``bias_activate_with_derivative``;
see ``fastbp/_kernels/network.py``), and the backward pass multiplies by it.

scikit-learn's four activations are the core kernels' (``bias_activate``,
``mul_derivative``); the others live in the ``*_any`` functions, which only
the extended kernels link (see ``fastbp/_kernels/network.py``): every
function a kernel links is optimized again in it, so keeping them out of the
core kernels keeps the default path's cold compile where it was.
"""

import math

from .._config import jit

IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
GELU = 7

HIDDEN_CODES = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH, "relu": RELU,
                "leaky_relu": LEAKY_RELU, "elu": ELU, "softplus": SOFTPLUS, "gelu": GELU}

LEAKY_SLOPE = 0.01
GELU_C = math.sqrt(2.0 / math.pi)  # the tanh approximation's sqrt(2/pi)
GELU_A = 0.044715


@jit
def logistic(z):
    """Numerically stable 1 / (1 + exp(-z)) for a scalar."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit
def softplus(z):
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@jit
def gelu(z):
    """0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), the tanh approximation."""
    return 0.5 * z * (1.0 + math.tanh(GELU_C * (z + GELU_A * z * z * z)))


@jit
def activate_scalar(z, code):
    """f(z) for the activations with no vectorizable loop of their own
    (leaky_relu, elu, softplus, gelu: libm calls or, for leaky_relu, rarely
    used): one loop with a branch per element keeps the compiled code small."""
    if code == LEAKY_RELU:
        return z if z > 0 else LEAKY_SLOPE * z
    if code == ELU:
        return z if z > 0 else math.expm1(z)
    if code == SOFTPLUS:
        return softplus(z)
    return gelu(z)


@jit
def derivative_scalar(a, code):
    """f'(z) from a = f(z) for leaky_relu, elu and softplus (gelu's f' cannot
    be had from a: ``bias_activate_with_derivative`` computes it from z)."""
    if code == LEAKY_RELU:
        return 1.0 if a > 0 else LEAKY_SLOPE
    if code == ELU:
        return 1.0 if a > 0 else a + 1.0
    return -math.expm1(-a)  # SOFTPLUS


@jit
def bias_activate(Z, b, code):
    """Z <- f(Z + b) in place for scikit-learn's four activations (the core
    kernels' only ones).  Shapes: Z (rows, width), b (width,). Returns None."""
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
def bias_activate_any(Z, b, code):
    """``bias_activate`` for every code (the extended kernels')."""
    if code < LEAKY_RELU:
        bias_activate(Z, b, code)
        return
    rows, width = Z.shape
    for r in range(rows):
        z = Z[r]
        for j in range(width):
            z[j] = activate_scalar(z[j] + b[j], code)


@jit
def bias_activate_with_derivative(Z, b, code, P):
    """Z <- f(Z + b) and P <- f'(Z + b), for the training kernel's ``pre``
    workspace (gelu, whose f' needs z; dropout, whose mask then changes Z).
    gelu shares one tanh between f and f'.  Shapes: Z, P (rows, width).
    Mutates both.  Returns None."""
    rows, width = Z.shape
    if code == GELU:
        for r in range(rows):
            z = Z[r]
            p = P[r]
            for j in range(width):
                v = z[j] + b[j]
                t = math.tanh(GELU_C * (v + GELU_A * v * v * v))
                z[j] = 0.5 * v * (1.0 + t)
                p[j] = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_C * (
                    1.0 + 3.0 * GELU_A * v * v)
        return
    bias_activate_any(Z, b, code)
    for r in range(rows):
        p = P[r]
        for j in range(width):
            p[j] = 1.0
    mul_derivative_any(Z, P, code)


@jit
def mul_rows(P, D):
    """D <- D * P elementwise for (rows, width) blocks (row views: it vectorizes)."""
    rows, width = P.shape
    for r in range(rows):
        p = P[r]
        d = D[r]
        for j in range(width):
            d[j] = d[j] * p[j]


@jit
def mul_derivative(A, D, code):
    """D <- D * f'(z), with f' computed from A = f(z), for scikit-learn's four
    activations.  Shapes: A, D (rows, width).  Mutates D.  Returns None.
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


@jit
def mul_derivative_any(A, D, code):
    """``mul_derivative`` for every code but GELU (see ``derivative_scalar``)."""
    if code < LEAKY_RELU:
        mul_derivative(A, D, code)
        return
    rows, width = A.shape
    for r in range(rows):
        a = A[r]
        d = D[r]
        for j in range(width):
            d[j] = d[j] * derivative_scalar(a[j], code)
