"""Notebook display (sklearn.utils.estimator_html_repr): the parameter and
fitted-attribute tables of BPClassifier and BPRegressor carry the docstring's
tooltips, as scikit-learn's own estimators' do, and no documentation link
points at a page that does not exist."""

import html
import inspect
import re
import warnings

import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_html_repr
# scikit-learn's own tooltip text for a docstring entry: the oracle of what the
# display shows for its estimators (private, but tests may read it).
from sklearn.utils._repr_html.common import get_docstring

from fastbp import BPClassifier, BPRegressor

# One tooltip, as sklearn/utils/_repr_html/tests/test_params.py matches it: the
# name inside the (link) anchor, then the description span anchored to it.
TOOLTIP = re.compile(
    r'<a class="param-doc-link"\s*style="anchor-name: --doc-link-(?P<name>\w+);"[^>]*>'
    r'\s*(?P=name)'
    r'\s*<span class="param-doc-description"'
    r'\s*style="position-anchor: --doc-link-(?P=name);">\s*(?P<text>.*?)</span>',
    re.DOTALL)
TABLE = r"<summary>{}</summary>(.*?)</table>"


def _tooltips(html_text, summary):
    """name -> tooltip text of the table headed ``summary`` ('Parameters' or
    'Fitted attributes'); {} when there is no such table."""
    table = re.search(TABLE.format(summary), html_text, re.DOTALL)
    if table is None:
        return {}
    tips = {}
    for match in TOOLTIP.finditer(table.group(1)):
        assert match["name"] not in tips, f"two tooltips for {match['name']}"
        tips[match["name"]] = match["text"]
    return tips


def _documented(cls, section):
    """The entry names of a numpydoc section of ``cls``'s docstring."""
    lines = inspect.getdoc(cls).splitlines()
    start = lines.index(section) + 2
    end = next((i for i in range(start, len(lines) - 1)
                if re.fullmatch(r"-{3,}", lines[i + 1])), len(lines))
    return [m.group(1) for line in lines[start:end]
            if (m := re.match(r"^(\w+) : ", line))]


def _squash(text):
    return " ".join(text.split())


def _check_tooltip(cls, section, name, text):
    """``text`` is the tooltip scikit-learn makes of ``name``'s docstring entry:
    'name: type', then the description, line by line."""
    assert text == get_docstring(cls, section, name), name
    plain = html.unescape(text).split("<br>")
    assert re.fullmatch(rf"{name}: .+", plain[0]) and plain[1] == "", plain[:2]
    description = _squash(" ".join(plain[2:]))
    assert description and description in _squash(cls.__doc__), name


def _fitted(cls):
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(hidden_layer_sizes=(5,), max_iter=5, early_stopping=True,
                   random_state=0).fit(X, y if cls is not BPRegressor else X[:, 0])


@pytest.mark.parametrize("cls", [BPClassifier, BPRegressor])
def test_every_documented_parameter_has_its_tooltip(cls):
    tips = _tooltips(estimator_html_repr(cls()), "Parameters")
    documented = _documented(cls, "Parameters")
    assert len(documented) == len(cls().get_params()) == (31 if cls is BPClassifier else 32)
    assert sorted(tips) == sorted(documented)  # fastbp's own parameters included
    for name, text in tips.items():
        _check_tooltip(cls, "Parameters", name, text)
    assert "Decoupled weight decay of AdamW" in tips["weight_decay"]


@pytest.mark.parametrize("cls", [BPClassifier, BPRegressor])
def test_every_documented_fitted_attribute_has_its_tooltip(cls):
    est = _fitted(cls)
    html_text = estimator_html_repr(est)
    tips = _tooltips(html_text, "Fitted attributes")
    table = re.search(TABLE.format("Fitted attributes"), html_text, re.DOTALL).group(1)
    shown = set(re.findall(r'<a class="param-doc-link"[^>]*>\s*(\w+_)\b', table))
    documented = set(_documented(cls, "Attributes"))
    assert "coefs_" in tips and "validation_loss_curve_" in tips
    assert set(tips) == shown & documented
    for name, text in tips.items():
        _check_tooltip(cls, "Attributes", name, text)
    # the parameters of a fitted estimator keep theirs
    assert len(_tooltips(html_text, "Parameters")) == len(est.get_params())


def test_as_many_tooltips_as_mlpclassifier_on_the_shared_parameters():
    mlp_html = estimator_html_repr(MLPClassifier())
    mlp = _tooltips(mlp_html, "Parameters")
    bp = _tooltips(estimator_html_repr(BPClassifier()), "Parameters")
    assert len(mlp) == len(MLPClassifier().get_params()) == 23
    assert mlp.keys() <= bp.keys()  # every MLPClassifier parameter is a BPClassifier one
    assert len(bp) == len(mlp) + 8  # and fastbp's eight more
    # the same markup as scikit-learn's, but for the link (see the next test)
    assert bp["alpha"].startswith("alpha: float, default=0.0001<br><br>")
    assert mlp["alpha"].startswith("alpha: float, default=0.0001<br><br>")
    # a fitted MLPClassifier shows its fitted attributes' tooltips too
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted_mlp = MLPClassifier(max_iter=5, early_stopping=True).fit(X, y)
    mlp_attrs = _tooltips(estimator_html_repr(fitted_mlp), "Fitted attributes")
    bp_attrs = _tooltips(estimator_html_repr(_fitted(BPClassifier)), "Fitted attributes")
    assert mlp_attrs.keys() <= bp_attrs.keys()


@pytest.mark.parametrize("make", [BPClassifier, BPRegressor, lambda: _fitted(BPClassifier)],
                         ids=["BPClassifier", "BPRegressor", "fitted"])
def test_no_documentation_link_to_a_page_that_does_not_exist(make):
    est = make()
    # fastbp has no hosted documentation: scikit-learn's template would make a
    # scikit-learn.org URL of a fastbp class, so there must be no "?" link at
    # all, and the tooltips are not links either.
    assert est._get_doc_link() == ""
    html_text = estimator_html_repr(est)
    assert '<a class="sk-estimator-doc-link' not in html_text  # (the fitted "i" is a span)
    assert re.findall(r"<a\b[^>]*\bhref=", html_text) == []
    assert len(TOOLTIP.findall(html_text)) > 30  # (not vacuous: the tooltips are there)


def test_tooltips_inside_a_pipeline():
    html_text = estimator_html_repr(make_pipeline(StandardScaler(), BPClassifier()))
    # the pipeline's and the scaler's real scikit-learn.org links stay
    links = re.findall(r'<a class="sk-estimator-doc-link[^"]*"[^>]*href="([^"]+)"', html_text)
    assert links and all(link.startswith("https://scikit-learn.org/") and "fastbp" not in link
                         for link in links)
    tips = TOOLTIP.findall(html_text)
    assert {"weight_decay", "class_weight", "hidden_layer_sizes"} <= {n for n, _ in tips}
