"""fastbp's extra activations and losses.

1. Hidden activations: scikit-learn's 'relu' next to fastbp's 'leaky_relu',
   'elu', 'softplus' and 'gelu' (tanh approximation), same network, data split
   and random_state on the digits data: test accuracy, final training loss
   and fit time.
2. BPClassifier(loss='squared_error'): the classic backpropagation
   formulation (half squared error on the softmax output), next to the
   default cross-entropy 'log_loss'.  The two ``loss_`` values are different
   quantities; compare the test columns.
3. BPRegressor(loss='absolute_error' | 'huber', huber_delta=...) next to
   'squared_error' on a regression problem where 5% of the training targets are
   corrupted by +-10 standard deviations: test MAE and R^2 on the clean test
   targets, trained on the clean and on the corrupted targets.

Run:  python examples/activations_losses.py
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier, BPRegressor

warnings.simplefilter("ignore", ConvergenceWarning)


def timed_fit(est, X, y):
    est.fit(X[:50], y[:50])  # the first call compiles (or loads) this kernel
    t = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t


X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)

print("hidden activation, BPClassifier((64,)), adam, 60 epochs")
print(f"{'activation':<12}{'test acc':>10}{'final loss_':>13}{'fit s':>8}")
for activation in ("relu", "leaky_relu", "elu", "softplus", "gelu"):
    clf = BPClassifier(hidden_layer_sizes=(64,), activation=activation, max_iter=60,
                       random_state=0)
    seconds = timed_fit(clf, X_train, y_train)
    print(f"{activation:<12}{clf.score(X_test, y_test):>10.4f}{clf.loss_:>13.4f}"
          f"{seconds:>8.3f}")

print("\nclassifier loss, BPClassifier((64,)), adam, 60 epochs")
print(f"{'loss':<15}{'test acc':>10}{'test log-loss':>15}{'final loss_':>13}"
      f"{'fit s':>8}")
for loss in ("log_loss", "squared_error"):
    clf = BPClassifier(hidden_layer_sizes=(64,), loss=loss, max_iter=60, random_state=0)
    seconds = timed_fit(clf, X_train, y_train)
    test_log_loss = log_loss(y_test, clf.predict_proba(X_test))
    print(f"{loss:<15}{clf.score(X_test, y_test):>10.4f}{test_log_loss:>15.4f}"
          f"{clf.loss_:>13.4f}{seconds:>8.3f}")

# Regression with outliers: targets in units of their standard deviation, then
# 5% of the training targets moved by +-10 of those units.
X, y = make_regression(n_samples=2000, n_features=10, n_informative=8, noise=5.0,
                       random_state=0)
y = y / y.std()
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
rng = np.random.RandomState(0)
corrupted = rng.choice(y_train.shape[0], y_train.shape[0] // 20, replace=False)
y_corrupted = y_train.copy()
y_corrupted[corrupted] += 10.0 * rng.choice([-1.0, 1.0], corrupted.shape[0])

print(f"\nregression, {corrupted.shape[0]} of {y_train.shape[0]} training targets "
      "corrupted; scores on the clean test targets")
print(f"{'':<24}{'------ clean ------':>20}{'---- corrupted ----':>20}")
print(f"{'loss':<24}{'MAE':>10}{'R^2':>10}{'MAE':>10}{'R^2':>10}{'fit s, both':>13}")
losses = [("squared_error", {}), ("absolute_error", {}),
          ("huber", {"huber_delta": 1.0}), ("huber", {"huber_delta": 0.2})]
for loss, extra in losses:
    row, seconds = [], 0.0
    for target in (y_train, y_corrupted):
        reg = BPRegressor(loss=loss, hidden_layer_sizes=(64,), max_iter=300,
                          random_state=0, **extra)
        seconds += timed_fit(reg, X_train, target)
        pred = reg.predict(X_test)
        row += [mean_absolute_error(y_test, pred), r2_score(y_test, pred)]
    name = loss + (f" (delta={extra['huber_delta']})" if extra else "")
    print(f"{name:<24}" + "".join(f"{v:>10.4f}" for v in row) + f"{seconds:>13.3f}")
