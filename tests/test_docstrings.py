"""The estimators' numpydoc stays in sync with their code: every constructor
parameter is documented, in signature order, with its type and default, and so
is every parameter of the public methods; every documented fitted attribute
exists after a fit."""

import ast
import inspect
import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPClassifier, BPRegressor
from fastbp.plotting import LossCurveDisplay

ENTRY = re.compile(r"^(\w+) : (.+)$")


def _section(doc, title):
    """(name, type line) of each entry of the numpydoc section ``title``."""
    lines = inspect.cleandoc(doc or "").splitlines()
    entries, inside = [], False
    for i, line in enumerate(lines):
        underlined = i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1])
        if underlined and line and not line.startswith(" "):
            inside = line == title
            continue
        match = ENTRY.match(line) if inside else None
        if match:
            entries.append((match.group(1), match.group(2)))
    return entries


@pytest.mark.parametrize("cls", [BPClassifier, BPRegressor])
def test_every_constructor_parameter_is_documented_in_order_with_its_default(cls):
    documented = _section(cls.__doc__, "Parameters")
    signature = inspect.signature(cls)
    assert [name for name, _ in documented] == list(signature.parameters)
    for name, type_line in documented:
        default = signature.parameters[name].default
        said = type_line.split("default=")[-1].strip() if "default=" in type_line else None
        try:
            said_value = ast.literal_eval(said)
        except (ValueError, SyntaxError):
            said_value = said  # e.g. "'auto'" parses; a bare word stays text
        assert said is not None and (said_value == default or said == repr(default)), (
            f"{cls.__name__}({name}=...): the docstring says {type_line!r}, the code's "
            f"default is {default!r}")


@pytest.mark.parametrize("cls", [BPClassifier, BPRegressor, LossCurveDisplay])
def test_public_methods_document_their_parameters(cls):
    for name, method in inspect.getmembers(cls, callable):
        if name.startswith("_") or not getattr(method, "__doc__", None):
            continue
        if method.__qualname__.split(".")[0] not in {c.__name__ for c in cls.__mro__
                                                      if c.__module__.startswith("fastbp")}:
            continue  # inherited from scikit-learn: its own docs
        params = [p for p in inspect.signature(method).parameters
                  if p not in ("self", "cls") and not p.startswith("**")
                  and inspect.signature(method).parameters[p].kind
                  not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        documented = [n for n, _ in _section(method.__doc__, "Parameters")]
        assert documented == params, f"{cls.__name__}.{name}: {documented} vs {params}"


@pytest.mark.parametrize("cls", [BPClassifier, BPRegressor])
def test_documented_attributes_exist_after_a_fit(cls):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 3)
    y = (X[:, 0] > 0.5).astype(int) if cls is BPClassifier else X[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(hidden_layer_sizes=(4,), max_iter=3, early_stopping=True).fit(X, y)
    documented = [name for name, _ in _section(cls.__doc__, "Attributes")]
    assert "coefs_" in documented and "loss_curve_" in documented
    missing = [name for name in documented
               if not hasattr(est, name) and name != "feature_names_in_"]
    assert not missing, missing
