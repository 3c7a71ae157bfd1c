"""Full-batch, mini-batch and stochastic gradient descent on one problem.

The same network (digits, 64 -> 32 (relu) -> 10 (softmax), plain SGD on
cross-entropy, no momentum) trained with batch_size = n (full batch: one step per
epoch), 32 (mini-batch) and 1 (stochastic: one step per sample).  Per epoch, the
smaller batches take many more steps and fall faster; per second of training they
pay for every step's overhead, and the compiled loop keeps that overhead small.

Prints the final loss and the fit time of each; writes ``batch_sizes.png``: the
training loss per epoch (left) and against wall-clock seconds (right).

Run:  python examples/textbook_batch_sizes.py
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
EPOCHS = 30
runs = {}
for label, batch, lr in (("full batch (n = 1797)", X.shape[0], 0.5),
                         ("mini-batch (32)", 32, 0.05), ("stochastic (1)", 1, 0.005)):
    # n_jobs=1: the seconds compare the algorithms, not thread counts (and a 2-thread
    # region per 32-row step waits on any other busy process on a 2-core machine)
    clf = BPClassifier(hidden_layer_sizes=(32,), solver="sgd", momentum=0.0,
                       learning_rate_init=lr, batch_size=batch, alpha=0.0, max_iter=EPOCHS,
                       tol=0.0, n_iter_no_change=EPOCHS, random_state=0, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BPClassifier(**{**clf.get_params(), "max_iter": 1}).fit(X, y)  # compiles, untimed
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
    runs[label] = (np.asarray(clf.loss_curve_), seconds)
    print(f"{label:22s} lr {lr:<6} {-(-X.shape[0] // batch) * EPOCHS:6d} steps, "
          f"final loss {clf.loss_:.4f}, fit {seconds:.3f} s, accuracy {clf.score(X, y):.3f}")

fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for label, (curve, seconds) in runs.items():
    epochs = np.arange(1, curve.shape[0] + 1)
    by_epoch.plot(epochs, curve, label=label)
    by_time.plot(epochs * seconds / curve.shape[0], curve, label=label)
by_epoch.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss per epoch")
by_time.set(xlabel="seconds of training (each epoch's share of the fit)",
            title="loss per second")
by_epoch.legend()
by_time.legend()
fig.suptitle("Full-batch vs mini-batch vs stochastic gradient descent (digits, 64-32-10)")
fig.tight_layout()
fig.savefig("batch_sizes.png", dpi=100)
print("wrote batch_sizes.png")
