"""The textbook network 784 -> 10 (relu) -> 10 (softmax), plain SGD on cross-entropy.

The classic first network of the backpropagation literature runs on 28x28 = 784-pixel
digit images.  The digits that ship with scikit-learn are 8x8; here each is upsampled
to 28x28 by bilinear interpolation (``scipy.ndimage.zoom``), so the input layer has the
textbook's 784 units.  Plain stochastic gradient descent: ``solver="sgd"``, no
momentum, a constant learning rate, mini-batches of 32, cross-entropy on a softmax
output (BPClassifier's loss for more than two classes).

Prints the losses and the validation accuracy per epoch and the test accuracy; writes
``digits_784_10_10.png`` (training and validation loss, validation accuracy per epoch).

Run:  python examples/textbook_digits_784_10_10.py
"""

import os
import warnings

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BPClassifier
from fastbp.plotting import LossCurveDisplay

EPOCHS = int(os.environ.get("FASTBP_EXAMPLE_EPOCHS", "30"))

X8, y = load_digits(return_X_y=True)
X = np.stack([zoom(img.reshape(8, 8), 3.5, order=1) for img in X8]).reshape(len(X8), -1)
X = (X / 16.0).astype(np.float32)  # pixel intensities 0..16 -> 0..1
assert X.shape[1] == 784
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# early_stopping holds out 20% of the training images to score each epoch on (it
# only stops here if the score stalls for all the epochs); test data stays unseen.
clf = BPClassifier(hidden_layer_sizes=(10,), activation="relu", solver="sgd",
                   learning_rate_init=0.05, momentum=0.0, batch_size=32, alpha=0.0,
                   max_iter=EPOCHS, early_stopping=True, validation_fraction=0.2,
                   n_iter_no_change=EPOCHS, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the plan here
    clf.fit(X_train, y_train)

print(f"784 -> 10 (relu) -> 10 (softmax), {X_train.shape[0]} training images "
      f"(20% held out for validation), {EPOCHS} epochs of plain SGD (lr 0.05, batch 32)")
for epoch in sorted(set(range(0, EPOCHS, max(1, EPOCHS // 6))) | {EPOCHS - 1}):
    print(f"  epoch {epoch + 1:3d}: training loss {clf.loss_curve_[epoch]:.4f}, "
          f"validation loss {clf.validation_loss_curve_[epoch]:.4f}, "
          f"validation accuracy {clf.validation_scores_[epoch]:.3f}")
print(f"test accuracy (the best validation epoch's weights): {clf.score(X_test, y_test):.3f}")

display = LossCurveDisplay.from_estimator(clf, name="784 -> 10 (relu) -> 10 (softmax), "
                                                   "plain SGD on cross-entropy")
display.ax_score_.set_ylabel("validation accuracy")
display.figure_.savefig("digits_784_10_10.png", dpi=100)
print("wrote digits_784_10_10.png")
