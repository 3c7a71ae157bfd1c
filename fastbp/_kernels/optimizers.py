"""In-place optimizer steps over a contiguous range of the flat parameter vector.

The gradient of parameter p is ``g = (raw[p] + l2 * params[p]) / sw_sum`` where
``raw`` holds sum_rows a_prev^T delta (or the bias column sums), ``l2`` is
``alpha`` for weights and 0 for intercepts: scikit-learn's
``(a^T delta + alpha W) / n``.  The step math is scikit-learn's
``SGDOptimizer`` / ``AdamOptimizer`` exactly, but done in place on one range,
so every thread updates only the parameters it owns.

Hyper-parameters travel in one float64 vector ``hp`` indexed by the ``HP_*``
constants (rmsprop/adamw add entries, not arguments).
"""

import math

from .._config import jit

NONE = 0  # store the gradient in ``raw`` (used by L-BFGS and the tests)
SGD = 1
ADAM = 2

SOLVER_CODES = {"sgd": SGD, "adam": ADAM}

HP_LR = 0  # sgd: current learning rate; adam: the bias-corrected rate of this step
HP_MOMENTUM = 1
HP_NESTEROV = 2
HP_BETA1 = 3
HP_BETA2 = 4
HP_EPSILON = 5
HP_ALPHA = 6
HP_CLIP_EPS = 7  # finfo(dtype).eps, for clipping probabilities in the log losses
HP_LR_INIT = 8
N_HP = 9


@jit
def step_range(params, raw, moments, p0, p1, l2, sw_sum, opt_code, hp, lr_t):
    """Apply one optimizer step to params[p0:p1].

    Shapes: params, raw (n_params,); moments (n_moments, n_params) -- sgd uses
    row 0 (velocity), adam rows 0 (m) and 1 (v).  ``lr_t`` is the learning rate
    of this step (already bias-corrected for adam).
    Mutates params and moments (or raw when opt_code == NONE).  Returns None.
    """
    # Values are rounded to the array dtype when stored, as in scikit-learn
    # (its float32 moments are float32 arrays); the loops read them back.
    if opt_code == SGD:
        mom = hp[HP_MOMENTUM]
        nesterov = hp[HP_NESTEROV] != 0.0
        vel = moments[0]
        for p in range(p0, p1):
            g = (raw[p] + l2 * params[p]) / sw_sum
            vel[p] = mom * vel[p] - lr_t * g
            if nesterov:
                params[p] += mom * vel[p] - lr_t * g
            else:
                params[p] += vel[p]
    elif opt_code == ADAM:
        b1 = hp[HP_BETA1]
        b2 = hp[HP_BETA2]
        eps = hp[HP_EPSILON]
        m = moments[0]
        v = moments[1]
        for p in range(p0, p1):
            g = (raw[p] + l2 * params[p]) / sw_sum
            m[p] = b1 * m[p] + (1.0 - b1) * g
            v[p] = b2 * v[p] + (1.0 - b2) * (g * g)
            params[p] += -lr_t * m[p] / (math.sqrt(v[p]) + eps)
    else:
        for p in range(p0, p1):
            raw[p] = (raw[p] + l2 * params[p]) / sw_sum
