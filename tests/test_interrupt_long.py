"""Ctrl-C (a real SIGINT) during a fit on a large epoch: latency and state.

The issue's contract: "Ctrl-C during a fit takes effect within about a second
even for an epoch of 10^6 samples x a wide network, with every fitted
attribute consistent with the last completed step, and a warning saying so".
``test_interrupt.py`` checks, with a custom SIGINT handler and sized calls, that
the signal is honoured at the end of the compiled call it lands in; here the
child keeps the behaviour of Python's default SIGINT handler (what a user's
Ctrl-C meets: KeyboardInterrupt in the main thread; the handler also notes
when it ran, and waits for the spy below to finish a record) and trains on
10^6 x 200 float32 rows, hidden (512,), 10 classes (one epoch is about 5 s on
the 2-core dev machine), for sgd, adam, rmsprop, lbfgs, and
``n_init=3`` (starts run one after another: adam on the wide network; starts
run concurrently in Python threads: sgd on a narrow one).

Per case, one child process (``CHILD``): it draws the data itself, warms the
kernels up on a slice, wraps ``_training._run_batches`` (the one Python line that
enters compiled code) to keep, per network, the weights, optimizer state and
timing as they are after each compiled call -- also the one that was running
when the signal came, since that call completes before Python raises
KeyboardInterrupt -- and prints one line per task begin/end from a
scikit-learn callback (``set_callbacks``).  The parent sends SIGINT a fixed time
into epoch 2 (every running start in epoch 2), or just after L-BFGS iteration 1
ended, noting ``time.monotonic()`` (one system-wide clock on Linux) when it
does; the child prints when ``fit`` returned.

Checked: ``fit`` returns (no KeyboardInterrupt) within ``LATENCY_LIMIT`` of the
signal, with exactly one "Training interrupted by user." warning and no
ConvergenceWarning; no compiled call starts after the interrupt reached the
child; the model's
weights and optimizer state are bitwise those after the last compiled call
that ran (for lbfgs: the last iterate, as the callback saw it); ``n_iter_``,
``loss_curve_``, ``loss_`` and ``t_`` describe the epochs completed (``t_ ==
n_iter_ * n_samples``), Adam's step count the mini-batches done; with
``n_init``, ``init_losses_`` and ``best_init_`` agree with the starts' completed
epochs; predict works.

Memory: X is 800 MB in the child (L-BFGS evaluates in row chunks of
``LBFGS_CALL_FLOPS``, so its workspace is small too); the cases run one at a time.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_interrupt import INTERRUPTED, _next_line, _reader

pytestmark = [
    pytest.mark.skipif(
        sys.platform.startswith("win"),
        reason="SIGINT cannot be sent to a single subprocess on Windows"),
    pytest.mark.slow,  # 10-25 s each: 400 MB of data, an epoch of ~5 s, then the signal
]

# The contract says "within about a second"; generous for a loaded 2-core CI
# machine (measured signal-to-return: 0.002-0.06 s for the stochastic solvers;
# lbfgs took 4.8-9.7 s while it evaluated all 10^6 rows in one compiled call).
LATENCY_LIMIT = 2.0
# The signal is sent this long after the last needed start entered epoch 2
# (an epoch is ~5 s here: well inside it).
EPOCH2_DELAY = 1.0
# lbfgs: this long after iteration 1 ended, i.e. inside the next full-batch
# evaluation of the line search.
LBFGS_DELAY = 0.3

READY_TIMEOUT = 300.0    # start-up, 400 MB of data, warm-up (a cold compile: 30+ s)
TRIGGER_TIMEOUT = 240.0  # from READY to the moment to signal (one epoch here: ~5 s)
EXIT_TIMEOUT = 120.0     # from SIGINT to the child's exit

DATA = dict(n_samples=1_000_000, n_features=200, n_classes=10)
WIDE = (512,)

CASES = {
    "sgd": dict(solver="sgd", hidden=WIDE, n_init=1, learning_rate_init=0.01),
    "adam": dict(solver="adam", hidden=WIDE, n_init=1, learning_rate_init=0.001),
    "rmsprop": dict(solver="rmsprop", hidden=WIDE, n_init=1, learning_rate_init=0.001),
    "lbfgs": dict(solver="lbfgs", hidden=WIDE, n_init=1),
    # 6 * n_coef * 200 > fastbp._restarts.CONCURRENT_FLOPS_PER_BATCH: in turn,
    # each with both threads; the signal lands in start 0's epoch 2
    "adam-n_init=3-sequential": dict(solver="adam", hidden=WIDE, n_init=3,
                                     learning_rate_init=0.001),
    # a narrow network: starts 0 and 1 run concurrently in two Python threads
    # (max_workers = n_threads), start 2 waits for a free one; the signal
    # reaches the main thread waiting on them
    "sgd-n_init=3-concurrent": dict(solver="sgd", hidden=(16,), n_init=3,
                                    learning_rate_init=0.01),
}

CHILD = r'''
import json, signal, sys, threading, time, warnings

cfg = json.loads(sys.argv[1])

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastbp import BPClassifier, _threads, _training
from fastbp import _kernels as K
from fastbp._network import Network


def emit(tag, **payload):
    sys.stdout.write("@@%s %s\n" % (tag, json.dumps(payload)))
    sys.stdout.flush()


t_start = time.monotonic()
rng = np.random.default_rng(0)
X = rng.standard_normal((cfg["n_samples"], cfg["n_features"]), dtype=np.float32)
W = rng.standard_normal((cfg["n_features"], cfg["n_classes"]), dtype=np.float32)
y = np.argmax(X @ W, axis=1)
data_seconds = time.monotonic() - t_start
n = X.shape[0]
batch_size = 200
n_batches = -(-n // batch_size)


def make(**kw):
    params = dict(hidden_layer_sizes=tuple(cfg["hidden"]), solver=cfg["solver"],
                  n_init=cfg["n_init"], n_jobs=2, batch_size=batch_size, max_iter=200,
                  tol=0.0, n_iter_no_change=1000, random_state=0)
    if "learning_rate_init" in cfg:
        params["learning_rate_init"] = cfg["learning_rate_init"]
    params.update(kw)
    return BPClassifier(**params)


# Warm-up on a slice (same dtype, solver, n_init and threads: the same kernel
# specializations, serial and parallel), so nothing compiles in the timed fit.
t0 = time.monotonic()
with warnings.catch_warnings(), _threads.eager_parallel():
    warnings.simplefilter("ignore", ConvergenceWarning)
    make(max_iter=2).fit(X[:4000], y[:4000]).predict_proba(X[:1000])
warmup_seconds = time.monotonic() - t0

# After each compiled call (also the one interrupted: it completes, and only
# then does Python raise KeyboardInterrupt): the state of that network.
nets = {}  # id(net) -> record
lock = threading.Lock()
real_run_batches = _training._run_batches


# SIGINT: Python's default handler (raise KeyboardInterrupt in the main
# thread), except that while the spy records a call in the main thread the
# exception waits until the record is whole: the handler runs at any bytecode
# boundary, and one landing between the spy's lines once paired a call's
# weights with the previous call's moments.  Deferring it within the spy moves
# nothing fastbp sees: _run_batches returns its kernel's value straight away,
# so the exception reaches fastbp where it would have, just after the call.
# The handler's time is when fastbp met the interrupt (the parent's send time
# comes microseconds earlier: a call may begin in between).
guard = {"recording": False, "pending": False, "t_handler": None}


def on_sigint(signum, frame):
    if guard["t_handler"] is None:
        guard["t_handler"] = time.monotonic()
    if guard["recording"]:
        guard["pending"] = True
        return
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)


def spy(kernel, args):
    Y, lo, hi = args.batches.Y, args.batches.lo, args.batches.hi
    moments, adam_t = args.state.moments, args.state.step
    net = Network(args.model.sizes, args.model.params.dtype, args.model.params)  # its views
    with lock:
        rec = nets.setdefault(id(args.model.params), {"order": len(nets), "calls": 0, "epoch_losses": [],
                                        "batches_done": 0, "recent": []})
    call = {"lo": lo, "hi": hi, "t0": time.monotonic(),
            "parallel": kernel is K.TRAIN.parallel, "returned": False}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        guard["recording"] = True  # a signal after t0: the call runs, then is recorded
    out = None
    try:
        out = real_run_batches(kernel, args)
        call["returned"] = True
        return out
    finally:
        call["t1"] = time.monotonic()
        rec["calls"] += 1
        rec["recent"] = (rec["recent"] + [call])[-4:]
        rec["last_params"] = ([c.copy() for c in net.coefs], [b.copy() for b in net.intercepts])
        rec["last_moments"] = np.array(moments, copy=True)
        rec["last_adam_t"] = int(adam_t[0])
        rec["batches_done"] += hi - lo
        # an epoch's last call returns the epoch's loss sum (lbfgs: every
        # call is one full-batch evaluation, hi == 1 == ceil(n / n))
        if out is not None and hi == -(-Y.shape[0] // args.batches.size):
            rec["epoch_losses"].append(float(out) / Y.shape[0])
        if in_main:
            guard["recording"] = False
            if guard["pending"]:
                guard["pending"] = False
                raise KeyboardInterrupt


_training._run_batches = spy


def path(context):
    p = []
    while context is not None:
        p.append([context.task_name, context.task_id])
        context = context.parent
    return p[::-1]


class Announce:
    """Prints each task's begin and end; for lbfgs keeps each completed
    iteration's model (fitted_estimator)."""

    def __init__(self):
        self.iterates = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        if context.task_name != "batches":
            emit("BEGIN", path=path(context), t=time.monotonic())

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "batches":
            return False
        if context.task_name == "lbfgs-iter" and fitted_estimator is not None:
            self.iterates.append(([c.copy() for c in fitted_estimator.coefs_],
                                  [b.copy() for b in fitted_estimator.intercepts_],
                                  int(fitted_estimator.n_iter_),
                                  float(fitted_estimator.loss_)))
        emit("END", path=path(context), t=time.monotonic(),
             model=fitted_estimator is not None)
        return False


announce = Announce()
est = make().set_callbacks(announce)
emit("READY", data_seconds=data_seconds, warmup_seconds=warmup_seconds,
     n_batches=n_batches)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    t_fit0 = time.monotonic()
    try:
        est.fit(X, y)
        raised = None
    except BaseException as exc:  # KeyboardInterrupt included
        raised = "%s: %s" % (type(exc).__name__, exc)
    t_fit1 = time.monotonic()


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b)) and len(a) == len(b)


res = {"raised": raised, "t_fit0": t_fit0, "t_fit1": t_fit1, "n_batches": n_batches,
       "t_handler": guard["t_handler"],
       "n_samples": n, "warnings": [[w.category.__name__, str(w.message)] for w in caught]}
res["nets"] = [{k: v for k, v in rec.items() if not k.startswith("last_")}
               for rec in sorted(nets.values(), key=lambda r: r["order"])]
if raised is None:
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    res["matches_last_call_of"] = [
        rec["order"] for rec in nets.values()
        if same(rec["last_params"][0], coefs) and same(rec["last_params"][1], intercepts)]
    opt = getattr(est, "_optimizer", None)
    if opt is not None and res["matches_last_call_of"]:
        rec = [r for r in nets.values() if r["order"] == res["matches_last_call_of"][0]][0]
        res["moments_match"] = bool(np.array_equal(np.asarray(opt.moments), rec["last_moments"]))
        res["adam_t"] = int(opt.t) if hasattr(opt, "t") else None
        res["spy_adam_t"] = rec["last_adam_t"]
        res["kept_net"] = rec["order"]
    if announce.iterates:
        c, b, it, _ = announce.iterates[-1]
        res["iterate_losses"] = [it_loss for _, _, _, it_loss in announce.iterates]
        res["matches_last_iterate"] = same(c, coefs) and same(b, intercepts)
        res["iterates"] = len(announce.iterates)
        res["last_iterate_n_iter"] = it
    P = est.predict_proba(X[:20000])
    pred = est.predict(X[:20000])
    res.update(
        n_iter=int(est.n_iter_), loss=float(est.loss_),
        loss_curve=[float(v) for v in est.loss_curve_] if hasattr(est, "loss_curve_") else None,
        t_=int(est.t_) if hasattr(est, "t_") else None,
        finite=bool(all(np.isfinite(p).all() for p in coefs + intercepts)),
        proba_ok=bool(np.isfinite(P).all() and np.allclose(P.sum(axis=1), 1.0, atol=1e-4)),
        predict_matches_proba=bool(np.array_equal(pred, est.classes_[P.argmax(axis=1)])),
        accuracy=float(np.mean(pred == y[:20000])))
    if cfg["n_init"] > 1:
        res["init_losses"] = [None if not np.isfinite(v) else float(v) for v in est.init_losses_]
        res["best_init"] = int(est.best_init_)
emit("RESULT", **res)
'''


def _path(event):
    return [tuple(p) for p in event["path"]]


def _ready_to_signal(case, event, state):
    """From the child's BEGIN/END lines: whether it is time to send SIGINT
    (then return the delay to wait first), else None."""
    tag, payload = event
    path = _path(payload)
    if case["solver"] == "lbfgs":
        if tag == "END" and path[-1] == ("lbfgs-iter", 0):
            return LBFGS_DELAY
        return None
    if tag == "BEGIN" and path[-1] == ("epoch", 1):
        start = path[1][1] if len(path) > 2 and path[1][0] == "init" else 0
        state.add(start)
        # concurrent starts: 0 and 1 run (2 threads), 2 waits; sequential: start 0
        needed = {0, 1} if case is CASES["sgd-n_init=3-concurrent"] else {0}
        if needed <= state:
            return EPOCH2_DELAY
    return None


def run_case(name):
    case = CASES[name]
    cfg = dict(DATA, **case)
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    env.pop("NUMBA_THREADING_LAYER", None)
    t_spawn = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=str(Path(__file__).resolve().parents[1]))
    lines, transcript = queue.Queue(), []
    reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        tag, ready = _next_line(lines, time.monotonic() + READY_TIMEOUT, transcript, "READY")
        assert tag == "READY", "".join(transcript)
        ready["seconds_to_ready"] = time.monotonic() - t_spawn
        deadline = time.monotonic() + TRIGGER_TIMEOUT
        seen, events = set(), []
        while True:
            tag, payload = _next_line(lines, deadline, transcript, "the moment to signal")
            assert tag in ("BEGIN", "END"), "fit ended early:\n" + "".join(transcript)
            events.append((tag, payload))
            delay = _ready_to_signal(case, (tag, payload), seen)
            if delay is not None:
                break
        time.sleep(max(0.0, payload["t"] + delay - time.monotonic()))
        t_signal = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("child still running %.0f s after SIGINT:\n%s"
                                 % (EXIT_TIMEOUT, "".join(transcript[-40:]))) from None
        reader.join(timeout=10)
        while True:
            tag, facts = _next_line(lines, time.monotonic() + 10, transcript, "RESULT")
            if tag == "RESULT":
                break
            events.append((tag, facts))
        assert proc.returncode == 0, "".join(transcript[-40:])
        facts.update(ready=ready, t_signal=t_signal, events=events,
                     seconds_total=time.monotonic() - t_spawn)
        return facts
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


_results = {}


def interrupted(name):
    """The facts of case ``name``'s interrupted fit (one child run per case,
    shared by the tests of that case)."""
    if name not in _results:
        _results[name] = run_case(name)
    return _results[name]


def _latency(facts):
    return facts["t_fit1"] - facts["t_signal"]


def _last_call(facts):
    calls = [c for net in facts["nets"] for c in net["recent"]]
    return max(calls, key=lambda c: c["t0"])


def _report(name, facts):
    last = _last_call(facts)
    print("\n%s: signal-to-return %.3f s; last compiled call %.3f s long, signal %.3f s "
          "into it, return %.4f s after it ended; n_iter_=%s; fit %.1f s; child %.1f s to "
          "READY (data %.1f s, warm-up %.1f s), %.1f s in all" % (
              name, _latency(facts), last["t1"] - last["t0"], facts["t_signal"] - last["t0"],
              facts["t_fit1"] - last["t1"], facts.get("n_iter"),
              facts["t_fit1"] - facts["t_fit0"], facts["ready"]["seconds_to_ready"],
              facts["ready"]["data_seconds"], facts["ready"]["warmup_seconds"],
              facts["seconds_total"]))
    if "init_losses" in facts:
        print("  init_losses_=%s best_init_=%s; compiled calls per start: %s" % (
            facts["init_losses"], facts["best_init"], [net["calls"] for net in facts["nets"]]))


def _check_returned_with_one_warning(facts, slack=0.0):
    """``slack``: concurrent restarts' worker threads may begin a call in the
    moment between the signal and the main thread setting the stop event."""
    assert facts["raised"] is None, "fit raised instead of returning: " + facts["raised"]
    assert facts["warnings"].count(["UserWarning", INTERRUPTED]) == 1, facts["warnings"]
    assert not [w for w in facts["warnings"] if w[0] == "ConvergenceWarning"], facts["warnings"]
    assert facts["t_fit0"] < facts["t_signal"] <= facts["t_handler"] < facts["t_fit1"]
    # no compiled call began after the interrupt reached the child's Python
    late = [c["t0"] - facts["t_handler"] for net in facts["nets"] for c in net["recent"]
            if c["t0"] >= facts["t_handler"] + slack]
    assert not late, "compiled calls began %s s after the interrupt" % late
    assert facts["finite"] and facts["proba_ok"] and facts["predict_matches_proba"]


def _check_stochastic_state(facts, at_epoch_end_ok=False):
    """``at_epoch_end_ok``: a start that stops on the restarts' stop event
    may stop between two epochs (its next call would have begun one)."""
    assert facts["accuracy"] > 0.15  # trained (10 classes), not the initial weights
    assert facts.get("matches_last_call_of"), "weights are not those after any call"
    kept = facts["kept_net"]
    net = facts["nets"][kept]
    n_batches, n_samples = facts["n_batches"], facts["n_samples"]
    # weights and optimizer state: bitwise after the last compiled call that ran
    assert facts["matches_last_call_of"] == [kept]
    assert facts["moments_match"]
    # the epoch bookkeeping: the epochs completed, and only those
    assert facts["n_iter"] == len(net["epoch_losses"]) >= 1
    assert facts["loss_curve"] == net["epoch_losses"]
    assert facts["loss"] == facts["loss_curve"][-1]
    assert facts["t_"] == facts["n_iter"] * n_samples
    # interrupted inside an epoch (not at its end): mini-batches of epoch
    # n_iter_ + 1 were trained, and the fit did not wait for the epoch's end
    in_epoch = net["batches_done"] - facts["n_iter"] * n_batches
    assert (0 if at_epoch_end_ok else 1) <= in_epoch < n_batches, in_epoch
    if facts["adam_t"] is not None:  # Adam's steps: every mini-batch done
        assert facts["adam_t"] == facts["spy_adam_t"] == net["batches_done"]


CASE_NAMES = list(CASES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_sigint_takes_effect_within_the_latency_limit(name):
    facts = interrupted(name)
    _report(name, facts)
    assert facts["raised"] is None, facts["raised"]
    assert _latency(facts) < LATENCY_LIMIT, (
        "fit returned %.2f s after SIGINT (last compiled call: %.2f s)"
        % (_latency(facts), _last_call(facts)["t1"] - _last_call(facts)["t0"]))


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_sigint_keeps_a_consistent_model(name):
    facts = interrupted(name)
    _check_returned_with_one_warning(facts)
    _check_stochastic_state(facts)


def test_sigint_during_lbfgs_keeps_the_last_iterate():
    facts = interrupted("lbfgs")
    _check_returned_with_one_warning(facts)
    # the signal came after iteration 1 ended, during a later evaluation
    assert facts["n_iter"] == facts["iterates"] == facts["last_iterate_n_iter"] >= 1
    assert facts["matches_last_iterate"]
    # loss_ is the last accepted iterate's, and the iterates' losses fell
    losses = facts["iterate_losses"]
    assert facts["loss"] == losses[-1]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    # every evaluation ran in row chunks (compiled calls of ~LBFGS_CALL_FLOPS):
    # many more calls than iterations
    assert facts["nets"][0]["calls"] > 10 * (facts["iterates"] + 1)
    if facts["loss_curve"] is not None:
        assert len(facts["loss_curve"]) == facts["n_iter"]


def test_sigint_with_sequential_restarts():
    facts = interrupted("adam-n_init=3-sequential")
    _check_returned_with_one_warning(facts)
    # start 0 was interrupted in its epoch 2; starts 1 and 2 never began
    assert [net["order"] for net in facts["nets"]] == [0]
    assert facts["kept_net"] == 0 and facts["best_init"] == 0
    _check_stochastic_state(facts)
    assert facts["init_losses"] == [facts["loss"], None, None]
    begun = {tuple(p) for tag, e in facts["events"] if tag == "BEGIN" for p in e["path"]
             if p[0] == "init"}
    assert begun == {("init", 0)}


def test_sigint_with_concurrent_restarts():
    facts = interrupted("sgd-n_init=3-concurrent")
    _check_returned_with_one_warning(facts, slack=0.1)
    # starts 0 and 1 ran (one Python thread each, serial kernel), both past epoch 1
    nets = facts["nets"]
    running = [net for net in nets if net["epoch_losses"]]
    assert len(running) == 2, [(n["order"], len(n["epoch_losses"])) for n in nets]
    assert not any(c["parallel"] for net in nets for c in net["recent"])
    _check_stochastic_state(facts, at_epoch_end_ok=True)
    # init_losses_: each start's last completed epoch; the third start did not
    # complete one (it began, if at all, after the signal); the best is kept
    finite = sorted(v for v in facts["init_losses"] if v is not None)
    assert finite == sorted(net["epoch_losses"][-1] for net in running)
    assert facts["init_losses"][2] is None
    assert facts["loss"] == min(finite) == facts["init_losses"][facts["best_init"]]
