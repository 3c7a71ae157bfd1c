#!/usr/bin/env python
"""What each of fastbp's own options costs: fit time next to the default fit.

Trains ``BPClassifier`` on a benchmark workload (``bench/benchmarks/common.py``)
with the default options and with each option of ``common.OPTIONS``, in the same
process, rounds alternating over the options (so a shared machine's drift
falls on all), each option warmed by one untimed fit.  Prints the median fit
time per option and its ratio to the default's, with the final training loss
(a sanity check that each option trained).

Usage (from the repository root, fastbp installed)::

    python bench/options.py                      # mnist-like, and n_init on small
    python bench/options.py --workload small --rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks import common  # noqa: E402

OPTIONS = common.OPTIONS
RESTARTS = {"n_init=1": {}, "n_init=4": dict(n_init=4)}


def measure(workload, options, dtype, rounds):
    from fastbp import BPClassifier

    X, y, _, _ = common.make_data(workload, dtype)
    base = common.estimator_params(workload, "adam")
    times = {name: [] for name in options}
    losses = {}
    for name, extra in options.items():  # warm-up: compile or load each build
        common.fit_quietly(BPClassifier(**{**base, **extra}), X[:500], y[:500])
    for _ in range(rounds):
        for name, extra in options.items():
            est = BPClassifier(**{**base, **extra})
            t = time.perf_counter()
            common.fit_quietly(est, X, y)
            times[name].append(time.perf_counter() - t)
            losses[name] = est.loss_
    return {name: statistics.median(ts) for name, ts in times.items()}, losses


def table(title, medians, losses, reference):
    print(f"\n**{title}**\n")
    print("| option | fit s (median) | / default | final loss |")
    print("|---|---:|---:|---:|")
    for name, t in medians.items():
        print(f"| {name} | {t:.3f} | {t / medians[reference]:.2f}× | {losses[name]:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist-like", choices=list(common.WORKLOADS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import numba
    import numpy
    import sklearn

    print(f"- CPU: {common.cpu_model()}, {os.cpu_count()} logical CPUs; numba threads "
          f"{numba.get_num_threads()}")
    print(f"- python {platform.python_version()}, numpy {numpy.__version__}, scikit-learn "
          f"{sklearn.__version__}, numba {numba.__version__}; {args.dtype}, "
          f"{args.rounds} rounds")
    w = common.WORKLOADS[args.workload]
    medians, losses = measure(w, OPTIONS, args.dtype, args.rounds)
    table(f"{w.name}: {w.n_samples}×{w.n_features}, {w.hidden}, batch {w.batch_size}, "
          f"{w.epochs} epoch(s)", medians, losses, "default")
    small = common.WORKLOADS["small"]
    medians, losses = measure(small, RESTARTS, args.dtype, args.rounds)
    table(f"{small.name}: {small.n_samples}×{small.n_features}, {small.hidden}, batch "
          f"{small.batch_size}, {small.epochs} epochs", medians, losses, "n_init=1")


if __name__ == "__main__":
    main()
