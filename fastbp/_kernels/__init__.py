"""Compiled kernels.  Each entry point exists as a ``_serial`` and a ``_parallel``
dispatcher compiled from one Python body (``_config.jit_variants``); Python code
picks one per call (``fastbp._threads``).  Nothing compiles at import.

Calling convention: read-only inputs, then parameters, workspaces and outputs
(mutated in place), then integer codes, hyper-parameters and ranges.  Kernels
return None or a float loss.  All float arrays of one call share one dtype
(float32 or float64), index arrays are int64, so each dispatcher has at most
two specializations.
"""

from collections import namedtuple

from .network import (
    predict_parallel,
    predict_serial,
    train_batches_parallel,
    train_batches_serial,
)

# The two builds of each entry point; fastbp._threads.choose picks one per call.
KernelPair = namedtuple("KernelPair", ["serial", "parallel"])
TRAIN = KernelPair(train_batches_serial, train_batches_parallel)
PREDICT = KernelPair(predict_serial, predict_parallel)

DISPATCHERS = {
    "train_batches_serial": train_batches_serial,
    "train_batches_parallel": train_batches_parallel,
    "predict_serial": predict_serial,
    "predict_parallel": predict_parallel,
}

__all__ = ["DISPATCHERS", "PREDICT", "TRAIN", "KernelPair", "predict_parallel",
           "predict_serial", "train_batches_parallel", "train_batches_serial"]
