"""Demo: ``python -m fastbp`` trains BPClassifier and MLPClassifier on digits.

Both get the same hyper-parameters and random_state, so they start from the same
weights and see the same mini-batches; the script prints each one's test
accuracy and fit time (fastbp's first-call compile time is shown separately).
"""

import argparse
import time
import warnings


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastbp", description=__doc__)
    parser.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    parser.add_argument("--hidden", default="128", help="hidden layer sizes, e.g. 128,64")
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3, help="timed fits (median)")
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from fastbp import BPClassifier

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(args.dtype)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    params = dict(hidden_layer_sizes=hidden, solver=args.solver, max_iter=args.max_iter,
                  random_state=0)

    t0 = time.perf_counter()
    BPClassifier(**params, n_jobs=args.n_jobs).fit(X_train[:50], y_train[:50])
    compile_s = time.perf_counter() - t0

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
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test samples, {X.shape[1]} "
          f"features, {args.dtype}, hidden={hidden}, solver={args.solver}, "
          f"max_iter={args.max_iter}")
    print(f"{'model':<14}{'accuracy':>10}{'fit time':>12}{'epochs':>8}")
    for name, model, t in (("BPClassifier", bp, t_bp), ("MLPClassifier", sk, t_sk)):
        print(f"{name:<14}{model.score(X_test, y_test):>10.4f}{t:>11.3f}s{model.n_iter_:>8}")
    print(f"fastbp is {t_sk / t_bp:.1f}x faster (median of {args.repeats}; first call "
          f"incl. compile or cache load: {compile_s:.2f}s)")
    diff = max(float(np.abs(a - b).max()) for a, b in zip(bp.coefs_, sk.coefs_))
    print(f"largest weight difference between the two models: {diff:.2e}")


if __name__ == "__main__":
    main()
