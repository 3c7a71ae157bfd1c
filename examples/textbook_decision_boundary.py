"""A 2 -> 3 (relu) -> 1 (sigmoid) network on a two-class problem in the plane.

The smallest network that bends a decision boundary: two inputs, three relu hidden
units, one logistic output, trained on cross-entropy (BPClassifier's loss for two
classes) on scikit-learn's two interleaved half-moons.  Three relu units give a
boundary made of at most three straight pieces, and it shows.

Prints the weights and the training and test accuracy; writes
``decision_boundary.png`` (the predicted probability over the plane, the 0.5 contour
and the points).

Run:  python examples/textbook_decision_boundary.py
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier

X, y = make_moons(n_samples=400, noise=0.2, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
# (with only three relu units a start can die: every unit off for every point,
# the loss stuck at log 2; random_state=2 is a start that lives)
clf = BPClassifier(hidden_layer_sizes=(3,), activation="relu", learning_rate_init=0.03,
                   max_iter=2000, n_iter_no_change=50, tol=1e-5, random_state=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)

print("2 -> 3 (relu) -> 1 (sigmoid), cross-entropy, adam")
print("W0 (input -> hidden):\n", np.round(clf.coefs_[0], 3), "\nb0:", np.round(clf.intercepts_[0], 3))
print("W1 (hidden -> output):", np.round(clf.coefs_[1].ravel(), 3),
      " b1:", np.round(clf.intercepts_[1], 3))
print(f"epochs {clf.n_iter_}, final loss {clf.loss_:.4f}, train accuracy "
      f"{clf.score(X_train, y_train):.3f}, test accuracy {clf.score(X_test, y_test):.3f}")

xx, yy = np.meshgrid(np.linspace(-1.8, 2.8, 300), np.linspace(-1.3, 1.8, 300))
proba = clf.predict_proba(np.c_[xx.ravel(), yy.ravel()])[:, 1].reshape(xx.shape)
fig, ax = plt.subplots(figsize=(6.4, 4.8))
image = ax.contourf(xx, yy, proba, levels=20, cmap="RdBu_r", alpha=0.75)
ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1.5)
for label, marker in ((0, "o"), (1, "^")):
    ax.scatter(*X[y == label].T, marker=marker, edgecolor="k", linewidth=0.5, s=25,
               label=f"class {label}", c=["tab:blue", "tab:red"][label])
fig.colorbar(image, ax=ax, label="P(class 1)")
ax.set(xlabel="x1", ylabel="x2", title="2 -> 3 (relu) -> 1 (sigmoid): decision boundary")
ax.legend(loc="lower left")
fig.savefig("decision_boundary.png", dpi=100)
print("wrote decision_boundary.png")
