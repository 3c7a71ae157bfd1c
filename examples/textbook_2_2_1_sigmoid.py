"""The textbook 2 -> 2 (sigmoid) -> 1 (sigmoid) network, trained with squared error.

First on one sample, x = (0.5, 0.1) with target 0.6, as in the worked
backpropagation examples of many courses: plain gradient descent (no momentum,
no L2), and every weight printed before and after.  Then on XOR, the problem a
single layer cannot solve; two hidden sigmoid units can, but gradient descent
from a bad start often stalls in a local minimum, so the fit keeps the best of
five starts (``n_init=5``, fastbp's own).

BPRegressor(out_activation="logistic") is the sigmoid output; the loss is
half the squared error, 0.5 (p - t)^2.  The weights before the first step come
from a scikit-learn callback (``sklearn.callback``): fastbp offers the model at
the beginning and end of every epoch to any callback that asks for it.

Prints the weights, the output and the loss; writes ``textbook_2_2_1.png`` (the
loss per epoch for both problems, and the single sample's weights).

Run:  python examples/textbook_2_2_1_sigmoid.py
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPRegressor


class WeightTrace:
    """A callback recording the network's weights at each epoch boundary."""

    def __init__(self):
        self.weights = []  # one flat vector per boundary: before epoch 1, after each

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch" and context.task_id == 0:
            self.weights.append(_flat(fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch" and fitted_estimator is not None:
            self.weights.append(_flat(fitted_estimator))


def _flat(model):
    return np.concatenate([a.ravel() for a in model.coefs_ + model.intercepts_])


def describe(label, w):
    """The weights in the flat order: coefs_[0] row by row, coefs_[1], intercepts_."""
    def fmt(a):
        return np.array2string(a, precision=4, separator=", ").replace("\n", "")
    print(f"  {label}: W1 = {fmt(w[:4].reshape(2, 2))}, W2 = {fmt(w[4:6])}, "
          f"b1 = {fmt(w[6:8])}, b2 = {fmt(w[8:])}")


# ---------------------------------------------------------------- one sample
x, t = np.array([[0.5, 0.1]]), np.array([0.6])
trace = WeightTrace()
net = BPRegressor(hidden_layer_sizes=(2,), activation="logistic", out_activation="logistic",
                  solver="sgd", learning_rate_init=1.0, momentum=0.0, alpha=0.0,
                  batch_size=1, max_iter=300, tol=0.0, n_iter_no_change=300, shuffle=False,
                  random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 300 steps, on purpose
    net.set_callbacks(trace).fit(x, t)
weights = np.array(trace.weights)
print("One sample, x = (0.5, 0.1), target 0.6, learning rate 1.0:")
describe("before", weights[0])
describe("after 1 step", weights[1])
describe(f"after {net.n_iter_} steps", weights[-1])
# (loss_curve_[k] is the loss of the weights that step k + 1 starts from)
print(f"  output {net.predict(x)[0]:.6f}; loss 0.5 (p - t)^2: {net.loss_curve_[0]:.3e} at "
      f"the start, {net.loss_curve_[1]:.3e} after one step, {net.loss_curve_[-1]:.3e} "
      f"before step {net.n_iter_}")

# ---------------------------------------------------------------------- XOR
X_xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y_xor = np.array([0.0, 1.0, 1.0, 0.0])
xor = BPRegressor(hidden_layer_sizes=(2,), activation="logistic", out_activation="logistic",
                  solver="sgd", learning_rate_init=2.0, momentum=0.9, alpha=0.0,
                  batch_size=4, max_iter=3000, tol=1e-7, n_iter_no_change=50,
                  n_init=5, random_state=1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    xor.fit(X_xor, y_xor)
print("\nXOR, full batch, learning rate 2.0 with momentum 0.9, best of 5 starts:")
print("  final loss of each start:", np.array2string(xor.init_losses_, precision=5))
print(f"  kept start {xor.best_init_} after {xor.n_iter_} epochs")
for row, p in zip(X_xor, xor.predict(X_xor)):
    print(f"  x = {row.astype(int)} -> {p:.4f} (rounds to {int(p > 0.5)})")
describe("weights", _flat(xor))

fig, (ax_loss, ax_w) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_loss.semilogy(np.arange(1, len(net.loss_curve_) + 1), net.loss_curve_,
                 label="one sample (x = (0.5, 0.1), t = 0.6)")
ax_loss.semilogy(np.arange(1, len(xor.loss_curve_) + 1), xor.loss_curve_,
                 label=f"XOR (kept start {xor.best_init_} of 5)")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("loss, 0.5 (p - t)$^2$ averaged over samples")
ax_loss.set_title("2-2-1 sigmoid network: loss per epoch")
ax_loss.legend()
# the flat order: coefs_[0] row by row, coefs_[1], intercepts_[0], intercepts_[1]
names = ["x1→h1", "x1→h2", "x2→h1", "x2→h2", "h1→out", "h2→out", "bias h1", "bias h2",
         "bias out"]
for k, name in enumerate(names):
    ax_w.plot(np.arange(weights.shape[0]), weights[:, k], label=name)
ax_w.set_xlabel("gradient step")
ax_w.set_ylabel("weight value")
ax_w.set_title("one sample: the nine weights, step by step")
ax_w.legend(ncol=3, fontsize="small")
fig.tight_layout()
fig.savefig("textbook_2_2_1.png", dpi=100)
print("wrote textbook_2_2_1.png")
