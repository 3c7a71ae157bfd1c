"""Compiled kernels.  Each entry point exists as a ``_serial`` and a ``_parallel``
dispatcher compiled from one Python body (``_config.jit_variants``); Python code
picks one per call (``fastbp._threads``).  Nothing compiles at import.

Each entry point also has two builds of that body: the core one (the default
path: scikit-learn's activations and losses, no dropout) and the extended one
(every option), ``network.CORE`` and ``network.EXTENDED``; ``kernels_for``
picks the build, ``uses_extended`` says when (see ``fastbp/_kernels/network.py``
for why there are two).

Calling convention: the epoch kernel takes the named structures of
``state.py`` (``TrainArgs``, in its order); the other entry points take input,
network, then outputs and buffers (mutated in place), then codes and ranges.
Kernels return None, a count or a float loss.  The float arrays of one call
share one dtype (float32 or float64) but for those always in float64 (the
per-row squared norms and losses ``rowsq`` and ``rowloss``, the optimizer's
``rate``, the dropout rates), and index arrays are int64, so an entry point has
one specialization per dtype, input kind (dense or CSR) and gradient schedule
it has run: up to six (``tests/test_compile.py`` counts them).
"""

from collections import namedtuple

from .activations import LEAKY_RELU
from .losses import EXP_POISSON
from .network import CORE, EXTENDED

# The two builds of each entry point; fastbp._threads.choose picks one per call.
KernelPair = namedtuple("KernelPair", ["serial", "parallel"])
TRAIN = KernelPair(*CORE.train)
PREDICT = KernelPair(*CORE.predict)
TRAIN_EXTENDED = KernelPair(*EXTENDED.train)
PREDICT_EXTENDED = KernelPair(*EXTENDED.predict)

DISPATCHERS = {
    "train_batches_serial": TRAIN.serial,
    "train_batches_parallel": TRAIN.parallel,
    "predict_serial": PREDICT.serial,
    "predict_parallel": PREDICT.parallel,
    "train_batches_extended_serial": TRAIN_EXTENDED.serial,
    "train_batches_extended_parallel": TRAIN_EXTENDED.parallel,
    "predict_extended_serial": PREDICT_EXTENDED.serial,
    "predict_extended_parallel": PREDICT_EXTENDED.parallel,
    "predict_rows": CORE.predict_rows,
    "predict_rows_extended": EXTENDED.predict_rows,
}


def uses_extended(act_code, out_code=0, dropout=False):
    """Whether these options need the extended kernels: an activation or a
    loss scikit-learn's MLP does not have, or dropout."""
    return act_code >= LEAKY_RELU or out_code > EXP_POISSON or bool(dropout)


def kernels_for(kind, act_code, out_code=0, dropout=False):
    """The (serial, parallel) pair of ``kind`` ("train" or "predict") that
    runs these options, or for "predict_rows" (a few dense rows, serial only)
    and "dataset_loss" (the validation loss) the one dispatcher: the one place
    a kernel build is chosen."""
    extended = uses_extended(act_code, out_code, dropout)
    if kind == "train":
        return TRAIN_EXTENDED if extended else TRAIN
    if kind == "predict":
        return PREDICT_EXTENDED if extended else PREDICT
    return getattr(EXTENDED if extended else CORE, kind)


__all__ = ["DISPATCHERS", "PREDICT", "PREDICT_EXTENDED", "TRAIN", "TRAIN_EXTENDED",
           "KernelPair", "kernels_for", "uses_extended"]
