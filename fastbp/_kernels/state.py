"""The named state the compiled kernels take: what travels together is one name.

numba takes a namedtuple as one argument and types it field by field (its
arrays keep their dtype and layout, its scalars their type), so a kernel that
reads ``work.deltas`` compiles to the same loads as one handed ``deltas``
alone.  Every field's Python type must be the same on every call (a float
field always given a float, an int field an int): another type would compile
another specialization.  The constructors below (and ``fastbp._optim``,
``fastbp._network``, ``fastbp._training``, which build them) take care of it.

One mini-batch, top-down (``fastbp._kernels.network``)::

    train_batches(batches, csr, model, layout, work, partials, optimizer, state,
                  loss, dropout)
      for each mini-batch of ``batches``:
        region 1, per row block ``rows``:  forward_backward_rows -> work.acts, work.deltas
        then the gradient and the step:    owned_gradient_and_step or
                                           sum_partials_and_step -> model.params, state

Two arguments select code by their type, and only these, because numba's
dead branch pruning decides a test before typing only on an *argument* (not a
namedtuple's field): ``csr`` is None for dense input (``csr is None`` prunes
the CSR products from the dense specialization), and ``partials`` is a (J,
n_params) array on the per-block-partials schedule but an empty 1-D array on
the parameter-owned one: numba rewrites ``partials.ndim == 2`` to a constant
and prunes either schedule's code from the other's specialization (a None
there would prune the partials code only: ``x is not None`` on an array is
not decided, which compiled the owned step into every small fit).  CSR input
takes the owned schedule whatever ``partials`` is (the partials would need a
dense input block).

What a ``prange`` body reads must be a flat namedtuple argument of the
function (or one the body builds): numba 0.68's parfor lowering failed on a
namedtuple the function built before the loop (a NameError on its class) and
on a namedtuple nested in another ("scalar type ... given for non scalar
argument").  So the ``Layout`` is an argument of its own (Python computes it
with the workspace), nothing nests, and ``Rows`` and ``Step`` are built
inside the parallel loops.
"""

from collections import namedtuple

import numpy as np

# The mini-batches [lo, hi) of an epoch: dense input ``X`` (n, n_features),
# an empty (0, n_features) array when the input is CSR; targets ``Y`` (n,
# n_out); sample weights ``sw`` (n,); ``order`` the epoch's sample indices,
# mini-batch b being order[b*size : (b+1)*size]; ``loss_sum`` the loss summed
# over the epoch's earlier mini-batches (the kernel continues the sum).
Batches = namedtuple("Batches", ["X", "Y", "sw", "order", "size", "lo", "hi", "loss_sum"])

# CSR input (data, indices, indptr; int64 indices), read in place.
CSR = namedtuple("CSR", ["data", "indices", "indptr"])

# The network a kernel runs: layer widths ``sizes`` int64 (L+1,), input first;
# the flat ``params`` (every W_l raveled, then every b_l: scikit-learn's
# ``_pack`` order); the hidden layers' activation code.
Model = namedtuple("Model", ["sizes", "params", "act_code"])

# Where each layer's matrices start in the flat buffers (``network_layout`` computes it:
# the one place an offset is computed).  W_l at w_off[l] and b_l at b_off[l]
# in ``params`` and ``grad_sums``; unit layer k's (cap, sizes[k]) activation
# matrix at a_off[k] in ``acts``, its delta matrix at d_off[k] in ``deltas`` (and
# ``pre``); W_l's first row at sq_off[l] in ``rowsq``; ``n_layers`` = L.  A
# workspace's layout is computed with it (``fastbp._network.Workspace.layout``).
Layout = namedtuple("Layout", ["sizes", "w_off", "b_off", "a_off", "d_off", "sq_off",
                               "n_layers"])

# A training workspace's buffers (``fastbp._network.Workspace.buffers``):
# ``acts``/``deltas`` the per-layer matrices (where: the workspace's
# ``Layout``), ``grad_sums`` the batch's gradient sums laid out like
# ``params``, ``rowsq`` float64 per-row squared norms of the weights,
# ``rowloss`` float64 per-row losses, ``pre`` f'(z) where the backward pass
# cannot get it from the activations (laid out like ``deltas``; empty when
# nothing needs it), ``n_blocks`` the work blocks per mini-batch.
Buffers = namedtuple("Buffers", ["acts", "deltas", "grad_sums", "rowsq", "rowloss", "pre",
                                 "n_blocks"])

# An optimizer's constants (``fastbp._optim``): its code
# (``fastbp._kernels.optimizers``) and hyper-parameters, all floats.
Optimizer = namedtuple("Optimizer", ["code", "lr_init", "momentum", "nesterov", "beta_1",
                                     "beta_2", "epsilon", "rho", "weight_decay"])

# What an optimizer carries from step to step, and the kernel writes:
# ``moments`` (n_moments, n_params); ``step`` int64 (1,) steps taken (Adam's
# t); ``rate`` float64 (1,) the learning rate of the steps (Python sets it for
# sgd's schedules; the kernel leaves Adam's bias-corrected rate of its last
# step there).
OptimizerState = namedtuple("OptimizerState", ["moments", "step", "rate"])

# The loss a kernel minimizes: output code (``fastbp._kernels.losses``), the
# L2 penalty ``alpha``, ``clip_eps`` (the log losses' clipping: the dtype's
# eps), and the huber loss's threshold.
Loss = namedtuple("Loss", ["code", "alpha", "clip_eps", "huber_delta"])

# Dropout: ``rates`` float64 (L-1,) per hidden layer (zeros: no dropout), and
# ``key`` int64 (2,) the masks' seed and the epoch (``fastbp._kernels.dropout``).
Dropout = namedtuple("Dropout", ["rates", "key"])

# Rows [r0, r1) of a mini-batch of ``n`` rows, ``idx`` their sample indices:
# the rows one work block of region 1 owns.
Rows = namedtuple("Rows", ["idx", "r0", "r1", "n"])

# Where a hidden layer's rows are, for the extended build's leaves (f'(z) in
# ``pre`` at ``pre_start``, the dropout mask of ``layer``); the core leaves
# take it and do not read it (one body links either build's leaves).
HiddenRows = namedtuple("HiddenRows", ["layer", "rows", "pre", "pre_start", "dropout"])

# One mini-batch's step: its sample indices and row count, the sum of its
# sample weights (the gradient's divisor) and the step's learning rate.
Step = namedtuple("Step", ["idx", "n", "sw_sum", "lr"])

# The epoch kernel's parameters, in order: ``kernel(*TrainArgs(...))``.
TrainArgs = namedtuple("TrainArgs", ["batches", "csr", "model", "layout", "work", "partials",
                                     "optimizer", "state", "loss", "dropout"])


def optimizer(code, lr_init=0.0, momentum=0.0, nesterov=False, beta_1=0.0, beta_2=0.0,
              epsilon=0.0, rho=0.0, weight_decay=0.0):
    """An ``Optimizer`` with every hyper-parameter a float (one kernel type)."""
    return Optimizer(int(code), float(lr_init), float(momentum), 1.0 if nesterov else 0.0,
                     float(beta_1), float(beta_2), float(epsilon), float(rho),
                     float(weight_decay))


def optimizer_state(n_moments, n_params, dtype):
    """A fresh ``OptimizerState``: zero moments, no step taken, rate 0."""
    return OptimizerState(np.zeros((n_moments, n_params), dtype=dtype),
                          np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float64))


def loss(code, alpha, dtype, huber_delta=1.0):
    """The ``Loss`` of output code ``code`` for weights of ``dtype``."""
    return Loss(int(code), float(alpha), float(np.finfo(dtype).eps), float(huber_delta))


def no_dropout(n_hidden):
    """``Dropout`` that drops nothing: every rate 0 (the key is then never read)."""
    return Dropout(np.zeros(n_hidden, dtype=np.float64), np.zeros(2, dtype=np.int64))
