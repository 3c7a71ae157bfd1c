"""Dropout and restarts (n_init) on the digits data.

``dropout`` drops each hidden unit with probability p in training (inverted
dropout: kept units are scaled by 1 / (1 - p), so ``predict`` is the plain
forward pass); give one rate for every hidden layer or one per hidden layer.
Only the stochastic solvers take it (solver='lbfgs' refuses dropout > 0).  A
wide network that fits the training set perfectly is shown with no dropout,
0.2, 0.5 and [0.5, 0.2] per layer: train and test accuracy, test log-loss,
epochs run and fit time.

``n_init`` trains from several initial weights and keeps the start with the
lowest final training loss (with early stopping: the best validation score);
``init_losses_``, ``init_validation_scores_`` and ``best_init_`` tell how the
starts ended.  Start 0 is exactly the n_init=1 fit, and a fit with the same
random_state is bitwise reproducible on one machine, dropout included.

Run:  python examples/dropout_restarts.py
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
# the first fit compiles (or loads) the training kernels, with and without dropout
for p in (0.0, 0.5):
    BPClassifier(hidden_layer_sizes=(8, 8), dropout=p, max_iter=5,
                 random_state=0).fit(X_train[:50], y_train[:50])

common = dict(hidden_layer_sizes=(256, 128), alpha=0.0, max_iter=200, random_state=0)
print("dropout on a wide network (256, 128), adam, alpha=0")
print(f"{'dropout':<12}{'train acc':>11}{'test acc':>10}{'test log-loss':>15}"
      f"{'epochs':>8}{'fit s':>8}")
for dropout in (0.0, 0.2, 0.5, [0.5, 0.2]):
    clf = BPClassifier(dropout=dropout, **common)
    t = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t
    test_log_loss = log_loss(y_test, clf.predict_proba(X_test))
    print(f"{str(dropout):<12}{clf.score(X_train, y_train):>11.4f}"
          f"{clf.score(X_test, y_test):>10.4f}{test_log_loss:>15.4f}{clf.n_iter_:>8}"
          f"{seconds:>8.3f}")

try:
    BPClassifier(solver="lbfgs", dropout=0.2).fit(X_train, y_train)
except ValueError as exc:
    print(f"\nsolver='lbfgs', dropout=0.2 -> ValueError: {str(exc)[:60]}...")

# Restarts: a small network trained briefly, where the initial weights matter.
small = dict(hidden_layer_sizes=(16,), max_iter=15, learning_rate_init=0.003,
             random_state=0)
print("\nn_init on a small network (16,), 15 epochs")
print(f"{'n_init':<8}{'best_init_':>11}{'loss_':>9}{'test acc':>10}{'fit s':>8}"
      "  init_losses_")
fits = {}
for n_init in (1, 5):
    clf = BPClassifier(n_init=n_init, **small)
    t = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t
    fits[n_init] = clf
    losses = np.array2string(clf.init_losses_, precision=4, separator=", ")
    print(f"{n_init:<8}{clf.best_init_:>11}{clf.loss_:>9.4f}"
          f"{clf.score(X_test, y_test):>10.4f}{seconds:>8.3f}  {losses}")
assert fits[5].init_losses_[0] == fits[1].loss_  # start 0 is the n_init=1 fit

clf = BPClassifier(n_init=5, early_stopping=True, **small).fit(X_train, y_train)
scores = np.array2string(clf.init_validation_scores_, precision=4, separator=", ")
print(f"with early_stopping=True: best_init_={clf.best_init_}, "
      f"init_validation_scores_={scores}, test acc {clf.score(X_test, y_test):.4f}")

# Reproducibility: the same random_state gives bitwise the same model.
params = dict(hidden_layer_sizes=(64, 32), dropout=[0.5, 0.2], n_init=3, max_iter=10,
              random_state=42)
a = BPClassifier(**params).fit(X_train, y_train)
b = BPClassifier(**params).fit(X_train, y_train)
assert all(np.array_equal(wa, wb) for wa, wb in zip(a.coefs_, b.coefs_))
assert all(np.array_equal(ba, bb) for ba, bb in zip(a.intercepts_, b.intercepts_))
print("\ntwo fits with dropout=[0.5, 0.2], n_init=3, random_state=42: coefs_ identical")
