import numpy as np
import pytest

# Tolerances of a compiled result against the float64 NumPy oracle
# (tests/_reference.py), by the dtype the kernel computed in.  The one place
# to change them: test_kernels, test_gradcheck and test_vs_sklearn read it.
TOL = {
    np.float64: dict(rtol=1e-10, atol=1e-12),
    np.float32: dict(rtol=2e-4, atol=2e-5),
}


def tol(dtype):
    """``TOL`` entry for a dtype given as a type, a dtype or a string."""
    return TOL[np.dtype(dtype).type]


@pytest.fixture
def rng():
    """A fresh, deterministically seeded NumPy Generator for each test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def eager_parallel_kernels():
    """Run the parallel kernels whenever a test asks for threads.  Outside the
    tests a fit runs the serial twin until compiling the parallel one pays
    back (``fastbp._threads.CompileGate``): the same results, but the parallel
    code would go untested.  tests/test_threads.py tests the gates themselves."""
    from fastbp._threads import eager_parallel

    with eager_parallel():
        yield


@pytest.fixture(params=["owned", "partials"])
def schedule(request, monkeypatch):
    """Run a test under each gradient schedule of the epoch kernel.

    "owned": a second parallel region where each block computes and applies the
    gradient of the parameters it owns; "partials": per-block partial gradients
    in the first region, summed in block order (see ``fastbp._network.uses_partials``,
    which normally picks by size).  Forced here for any block count.
    """
    from fastbp import _network

    force = request.param == "partials"
    monkeypatch.setattr(_network, "uses_partials",
                        lambda sizes, cap, n_blocks, sparse=False: force)
    return request.param


def diverging_regression():
    """``(X, y, params)``: standardized data on which sgd with lr 0.5 and
    momentum 0.9 trains for a few epochs, then blows up -- the loss is
    non-finite in epoch 6 and the best validation score is epoch 4's (checked
    against scikit-learn in test_vs_sklearn.py)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=200)
    params = dict(solver="sgd", hidden_layer_sizes=(4,), learning_rate_init=0.5,
                  momentum=0.9, batch_size=20, early_stopping=True,
                  n_iter_no_change=1000, max_iter=100, random_state=0)
    return X, y, params


def all_dispatchers():
    """name -> numba dispatcher: the kernels' entry points (``DISPATCHERS``)
    and every compiled helper of the ``fastbp._kernels`` modules (what the
    compile and no-recompilation tests count signatures of)."""
    from numba.core.registry import CPUDispatcher

    from fastbp._kernels import DISPATCHERS, activations, dropout, linalg, losses, network
    from fastbp._kernels import optimizers, sparse

    found = dict(DISPATCHERS)
    for mod in (activations, dropout, losses, linalg, network, optimizers, sparse):
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj not in DISPATCHERS.values():
                found[f"{mod.__name__}.{name}"] = obj
    for build in (network.CORE, network.EXTENDED):  # (each build's own dispatchers)
        for obj in (build.dataset_loss, build.forward_backward_rows):
            found[f"{network.__name__}.{obj.py_func.__name__}"] = obj
    return found


def _numba_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


# For tests that compare a multi-threaded fit with another, or need two starts
# or kernels to really run at the same time: with one numba thread n_jobs=2
# resolves to 1 and such a test would compare a thing with itself.
# (test_threads.py's subprocess test asks for more threads in child processes.)
needs_two_threads = pytest.mark.skipif(
    _numba_threads() < 2,
    reason="numba offers one thread here (NUMBA_NUM_THREADS=1 or a 1-CPU machine): "
           "n_jobs=2 would run on one thread and the test compare a thing with itself")
