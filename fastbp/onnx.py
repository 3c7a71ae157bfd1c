"""ONNX export: skl2onnx converters for BPClassifier and BPRegressor.

Importing this module registers both estimators with skl2onnx, after which
``skl2onnx.to_onnx(model, X[:1].astype(np.float32))`` converts them, alone or
inside a Pipeline::

    import fastbp.onnx  # noqa: F401  (registers the converters)
    onx = skl2onnx.to_onnx(clf, X[:1].astype(np.float32))

``import fastbp`` does not import this module (nor skl2onnx); without it,
skl2onnx's MissingShapeCalculator for a BPClassifier or BPRegressor says to
add the import (the estimators' ``onnx_shape_calculator``).

The graph is the network's forward pass in standard ONNX operators: MatMul and
Add per layer, then the layer's activation.  skl2onnx's own MLP converter knows
scikit-learn's four hidden activations only; here leaky_relu, elu, softplus
and gelu (fastbp's tanh approximation, written out) are added, and the
regressor's outputs: identity, logistic and exp (loss='poisson').

The outputs follow skl2onnx's conventions for scikit-learn's MLPs: a
classifier gives ``label`` and ``probabilities`` (through a ZipMap unless
``options={"zipmap": False}``; options ``nocl`` and ``output_class_labels`` as
for any skl2onnx classifier), a multilabel one an int64 indicator matrix as
its label; a regressor gives one float tensor of shape (N, n_outputs_).
A float32 input computes in float32, a float64 input (DoubleTensorType) in
float64, whatever dtype the model was trained in.
"""

import numpy as np

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    # private, but the parser update_registered_converter itself installs for
    # classifiers; _parse_classifier wraps it
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from skl2onnx.common.utils import check_input_and_output_numbers
    from skl2onnx.common.utils_classifier import get_label_classes
except ImportError as exc:
    raise ImportError(
        'fastbp.onnx needs skl2onnx and onnx, which fastbp does not install by default: '
        'pip install "fastbp[onnx]"') from exc

from sklearn.utils.validation import check_is_fitted

from ._kernels.activations import GELU_A, GELU_C, LEAKY_SLOPE
from .estimators import BPClassifier, BPRegressor

__all__ = ["CLASSIFIER_ALIAS", "REGRESSOR_ALIAS"]

CLASSIFIER_ALIAS = "FastbpBPClassifier"
REGRESSOR_ALIAS = "FastbpBPRegressor"

# Activations that are one ONNX operator each (of the same formula as fastbp's).
_ONE_OP = {"logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "exp": "Exp"}


class _GraphBuilder:
    """Adds nodes and constants to skl2onnx's container under unique names.

    Every value is a tensor of one float type, the graph's: float when the
    input is float32 (or not a float), double when it is float64.
    """

    def __init__(self, scope, container, input_type):
        self.scope, self.container = scope, container
        self.double = isinstance(input_type, DoubleTensorType)
        self.proto_dtype = TensorProto.DOUBLE if self.double else TensorProto.FLOAT
        self.np_dtype = np.float64 if self.double else np.float32

    def const(self, value, proto_dtype=None):
        """The name of a new initializer holding ``value`` (the graph's float
        type unless ``proto_dtype`` is given: then ``value`` is used as is)."""
        if proto_dtype is None:
            proto_dtype, value = self.proto_dtype, np.asarray(value, dtype=self.np_dtype)
        name = self.scope.get_unique_variable_name("const")
        self.container.add_initializer(name, proto_dtype, list(value.shape), value.ravel())
        return name

    def node(self, op_type, *inputs, output=None, **attrs):
        """Add one ``op_type`` node; return the name of its (single) output."""
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(op_type, list(inputs), output,
                                name=self.scope.get_unique_operator_name(op_type), **attrs)
        return output


def _activation(g, name, z):
    """Add the nodes of one layer's activation, as fastbp/_kernels/activations.py
    and losses.py compute it.

    Parameters
    ----------
    g : _GraphBuilder
        The graph being built.
    name : str
        A hidden activation (``activation``) or an output one (``out_activation_``).
    z : str
        The name of the layer's pre-activation tensor, (N, width).

    Returns
    -------
    a : str
        The name of the activation's output tensor, (N, width).
    """
    if name == "identity":
        return z
    if name in _ONE_OP:
        return g.node(_ONE_OP[name], z)
    if name == "softmax":
        return g.node("Softmax", z, axis=1)  # (N, classes): axis 1 in every opset
    if name == "gelu":
        # 0.5 z (1 + tanh(C (z + A z^3))), in fastbp's order of operations
        cube = g.node("Mul", g.node("Mul", g.node("Mul", g.const(GELU_A), z), z), z)
        t = g.node("Tanh", g.node("Mul", g.const(GELU_C), g.node("Add", z, cube)))
        half_z = g.node("Mul", g.const(0.5), z)
        return g.node("Mul", half_z, g.node("Add", g.const(1.0), t))
    if not g.double:
        if name == "leaky_relu":
            return g.node("LeakyRelu", z, alpha=LEAKY_SLOPE)
        if name == "elu":
            return g.node("Elu", z, alpha=1.0)
        if name == "softplus":
            return g.node("Softplus", z)
    # onnxruntime has no double kernel for LeakyRelu, Elu or Softplus: in a
    # double graph they are composed of operators it has.
    if name == "leaky_relu":  # for a slope < 1, max(z, slope z) is z if z > 0
        return g.node("Max", z, g.node("Mul", g.const(LEAKY_SLOPE), z))
    if name == "elu":  # the unused branch may be inf, never nan: Where drops it
        is_positive = g.node("Greater", z, g.const(0.0))
        return g.node("Where", is_positive, z, g.node("Sub", g.node("Exp", z), g.const(1.0)))
    if name == "softplus":  # max(z, 0) + log(1 + exp(-|z|)), which cannot overflow
        exp_neg_abs = g.node("Exp", g.node("Neg", g.node("Abs", z)))
        return g.node("Add", g.node("Relu", z),
                      g.node("Log", g.node("Add", g.const(1.0), exp_neg_abs)))
    raise NotImplementedError(f"fastbp.onnx has no ONNX form of the activation {name!r}.")


def _forward_pass(g, model, input_name):
    """Add the network's forward pass, one MatMul, Add and activation per layer.

    Parameters
    ----------
    g : _GraphBuilder
        The graph being built.
    model : BPClassifier or BPRegressor
        The fitted model.
    input_name : str
        The name of the graph's input tensor, (N, n_features_in_).

    Returns
    -------
    out : str
        The name of the output layer's activations, (N, n_outputs_).
    """
    a = g.node("Cast", input_name, to=g.proto_dtype)  # int or other float input
    last = len(model.coefs_) - 1
    for i, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        z = g.node("Add", g.node("MatMul", a, g.const(coef)), g.const(intercept))
        a = _activation(g, model.out_activation_ if i == last else model.activation, z)
    return a


def _is_multilabel(model):
    return model._label_binarizer.y_type_ == "multilabel-indicator"


def _label_tensor(classes):
    """``classes`` as the values of an ONNX label constant.

    Integers and booleans become int64 and text utf-8 strings, the label types
    skl2onnx's shape calculators declare; float labels only if they are
    integers (skl2onnx's ZipMap makes the same cast and refuses the others).

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The class labels (``classes_``, or 0..n_classes-1 with option nocl).

    Returns
    -------
    proto_type : int
        ``TensorProto.INT64`` or ``TensorProto.STRING``.
    values : ndarray of shape (n_classes,)
        int64 labels, or utf-8 encoded bytes.

    Raises
    ------
    ValueError
        If a float label is not an integer.
    """
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        as_int = classes.astype(np.int64)
        if not np.array_equal(as_int, classes):
            raise ValueError(
                "ONNX class labels are int64 or strings, but this classifier's classes_ "
                f"{classes!r} are floats that are not integers. Fit it with integer or "
                "string labels to convert it.")
        return TensorProto.INT64, as_int
    return TensorProto.STRING, np.array([str(c).encode("utf-8") for c in classes])


def _parse_classifier(scope, model, inputs, custom_parsers=None):
    """skl2onnx's classifier parser (label, probabilities, ZipMap; what
    ``update_registered_converter`` installs for a classifier), after checks
    that fail with a clear message rather than deep inside skl2onnx (an
    unfitted model: NotFittedError, not an AttributeError in ZipMap's parser)."""
    check_is_fitted(model, "coefs_")
    _label_tensor(model.classes_)
    outputs = _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)
    if _is_multilabel(model):  # the parser declares a 1-d label
        outputs[0].type = Int64TensorType([None, len(model.classes_)])
    return outputs


def _classifier_shapes(operator):
    """Output types: skl2onnx's for classifiers, a (N, n_classes) label if multilabel."""
    calculate_linear_classifier_output_shapes(operator)
    model = operator.raw_operator
    if _is_multilabel(model):
        n_rows = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n_rows, len(model.classes_)])


def _convert_classifier(scope, operator, container):
    """label and probabilities as BPClassifier.predict and predict_proba give them."""
    model = operator.raw_operator
    g = _GraphBuilder(scope, container, operator.inputs[0].type)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    out = _forward_pass(g, model, operator.inputs[0].full_name)
    if _is_multilabel(model):  # LabelBinarizer's threshold: 1 where p > 0.5
        g.node("Identity", out, output=proba)
        g.node("Cast", g.node("Greater", out, g.const(0.5)), to=TensorProto.INT64, output=label)
        return
    if model.n_outputs_ == 1:  # binary: one logistic unit, predict_proba's [1 - p, p]
        g.node("Concat", g.node("Sub", g.const(1.0), out), out, axis=1, output=proba)
    else:
        g.node("Identity", out, output=proba)
    # ArgMax takes the first of tied maxima, as numpy's argmax does; for binary,
    # p > 1 - p exactly when p > 0.5 (1 - p is exact in floating point for p >= 0.5)
    index = g.node("ArgMax", proba, axis=1, keepdims=0)
    label_type, values = _label_tensor(get_label_classes(scope, model))  # nocl: 0..k-1
    g.node("Gather", g.const(values, label_type), index, axis=0, output=label)


def _regressor_shapes(operator):
    """One output, (N, n_outputs_), of the graph's float type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    model = operator.raw_operator
    check_is_fitted(model, "coefs_")
    tensor_type = (DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType)
                   else FloatTensorType)
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type([n_rows, model.n_outputs_])


def _convert_regressor(scope, operator, container):
    """BPRegressor.predict, as (N, n_outputs_) (skl2onnx's own MLPRegressor
    converter reshapes to (-1, 1), which interleaves several outputs)."""
    g = _GraphBuilder(scope, container, operator.inputs[0].type)
    out = _forward_pass(g, operator.raw_operator, operator.inputs[0].full_name)
    g.node("Identity", out, output=operator.outputs[0].full_name)


update_registered_converter(
    BPClassifier, CLASSIFIER_ALIAS, _classifier_shapes, _convert_classifier,
    parser=_parse_classifier,
    options={"zipmap": [True, False, "columns"], "nocl": [True, False],
             "output_class_labels": [False, True]})
update_registered_converter(BPRegressor, REGRESSOR_ALIAS, _regressor_shapes, _convert_regressor)
