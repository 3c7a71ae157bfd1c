"""Compiled kernels.  Each entry point exists as a ``_serial`` and a ``_parallel``
dispatcher compiled from one Python body (``_config.jit_variants``); Python code
picks one per call (``fastbp._threads``).  Nothing compiles at import.

Each entry point also has two builds of that body: the core one (the default
path: scikit-learn's activations and losses, no dropout) and the extended one
(every option); ``kernels_for`` picks the build, ``uses_extended`` says when
(see ``fastbp/_kernels/network.py`` for why there are two).

Calling convention: read-only inputs, then parameters, workspaces and outputs
(mutated in place), then integer codes, hyper-parameters and ranges.  Kernels
return None or a float loss.  The float arrays of one call share one dtype
(float32 or float64) but for those always in float64 (the per-row squared
norms and losses ``rowsq`` and ``rowloss``, ``hyper``, the dropout rates), and
index arrays are int64, so an entry point has one specialization per dtype,
input kind (dense or CSR) and gradient schedule it has run: up to six
(``tests/test_compile.py`` counts them).
"""

from collections import namedtuple

from .activations import LEAKY_RELU
from .losses import EXP_POISSON
from .network import (
    dataset_loss,
    dataset_loss_extended,
    predict_extended_parallel,
    predict_extended_serial,
    predict_parallel,
    predict_rows,
    predict_rows_extended,
    predict_serial,
    train_batches_extended_parallel,
    train_batches_extended_serial,
    train_batches_parallel,
    train_batches_serial,
)

# The two builds of each entry point; fastbp._threads.choose picks one per call.
KernelPair = namedtuple("KernelPair", ["serial", "parallel"])
TRAIN = KernelPair(train_batches_serial, train_batches_parallel)
PREDICT = KernelPair(predict_serial, predict_parallel)
TRAIN_EXTENDED = KernelPair(train_batches_extended_serial, train_batches_extended_parallel)
PREDICT_EXTENDED = KernelPair(predict_extended_serial, predict_extended_parallel)

DISPATCHERS = {
    "train_batches_serial": train_batches_serial,
    "train_batches_parallel": train_batches_parallel,
    "predict_serial": predict_serial,
    "predict_parallel": predict_parallel,
    "train_batches_extended_serial": train_batches_extended_serial,
    "train_batches_extended_parallel": train_batches_extended_parallel,
    "predict_extended_serial": predict_extended_serial,
    "predict_extended_parallel": predict_extended_parallel,
    "predict_rows": predict_rows,
    "predict_rows_extended": predict_rows_extended,
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
    if kind == "predict_rows":
        return predict_rows_extended if extended else predict_rows
    if kind == "dataset_loss":
        return dataset_loss_extended if extended else dataset_loss
    return PREDICT_EXTENDED if extended else PREDICT


__all__ = ["DISPATCHERS", "PREDICT", "PREDICT_EXTENDED", "TRAIN", "TRAIN_EXTENDED",
           "KernelPair", "kernels_for", "uses_extended"]
