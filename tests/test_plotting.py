"""LossCurveDisplay (fastbp.plotting): scikit-learn's Display conventions."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fastbp import BPClassifier
from fastbp.plotting import LossCurveDisplay

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def early():
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=12,
                            n_iter_no_change=100, random_state=0).fit(X / 16, y)


def test_from_estimator_draws_every_curve(early, tmp_path):
    display = LossCurveDisplay.from_estimator(early)
    assert set(display.lines_) == {"training loss", "validation loss", "validation score"}
    x, loss = display.lines_["training loss"].get_data()
    np.testing.assert_array_equal(x, np.arange(1, 13))
    np.testing.assert_array_equal(loss, early.loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation loss"].get_ydata(),
                                  early.validation_loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation score"].get_ydata(),
                                  early.validation_scores_)
    assert display.ax_.get_xlabel() == "epoch" and display.ax_.get_ylabel() == "loss"
    assert display.ax_score_.get_ylabel() == "validation score"
    assert display.ax_.get_title() == "BPClassifier"
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", "validation score"]
    assert display.figure_ is display.ax_.figure
    display.figure_.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    plt.close("all")


def test_plot_into_given_axes_with_options():
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X / 16, y)
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(est, ax=ax, name="digits", linewidth=3)
    assert display.ax_ is ax and display.figure_ is fig and display.ax_score_ is None
    assert set(display.lines_) == {"training loss"}  # no early stopping: one curve
    assert display.lines_["training loss"].get_linewidth() == 3
    assert ax.get_title() == "digits"
    plt.close("all")


def test_unknown_validation_losses_are_not_drawn():
    display = LossCurveDisplay(loss_curve=[1.0, 0.5], validation_loss_curve=[np.nan, np.nan],
                               validation_scores=[0.5, 0.7]).plot()
    assert set(display.lines_) == {"training loss", "validation score"}
    plt.close("all")


def test_refusals():
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(BPClassifier())
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BPClassifier(solver="lbfgs", max_iter=5).fit(X / 16, y)
    with pytest.raises(ValueError, match="solver='lbfgs' has no loss_curve_"):
        LossCurveDisplay.from_estimator(est)
