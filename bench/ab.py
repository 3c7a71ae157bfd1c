#!/usr/bin/env python
"""A/B fit time of two fastbp source trees on the benchmark workloads.

For a change to the engine ("the hot loop must not get slower"): times fastbp
from two checkouts, each in its own fresh interpreter with ``PYTHONPATH`` set
to the tree (so the installed fastbp is shadowed) and its own numba cache.
Rounds alternate between the trees (A B A B ...) so that drift of a shared
machine falls on both; each round warms the kernels with one fit, then times
``--fits`` fits.  Prints the median of all timed fits per tree and the ratio
B / A, and checks that both trees trained the same model (final loss).

Usage (from the repository root)::

    git worktree add /tmp/base HEAD~3      # or: git clone . /tmp/base && git -C /tmp/base checkout REV
    python bench/ab.py /tmp/base . --workloads small,mnist-like --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, {bench!r})
from benchmarks import common
import numpy as np
warnings.simplefilter("ignore")
w = common.WORKLOADS[{workload!r}]
X, y, _, _ = common.make_data(w, {dtype!r})
times, losses = [], []
for i in range({fits} + 1):
    est = common.make_estimator("fastbp", w, {solver!r})
    t = time.perf_counter()
    common.fit_quietly(est, X, y)
    if i:  # the first fit loads (or compiles) the kernels
        times.append(time.perf_counter() - t)
        losses.append(float(est.loss_))
import fastbp
print(json.dumps({{"times": times, "loss": losses[-1], "file": fastbp.__file__}}))
"""


def run(tree, bench, workload, solver, dtype, fits):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree),
               NUMBA_CACHE_DIR=os.path.join(os.path.abspath(tree), ".ab-numba-cache"))
    code = CHILD.format(bench=bench, workload=workload, solver=solver, dtype=dtype, fits=fits)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=os.path.abspath(tree),
                         capture_output=True,
                         text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = os.path.join(os.path.abspath(tree), "fastbp", "__init__.py")
    if os.path.abspath(result["file"]) != expected:
        raise SystemExit(f"{tree}: imported {result['file']}, not the tree's fastbp")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="source tree A (the reference)")
    p.add_argument("head", help="source tree B (the change)")
    p.add_argument("--workloads", default="small,mnist-like,deep")
    p.add_argument("--solvers", default="sgd,adam")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds (default 3)")
    p.add_argument("--fits", type=int, default=3, help="timed fits per round (default 3)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.fits < 1:
        p.error("--rounds and --fits must be >= 1")

    bench = os.path.dirname(os.path.abspath(__file__))
    print(f"| workload | solver | {args.dtype} A s | B s | B / A | loss A | loss B |")
    print("|---|---|---|---|---|---|---|")
    for workload in args.workloads.split(","):
        for solver in args.solvers.split(","):
            times = {"A": [], "B": []}
            loss = {}
            for _ in range(args.rounds):
                for name, tree in (("A", args.base), ("B", args.head)):
                    r = run(tree, bench, workload, solver, args.dtype, args.fits)
                    times[name] += r["times"]
                    loss[name] = r["loss"]
            a, b = statistics.median(times["A"]), statistics.median(times["B"])
            print(f"| {workload} | {solver} | {a:.4f} | {b:.4f} | {b / a:.3f} | "
                  f"{loss['A']:.6f} | {loss['B']:.6f} |", flush=True)


if __name__ == "__main__":
    main()
