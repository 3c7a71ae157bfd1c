"""fastbp.onnx: skl2onnx.to_onnx for BPClassifier and BPRegressor.

Each converted model is run by onnxruntime and compared with fastbp's own
predictions: to 1e-5 in float32 (the two compute the same formulas in a
different order, and onnxruntime's float Sigmoid and Tanh are approximations
accurate to a few ulp), to 1e-12 in float64.
"""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

import skl2onnx  # noqa: E402
from skl2onnx.common.exceptions import MissingShapeCalculator  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastbp.onnx  # noqa: E402,F401  (registers the converters)
from fastbp import BPClassifier, BPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "softplus",
               "gelu"]
F32 = dict(rtol=1e-5, atol=1e-5)
F64 = dict(rtol=1e-12, atol=1e-12)
NO_ZIPMAP = {"zipmap": False}


def _classification(n_classes=3, dtype=np.float32):
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5,
                               n_classes=n_classes, random_state=0)
    return X.astype(dtype), y


def _regression(dtype=np.float32):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6))
    Y = np.c_[np.sin(X[:, 0]), X[:, 1] * X[:, 2]]
    return X.astype(dtype), Y.astype(dtype)


def _net(est_class, activation="relu", **params):
    return est_class(hidden_layer_sizes=(16, 8), activation=activation, max_iter=50,
                     random_state=0, n_jobs=1, **params)


def _run(model, X, options=None):
    """The outputs of ``to_onnx(model, X[:1])`` run by onnxruntime on all of X."""
    onx = skl2onnx.to_onnx(model, X[:1], options=options)
    session = ort.InferenceSession(onx.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X}), onx


def _assert_same_labels(labels, expected, proba):
    """Equal labels wherever the top two probabilities differ by more than 1e-5
    (a tie within rounding may go either way), and such rows are most rows."""
    top_two = np.sort(proba, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-5
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(labels[clear], expected[clear])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multiclass_classifier_matches_for_each_activation(activation):
    X, y = _classification()
    clf = _net(BPClassifier, activation).fit(X, y)
    assert clf.coefs_[0].dtype == np.float32 and clf.out_activation_ == "softmax"
    (labels, proba), onx = _run(clf, X, NO_ZIPMAP)
    assert proba.dtype == np.float32 and proba.shape == (300, 3)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **F32)
    _assert_same_labels(labels, clf.predict(X), proba)
    assert labels.dtype == np.int64
    # standard operators only (no ai.onnx.ml ZipMap with zipmap=False)
    assert {node.domain for node in onx.graph.node} == {""}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor_matches_for_each_activation(activation):
    X, Y = _regression()
    reg = _net(BPRegressor, activation).fit(X, Y)
    (pred,), _ = _run(reg, X)
    assert pred.dtype == np.float32 and pred.shape == (300, 2)
    np.testing.assert_allclose(pred, reg.predict(X), **F32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_saturating_inputs_stay_finite_and_equal(activation, dtype):
    # pre-activations reach about +-120: softplus, elu (and its double-graph
    # Where over an overflowing Exp) and gelu must neither overflow nor lose
    # the linear branch.  Outputs reach about 70, so the tolerance is relative.
    X, Y = _regression(dtype)
    reg = _net(BPRegressor, activation).fit(X, Y)
    X_big = X * dtype(40)
    (pred,), _ = _run(reg, X_big)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, reg.predict(X_big), **(F32 if dtype == np.float32 else F64))


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_binary_classifier(loss):
    X, y = _classification(n_classes=2)
    clf = _net(BPClassifier, "tanh", loss=loss).fit(X, y)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    (labels, proba), _ = _run(clf, X, NO_ZIPMAP)
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **F32)
    _assert_same_labels(labels, clf.predict(X), proba)


def test_multilabel_classifier_gives_an_indicator_matrix():
    X, Y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=4,
                                          random_state=0)
    X = X.astype(np.float32)
    clf = _net(BPClassifier, "elu").fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    (labels, proba), onx = _run(clf, X, NO_ZIPMAP)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **F32)
    assert labels.dtype == np.int64 and labels.shape == (300, 4)
    clear = np.abs(proba - 0.5) > 1e-5
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(labels[clear], clf.predict(X)[clear])
    # the declared label output is the matrix too (skl2onnx's MLP converter declares [N])
    dims = onx.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1:] == [4]
    (zipmap_labels, dicts), _ = _run(clf, X)  # ZipMap passes the matrix through
    np.testing.assert_array_equal(zipmap_labels, labels)
    np.testing.assert_allclose([[d[k] for k in range(4)] for d in dicts], proba, **F32)


@pytest.mark.parametrize("classes", [np.array([-3, 7, 10]), np.array(["ant", "bee", "cat"]),
                                     np.array([0.0, 1.0, 2.0])], ids=["int", "str", "float"])
def test_class_labels_are_the_models(classes):
    X, y = _classification()
    clf = _net(BPClassifier, "softplus").fit(X, classes[y])
    (labels, proba), _ = _run(clf, X, NO_ZIPMAP)
    expected = clf.predict(X)
    _assert_same_labels(labels.astype(expected.dtype), expected, proba)
    assert labels.dtype == (object if classes.dtype.kind == "U" else np.int64)
    # nocl: the class indices instead
    (indices, _), _ = _run(clf, X, {"zipmap": False, "nocl": True})
    _assert_same_labels(indices, np.searchsorted(clf.classes_, expected), proba)


def test_zipmap_by_default_like_sklearns_mlp():
    X, y = _classification()
    clf = _net(BPClassifier, "gelu").fit(X, np.array(["a", "b", "c"])[y])
    (labels, dicts), _ = _run(clf, X)
    proba = clf.predict_proba(X)
    assert sorted(dicts[0]) == ["a", "b", "c"]
    got = np.array([[d[c] for c in clf.classes_] for d in dicts])
    np.testing.assert_allclose(got, proba, **F32)
    _assert_same_labels(labels, clf.predict(X), proba)
    # and the other options skl2onnx gives classifiers
    (_, *columns), _ = _run(clf, X, {"zipmap": "columns"})
    np.testing.assert_allclose(np.column_stack(columns), proba, **F32)
    (_, _, class_labels), _ = _run(clf, X, {"zipmap": False, "output_class_labels": True})
    assert list(class_labels) == ["a", "b", "c"]


def test_poisson_regressor_has_an_exp_output():
    X, Y = _regression()
    counts = np.random.RandomState(1).poisson(np.exp(0.5 * X[:, 0])).astype(np.float32)
    reg = _net(BPRegressor, "leaky_relu", loss="poisson").fit(X, counts)
    assert reg.out_activation_ == "exp"
    (pred,), _ = _run(reg, X)
    assert pred.shape == (300, 1) and (pred > 0).all()
    np.testing.assert_allclose(pred.ravel(), reg.predict(X), **F32)


@pytest.mark.skipif("out_activation" not in BPRegressor().get_params(),
                    reason="BPRegressor has no out_activation parameter yet")
def test_logistic_output_regressor():
    X, Y = _regression()
    targets = 1.0 / (1.0 + np.exp(-Y))
    reg = _net(BPRegressor, "gelu", out_activation="logistic").fit(X, targets)
    assert reg.out_activation_ == "logistic"
    (pred,), _ = _run(reg, X)
    assert ((pred > 0) & (pred < 1)).all()
    np.testing.assert_allclose(pred, reg.predict(X), **F32)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float64_models(activation):
    # A float64 input gives a double graph: equal to fastbp's float64 predictions
    # to rounding (leaky_relu, elu and softplus composed of other operators there).
    X, y = _classification(dtype=np.float64)
    clf = _net(BPClassifier, activation).fit(X, y)
    assert clf.coefs_[0].dtype == np.float64
    expected = clf.predict_proba(X)
    (_, proba), _ = _run(clf, X, NO_ZIPMAP)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, expected, **F64)
    # A float32 input gives a float32 graph of the weights rounded to float32:
    # each weight moves by 2^-24 of itself, and through this small network the
    # probabilities by < 1e-6, so 1e-5 still holds (a wider or deeper network
    # accumulates more: compare such a model in float64).
    (_, proba32), _ = _run(clf, X.astype(np.float32), NO_ZIPMAP)
    assert proba32.dtype == np.float32
    np.testing.assert_allclose(proba32, expected, **F32)


def test_inside_a_pipeline():
    X, y = _classification()
    pipe = make_pipeline(StandardScaler(), _net(BPClassifier, "elu")).fit(X * 10 + 3, y)
    (labels, proba), _ = _run(pipe, X * 10 + 3, NO_ZIPMAP)
    np.testing.assert_allclose(proba, pipe.predict_proba(X * 10 + 3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("est", [BPClassifier(), BPRegressor()], ids=["clf", "reg"])
def test_unfitted_model_is_refused(est):
    with pytest.raises(NotFittedError, match="not fitted"):
        skl2onnx.to_onnx(est, np.zeros((1, 3), dtype=np.float32))


def test_missing_skl2onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx -> ImportError
    monkeypatch.delitem(sys.modules, "fastbp.onnx")
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        import fastbp.onnx  # noqa: F401


def test_importing_fastbp_does_not_import_skl2onnx():
    code = ("import sys, fastbp; "
            "sys.exit(sorted({'skl2onnx', 'onnx', 'fastbp.onnx'} & set(sys.modules)) or None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# Run in a fresh interpreter, where fastbp.onnx has not registered anything and
# the two imports happen in the order given.
_WITHOUT_FASTBP_ONNX = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np
{first}
{second}
from fastbp import BPClassifier, BPRegressor
from skl2onnx.common.exceptions import MissingShapeCalculator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
net = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_jobs=1)
models = [BPClassifier(**net).fit(X, X[:, 0] > 0), BPRegressor(**net).fit(X, X[:, 0]),
          make_pipeline(StandardScaler(), BPClassifier(**net)).fit(X, X[:, 0] > 0)]
for model in models:
    try:
        skl2onnx.to_onnx(model, X[:1])
    except MissingShapeCalculator as exc:
        assert "import fastbp.onnx" in str(exc), str(exc)
    else:
        sys.exit(f"{{model}} converted with nothing registered")
assert "fastbp.onnx" not in sys.modules  # a message only: nothing was registered
import fastbp.onnx
for model in models:
    skl2onnx.to_onnx(model, X[:1])  # what the message asks for is all it takes
"""


@pytest.mark.parametrize("first", ["fastbp", "skl2onnx"])
def test_without_fastbp_onnx_the_error_says_to_import_it(first):
    second = {"fastbp": "skl2onnx", "skl2onnx": "fastbp"}[first]
    code = _WITHOUT_FASTBP_ONNX.format(first=f"import {first}", second=f"import {second}")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


_CUSTOM_FUNCTIONS = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import fastbp, skl2onnx
from skl2onnx.common.data_types import FloatTensorType

def shape(operator):
    operator.outputs[0].type = FloatTensorType([None, 3])

def convert(scope, operator, container):
    container.add_node("Identity", operator.inputs[0].full_name,
                       operator.outputs[0].full_name, name=scope.get_unique_operator_name("Id"))

X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
reg = fastbp.BPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_jobs=1)
skl2onnx.convert_sklearn(reg.fit(X, X[:, 0]), initial_types=[("X", FloatTensorType([None, 3]))],
                         custom_shape_calculators={fastbp.BPRegressor: shape},
                         custom_conversion_functions={fastbp.BPRegressor: convert})
assert "fastbp.onnx" not in sys.modules
"""


def test_the_error_leaves_a_users_own_converter_alone():
    # skl2onnx's custom_shape_calculators and custom_conversion_functions need
    # no registration: fastbp's message must not stand in their way.
    proc = subprocess.run([sys.executable, "-c", _CUSTOM_FUNCTIONS], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_subclass_gets_skl2onnxs_own_error():
    # fastbp.onnx registers the two classes, not subclasses: importing it (done
    # above) does not help one, so the message must not say that it would.
    class MyRegressor(BPRegressor):
        pass

    X, Y = _regression()
    with pytest.raises(MissingShapeCalculator) as info:
        skl2onnx.to_onnx(_net(MyRegressor).fit(X, Y), X[:1])
    assert "MyRegressor" in str(info.value) and "fastbp.onnx" not in str(info.value)

