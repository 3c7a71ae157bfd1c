"""Fit time of BPClassifier and scikit-learn's MLPClassifier as the data grows.

The same model -- 64 features -> 100 (relu) -> 5 classes (softmax), Adam, mini-batches
of 200, the same ``random_state`` -- trained for a fixed number of epochs on 500 to 8000
rows of synthetic ``make_classification`` data (float64).  Both start from the same
weights and visit the same mini-batches, so they fit the same model (the weights agree
to rounding, ~1e-16); only the time differs.  scikit-learn runs each mini-batch through
numpy, paying Python's and numpy's per-call overhead on every one (a large part of its
time on a network this small); fastbp runs every mini-batch of an epoch inside one
compiled call.  Both times grow linearly with the rows, so their ratio stays about the
same over the sizes (3.3-3.7x here, on a quiet machine).  Both run on one core
(``n_jobs=1``; numpy's BLAS limited to one thread with threadpoolctl), so the times
compare the code, not thread scheduling on a machine whose other cores may be busy:
``thread_scaling.py`` shows what threads add.

Prints per size the best of 5 fit times of each and their ratio, then the test
accuracy of both at the largest size and the largest weight difference; writes
``fit_time_vs_size.png``: fit time against rows on log-log axes (left) and the
speed-up, scikit-learn's time over fastbp's (right).

Run:  python examples/fit_time_vs_size.py
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import BPClassifier

EPOCHS = 10
REPEATS = 5
ROWS = [500, 1000, 2000, 4000, 8000]

X, y = make_classification(n_samples=max(ROWS) + 2000, n_features=64, n_informative=32,
                           n_classes=5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=2000, random_state=0)

# Compiles (or loads from the disk cache) fastbp's float64 kernels, so no timed fit
# pays for compilation.
fastbp.precompile(dtypes=("float64",), parallel=False)

# tol=0 and n_iter_no_change=EPOCHS: every fit trains exactly EPOCHS epochs
params = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=EPOCHS, tol=0.0,
              n_iter_no_change=EPOCHS, random_state=0)
bp_params = dict(params, n_jobs=1)
print(f"{X.shape[1]} -> 100 (relu) -> 5, adam, batch 200, {EPOCHS} epochs, "
      f"best of {REPEATS} fits, one thread each")
print(f"{'rows':>6} {'sklearn s':>10} {'fastbp s':>9} {'ratio':>6}")
seconds = {"MLPClassifier": [], "BPClassifier": []}
last = {}  # name -> the last model fitted (on the most rows, in the end)
for rows in ROWS:
    best = {}
    for name, cls in (("MLPClassifier", MLPClassifier), ("BPClassifier", BPClassifier)):
        times = []
        for _ in range(REPEATS):
            model = cls(**(params if cls is MLPClassifier else bp_params))
            # one thread each: numpy's BLAS (MLPClassifier) and n_jobs=1 (fastbp, which
            # pins BLAS to one thread itself)
            with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
                warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the plan
                start = time.perf_counter()
                model.fit(X_train[:rows], y_train[:rows])
                times.append(time.perf_counter() - start)
        best[name], last[name] = min(times), model
    for name in seconds:
        seconds[name].append(best[name])
    print(f"{rows:6d} {best['MLPClassifier']:10.3f} {best['BPClassifier']:9.3f} "
          f"{best['MLPClassifier'] / best['BPClassifier']:5.1f}x")

sk_model, bp_model = last["MLPClassifier"], last["BPClassifier"]
difference = max(np.abs(a - b).max() for a, b in zip(sk_model.coefs_, bp_model.coefs_))
print(f"at {ROWS[-1]} rows: test accuracy MLPClassifier {sk_model.score(X_test, y_test):.4f}, "
      f"BPClassifier {bp_model.score(X_test, y_test):.4f}; largest weight difference "
      f"{difference:.1e}")

fig, (ax_time, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2))
for (name, values), marker in zip(seconds.items(), ("s", "o")):
    ax_time.plot(ROWS, values, marker=marker, label=name)
ax_time.set(xscale="log", yscale="log", xlabel="training rows", ylabel="fit time (s)",
            title=f"fit time, {EPOCHS} epochs, one thread (best of {REPEATS})")
ax_time.set_xticks(ROWS, [str(r) for r in ROWS])
ax_time.set_xticks([], minor=True)  # (their "6x10^2" labels would overlap the rows')
ax_time.legend()
ax_time.grid(alpha=0.3, which="both")
ratio = np.array(seconds["MLPClassifier"]) / np.array(seconds["BPClassifier"])
ax_ratio.plot(ROWS, ratio, "o-", color="C2")
ax_ratio.axhline(1.0, color="k", linestyle="--", linewidth=1)
ax_ratio.text(ROWS[0], 1.0, " equal fit times", va="bottom")
ax_ratio.set(xscale="log", xlabel="training rows",
             ylabel="speed-up (MLPClassifier s / BPClassifier s)",
             ylim=(0, 1.15 * max(ratio.max(), 1.0)),
             title="how many times faster fastbp fits")
ax_ratio.set_xticks(ROWS, [str(r) for r in ROWS])
ax_ratio.set_xticks([], minor=True)
ax_ratio.grid(alpha=0.3)
fig.suptitle("BPClassifier vs MLPClassifier: 64 -> 100 (relu) -> 5, adam")
fig.tight_layout()
fig.savefig("fit_time_vs_size.png", dpi=100)
print("wrote fit_time_vs_size.png")
