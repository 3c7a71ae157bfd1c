"""fastbp: multilayer perceptrons trained by compiled backpropagation.

``BPClassifier`` and ``BPRegressor`` are drop-ins for scikit-learn's
``MLPClassifier`` and ``MLPRegressor``.  Importing fastbp compiles nothing;
kernels compile on first use (and are cached on disk), or ahead of time with
``fastbp.precompile()``.
"""

__version__ = "0.1.0"  # (first: fastbp.persistence records it in every pickle)

from ._compile import precompile  # noqa: E402
from .estimators import BPClassifier, BPRegressor  # noqa: E402

__all__ = ["BPClassifier", "BPRegressor", "precompile", "__version__"]
