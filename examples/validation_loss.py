"""Early stopping on the validation loss instead of the validation score.

With ``early_stopping=True`` a fit records, per epoch, the training loss
(``loss_curve_``), the validation score (``validation_scores_``, accuracy
here) and the validation loss (``validation_loss_curve_``: the training
loss's formula on the held-out samples).  ``validation_metric='score'``
(scikit-learn's rule) stops when the score has not improved by ``tol`` for
``n_iter_no_change`` epochs and restores the best-scoring weights;
``validation_metric='loss'`` does the same with the validation loss (lower is
better, ``best_validation_loss_``).  On a small validation set accuracy moves
in steps of one sample and stalls early, while the loss keeps improving.

Both fits below use the same random_state, so they see the same validation
split and mini-batches and their curves agree epoch for epoch until the
'score' fit stops.  The table shows both curves every few epochs, the epoch at
which each fit stopped and the epoch whose weights each one kept.

Run:  python examples/validation_loss.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastbp import BPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

fits = {}
for metric in ("score", "loss"):
    fits[metric] = BPClassifier(
        hidden_layer_sizes=(128,), alpha=0.0, max_iter=300, early_stopping=True,
        validation_fraction=0.2, n_iter_no_change=10, random_state=0,
        validation_metric=metric).fit(X_train, y_train)
by_score, by_loss = fits["score"], fits["loss"]

# the 'score' fit's curves are the first epochs of the 'loss' fit's
n = by_score.n_iter_
assert by_score.loss_curve_ == by_loss.loss_curve_[:n]
assert by_score.validation_loss_curve_ == by_loss.validation_loss_curve_[:n]

train_loss = np.array(by_loss.loss_curve_)
val_loss = np.array(by_loss.validation_loss_curve_)
val_score = np.array(by_loss.validation_scores_)
# epochs counted from 1; the kept one is the best epoch of the followed curve
kept_by_score = int(np.argmax(by_score.validation_scores_)) + 1
kept_by_loss = int(np.argmin(val_loss)) + 1
assert val_loss[kept_by_loss - 1] == by_loss.best_validation_loss_
assert val_score[kept_by_loss - 1] == by_loss.best_validation_score_
assert by_score.validation_scores_[kept_by_score - 1] == by_score.best_validation_score_

marks = {kept_by_score: "kept by 'score'", by_score.n_iter_: "'score' stops",
         kept_by_loss: "kept by 'loss'", by_loss.n_iter_: "'loss' stops"}
rows = sorted(set(range(1, by_loss.n_iter_ + 1, 5)) | set(marks))
print("BPClassifier((128,)), breast cancer, early_stopping=True, 20% validation")
print(f"{'epoch':>6}{'train loss':>12}{'val loss':>10}{'val acc':>9}")
for epoch in rows:
    note = "  <- " + ", ".join(v for k, v in marks.items() if k == epoch) \
        if epoch in marks else ""
    print(f"{epoch:>6}{train_loss[epoch - 1]:>12.4f}{val_loss[epoch - 1]:>10.4f}"
          f"{val_score[epoch - 1]:>9.4f}{note}")

print(f"\n{'validation_metric':<19}{'n_iter_':>8}{'kept epoch':>12}"
      f"{'val acc':>9}{'val loss':>10}{'test acc':>10}")
for metric, clf, kept in (("score", by_score, kept_by_score),
                          ("loss", by_loss, kept_by_loss)):
    print(f"{metric:<19}{clf.n_iter_:>8}{kept:>12}{clf.best_validation_score_:>9.4f}"
          f"{clf.validation_loss_curve_[kept - 1]:>10.4f}"
          f"{clf.score(X_test, y_test):>10.4f}")
print(f"best_validation_loss_ ('loss' fit): {by_loss.best_validation_loss_:.6f}; "
      f"('score' fit): {by_score.best_validation_loss_}")
