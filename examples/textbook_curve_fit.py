"""A sigmoid hidden layer with a linear output fits a 1-D curve (regression).

The universal-approximation picture: one hidden layer of logistic units and an
identity output (BPRegressor, squared error) fit y = sin(2x) + x/2 plus noise on
[-3, 3].  L-BFGS on the full batch, as is usual for a problem this small.

Prints the training and test mean squared error for 2, 5 and 20 hidden units; writes
``curve_fit.png`` (the data and the three fitted curves).

Run:  python examples/textbook_curve_fit.py
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_squared_error

from fastbp import BPRegressor

rng = np.random.RandomState(0)
x = np.sort(rng.uniform(-3, 3, 200))
truth = np.sin(2 * x) + x / 2
y = truth + rng.normal(scale=0.15, size=x.shape)
x_test = np.linspace(-3, 3, 400)
y_test = np.sin(2 * x_test) + x_test / 2

fig, ax = plt.subplots(figsize=(6.4, 4.8))
ax.scatter(x, y, s=8, color="0.6", label="data (noise sd 0.15)")
for units, color in ((2, "tab:orange"), (5, "tab:green"), (20, "tab:blue")):
    reg = BPRegressor(hidden_layer_sizes=(units,), activation="logistic", solver="lbfgs",
                      max_iter=2000, alpha=1e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(x[:, None], y)
    fitted = reg.predict(x_test[:, None])
    print(f"{units:2d} sigmoid units: train MSE {mean_squared_error(y, reg.predict(x[:, None])):.4f}, "
          f"MSE to the true curve {mean_squared_error(y_test, fitted):.4f} "
          f"({reg.n_iter_} L-BFGS iterations)")
    ax.plot(x_test, fitted, color=color, linewidth=2, label=f"{units} sigmoid units")
ax.plot(x_test, y_test, "k--", linewidth=1, label="true curve")
ax.set(xlabel="x", ylabel="y", title="1 -> n (sigmoid) -> 1 (linear), squared error")
ax.legend()
fig.savefig("curve_fit.png", dpi=100)
print("wrote curve_fit.png")
