"""class_weight (issue 8): multiplied into sample_weight exactly as
sklearn.utils.class_weight.compute_sample_weight computes it."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_sample_weight

from fastbp import BPClassifier


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture
def imbalanced():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5))
    y = rng.choice(np.array(["a", "b", "c"]), size=300, p=[0.7, 0.2, 0.1])
    return X, y


def _same_model(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_


PARAMS = dict(hidden_layer_sizes=(6,), max_iter=6, batch_size=32, random_state=0)


@pytest.mark.parametrize("class_weight", ["balanced", {"a": 1.0, "b": 3.0, "c": 0.5}])
def test_class_weight_is_the_sample_weight_sklearn_computes(imbalanced, class_weight):
    X, y = imbalanced
    weighted = BPClassifier(**PARAMS, class_weight=class_weight).fit(X, y)
    explicit = BPClassifier(**PARAMS).fit(X, y, sample_weight=compute_sample_weight(
        class_weight, y))
    _same_model(weighted, explicit)
    plain = BPClassifier(**PARAMS).fit(X, y)
    assert not np.array_equal(weighted.coefs_[0], plain.coefs_[0])  # it did something


def test_class_weight_multiplies_sample_weight(imbalanced):
    X, y = imbalanced
    sw = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    cw = {"a": 0.5, "b": 2.0, "c": 4.0}
    both = BPClassifier(**PARAMS, class_weight=cw).fit(X, y, sample_weight=sw)
    product = BPClassifier(**PARAMS).fit(X, y, sample_weight=sw * compute_sample_weight(cw, y))
    _same_model(both, product)


def test_balanced_shifts_predictions_towards_rare_classes(imbalanced):
    X, y = imbalanced
    params = dict(hidden_layer_sizes=(16,), max_iter=200, random_state=0,
                  learning_rate_init=0.01)
    plain = BPClassifier(**params).fit(X, y)
    balanced = BPClassifier(**params, class_weight="balanced").fit(X, y)
    rare = (balanced.predict(X) == "c").sum()
    assert rare > (plain.predict(X) == "c").sum()


def test_multilabel_list_of_dicts_and_balanced():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    Y = (rng.rand(120, 3) < [0.5, 0.2, 0.8]).astype(int)
    for cw in ([{0: 1.0, 1: 2.0}, {0: 1.0, 1: 5.0}, {0: 3.0, 1: 1.0}], "balanced"):
        weighted = BPClassifier(**PARAMS, class_weight=cw).fit(X, Y)
        explicit = BPClassifier(**PARAMS).fit(X, Y, sample_weight=compute_sample_weight(cw, Y))
        _same_model(weighted, explicit)


def test_early_stopping_validation_keeps_the_weights(imbalanced):
    """The held-out samples keep their class weights in the validation score."""
    X, y = imbalanced
    params = dict(PARAMS, early_stopping=True, validation_fraction=0.3, max_iter=8)
    weighted = BPClassifier(**params, class_weight="balanced").fit(X, y)
    explicit = BPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight(
        "balanced", y))
    plain = BPClassifier(**params).fit(X, y)
    assert weighted.validation_scores_ == explicit.validation_scores_
    assert weighted.validation_scores_ != plain.validation_scores_
    _same_model(weighted, explicit)


def test_partial_fit_takes_a_dict_but_not_balanced(imbalanced):
    X, y = imbalanced
    classes = np.array(["a", "b", "c"])
    cw = {"a": 1.0, "b": 2.0, "c": 3.0}
    inc = BPClassifier(**PARAMS, class_weight=cw)
    ref = BPClassifier(**PARAMS)
    for part in (slice(0, 150), slice(150, 300)):
        inc.partial_fit(X[part], y[part], classes=classes)
        ref.partial_fit(X[part], y[part], classes=classes,
                        sample_weight=compute_sample_weight(cw, y[part]))
    _same_model(inc, ref)
    with pytest.raises(ValueError, match=re.escape(
            "class_weight 'balanced' is not supported for partial_fit.")):
        BPClassifier(class_weight="balanced").partial_fit(X, y, classes=classes)


def test_bad_class_weight_gets_sklearns_messages(imbalanced):
    X, y = imbalanced
    with pytest.raises(ValueError, match=re.escape(
            "The 'class_weight' parameter of BPClassifier must be a str among "
            "{'balanced'}, an instance of 'dict', an instance of 'list' or None. "
            "Got 'even' instead.")):
        BPClassifier(class_weight="even").fit(X, y)
    # a label the data does not have: scikit-learn's own error
    with pytest.raises(ValueError, match=re.escape("are not in class_weight")):
        BPClassifier(class_weight={"a": 1.0, "z": 2.0}).fit(X, y)
    # a class left out of the dict weighs 1, as in scikit-learn
    partial = BPClassifier(**PARAMS, class_weight={"c": 5.0}).fit(X, y)
    explicit = BPClassifier(**PARAMS).fit(X, y, sample_weight=np.where(y == "c", 5.0, 1.0))
    _same_model(partial, explicit)
    import inspect

    assert list(inspect.signature(BPClassifier).parameters)[-1] == "class_weight"
    assert BPClassifier().get_params()["class_weight"] is None
