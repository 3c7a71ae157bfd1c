"""Network state: one flat parameter buffer, its sklearn-shaped views, workspaces.

``params`` holds every W_l raveled (C order) followed by every b_l, the order of
scikit-learn's ``_pack``, so an L-BFGS vector *is* the buffer.  ``coefs_`` and
``intercepts_`` handed to the user are views into it; if the user replaces them
(``est.coefs_ = ...``, unpickling, copying weights from an MLPClassifier), the
next call repacks them into a fresh buffer (``Network.from_arrays``).
"""

import numpy as np

__all__ = ["Network", "Workspace", "as_kernel_array", "as_kernel_input", "uses_partials"]

_EMPTY_INDEX = np.zeros(0, dtype=np.int64)

# numba's BLAS bridge (``numba_xxgemm``, which np.dot and fastbp._kernels.linalg
# call) narrows every size to the 32-bit Fortran integer without a check: a
# larger dimension would silently multiply the wrong memory.  Every BLAS size
# is a layer width or a number of batch rows, so checking those here covers
# all calls.
BLAS_INT_MAX = 2**31 - 1


def check_blas_size(what, value):
    """Raise a clear error if ``value`` (a GEMM dimension) exceeds the BLAS int."""
    if int(value) > BLAS_INT_MAX:
        raise ValueError(
            f"{what} is {int(value)}, but the BLAS library computes with 32-bit "
            f"sizes: at most {BLAS_INT_MAX}. Use a smaller layer or batch_size.")


class Network:
    """Flat parameters of an MLP with layer sizes ``sizes`` (input first)."""

    def __init__(self, sizes, dtype, params=None):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.dtype = np.dtype(dtype)
        for k, units in enumerate(self.sizes.tolist()):
            check_blas_size(f"The width of layer {k}", units)
        fan_in, fan_out = self.sizes[:-1], self.sizes[1:]
        self.n_coef = int(np.sum(fan_in * fan_out))
        self.n_params = self.n_coef + int(np.sum(fan_out))
        if params is None:
            params = np.zeros(self.n_params, dtype=self.dtype)
        self.params = params
        self.coefs, self.intercepts = [], []
        w = 0
        b = self.n_coef
        for fi, fo in zip(fan_in.tolist(), fan_out.tolist()):
            self.coefs.append(params[w:w + fi * fo].reshape(fi, fo))
            self.intercepts.append(params[b:b + fo])
            w += fi * fo
            b += fo

    @classmethod
    def from_arrays(cls, coefs, intercepts, dtype):
        sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        net = cls(sizes, dtype)
        for dst, src in zip(net.coefs + net.intercepts, list(coefs) + list(intercepts)):
            dst[...] = src
        return net

    def backs(self, coefs, intercepts):
        """True if ``coefs``/``intercepts`` are exactly this buffer's views."""
        if len(coefs) != len(self.coefs) or len(intercepts) != len(self.intercepts):
            return False
        return all(a is b for a, b in zip(coefs, self.coefs)) and all(
            a is b for a, b in zip(intercepts, self.intercepts))


def uses_partials(sizes, cap, n_blocks):
    """Whether mini-batches of ``cap`` rows in ``n_blocks`` blocks use per-block
    partial gradients (one parallel region per mini-batch) rather than
    parameter-owned gradient blocks (two regions).

    Partials move ``n_blocks * n_params`` values between the cores per
    mini-batch, the parameter-owned blocks about ``cap * sum(sizes)`` (each
    thread reads the activations and deltas the others wrote): take the smaller.
    In practice: small networks.  A function of the shapes and the block count
    only, so the result stays independent of the thread count.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if n_blocks <= 1:
        return False
    n_params = int(np.sum(sizes[:-1] * sizes[1:]) + np.sum(sizes[1:]))
    return n_blocks * n_params <= cap * int(sizes.sum())


class Workspace:
    """Activations, deltas, gradients (and per-block partial gradients, for small
    networks: never larger than the activations) for one fit.

    Sized for mini-batches of ``cap`` rows split in ``n_blocks`` work blocks;
    allocated once per fit (or reused by partial_fit), never per mini-batch.
    """

    def __init__(self, sizes, dtype, cap, n_blocks):
        sizes = np.asarray(sizes, dtype=np.int64)
        check_blas_size("The number of rows per compiled product (the batch size)", cap)
        self.n_blocks = n_blocks
        self.key = (tuple(sizes.tolist()), np.dtype(dtype), cap, n_blocks)
        total = int(sizes.sum())
        self.acts = np.empty(cap * total, dtype=dtype)
        self.deltas = np.empty(cap * (total - int(sizes[0])), dtype=dtype)
        fan_in, fan_out = sizes[:-1], sizes[1:]
        self.raw = np.empty(int(np.sum(fan_in * fan_out) + np.sum(fan_out)), dtype=dtype)
        self.rowsq = np.empty(int(fan_in.sum()), dtype=np.float64)
        n_params = self.raw.shape[0]
        # Per-block partial gradients, for the small-network schedule (see
        # fastbp/_kernels/network.py); zero rows select the other schedule.
        rows = n_blocks if uses_partials(sizes, cap, n_blocks) else 0
        self.partials = np.empty((rows, n_params), dtype=dtype)
        self.rowloss = np.empty(cap, dtype=np.float64)

    def matches(self, sizes, dtype, cap, n_blocks):
        return self.key == (tuple(np.asarray(sizes).tolist()), np.dtype(dtype), cap, n_blocks)


class _ReadOnlyView:
    """Keeps a read-only array alive behind a writeable-flagged view of it."""

    def __init__(self, arr):
        self._arr = arr
        iface = dict(arr.__array_interface__)
        iface["data"] = (iface["data"][0], False)
        self.__array_interface__ = iface


def as_kernel_array(a, dtype):
    """``a`` as a C-contiguous ``dtype`` array for a kernel's read-only inputs
    (X, y, sample_weight), copied only when its dtype or layout differ."""
    a = np.ascontiguousarray(a, dtype=dtype)
    if not a.flags.writeable:
        # A read-only array (a joblib memmap in a grid-search worker) is another
        # numba type: it would compile a third specialization.  Kernels never
        # write to their inputs, so hand them a writeable-flagged view instead
        # of a copy.
        a = np.asarray(_ReadOnlyView(a))
    return a


def as_kernel_input(X, dtype):
    """Return ``(X_dense, data, indices, indptr)`` for a kernel: one of them is empty.

    Dense input is passed without a copy when it is C-contiguous and of
    ``dtype``; CSR input keeps its data array and gets int64 index arrays.
    """
    import scipy.sparse as sp

    if sp.issparse(X):
        X = X.tocsr()  # unsorted indices are fine: rows are densified
        n_features = X.shape[1]
        return (np.zeros((0, n_features), dtype=dtype), as_kernel_array(X.data, dtype),
                as_kernel_array(X.indices, np.int64), as_kernel_array(X.indptr, np.int64))
    empty = np.zeros(0, dtype=dtype)
    return as_kernel_array(X, dtype), empty, _EMPTY_INDEX, _EMPTY_INDEX
