"""Training and validation curves on the digits, with and without dropout.

A wide network (64 -> 256 (relu) -> 10) on scikit-learn's 8x8 digits, early stopping on
a 20% validation split, trained with no dropout and with dropout=0.3.  Without dropout
the training loss keeps falling while the validation loss levels off (the network
memorizes); with dropout the training loss falls more slowly and the gap between the
two is somewhat smaller (here, also a slightly better test accuracy).  The curves
are ``LossCurveDisplay``'s: training loss and validation loss on one axis, validation
accuracy on the other.

Prints the epochs run, the best validation accuracy and the test accuracy of each;
writes ``digits_curves_dropout.png`` (the two fits side by side).

Run:  python examples/digits_curves_dropout.py
"""

import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier
from fastbp.plotting import LossCurveDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.3,
                                                    random_state=0)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for ax, dropout in zip(axes, (0.0, 0.3)):
    clf = BPClassifier(hidden_layer_sizes=(256,), dropout=dropout, early_stopping=True,
                       validation_fraction=0.2, n_iter_no_change=25, max_iter=150,
                       learning_rate_init=3e-3, validation_metric="loss", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    print(f"dropout={dropout}: {clf.n_iter_} epochs, best validation loss "
          f"{clf.best_validation_loss_:.4f}, best validation accuracy "
          f"{max(clf.validation_scores_):.3f}, test accuracy {clf.score(X_test, y_test):.3f}, "
          f"final training loss {clf.loss_:.4f}")
    display = LossCurveDisplay.from_estimator(clf, ax=ax, name=f"dropout={dropout}")
    display.ax_score_.set_ylabel("validation accuracy")
    ax.set_yscale("log")
    lines = list(display.lines_.values())  # (lower left: empty on a falling log loss)
    ax.legend(lines, [line.get_label() for line in lines], loc="lower left")
fig.suptitle("Digits, 64 -> 256 (relu) -> 10: training vs validation, with and without "
             "dropout")
fig.tight_layout()
fig.savefig("digits_curves_dropout.png", dpi=100)
print("wrote digits_curves_dropout.png")
