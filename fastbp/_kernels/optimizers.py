"""In-place optimizer steps over a contiguous range of the flat parameter vector.

The gradient of parameter p is ``g = (grad_sums[p] + l2 * params[p]) / sw_sum`` where
``grad_sums`` holds sum_rows a_prev^T delta (or the bias column sums), ``l2`` is
``alpha`` for weights and 0 for intercepts: scikit-learn's
``(a^T delta + alpha W) / n``.  The step math is scikit-learn's
``SGDOptimizer`` / ``AdamOptimizer`` exactly, but done in place on one range,
so every thread updates only the parameters it owns.

An optimizer's hyper-parameters travel in one ``fastbp._kernels.state.Optimizer``
(``code`` says which step), its moments in ``OptimizerState.moments``.
"""

import math

import numpy as np
from numba.extending import overload

from .._config import CACHE, jit

NONE = 0  # store the gradient in ``grad_sums`` (used by L-BFGS and the tests)
SGD = 1
ADAM = 2
RMSPROP = 3
ADAMW = 4  # Adam plus decoupled weight decay (Loshchilov & Hutter)
# Leave the raw sums (sum_rows a^T delta, no L2 term, not divided by the
# weight sum) in ``grad_sums``, and have the epoch kernel return the batch's
# raw data loss: one row chunk of a full-batch evaluation, which Python adds up
# (``fastbp._lbfgs.loss_and_gradient`` on large data).
SUMS = 5


def as_dtype_of(arr, x):
    """``x`` converted to ``arr``'s dtype (compiled code only)."""
    raise NotImplementedError("as_dtype_of is only callable from compiled code")


@overload(as_dtype_of, jit_options={"cache": CACHE})
def _as_dtype_of(arr, x):
    dtype = arr.dtype

    def impl(arr, x):
        return dtype(x)

    return impl


@jit
def adam_rate(lr_init, beta_1, beta_2, t):
    """Adam's bias-corrected step size at step ``t`` (1-based), as scikit-learn's
    ``AdamOptimizer`` computes it in Python, bit for bit:
    ``lr_init * sqrt(1 - beta_2**t) / (1 - beta_1**t)``.

    The powers go through C ``pow`` on doubles, as Python's ``float ** int``
    does; numba's ``**`` with an integer exponent multiplies by repeated
    squaring instead, which differed by an ulp in ~3% of float64 steps.  The
    epoch kernel is the only caller (and leaves the rate in ``OptimizerState.rate``), so the
    rate has one source.
    """
    tt = float(t)
    return lr_init * math.sqrt(1.0 - math.pow(beta_2, tt)) / (1.0 - math.pow(beta_1, tt))


# How numpy computes scikit-learn's Adam update ``param += -lr_t * m /
# (sqrt(v) + eps)`` when ``param`` is float32: ``lr_t`` is a float64 numpy
# scalar (np.sqrt made it), and under NEP 50 (numpy >= 2) a float64 scalar
# promotes the float32 arrays, so the update is formed in float64 and rounded
# to float32 once, when it is added; numpy 1's value-based casting rounded
# ``lr_t`` to float32 and computed in float32.  (A compile-time constant:
# ``_config.kernel_sources_digest`` includes numpy's major version, so a
# kernel cached under the other numpy is recompiled.)
ADAM_UPDATE_IN_FLOAT64 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


@jit(inline="always")
def adam_update(w, lr_t, lr, m, denom):
    """``w - lr_t * m / denom`` computed as numpy computes scikit-learn's Adam
    update for ``w``'s dtype: ``lr_t`` the float64 rate, ``lr`` that rate in
    the weights' dtype, ``m`` and ``denom = sqrt(v) + eps`` in that dtype."""
    if ADAM_UPDATE_IN_FLOAT64:
        return w + (-lr_t * np.float64(m)) / np.float64(denom)
    return w + -lr * m / denom


@jit
def step_range(params, grad_sums, moments, p0, p1, l2, decay, sw_sum, optimizer, lr_t):
    """Apply one optimizer step to params[p0:p1].

    Shapes: params, grad_sums (n_params,); moments (n_moments, n_params) -- sgd uses
    row 0 (velocity), adam and adamw rows 0 (m) and 1 (v), rmsprop row 0 (v).
    ``lr_t`` is the learning rate of this step (already bias-corrected for
    adam/adamw).  ``l2`` is the L2 coefficient of the range (alpha for weights, 0
    for intercepts), ``decay`` its decoupled weight decay (adamw: weight_decay
    for weights, 0 for intercepts).

    rmsprop: v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps).
    adamw: Adam's moments from g at the current w; then w *= 1 - lr_init * decay
    (the rate of the schedule, not the bias-corrected one: the decay is decoupled
    from the gradient step); then Adam's step.
    Mutates params and moments (or grad_sums when ``optimizer.code`` is NONE; nothing
    for SUMS).  Returns None.

    The arithmetic is done as scikit-learn's numpy does it: in the arrays' dtype
    (a Python float meeting a float32 array is rounded to float32 first; constants
    like ``1 - beta_1`` are formed in double precision, then rounded), but for
    the Adam/AdamW update itself, which numpy >= 2 forms in float64 from the
    float64 rate (``adam_update``).  The loops
    run over slices indexed from 0: indexing ``params[p]`` with ``p`` from ``p0``
    kept LLVM from proving ``p >= 0`` and so from vectorizing (the Adam step was
    11x slower in float32; mixing in float64 scalars cost 4x more).
    """
    w = params[p0:p1]
    g_sum = grad_sums[p0:p1]
    n = p1 - p0
    l2_ = as_dtype_of(params, l2)
    sw = as_dtype_of(params, sw_sum)
    lr = as_dtype_of(params, lr_t)
    opt_code = optimizer.code
    if opt_code == SGD:
        mom = as_dtype_of(params, optimizer.momentum)
        vel = moments[0, p0:p1]
        if optimizer.nesterov != 0.0:
            for i in range(n):
                g = (g_sum[i] + l2_ * w[i]) / sw
                v = mom * vel[i] - lr * g
                vel[i] = v
                w[i] += mom * v - lr * g
        else:
            for i in range(n):
                g = (g_sum[i] + l2_ * w[i]) / sw
                v = mom * vel[i] - lr * g
                vel[i] = v
                w[i] += v
    elif opt_code == ADAM:
        b1 = as_dtype_of(params, optimizer.beta_1)
        c1 = as_dtype_of(params, 1.0 - optimizer.beta_1)
        b2 = as_dtype_of(params, optimizer.beta_2)
        c2 = as_dtype_of(params, 1.0 - optimizer.beta_2)
        eps = as_dtype_of(params, optimizer.epsilon)
        m = moments[0, p0:p1]
        v = moments[1, p0:p1]
        for i in range(n):
            g = (g_sum[i] + l2_ * w[i]) / sw
            mi = b1 * m[i] + c1 * g
            vi = b2 * v[i] + c2 * (g * g)
            m[i] = mi
            v[i] = vi
            w[i] = adam_update(w[i], lr_t, lr, mi, np.sqrt(vi) + eps)
    elif opt_code == RMSPROP:
        rho = as_dtype_of(params, optimizer.rho)
        c_rho = as_dtype_of(params, 1.0 - optimizer.rho)
        eps = as_dtype_of(params, optimizer.epsilon)
        v = moments[0, p0:p1]
        for i in range(n):
            g = (g_sum[i] + l2_ * w[i]) / sw
            vi = rho * v[i] + c_rho * (g * g)
            v[i] = vi
            w[i] -= lr * g / (np.sqrt(vi) + eps)
    elif opt_code == ADAMW:
        # Adam's loop again, with the decay: a loop of its own rather than a
        # flag inside Adam's, so the default solver's loop is exactly what it
        # was (same bits, and nothing more for it to vectorize around).
        b1 = as_dtype_of(params, optimizer.beta_1)
        c1 = as_dtype_of(params, 1.0 - optimizer.beta_1)
        b2 = as_dtype_of(params, optimizer.beta_2)
        c2 = as_dtype_of(params, 1.0 - optimizer.beta_2)
        eps = as_dtype_of(params, optimizer.epsilon)
        keep = as_dtype_of(params, 1.0 - optimizer.lr_init * decay)
        m = moments[0, p0:p1]
        v = moments[1, p0:p1]
        for i in range(n):
            g = (g_sum[i] + l2_ * w[i]) / sw
            mi = b1 * m[i] + c1 * g
            vi = b2 * v[i] + c2 * (g * g)
            m[i] = mi
            v[i] = vi
            w[i] = adam_update(w[i] * keep, lr_t, lr, mi, np.sqrt(vi) + eps)
    elif opt_code == NONE:
        for i in range(n):
            g_sum[i] = (g_sum[i] + l2_ * w[i]) / sw
    # (SUMS: the sums stay as they are)
