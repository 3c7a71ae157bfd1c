"""The compiled engine's shape (issue 18): named state, short parameter lists,
explicit builds, one kernel type per dtype whatever the hyper-parameters.

These fail when a change brings back what the issue removed: a kernel taking a
long positional list or an argument it never reads, a namedtuple field whose
type follows a user's value (another specialization, seconds of compiling), or
a build linking other leaves than ``CORE_LEAVES`` / ``EXTENDED_LEAVES`` say.
"""

import ast
import inspect
from pathlib import Path

import numba
import numpy as np
import pytest

import fastbp
from fastbp._kernels import network, optimizers, state
from fastbp._network import Network, Workspace, as_kernel_input
from fastbp._optim import (AdamOptimizer, AdamWOptimizer, RMSpropOptimizer, SGDOptimizer)
from fastbp import _training

KERNELS = Path(fastbp.__file__).parent / "_kernels"

# BLAS's own argument list (numba's ``numba_xxgemm`` C helper and its typed
# wrapper): the one place a long positional list is the interface itself.
BLAS_BRIDGE = {"_xgemm", "gemm_rm"}
# Leaves of the core build: the extended build's signature, one argument
# (``hidden``) unread (see fastbp/_kernels/network.py).
CORE_LEAVES_UNREAD = {("hidden_forward_core", "hidden"), ("hidden_backward_core", "hidden")}


def _functions():
    for path in sorted(KERNELS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                yield path.name, node


def _raises_only(node):
    return any(isinstance(stmt, ast.Raise) for stmt in node.body)


def test_no_kernel_takes_more_than_ten_parameters():
    long = [(f, n.name, len(n.args.args)) for f, n in _functions()
            if len(n.args.args) > 10 and n.name not in BLAS_BRIDGE]
    assert not long, long


def test_no_kernel_has_a_parameter_it_never_reads():
    unread = []
    for f, node in _functions():
        if _raises_only(node) or node.name in BLAS_BRIDGE or node.name.startswith("_vectors"):
            continue  # declarations of the leaves; numba intrinsics (typingctx)
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for arg in node.args.args:
            if arg.arg not in names and (node.name, arg.arg) not in CORE_LEAVES_UNREAD:
                unread.append((f, node.name, arg.arg))
    assert not unread, unread


def test_train_args_is_the_epoch_kernels_parameter_list():
    params = list(inspect.signature(network._train_batches).parameters)
    assert params == list(state.TrainArgs._fields)


@pytest.mark.parametrize("build, leaves", [(network.CORE, network.CORE_LEAVES),
                                           (network.EXTENDED, network.EXTENDED_LEAVES)])
def test_each_build_links_the_leaves_it_names(build, leaves):
    """What a build's bodies call by a leaf's name is that build's leaf."""
    for dispatcher in (*build.predict, build.predict_rows, build.dataset_loss):
        linked = dispatcher.py_func.__globals__
        for name, leaf in leaves.items():
            if name in dispatcher.py_func.__code__.co_names:
                assert linked[name] is leaf, (dispatcher.py_func.__name__, name)
    for train in build.train:
        rows_kernel = train.py_func.__globals__["forward_backward_rows"]
        assert rows_kernel.py_func.__code__ is network._forward_backward_rows.__code__
        for name in ("hidden_forward", "hidden_backward", "output_loss"):
            assert rows_kernel.py_func.__globals__[name] is leaves[name]
    # the declarations are what a body sees only if a build forgot a leaf
    assert network.hidden_forward not in leaves.values()


def _kernel_type(value):
    return numba.typeof(value)


def test_optimizer_constants_have_one_type_whatever_the_values():
    """An int hyper-parameter (momentum=1, a grid of ints) or a bool nesterov
    must not type the kernel differently: every field but the code is a float."""
    n, dtype = 10, np.float64
    optimizers_made = [
        SGDOptimizer(n, dtype, 1, momentum=1, nesterov=False),
        SGDOptimizer(n, dtype, 0.1, momentum=0.9, nesterov=True),
        AdamOptimizer(n, dtype, 1e-3, beta_1=0, beta_2=1, epsilon=1e-8),
        AdamWOptimizer(n, dtype, np.float32(1e-3), weight_decay=np.float32(0.5)),
        RMSpropOptimizer(n, dtype, 1e-3, rho=1, epsilon=1),
        type("Plain", (), {"kernel": state.optimizer(optimizers.NONE)})(),
    ]
    types = {_kernel_type(opt.kernel) for opt in optimizers_made}
    assert len(types) == 1, types
    assert all(isinstance(v, float) for opt in optimizers_made for v in opt.kernel[1:])
    states = {_kernel_type(opt.state) for opt in optimizers_made[:-1]}
    assert len(states) == 1, states


def test_loss_and_dropout_have_one_type_whatever_the_values():
    losses = [state.loss(0, 0, np.float32), state.loss(np.int64(2), np.float32(1e-4),
                                                       np.float64, huber_delta=2)]
    assert len({_kernel_type(x) for x in losses}) == 1
    assert state.loss(0, 1, np.float32).clip_eps == float(np.finfo(np.float32).eps)
    dropouts = [state.no_dropout(2), state.Dropout(np.array([0.5, 0.0]),
                                                   np.array([7, 3], dtype=np.int64))]
    assert len({_kernel_type(x) for x in dropouts}) == 1


def test_train_args_have_one_type_per_dtype_input_kind_and_schedule():
    """The epoch kernel's argument types depend on the dtype, dense or CSR and
    the schedule only: not on the act/loss codes, alpha, the batch range, the
    loss sum or the optimizer."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    types = {}
    for dtype in (np.float32, np.float64):
        net = Network([4, 5, 3], dtype)
        for sparse in (False, True):
            ws = Workspace(net.sizes, dtype, 8, 2, sparse=sparse)
            inputs = as_kernel_input(sp.csr_matrix(X) if sparse else X, dtype)
            Y, sw = np.zeros((20, 3), dtype), np.ones(20, dtype)
            for opt, act, alpha, lo, loss_sum in [
                    (SGDOptimizer(net.n_params, dtype, 1, momentum=1), 0, 0, 0, 0),
                    (AdamOptimizer(net.n_params, dtype, 1e-3), 3, 1e-4, 2, 5.5)]:
                args = _training.for_batches(
                    _training.train_args(inputs, Y, sw, net, ws, act, opt.kernel, opt.state,
                                         state.loss(1, alpha, dtype)),
                    np.arange(20, dtype=np.int64), lo, lo + 1, loss_sum)
                key = (dtype, sparse, ws.partials.ndim)
                types.setdefault(key, set()).add(tuple(_kernel_type(a) for a in args))
    assert all(len(found) == 1 for found in types.values()), types
    assert len(types) == 4  # 2 dtypes x (dense: partials, CSR: owned)
