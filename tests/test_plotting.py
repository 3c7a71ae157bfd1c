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


def _style(line):
    """(color as RGBA, linestyle, label) of a Line2D."""
    return mpl.colors.to_rgba(line.get_color()), line.get_linestyle(), line.get_label()


def test_defaults_without_style_kwargs(early):
    # The colors the loss axes' cycle gives, and the score's own dashed C2.
    display = LossCurveDisplay.from_estimator(early)
    assert _style(display.lines_["training loss"]) == (
        mpl.colors.to_rgba("C0"), "-", "training loss")
    assert _style(display.lines_["validation loss"]) == (
        mpl.colors.to_rgba("C1"), "-", "validation loss")
    assert _style(display.lines_["validation score"]) == (
        mpl.colors.to_rgba("C2"), "--", "validation score")
    plt.close("all")


@pytest.mark.parametrize("style", [dict(color="k", linestyle=":"), dict(c="k", ls=":")],
                         ids=["full names", "aliases"])
def test_style_kwargs_override_the_defaults_on_every_line(early, style):
    display = LossCurveDisplay.from_estimator(early, linewidth=2.5, **style)
    for name, line in display.lines_.items():
        assert _style(line) == (mpl.colors.to_rgba("k"), ":", name), name
        assert line.get_linewidth() == 2.5
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == ["training loss", "validation loss", "validation score"]
    plt.close("all")


def test_a_style_kwarg_overrides_only_its_own_default(early):
    display = LossCurveDisplay.from_estimator(early, color="k")
    assert display.lines_["validation score"].get_linestyle() == "--"  # still dashed
    assert {mpl.colors.to_hex(line.get_color()) for line in display.lines_.values()} == {
        "#000000"}
    plt.close("all")


def test_label_is_the_single_legend_entry(early):
    display = LossCurveDisplay.from_estimator(early, label="adam")
    assert display.lines_["training loss"].get_label() == "adam"
    for name in ("validation loss", "validation score"):
        assert display.lines_[name].get_label().startswith("_")  # out of the legend
    assert [t.get_text() for t in display.ax_.get_legend().get_texts()] == ["adam"]
    # the other defaults stay: the score is still the dashed C2 line
    assert _style(display.lines_["validation score"])[:2] == (mpl.colors.to_rgba("C2"), "--")
    plt.close("all")


def test_plot_takes_the_same_kwargs():
    display = LossCurveDisplay(loss_curve=[1.0, 0.5], validation_scores=[0.5, 0.7])
    display.plot(c="r", ls="-.", label="run 1")
    assert _style(display.lines_["training loss"]) == (mpl.colors.to_rgba("r"), "-.", "run 1")
    assert _style(display.lines_["validation score"])[:2] == (mpl.colors.to_rgba("r"), "-.")
    assert [t.get_text() for t in display.ax_.get_legend().get_texts()] == ["run 1"]
    plt.close("all")


def test_an_alias_with_its_full_name_is_refused():
    # matplotlib's own rule, kept: folding the alias into the default must not let
    # one of the two values win silently.
    display = LossCurveDisplay(loss_curve=[1.0, 0.5])
    with pytest.raises(TypeError, match="aliases of one another"):
        display.plot(c="r", color="b")
    plt.close("all")
