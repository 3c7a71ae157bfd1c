"""Optimizer state and learning-rate schedules (per epoch, in Python).

Same protocol and attribute names as scikit-learn's ``_stochastic_optimizers``
(``learning_rate``, ``iteration_ends(time_step)``, ``trigger_stopping(msg,
verbose)``), but the moment buffers are flat arrays the compiled epoch updates
in place.  What the kernel reads is ``kernel`` (the optimizer's constants, a
``fastbp._kernels.state.Optimizer``) and ``state`` (moments, step counter and
the learning rate of the steps: an ``OptimizerState`` the kernel writes).
"""


import copy

from ._kernels import optimizers as optimizer_kernels
from ._kernels import state as kernel_state

__all__ = ["AdamOptimizer", "AdamWOptimizer", "RMSpropOptimizer", "SGDOptimizer",
           "make_optimizer"]


class _BaseOptimizer:
    n_moments = 0
    code = optimizer_kernels.NONE

    def __init__(self, n_params, dtype, learning_rate_init, **constants):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.kernel = kernel_state.optimizer(self.code, learning_rate_init, **constants)
        self.state = kernel_state.optimizer_state(self.n_moments, n_params, dtype)

    @property
    def moments(self):
        return self.state.moments

    def copy(self):
        """A copy with state arrays of its own (the kernel updates them in place)."""
        new = copy.copy(self)
        new.state = kernel_state.OptimizerState(*(a.copy() for a in self.state))
        return new

    def start_batches(self):
        """Hand the kernel this epoch's learning rate (``state.rate``)."""
        self.state.rate[0] = self.learning_rate

    def after_batches(self):
        """Sync Python-side attributes after a compiled call."""

    def iteration_ends(self, time_step):
        """Per-epoch schedule hook; ``time_step`` is the number of samples seen."""

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDOptimizer(_BaseOptimizer):
    """SGD with momentum (optionally Nesterov) and constant/invscaling/adaptive rate."""

    n_moments = 1
    code = optimizer_kernels.SGD

    def __init__(self, n_params, dtype, learning_rate_init=0.1, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5):
        super().__init__(n_params, dtype, learning_rate_init, momentum=momentum,
                         nesterov=nesterov)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_BaseOptimizer):
    """Adam (Kingma & Ba, 2014) with scikit-learn's bias-corrected step size."""

    n_moments = 2
    code = optimizer_kernels.ADAM

    def __init__(self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, **constants):
        super().__init__(n_params, dtype, learning_rate_init, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **constants)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    @property
    def t(self):
        """Steps taken (the kernel counts them in ``state.step``)."""
        return int(self.state.step[0])

    def after_batches(self):
        # The kernel leaves the rate of its last step in state.rate (one
        # source: no second formula here that could round differently).
        if self.t > 0:
            self.learning_rate = float(self.state.rate[0])


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): before each
    Adam step the weights (not the intercepts) shrink by
    ``learning_rate_init * weight_decay`` of themselves."""

    code = optimizer_kernels.ADAMW

    def __init__(self, n_params, dtype, learning_rate_init=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, weight_decay=0.01):
        super().__init__(n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon,
                         weight_decay=weight_decay)
        self.weight_decay = weight_decay


class RMSpropOptimizer(_BaseOptimizer):
    """RMSprop (Tieleman & Hinton, 2012) at a constant ``learning_rate_init``:
    v <- rho v + (1 - rho) g^2, w <- w - lr g / (sqrt(v) + epsilon)."""

    n_moments = 1
    code = optimizer_kernels.RMSPROP

    def __init__(self, n_params, dtype, learning_rate_init=0.001, rho=0.9, epsilon=1e-8):
        super().__init__(n_params, dtype, learning_rate_init, rho=rho, epsilon=epsilon)
        self.rho = rho
        self.epsilon = epsilon


def make_optimizer(est, n_params, dtype):
    if est.solver == "sgd":
        return SGDOptimizer(n_params, dtype, est.learning_rate_init, est.learning_rate,
                            est.momentum, est.nesterovs_momentum, est.power_t)
    if est.solver == "rmsprop":
        return RMSpropOptimizer(n_params, dtype, est.learning_rate_init, est.rho,
                                est.epsilon)
    if est.solver == "adamw":
        return AdamWOptimizer(n_params, dtype, est.learning_rate_init, est.beta_1,
                              est.beta_2, est.epsilon, est.weight_decay)
    return AdamOptimizer(n_params, dtype, est.learning_rate_init, est.beta_1,
                         est.beta_2, est.epsilon)
