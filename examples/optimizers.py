"""fastbp's own solvers next to Adam: RMSprop and AdamW on the digits data.

scikit-learn's MLP offers only 'sgd', 'adam' and 'lbfgs'; fastbp adds 'rmsprop'
(parameter ``rho``) and 'adamw' (decoupled weight decay, ``weight_decay``),
compiled into the same engine.  Same network, data split and random_state for
each; the table shows held-out accuracy, the final training loss, the size of
the weights (AdamW keeps them smaller) and the fit time.

Run:  python examples/optimizers.py
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)

solvers = {
    "adam": dict(solver="adam"),
    "rmsprop": dict(solver="rmsprop", rho=0.9),
    "adamw": dict(solver="adamw", weight_decay=0.05),
}
print(f"{'solver':<10}{'accuracy':>10}{'final loss':>12}{'||W||':>9}{'fit s':>8}")
for name, params in solvers.items():
    clf = BPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.002, max_iter=60,
                       random_state=0, **params)
    clf.fit(X_train[:50], y_train[:50])  # first call compiles (or loads) the kernels
    t = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t
    norm = np.sqrt(sum(float((W ** 2).sum()) for W in clf.coefs_))
    print(f"{name:<10}{clf.score(X_test, y_test):>10.4f}{clf.loss_:>12.4f}{norm:>9.2f}"
          f"{seconds:>8.3f}")
