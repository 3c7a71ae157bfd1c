"""A real Ctrl-C (SIGINT) delivered while a compiled call is running.

Issue 7, item 10: ``test_validation.py`` fakes Ctrl-C by raising KeyboardInterrupt
from a Python stub; here the operating system delivers a real SIGINT to a fit
that is inside a compiled (Numba) call at that moment.

How it works, per test:

* A child process (``CHILD``, below) builds a 20000 x 200, 10-class data set,
  warms every kernel up (so no compilation happens in the timed part), sizes the
  work of one compiled call (``_training.CALL_FLOPS``; for lbfgs one call is a
  full-batch loss and gradient) so that it lasts about a second here, wraps
  ``_training._run_batches`` (the one Python line that enters compiled code) to
  print a ``@@CALL`` line just before each compiled call and to note when it
  returned, prints ``@@READY`` and starts the long fit.
* The parent picks a target call from those lines (sgd/adam: a full-size call
  that is not the last of its epoch, after one epoch; lbfgs: the call after
  the first L-BFGS iteration), sleeps 30% of the length that call is expected to
  last, and sends SIGINT with ``proc.send_signal``.
* The child's SIGINT handler notes the time and which compiled call the
  wrapper was in when Python ran the handler (Python runs handlers only between
  bytecodes, so: right after the compiled call returned), then raises
  KeyboardInterrupt like Python's default handler.  After ``fit`` returns the
  child prints ``@@RESULT`` with the facts the parent asserts.

"By construction and asserted": the signal is sent only after the child
announced the target call, and the parent asserts, from the child's
timestamps (``time.monotonic``, one system-wide clock on Linux and macOS),
that it was sent well inside that call (>= 50 ms after it started and >= 50 ms
before it returned), that Python handled it in that call, that no compiled
call started afterwards, and that ``fit`` returned within a fraction of a
second of that call's end.
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

pytestmark = [
    pytest.mark.skipif(
        sys.platform.startswith("win"),
        reason="SIGINT cannot be sent to a single subprocess on Windows "
               "(send_signal only offers CTRL_C_EVENT to a whole console group)"),
    pytest.mark.slow,  # 5-10 s each: a child process, warm-up, 2-4 s of fit
]

INTERRUPTED = "Training interrupted by user."

# The signal lands this fraction into the target call's expected length.
DELAY_FRACTION = 0.3
# ... and must land at least this far from both ends of the compiled call
# (entering and leaving a numba dispatcher takes microseconds).
EDGE_MARGIN = 0.05
# fit must return at most this long after the interrupted compiled call
# returned (one KeyboardInterrupt, a warning, restoring thread limits).
RETURN_SLACK = 0.5
# The compiled call that is interrupted must last at least this long, or the
# bounds above mean little (1-2 s measured on the 2-core dev machine).
MIN_CALL_SECONDS = 0.25

# Timeouts: a hang fails the test instead of hanging CI.
READY_TIMEOUT = 300.0    # start-up and warm-up (a cold compile is 15-25 s)
TARGET_TIMEOUT = 90.0    # from READY to the target call's @@CALL line
EXIT_TIMEOUT = 60.0      # from SIGINT to the child's exit (lbfgs refits too)

DATA = dict(n_samples=20000, n_features=200, n_classes=10)
# sgd/adam: 100 mini-batches of 200 per epoch, 50 per compiled call (2 calls
# per epoch), 1-2 s per call on one core of the 2-core dev machine.  Interrupting the first call of
# epoch 2 shows the interrupt is honoured at the end of the call, not the epoch.
STOCHASTIC = dict(DATA, x_scale=1.0, hidden=[1024, 1024], batch_size=200,
                  batches_per_call=50, max_iter=20)
# lbfgs: one compiled call is one full-batch loss and gradient, 1-1.5 s here.
# With X scaled by 0.25, L-BFGS-B accepts its first trial step: iteration 1 is
# evaluations 0-1, so the call with index 2 is the first evaluation of
# iteration 2, and a correct fit keeps iteration 1 (checked against refits).
LBFGS = dict(DATA, x_scale=0.25, hidden=[3072], batch_size=200,
             batches_per_call=50, max_iter=20)
LBFGS_TARGET_CALL = 2

CHILD = r'''
import json, signal, sys, time, warnings

cfg = json.loads(sys.argv[1])

import numpy as np
import numba
import threadpoolctl
from sklearn.exceptions import ConvergenceWarning

import fastbp
from fastbp import BPClassifier, _lbfgs, _training
from fastbp import _kernels as K
from fastbp._network import Network


def emit(tag, **payload):
    sys.stdout.write("@@%s %s\n" % (tag, json.dumps(payload)))
    sys.stdout.flush()


def pools():
    return sorted([i["user_api"], i["internal_api"], i["filepath"], int(i["num_threads"])]
                  for i in threadpoolctl.threadpool_info())


rng = np.random.RandomState(0)
X = rng.randn(cfg["n_samples"], cfg["n_features"]) * cfg["x_scale"]
y = np.argmax(X @ rng.randn(cfg["n_features"], cfg["n_classes"]), axis=1)
n_batches = -(-cfg["n_samples"] // cfg["batch_size"])


def make(**kw):
    params = dict(hidden_layer_sizes=tuple(cfg["hidden"]), solver=cfg["solver"],
                  n_jobs=cfg["n_jobs"], batch_size=cfg["batch_size"],
                  max_iter=cfg["max_iter"], random_state=0)
    params.update(kw)
    return BPClassifier(**params)


# Warm-up: compile (or load) both kernel variants and run this solver once on
# a tiny problem, so nothing is compiled inside the timed fit.
t = time.monotonic()
fastbp.precompile(dtypes=("float64",))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    make(hidden_layer_sizes=(3,), max_iter=2).fit(X[:400], y[:400]).predict_proba(X[:10])
warmup_seconds = time.monotonic() - t

# One compiled call = batches_per_call mini-batches (fit_stochastic divides
# CALL_FLOPS by 6 * n_coef * batch_size; the extra half batch absorbs rounding).
sizes = [cfg["n_features"], *cfg["hidden"], cfg["n_classes"]]
n_coef = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
_training.CALL_FLOPS = 6.0 * n_coef * cfg["batch_size"] * (cfg["batches_per_call"] + 0.5)
# lbfgs: one full-batch evaluation per compiled call, so compiled call k is
# evaluation k (large evaluations run in row chunks of LBFGS_CALL_FLOPS, which
# this problem exceeds: test_interrupt_long.py interrupts those)
_lbfgs.LBFGS_CALL_FLOPS = float("inf")

state = {"announce": False, "in_call": None, "calls": [], "init": None, "during": None}
real_run_batches = _training._run_batches


def timed_run_batches(kernel, args):
    Y = args.batches.Y
    net = Network(args.model.sizes, args.model.params.dtype, args.model.params)  # its views
    rec = {"i": len(state["calls"]), "lo": args.batches.lo, "hi": args.batches.hi,
           "parallel": kernel is K.TRAIN.parallel,
           "numba_threads": int(numba.get_num_threads())}
    if rec["i"] == 0:
        state["init"] = [c.copy() for c in net.coefs] + [b.copy() for b in net.intercepts]
        state["during"] = {"numba": int(numba.get_num_threads()), "pools": pools()}
    state["calls"].append(rec)
    if state["announce"]:
        emit("CALL", **rec)
    rec["t0"] = time.monotonic()
    state["in_call"] = rec["i"]
    try:
        out = real_run_batches(kernel, args)  # the compiled call
        rec["loss"] = float(out) / Y.shape[0]
        return out
    finally:
        rec["t1"] = time.monotonic()
        state["in_call"] = None


_training._run_batches = timed_run_batches

handled = []


def on_sigint(signum, frame):
    # Python runs this between bytecodes of the main thread: after the compiled
    # call that was running when the signal arrived has returned.
    handled.append({"t": time.monotonic(), "in_call": state["in_call"],
                    "where": frame.f_code.co_name if frame is not None else None})
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)

# Thread settings that differ from what the fit uses inside, so that "restored"
# is not vacuous: numba runs 3 - n_jobs threads outside the fit, BLAS 2.
numba.set_num_threads(cfg["numba_threads_before"])
threadpoolctl.threadpool_limits(limits=cfg["blas_threads_before"], user_api="blas")
before = {"numba": int(numba.get_num_threads()), "pools": pools()}

est = make()
state["announce"] = True
emit("READY", warmup_seconds=warmup_seconds, call_flops=_training.CALL_FLOPS,
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
state["announce"] = False
after = {"numba": int(numba.get_num_threads()), "pools": pools()}
calls = state["calls"]

res = {"raised": raised, "t_fit0": t_fit0, "t_fit1": t_fit1, "calls": calls,
       "handled": handled, "before": before, "during": state["during"],
       "after": after, "n_batches": n_batches, "max_iter": est.max_iter,
       "warnings": [[w.category.__name__, str(w.message)] for w in caught]}

if raised is None:
    params = list(est.coefs_) + list(est.intercepts_)
    X_check = X if cfg["solver"] == "lbfgs" else X[:2000]
    P = est.predict_proba(X_check)
    pred = est.predict(X_check)
    res.update(
        n_iter=int(est.n_iter_), loss=float(est.loss_),
        loss_curve=[float(v) for v in getattr(est, "loss_curve_", [])],
        has_loss_curve=hasattr(est, "loss_curve_"),
        finite=bool(all(np.isfinite(p).all() for p in params)),
        moved=float(max(np.abs(p - q).max() for p, q in zip(params, state["init"]))),
        proba_ok=bool(P.shape == (X_check.shape[0], cfg["n_classes"])
                      and np.isfinite(P).all() and np.allclose(P.sum(axis=1), 1.0)),
        predict_matches_proba=bool(np.array_equal(pred, est.classes_[P.argmax(axis=1)])),
        accuracy=float(np.mean(pred == y[:X_check.shape[0]])))
    if cfg["solver"] == "lbfgs":
        # Loss at the kept weights, computed from them as scikit-learn defines it.
        eps = np.finfo(P.dtype).eps
        p_true = np.clip(P, eps, 1 - eps)[np.arange(y.shape[0]), np.searchsorted(est.classes_, y)]
        penalty = 0.5 * est.alpha * sum(float(c.ravel() @ c.ravel()) for c in est.coefs_)
        res["loss_at_weights"] = float(-np.log(p_true).sum() / y.shape[0] + penalty / y.shape[0])

        def refit(max_iter):
            # Same estimator, not interrupted, stopped by max_iter after
            # max_iter L-BFGS iterations; counts its compiled calls.
            state["calls"] = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                ref = make(max_iter=max_iter).fit(X, y)
            return ref, len(state["calls"])

        if est.n_iter_ >= 1:
            ref, n_calls = refit(est.n_iter_)
            res["ref"] = {
                "calls": n_calls, "loss": float(ref.loss_),
                "max_weight_diff": float(max(
                    np.abs(p - q).max() for p, q in
                    zip(params, list(ref.coefs_) + list(ref.intercepts_)))),
                "max_weight": float(max(np.abs(p).max() for p in params))}
            completed = handled[0]["in_call"] if handled and handled[0]["in_call"] is not None else len(calls)
            if n_calls < completed:
                # iteration n_iter_ + 1 may also have completed before the signal
                res["ref"]["next_calls"] = refit(est.n_iter_ + 1)[1]

emit("RESULT", **res)
'''


def _reader(stream, lines):
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def _next_line(lines, deadline, transcript, what):
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out waiting for %s; child output:\n%s"
                                 % (what, "".join(transcript)))
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError("child exited while waiting for %s; output:\n%s"
                                 % (what, "".join(transcript)))
        transcript.append(line)
        if line.startswith("@@"):
            tag, _, payload = line[2:].partition(" ")
            return tag, json.loads(payload)


def _choose_target(cfg, rec, done, n_batches):
    """Whether the compiled call announced by ``rec`` is the one to interrupt."""
    if cfg["solver"] == "lbfgs":
        return rec["i"] == LBFGS_TARGET_CALL
    epoch_done = any(c["hi"] == n_batches for c in done)
    full_size = rec["hi"] - rec["lo"] >= cfg["batches_per_call"] // 2
    return epoch_done and full_size and rec["hi"] < n_batches


def _expected_seconds(rec, done, starts):
    """Length the announced call should have, from the calls already done
    (their starts are the parent's arrival times of successive @@CALL lines)."""
    per_batch = [(starts[c["i"] + 1] - starts[c["i"]]) / max(1, c["hi"] - c["lo"])
                 for c in done]
    return min(per_batch) * max(1, rec["hi"] - rec["lo"])


def run_interrupted_fit(solver, n_jobs):
    """Run CHILD, interrupt its target compiled call; return (facts, t_signal, target)."""
    cfg = dict(LBFGS if solver == "lbfgs" else STOCHASTIC, solver=solver, n_jobs=n_jobs,
               numba_threads_before=3 - n_jobs, blas_threads_before=2)
    env = dict(os.environ, NUMBA_NUM_THREADS="2", PYTHONUNBUFFERED="1")
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
        assert tag == "READY", transcript
        ready["seconds_to_ready"] = time.monotonic() - t_spawn
        n_batches = ready["n_batches"]
        deadline = time.monotonic() + TARGET_TIMEOUT
        done, starts = [], {}
        while True:
            tag, rec = _next_line(lines, deadline, transcript, "the target compiled call")
            assert tag == "CALL", "fit ended before the target call:\n" + "".join(transcript)
            starts[rec["i"]] = time.monotonic()  # calls in `done` have all returned
            if _choose_target(cfg, rec, done, n_batches):
                break
            assert rec["i"] < 12, "no target call among the first 12:\n" + "".join(transcript)
            done.append(rec)
        delay = DELAY_FRACTION * _expected_seconds(rec, done, starts)
        time.sleep(max(0.0, starts[rec["i"]] + delay - time.monotonic()))
        t_signal = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("child still running %.0f s after SIGINT:\n%s"
                                 % (EXIT_TIMEOUT, "".join(transcript))) from None
        reader.join(timeout=10)
        while True:  # drain to the end of the output
            tag, facts = _next_line(lines, time.monotonic() + 10, transcript, "RESULT")
            if tag == "RESULT":
                break
        assert proc.returncode == 0, "".join(transcript)
        facts["ready"] = ready
        facts["seconds_total"] = time.monotonic() - t_spawn
        return facts, t_signal, rec["i"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def _check_interrupt_landed_in_compiled_call(facts, t_signal, target):
    """The SIGINT arrived well inside compiled call ``target``; fit returned right
    after that call.  Returns (call seconds, signal-to-return seconds)."""
    calls, handled = facts["calls"], facts["handled"]
    assert len(handled) == 1, handled
    # Python ran the handler while the wrapper was still in call `target`:
    # the signal was pending across (the rest of) that compiled call.
    assert handled[0]["in_call"] == target, (handled, target)
    call = calls[target]
    end = call.get("t1", handled[0]["t"])
    assert call["t0"] + EDGE_MARGIN <= t_signal <= end - EDGE_MARGIN, (
        "SIGINT at %.3f s into a %.3f s compiled call" % (t_signal - call["t0"], end - call["t0"]))
    assert end - call["t0"] >= MIN_CALL_SECONDS, calls
    assert handled[0]["t"] >= end - 1e-3  # handled only once the compiled call returned
    # No compiled call started after the signal (the rest of the epoch, or the
    # rest of the L-BFGS line search, was not run).
    assert len(calls) == target + 1, [(c["i"], c["lo"], c["hi"]) for c in calls]
    # The signal came during the fit, and fit returned within about one call
    # length after it: at the end of the running call, not of the whole fit.
    assert facts["t_fit0"] < t_signal < facts["t_fit1"]
    latency = facts["t_fit1"] - t_signal
    assert latency <= (end - t_signal) + RETURN_SLACK, (latency, end - t_signal)
    assert latency <= (end - call["t0"]) + RETURN_SLACK
    return end - call["t0"], latency, facts["t_fit1"] - end


def _check_usable_and_threads_restored(facts, n_jobs, every_blas_pinned=False):
    assert facts["raised"] is None, "fit raised instead of returning: " + facts["raised"]
    assert facts["warnings"].count(["UserWarning", INTERRUPTED]) == 1, facts["warnings"]
    assert not [w for w in facts["warnings"] if w[0] == "ConvergenceWarning"], facts["warnings"]
    assert 1 <= facts["n_iter"] < facts["max_iter"]
    assert facts["finite"]
    assert facts["moved"] > 0  # trained weights, not the initial ones
    assert facts["proba_ok"] and facts["predict_matches_proba"]
    # Inside the fit: numba at n_jobs threads, BLAS at one thread ...
    during, before, after = facts["during"], facts["before"], facts["after"]
    assert during["numba"] == n_jobs and before["numba"] == 3 - n_jobs
    # the kernels' BLAS (scipy's) is pinned during the epochs; numpy's own copy,
    # which compiled code never calls, keeps its threads (fastbp._blas_pin)
    from fastbp._blas_pin import _libraries
    kernel_libs = {lib.filepath for lib in _libraries("kernels")}
    blas_during = [p for p in during["pools"] if p[0] == "blas" and p[2] in kernel_libs]
    assert blas_during and all(p[3] == 1 for p in blas_during), during["pools"]
    # (L-BFGS pins numpy's too: scipy's minimizer calls it from Python)
    assert all(p[3] == (1 if every_blas_pinned else 2) for p in during["pools"]
               if p[0] == "blas" and p[2] not in kernel_libs), during["pools"]
    assert all(p[3] == 2 for p in before["pools"] if p[0] == "blas"), before["pools"]
    # ... and both back to what they were before the interrupted fit.
    assert after["numba"] == before["numba"]
    assert after["pools"] == before["pools"]


def _report(solver, n_jobs, facts, call_seconds, latency, after_call):
    first = facts["calls"][0]
    print("\n%s n_jobs=%d: first call %.3f s, interrupted call %.3f s, signal-to-return "
          "%.3f s (call end to return %.4f s), fit %.2f s, n_iter_=%s; child: %.1f s to READY (warm-up %.2f s), "
          "%.1f s in all" % (
              solver, n_jobs, first["t1"] - first["t0"], call_seconds, latency, after_call,
              facts["t_fit1"] - facts["t_fit0"], facts.get("n_iter"),
              facts["ready"]["seconds_to_ready"], facts["ready"]["warmup_seconds"],
              facts["seconds_total"]))


@pytest.mark.parametrize("solver, n_jobs", [("sgd", 1), ("sgd", 2), ("adam", 1)])
def test_sigint_during_compiled_epoch_call_stops_fit_cleanly(solver, n_jobs):
    facts, t_signal, target = run_interrupted_fit(solver, n_jobs)
    timing = _check_interrupt_landed_in_compiled_call(facts, t_signal, target)
    _report(solver, n_jobs, facts, *timing)
    # The target is a call inside an epoch, after epoch 1: the interrupt did not
    # wait for the end of the epoch.
    assert facts["calls"][target]["hi"] < facts["n_batches"]
    _check_usable_and_threads_restored(facts, n_jobs)
    # n_iter_ counts the epochs completed before the interrupted call.
    completed = sum(c["hi"] == facts["n_batches"] for c in facts["calls"][:target])
    assert facts["n_iter"] == completed >= 1
    assert len(facts["loss_curve"]) == facts["n_iter"]
    assert facts["loss"] == facts["loss_curve"][-1]


def test_sigint_during_compiled_lbfgs_call_keeps_last_iterate():
    n_jobs = 1
    facts, t_signal, target = run_interrupted_fit("lbfgs", n_jobs)
    timing = _check_interrupt_landed_in_compiled_call(facts, t_signal, target)
    _report("lbfgs", n_jobs, facts, *timing)
    _check_usable_and_threads_restored(facts, n_jobs, every_blas_pinned=True)
    # Progress was kept, and loss_ is the loss at the kept weights:
    # compiled call 0 evaluated the loss at the initial weights; L-BFGS-B only
    # accepts iterates with a lower loss, so any completed iteration is below it.
    assert facts["loss"] < facts["calls"][0]["loss"]
    assert facts["loss"] == pytest.approx(facts["loss_at_weights"], rel=1e-9)
    # The kept weights are those of iteration n_iter_: the same estimator fitted
    # without interruption with max_iter=n_iter_ ends on the same weights and loss
    # (same data, random_state and n_jobs: bitwise the same evaluations) ...
    ref = facts["ref"]
    assert ref["max_weight_diff"] <= 1e-12 * ref["max_weight"], ref
    assert facts["loss"] == pytest.approx(ref["loss"], rel=1e-12)
    # ... whose compiled calls had all returned before the interrupted one (the
    # iteration really completed), while iteration n_iter_ + 1 needs at least
    # one more call than had returned (it had not): n_iter_ is the number of
    # completed iterations.
    assert ref["calls"] <= target
    assert ref["calls"] == target or ref["next_calls"] > target, ref
