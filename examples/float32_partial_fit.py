"""Out-of-core style training with partial_fit on float32 data, then checking that
nothing was upcast and that the result is the same whatever the thread count.

Run:  python examples/float32_partial_fit.py
"""

import numpy as np
from sklearn.datasets import make_classification

from fastbp import BPClassifier

X, y = make_classification(n_samples=20000, n_features=40, n_informative=20,
                           n_classes=4, random_state=0)
X = X.astype(np.float32)
classes = np.unique(y)


def train(n_jobs):
    clf = BPClassifier(hidden_layer_sizes=(128, 64), random_state=0, n_jobs=n_jobs)
    for epoch in range(5):
        for start in range(0, len(X), 5000):  # stream the data in chunks
            clf.partial_fit(X[start:start + 5000], y[start:start + 5000], classes=classes)
    return clf


one, two = train(1), train(2)
print("weights dtype:", one.coefs_[0].dtype, "| predict_proba dtype:",
      one.predict_proba(X[:5]).dtype)
print("training accuracy:", round(one.score(X, y), 4))
print("n_jobs=1 and n_jobs=2 give identical weights:",
      all(np.array_equal(a, b) for a, b in zip(one.coefs_, two.coefs_)))
