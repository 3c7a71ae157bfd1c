"""Demo: ``python -m fastbp`` trains BPClassifier and MLPClassifier on digits.

Both get the same hyper-parameters and random_state, so they start from the same
weights and see the same mini-batches.  The script prints, in order:

* the data set and settings;
* a notice that the first run in a fresh environment compiles fastbp's kernels
  (roughly 10-25 s per dtype; they are cached on disk, so later runs load them
  in well under a second), then the time of that first fit + predict, which
  compiles the kernels or loads them from the cache;
* a table of each model's test accuracy, median fit time over ``--repeats``
  compile-free fits, and epochs run;
* how many times faster (or slower) fastbp's fit is than MLPClassifier's;
* the largest difference between the two models' weights and biases.
"""

import argparse
import time
import warnings

__all__ = ["main", "max_param_difference", "speed_sentence"]


def _hidden_sizes(text):
    """argparse type of --hidden: "128" or "128,64" -> (128,) or (128, 64)."""
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            size = 0
        if size < 1:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers, got {text!r}")
        sizes.append(size)
    return tuple(sizes)


def _positive_int(text):
    """argparse type of --max-iter and --repeats: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonzero_int(text):
    """argparse type of --n-jobs: a non-zero int (negative counts back from all threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-zero integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "expected a non-zero integer (a thread count, or negative to count back "
            f"from all threads: -1 is all of them); 0 is not allowed, got {text!r}")
    return value


def build_parser():
    """The command-line parser of ``python -m fastbp``."""
    parser = argparse.ArgumentParser(
        prog="python -m fastbp", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    parser.add_argument("--hidden", type=_hidden_sizes, default="128",
                        help="hidden layer sizes, comma-separated positive integers, "
                             "e.g. 128 or 128,64 (default: 128)")
    parser.add_argument("--max-iter", type=_positive_int, default=50,
                        help="epochs (solver iterations), >= 1 (default: 50)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=_positive_int, default=3,
                        help="timed fits per model, >= 1; the median is shown (default: 3)")
    parser.add_argument("--n-jobs", type=_nonzero_int, default=None,
                        help="fastbp threads: a non-zero integer, negative counts back "
                             "from all threads (default: all)")
    return parser


def speed_sentence(t_fastbp, t_sklearn):
    """How fastbp's fit time compares with MLPClassifier's, as a sentence.

    "fastbp fit is 4.2x faster than MLPClassifier" when fastbp took no longer
    (ratio t_sklearn / t_fastbp), else "fastbp fit is 1.3x slower than
    MLPClassifier" (ratio t_fastbp / t_sklearn).
    """
    if not (t_fastbp > 0 and t_sklearn > 0):
        raise ValueError(f"fit times must be positive, got fastbp={t_fastbp!r}, "
                         f"sklearn={t_sklearn!r}")
    ratio = t_sklearn / t_fastbp
    if ratio >= 1:
        return f"fastbp fit is {ratio:.1f}x faster than MLPClassifier"
    return f"fastbp fit is {t_fastbp / t_sklearn:.1f}x slower than MLPClassifier"


def max_param_difference(a, b):
    """Largest absolute difference between the weights and biases of two fitted MLPs.

    Compares ``coefs_ + intercepts_`` of ``a`` and ``b`` element-wise; the two
    must have the same layer shapes.
    """
    import numpy as np

    pa = list(a.coefs_) + list(a.intercepts_)
    pb = list(b.coefs_) + list(b.intercepts_)
    shapes_a = [np.shape(p) for p in pa]
    shapes_b = [np.shape(p) for p in pb]
    if shapes_a != shapes_b:
        raise ValueError(f"the models' parameter shapes differ: {shapes_a} vs {shapes_b}")
    return max(float(np.abs(np.asarray(x, dtype=np.float64)
                            - np.asarray(y, dtype=np.float64)).max()) for x, y in zip(pa, pb))


def main(argv=None):
    args = build_parser().parse_args(argv)

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from fastbp import BPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(args.dtype)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    hidden = args.hidden
    params = dict(hidden_layer_sizes=hidden, solver=args.solver, max_iter=args.max_iter,
                  random_state=0)
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test samples, {X.shape[1]} "
          f"features, {args.dtype}, hidden={hidden}, solver={args.solver}, "
          f"max_iter={args.max_iter}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)

        print("The first run in a fresh environment compiles fastbp's kernels "
              "(roughly 10-25 s per dtype); they are cached on disk, so later runs "
              "load them in well under a second.", flush=True)
        # Warm-up: a fit and a predict through every kernel variant the timed
        # runs and the scores use, so those are compile-free.  At least 3 epochs
        # of one call each: an adam/sgd fit's pacer runs the parallel kernel
        # twice before its first serial probe, which a full-size fit may reach
        # within one epoch.  Predict on the test set, so its row count picks the
        # same predict kernel as score below.
        warm = dict(params, max_iter=max(3, args.max_iter))
        t0 = time.perf_counter()
        BPClassifier(**warm, n_jobs=args.n_jobs).fit(X_train[:50], y_train[:50]) \
            .predict_proba(X_test)
        first_s = time.perf_counter() - t0
        print(f"first fit + predict (compiles kernels or loads them from the cache): "
              f"{first_s:.1f} s", flush=True)

        def timed(make):
            times, model = [], None
            for _ in range(args.repeats):
                model = make()
                t = time.perf_counter()
                model.fit(X_train, y_train)
                times.append(time.perf_counter() - t)
            return model, float(np.median(times))

        bp, t_bp = timed(lambda: BPClassifier(**params, n_jobs=args.n_jobs))
        sk, t_sk = timed(lambda: MLPClassifier(**params))

    print(f"{'model':<14}{'accuracy':>10}{'fit time':>12}{'epochs':>8}")
    for name, model, t in (("BPClassifier", bp, t_bp), ("MLPClassifier", sk, t_sk)):
        print(f"{name:<14}{model.score(X_test, y_test):>10.4f}{t:>11.3f}s{model.n_iter_:>8}")
    print(f"{speed_sentence(t_bp, t_sk)} (median fit time of {args.repeats})")
    diff = max_param_difference(bp, sk)
    print(f"largest weight or bias difference between the two models: {diff:.2e}")


if __name__ == "__main__":
    main()
