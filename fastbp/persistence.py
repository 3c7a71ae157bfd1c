"""Saving and loading fitted fastbp models.

Two formats:

* pickle (``pickle``, ``joblib.dump``): what scikit-learn uses.  A pickle
  records the fastbp version that wrote it, and loading it under another
  version warns (``InconsistentVersionWarning``), as scikit-learn does for its
  own version.  Never load a pickle from a source you do not trust: unpickling
  can run any code.
* skops (``fastbp[skops]``): ``skops.io`` stores no code and loads only the
  types it is told to trust.  :func:`dump` and :func:`load` are skops's own,
  with fastbp's types (``TRUSTED_TYPES``) declared trusted; every other type
  in the file (a user's transformer in a Pipeline, say) must still be
  trusted by the caller (``trusted=``).

Either way the network's flat buffer is not stored (``coefs_`` and
``intercepts_`` are), and the first predict after loading repacks it: the
predictions are bitwise those of the saved model, and with a warm kernel cache
loading compiles nothing.
"""

import warnings

from . import __version__

__all__ = ["InconsistentVersionWarning", "TRUSTED_TYPES", "dump", "load"]

# Every fastbp type a fitted estimator holds (the estimators and their
# optimizer state); the rest are numpy, scikit-learn and builtin types,
# which skops trusts by default.
TRUSTED_TYPES = [
    "fastbp.estimators.BPClassifier",
    "fastbp.estimators.BPRegressor",
    "fastbp._optim.SGDOptimizer",
    "fastbp._optim.AdamOptimizer",
    "fastbp._optim.AdamWOptimizer",
    "fastbp._optim.RMSpropOptimizer",
    "fastbp._kernels.state.Optimizer",
    "fastbp._kernels.state.OptimizerState",
]

VERSION_KEY = "_fastbp_version"


class InconsistentVersionWarning(UserWarning):
    """A model saved by another fastbp version was loaded."""

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from fastbp version "
            f"{self.original_version} when using version {self.current_version}. This "
            "might lead to breaking code or invalid results. Use at your own risk.")


def with_version(state):
    """``state`` (an estimator's ``__getstate__``) with this fastbp version."""
    state[VERSION_KEY] = __version__
    return state


def check_version(state, estimator_name):
    """Pop the recorded version from ``state``; warn if it is not this one
    (a state from before versions were recorded counts as another version)."""
    original = state.pop(VERSION_KEY, "pre-0.1.0")
    if original != __version__:
        warnings.warn(InconsistentVersionWarning(
            estimator_name=estimator_name, current_version=__version__,
            original_version=original), stacklevel=3)
    return state


def _skops_io():
    try:
        import skops.io as sio
    except ImportError as exc:
        raise ImportError(
            'fastbp.persistence.dump/load need skops, which fastbp does not install by '
            'default: pip install "fastbp[skops]"') from exc
    return sio


def dump(obj, file):
    """``skops.io.dump(obj, file)``: ``obj`` (a fastbp estimator, or a Pipeline
    or search holding one) to the path or file object ``file``."""
    _skops_io().dump(obj, file)


def load(file, trusted=()):
    """``skops.io.load(file, trusted=TRUSTED_TYPES + trusted)``.

    Parameters
    ----------
    file : str, path or file object
        What :func:`dump` (or ``skops.io.dump``) wrote.
    trusted : sequence of str, default=()
        More type names to trust (``skops.io.get_untrusted_types(file=file)``
        lists those the file holds); a file with any other untrusted type is
        refused with skops's ``UntrustedTypesFoundException``.

    Returns
    -------
    obj : object
        The loaded object.
    """
    return _skops_io().load(file, trusted=TRUSTED_TYPES + list(trusted))
