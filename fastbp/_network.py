"""Network state: one flat parameter buffer, its sklearn-shaped views, workspaces.

``params`` holds every W_l raveled (C order) followed by every b_l, the order of
scikit-learn's ``_pack``, so an L-BFGS vector *is* the buffer.  ``coefs_`` and
``intercepts_`` handed to the user are views into it; if the user replaces them
(``est.coefs_ = ...``, unpickling, copying weights from an MLPClassifier), the
next call repacks them into a fresh buffer (``Network.from_arrays``).
"""

import time
from collections import namedtuple

import numpy as np

from . import _threads
from ._kernels import kernels_for
from ._kernels.network import network_layout
from ._kernels.state import CSR, Buffers

__all__ = ["KernelInput", "Network", "Workspace", "aligned_empty", "as_kernel_array",
           "as_kernel_input", "forward_pass", "uses_partials"]

# The input of a kernel: X dense (n, n_features) and ``csr`` None, *or* CSR
# input in ``csr`` (a ``fastbp._kernels.state.CSR``) and ``dense`` an empty
# (0, n_features) array; the kernels compiled for dense input leave out the
# CSR code (see fastbp/_kernels/state.py).
KernelInput = namedtuple("KernelInput", ["dense", "csr"])

# The predict kernel's per-thread buffers start on 64-byte boundaries, so that
# every thread's buffer is aligned alike: some OpenBLAS kernels round
# differently at other alignments (seen: dgemv in the generic kernels an older
# OpenBLAS falls back to on a CPU it does not know), which made a prediction
# depend on the thread that computed it.  (The training buffers keep numpy's
# alignment: aligning them to 64 bytes made the mnist-like fit 2.5% slower on
# this machine, and their blocks are laid out the same for every thread count.)
ALIGN = 64

# Rows per block of the predict kernel (at most): each block's products are
# one BLAS call per layer on one thread.
PREDICT_BLOCK_ROWS = 512

# Up to this many dense rows, predict runs ``predict_rows`` (loops, no BLAS, no
# threads): its fixed cost is far below BLAS's and the thread pinning's
# (OpenBLAS packs all of W per call), so loops win for a few rows; this bound
# stays below the row count where they stopped winning when measured.
SMALL_PREDICT_ROWS = 16


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` starting on an ``ALIGN``-byte boundary."""
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n_bytes + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + n_bytes].view(dtype).reshape(shape)


def _padded(n_elements, dtype):
    """``n_elements`` rounded up so that consecutive slabs stay ALIGN-aligned."""
    per_line = max(1, ALIGN // np.dtype(dtype).itemsize)
    return -(-n_elements // per_line) * per_line


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
        layout = network_layout(self.sizes, 1, 1)
        w_off, b_off = layout.w_off, layout.b_off
        n_layers = self.sizes.shape[0] - 1
        self.n_coef = int(w_off[n_layers])
        self.n_params = int(b_off[n_layers])
        if params is None:
            params = np.zeros(self.n_params, dtype=self.dtype)
        self.params = params
        self.coefs = [params[w_off[l]:w_off[l + 1]].reshape(self.sizes[l], self.sizes[l + 1])
                      for l in range(n_layers)]
        self.intercepts = [params[b_off[l]:b_off[l + 1]] for l in range(n_layers)]

    @classmethod
    def from_arrays(cls, coefs, intercepts, dtype):
        sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        net = cls(sizes, dtype)
        for dst, src in zip(net.coefs + net.intercepts, list(coefs) + list(intercepts)):
            dst[...] = src
        return net

    def copy(self):
        """A network of its own with the same weights."""
        return Network(self.sizes, self.dtype, self.params.copy())

    def backs(self, coefs, intercepts):
        """True if ``coefs``/``intercepts`` are exactly this buffer's views."""
        if len(coefs) != len(self.coefs) or len(intercepts) != len(self.intercepts):
            return False
        return all(a is b for a, b in zip(coefs, self.coefs)) and all(
            a is b for a, b in zip(intercepts, self.intercepts))


def uses_partials(sizes, cap, n_blocks, sparse=False):
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
    if n_blocks <= 1 or sparse:  # CSR input: a dense W_0 partial per block would dominate
        return False
    n_params = int(network_layout(sizes, 1, 1).b_off[-1])
    return n_blocks * n_params <= cap * int(sizes.sum())


class Workspace:
    """Activations, deltas, gradients (and per-block partial gradients, for small
    networks: never larger than the activations) for one fit.

    Sized for mini-batches of ``cap`` rows split in ``n_blocks`` work blocks;
    allocated once per fit (or reused by partial_fit), never per mini-batch.
    """

    def __init__(self, sizes, dtype, cap, n_blocks, keep_pre=False, sparse=False):
        sizes = np.asarray(sizes, dtype=np.int64)
        check_blas_size("The number of rows per compiled product (the batch size)", cap)
        self.n_blocks = n_blocks
        self.cap = cap
        self.key = (tuple(sizes.tolist()), np.dtype(dtype), cap, n_blocks, bool(keep_pre),
                    bool(sparse))
        # CSR input has no dense input block (the kernels read it in place)
        layout = network_layout(sizes, cap, 0 if sparse else cap)
        n_layers = sizes.shape[0] - 1
        n_deltas = int(layout.d_off[n_layers + 1])
        self.layout = layout
        self.buffers = Buffers(
            acts=np.empty(int(layout.a_off[n_layers + 1]), dtype=dtype),
            deltas=np.empty(n_deltas, dtype=dtype),
            # sum over the batch of a^T delta (and of delta, for the biases): the
            # gradient before the L2 term and the division by the weight sum
            grad_sums=np.empty(int(layout.b_off[n_layers]), dtype=dtype),
            rowsq=np.empty(int(layout.sq_off[n_layers]), dtype=np.float64),
            rowloss=np.empty(cap, dtype=np.float64),
            # f'(z) of the hidden units where the backward pass cannot get it from
            # the activations (gelu; a layer with dropout); laid out like the deltas.
            pre=np.empty(n_deltas if keep_pre else 0, dtype=dtype),
            n_blocks=int(n_blocks))
        # Per-block partial gradients, for the small-network schedule; an empty
        # 1-D array selects the other schedule (and keeps the partials code out
        # of the kernel compiled for it: see fastbp/_kernels/state.py).
        self.partials = (np.empty((n_blocks, int(layout.b_off[n_layers])), dtype=dtype)
                         if uses_partials(sizes, cap, n_blocks, sparse)
                         else np.empty(0, dtype=dtype))
        # (parallel epoch kernel, its _threads.CompileGate) for these buffers
        # (set by the training loop, kept while partial_fit reuses them)
        self.train_gate = (None, None)

    def matches(self, sizes, dtype, cap, n_blocks, keep_pre=False, sparse=False):
        return self.key == (tuple(np.asarray(sizes).tolist()), np.dtype(dtype), cap, n_blocks,
                            bool(keep_pre), bool(sparse))


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
    """``KernelInput`` of X for a kernel: dense (``csr`` None) or CSR (X empty).

    Dense input is passed without a copy when it is C-contiguous and of
    ``dtype``; CSR input keeps its data array and gets int64 index arrays.
    """
    import scipy.sparse as sp

    if sp.issparse(X):
        X = X.tocsr()  # unsorted indices and duplicates are fine: the products sum them
        n_features = X.shape[1]
        return KernelInput(np.zeros((0, n_features), dtype=dtype),
                           CSR(as_kernel_array(X.data, dtype),
                               as_kernel_array(X.indices, np.int64),
                               as_kernel_array(X.indptr, np.int64)))
    return KernelInput(as_kernel_array(X, dtype), None)


def forward_pass(net, X, act_code, out_code, n_threads, check_finite=False):
    """Output-layer activations of X (dense or sparse) through ``net``: the
    compiled predict kernel, in ``promote_types(X.dtype, net.dtype)`` (as
    scikit-learn's numpy forward pass computes).  Returns a new (n, n_out) array;
    with ``check_finite``, ``(out, finite)`` where ``finite`` True proves X
    finite and the output free of NaN (False: X may hold inf or nan, or a
    product overflowed), found without a pass of its own over X (see
    ``_kernels.network._predict``).

    Rows go in blocks whose size depends on the number of rows and the machine
    (``_threads.n_blocks``), never on the thread count; each thread has its own
    ping-pong buffers, aligned alike, so predictions do not depend on which
    thread computed a block either.
    """
    dtype = np.promote_types(X.dtype, net.dtype)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    params = net.params if dtype == net.dtype else net.params.astype(dtype)
    n = X.shape[0]
    out = np.empty((n, int(net.sizes[-1])), dtype=dtype)
    if n == 0:
        return (out, True) if check_finite else out
    sizes = net.sizes
    if n <= SMALL_PREDICT_ROWS and isinstance(X, np.ndarray):
        # a few rows: loops, no BLAS and no threads, so nothing to pin either
        buffers = np.empty((2, n * int(sizes[1:].max())), dtype=dtype)
        _threads.prepare(1)  # (the stale-cache check, once per process)
        nan_out = kernels_for("predict_rows", act_code, out_code)(
            as_kernel_array(X, dtype), sizes, params, act_code, out_code, out, buffers)
        if not check_finite:
            return out
        return out, bool(nan_out == 0 and np.isfinite(X).all())
    inputs = as_kernel_input(X, dtype)
    pair = kernels_for("predict", act_code, out_code)
    kernel, n_threads = _threads.choose(pair, min(n_threads, max(1, n // 64)))
    block_rows = int(min(PREDICT_BLOCK_ROWS, max(16, -(-n // _threads.n_blocks(n)))))
    max_width = int(sizes[1:].max())  # hidden layers only: X is read in place
    buffers = aligned_empty((n_threads, 2, _padded(block_rows * max_width, dtype)), dtype)
    args = (inputs.dense, inputs.csr, sizes, params, act_code, out_code, out, buffers,
            block_rows, n_threads)
    # (the parallel kernel not compiled yet: the serial one predicts the same
    # values until predicting has taken long enough to pay for compiling it)
    kernel, timed_gate = _threads.gated(pair, kernel, "predict", args)
    start = time.perf_counter()
    with _threads.thread_limits(n_threads):
        nonfinite = kernel(*args)
    if timed_gate is not None:
        timed_gate.serial_ran(time.perf_counter() - start)
    return (out, nonfinite == 0) if check_finite else out
