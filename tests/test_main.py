"""The demo, ``python -m fastbp`` (fastbp/__main__.py)."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from fastbp.__main__ import build_parser, main, max_param_difference, speed_sentence


# ------------------------------------------------------------- speed_sentence
def test_speed_sentence_faster():
    assert speed_sentence(1.0, 4.2) == "fastbp fit is 4.2x faster than MLPClassifier"


def test_speed_sentence_slower_never_says_faster():
    sentence = speed_sentence(1.3, 1.0)
    assert sentence == "fastbp fit is 1.3x slower than MLPClassifier"
    assert "faster" not in sentence


def test_speed_sentence_slower_ratio_is_fastbp_over_sklearn():
    # 0.5 s vs 0.2 s: 2.5x slower (t_fastbp / t_sklearn), not "0.4x faster".
    assert speed_sentence(0.5, 0.2) == "fastbp fit is 2.5x slower than MLPClassifier"


def test_speed_sentence_equal_times():
    assert speed_sentence(0.7, 0.7) == "fastbp fit is 1.0x faster than MLPClassifier"


@pytest.mark.parametrize("t_bp, t_sk", [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
def test_speed_sentence_rejects_non_positive_times(t_bp, t_sk):
    with pytest.raises(ValueError, match="fit times must be positive"):
        speed_sentence(t_bp, t_sk)


# ------------------------------------------------------- max_param_difference
def _fake(coefs, intercepts):
    return SimpleNamespace(coefs_=[np.asarray(c, dtype=float) for c in coefs],
                           intercepts_=[np.asarray(b, dtype=float) for b in intercepts])


def test_max_param_difference_includes_intercepts():
    coefs = [[[1.0, 2.0], [3.0, 4.0]], [[0.5], [-0.5]]]
    a = _fake(coefs, [[0.0, 0.0], [1.0]])
    b = _fake(coefs, [[0.0, 0.0], [1.75]])  # same weights, one bias differs
    assert max_param_difference(a, b) == pytest.approx(0.75)
    assert max_param_difference(b, a) == pytest.approx(0.75)


def test_max_param_difference_coefs():
    a = _fake([[[1.0, 2.0]]], [[0.0, 0.1]])
    b = _fake([[[1.0, -1.0]]], [[0.0, 0.0]])
    assert max_param_difference(a, b) == pytest.approx(3.0)


def test_max_param_difference_identical_is_zero():
    a = _fake([[[1.0, 2.0]]], [[0.5, 0.1]])
    assert max_param_difference(a, a) == 0.0


def test_max_param_difference_rejects_shape_mismatch():
    a = _fake([[[1.0, 2.0]]], [[0.0, 0.0]])
    b = _fake([[[1.0], [2.0]]], [[0.0]])
    with pytest.raises(ValueError, match="parameter shapes differ"):
        max_param_difference(a, b)


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize("option, value, message", [
    ("--hidden", "", "expected comma-separated positive integers, got ''"),
    ("--hidden", "abc", "expected comma-separated positive integers, got 'abc'"),
    ("--hidden", "0", "expected comma-separated positive integers, got '0'"),
    ("--hidden", "-3", "expected comma-separated positive integers, got '-3'"),
    ("--hidden", "12,,4", "expected comma-separated positive integers, got '12,,4'"),
    ("--hidden", "8,", "expected comma-separated positive integers, got '8,'"),
    ("--hidden", "1.5", "expected comma-separated positive integers, got '1.5'"),
    ("--max-iter", "0", "expected a positive integer, got '0'"),
    ("--max-iter", "-1", "expected a positive integer, got '-1'"),
    ("--max-iter", "ten", "expected a positive integer, got 'ten'"),
    ("--repeats", "0", "expected a positive integer, got '0'"),
    ("--repeats", "2.5", "expected a positive integer, got '2.5'"),
    ("--n-jobs", "0", "0 is not allowed, got '0'"),
    ("--n-jobs", "two", "expected a non-zero integer, got 'two'"),
])
def test_bad_argument_exits_2_with_message(capsys, option, value, message):
    with pytest.raises(SystemExit, match="^2$") as exc:
        build_parser().parse_args([option, value])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: python -m fastbp")
    assert f"error: argument {option}: " in captured.err
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_bad_argument_through_main_exits_before_any_work(capsys):
    with pytest.raises(SystemExit, match="^2$"):
        main(["--hidden", "abc"])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "argument --hidden: expected comma-separated positive integers, got 'abc'" \
        in captured.err


@pytest.mark.parametrize("value, expected", [("8,4", (8, 4)), ("128", (128,)),
                                             ("3,2,1", (3, 2, 1))])
def test_good_hidden_parses_to_tuple(value, expected):
    assert build_parser().parse_args(["--hidden", value]).hidden == expected


def test_defaults():
    args = build_parser().parse_args([])
    assert (args.solver, args.hidden, args.max_iter, args.dtype, args.repeats, args.n_jobs) \
        == ("adam", (128,), 50, "float32", 3, None)


@pytest.mark.parametrize("value", ["-1", "1", "4"])
def test_good_n_jobs(value):
    assert build_parser().parse_args(["--n-jobs", value]).n_jobs == int(value)


# ----------------------------------------------------------------- end to end
def test_main_end_to_end(capsys):
    main(["--max-iter", "2", "--repeats", "1", "--hidden", "8"])
    lines = capsys.readouterr().out.splitlines()

    assert lines[0] == ("digits: 1347 train / 450 test samples, 64 features, float32, "
                        "hidden=(8,), solver=adam, max_iter=2")
    notice = next(i for i, line in enumerate(lines) if "first run in a fresh environment" in line)
    assert "compiles fastbp's kernels" in lines[notice]
    assert "10-25 s per dtype" in lines[notice]
    assert "cached on disk" in lines[notice]
    first = next(i for i, line in enumerate(lines) if line.startswith("first fit + predict"))
    assert re.fullmatch(r"first fit \+ predict \(compiles kernels or loads them from the "
                        r"cache\): \d+\.\d s", lines[first])
    header = lines.index(f"{'model':<14}{'accuracy':>10}{'fit time':>12}{'epochs':>8}")
    assert notice < first < header

    rows = {}
    for line in lines[header + 1:header + 3]:
        m = re.fullmatch(r"(\w+) +(\d\.\d{4}) +(\d+\.\d{3})s +(\d+)", line)
        assert m, line
        rows[m.group(1)] = (float(m.group(2)), float(m.group(3)), int(m.group(4)))
    assert set(rows) == {"BPClassifier", "MLPClassifier"}
    for accuracy, _, epochs in rows.values():
        assert 0.0 <= accuracy <= 1.0
        assert epochs == 2

    speed = lines[header + 3]
    m = re.fullmatch(r"fastbp fit is (\d+\.\d)x (faster|slower) than MLPClassifier "
                     r"\(median fit time of 1\)", speed)
    assert m, speed
    ratio, word = float(m.group(1)), m.group(2)
    t_bp, t_sk = rows["BPClassifier"][1], rows["MLPClassifier"][1]
    # The printed times are rounded to 1 ms: the true ones lie within +-0.5 ms.
    lo_bp, hi_bp = max(t_bp - 5e-4, 1e-9), t_bp + 5e-4
    lo_sk, hi_sk = max(t_sk - 5e-4, 1e-9), t_sk + 5e-4
    if t_bp < t_sk:
        assert word == "faster"
    elif t_bp > t_sk:
        assert word == "slower"
    assert ratio >= 1.0
    if word == "faster":
        assert lo_sk / hi_bp - 0.05 <= ratio <= hi_sk / lo_bp + 0.05
    else:
        assert lo_bp / hi_sk - 0.05 <= ratio <= hi_bp / lo_sk + 0.05

    m = re.fullmatch(r"largest weight or bias difference between the two models: (\S+)",
                     lines[header + 4])
    assert m, lines[header + 4]
    assert 0.0 <= float(m.group(1)) < 1.0
    assert len(lines) == header + 5


def test_main_flushes_notice_then_warms_up_fit_and_predict(monkeypatch):
    """The notice reaches the terminal before the warm-up, and the timed "first fit
    + predict" covers a fit and a predict_proba, before any timed fit."""
    import io
    import sys

    from fastbp import BPClassifier

    events = []

    class Stdout(io.StringIO):
        def flush(self):
            events.append(("flush", self.getvalue()))
            super().flush()

    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    fit, predict_proba = BPClassifier.fit, BPClassifier.predict_proba

    def spy_fit(self, X, y, **kw):
        events.append(("fit", X.shape[0]))
        return fit(self, X, y, **kw)

    def spy_predict_proba(self, X):
        events.append(("predict_proba", X.shape[0]))
        return predict_proba(self, X)

    monkeypatch.setattr(BPClassifier, "fit", spy_fit)
    monkeypatch.setattr(BPClassifier, "predict_proba", spy_predict_proba)
    main(["--max-iter", "1", "--repeats", "2", "--hidden", "4"])

    kinds = [e[0] for e in events]
    first_fit = kinds.index("fit")
    # Flushed with the notice already written, before the warm-up fit.
    assert any(kind == "flush" and "first run in a fresh environment" in text
               for kind, text in events[:first_fit])
    # Warm-up: a fit on a small slice, then predict_proba on the 450 test rows,
    # then the "first fit + predict" line is flushed, then the 2 timed fits.
    assert events[first_fit] == ("fit", 50)
    assert events[first_fit + 1] == ("predict_proba", 450)
    assert events[first_fit + 2][0] == "flush"
    assert events[first_fit + 2][1].splitlines()[-1].startswith("first fit + predict")
    assert [e for e in events[first_fit + 3:] if e[0] == "fit"] == [("fit", 1347)] * 2
