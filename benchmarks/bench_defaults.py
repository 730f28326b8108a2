"""The study behind PretrainedMLPClassifier's defaults.

1. Digits (scikit-learn's 8x8 digits, stratified 80/20 split with
   ``random_state=0``, pixels scaled to [0, 1]): test accuracy of a few
   candidate configurations, each with the classifier seeded 0, 1 and 2,
   against ``MLPClassifier()`` with the same seeds, in the same run.
2. With ``--data PATH``, MNIST (60 000 / 10 000): ``PretrainedMLPClassifier()``
   with every parameter at its default against ``MLPClassifier()``, with
   wall times.

Every candidate pretrains for the same number of training samples visited
(at least 10 epochs and 150 000 samples) and fine-tunes for the same number
of weight updates (from 10 to 100 epochs, aiming at 56 000 updates), the
rules of the defaults' ``"auto"`` values, so that one configuration serves
both data sets.

Usage: ``python benchmarks/bench_defaults.py [--data PATH] [--candidates all]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from _mnist import load_mnist
from skdbn import DBNTransformer, PretrainedMLPClassifier

SEEDS = (0, 1, 2)


CANDIDATES = {
    "before: DBN(256, 256) CD-1, SGD, early stopping": lambda: PretrainedMLPClassifier(
        dbn=DBNTransformer((256, 256)), solver="sgd", learning_rate_init=0.1,
        max_iter=50, early_stopping=True),
    "DBN(256) PCD, Adam": lambda: PretrainedMLPClassifier(hidden_layer_sizes=(256,)),
    "DBN(500) PCD, Adam (the defaults)": lambda: PretrainedMLPClassifier(),
    "DBN(500, 500) PCD, Adam": lambda: PretrainedMLPClassifier(hidden_layer_sizes=(500, 500)),
    "DBN(500) PCD, Adam, alpha=1e-3": lambda: PretrainedMLPClassifier(alpha=1e-3),
    "DBN(500) PCD, Adam, alpha=1e-2": lambda: PretrainedMLPClassifier(alpha=1e-2),
    "DBN(1000) PCD, Adam": lambda: PretrainedMLPClassifier(hidden_layer_sizes=(1000,)),
    "DBN(500) PCD, Adam at 3e-4": lambda: PretrainedMLPClassifier(learning_rate_init=3e-4),
}


def digits_split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


def fit_score(model, X_train, y_train, X_test, y_test):
    begin = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    return model.score(X_test, y_test), time.perf_counter() - begin


def study(names, n_jobs):
    X_train, X_test, y_train, y_test = digits_split()
    rows = []
    for name in names + ["sklearn MLPClassifier()"]:
        scores, seconds = [], 0.0
        for seed in SEEDS:
            if name.startswith("sklearn"):
                model = MLPClassifier(random_state=seed)
            else:
                model = CANDIDATES[name]().set_params(random_state=seed, n_jobs=n_jobs)
            score, t = fit_score(model, X_train, y_train, X_test, y_test)
            scores.append(score)
            seconds += t
        rows.append((name, scores, seconds / len(SEEDS)))
        print(f"  {name}: {scores}", flush=True)
    print("\nDigits, stratified 80/20 split, random_state=0; test accuracy for seeds "
          f"{', '.join(map(str, SEEDS))}")
    print(f"  {'configuration':<50} {'seed 0':>6} {'seed 1':>6} {'seed 2':>6} {'mean':>6} "
          f"{'s/fit':>6}")
    for name, scores, sec in rows:
        print(f"  {name:<50} " + " ".join(f"{s:6.4f}" for s in scores)
              + f" {np.mean(scores):6.4f} {sec:6.1f}")


def mnist(path, n_jobs, which):
    X_train, y_train, X_test, y_test = load_mnist(path)
    rows = []
    models = {"skdbn": ("skdbn PretrainedMLPClassifier()",
                        PretrainedMLPClassifier(random_state=0, n_jobs=n_jobs, verbose=1)),
              "sklearn": ("sklearn MLPClassifier()", MLPClassifier(random_state=0))}
    for name, model in (models[key] for key in which):
        score, seconds = fit_score(model, X_train, y_train, X_test, y_test)
        rows.append((name, 1 - score, seconds))
        print(f"  {name}: error {100 * (1 - score):.2f} %, {seconds:.0f} s", flush=True)
    print("\nMNIST, 60 000 training / 10 000 test digits, defaults, random_state=0")
    print(f"  {'model':<34} {'test error':>10} {'minutes':>8}")
    for name, error, seconds in rows:
        print(f"  {name:<34} {100 * error:9.2f}% {seconds / 60:8.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="MNIST (mnist.npz or a fetch_openml cache) for part 2")
    parser.add_argument("--candidates", default="all",
                        help="comma-separated indices into the candidates, or all")
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--mnist-models", default="skdbn,sklearn",
                        help="which of skdbn,sklearn to run on MNIST")
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    names = list(CANDIDATES)
    if args.candidates != "all":
        names = [names[int(i)] for i in args.candidates.split(",")]
    if not args.no_digits:
        study(names, args.n_jobs)
    if args.data:
        mnist(args.data, args.n_jobs, args.mnist_models.split(","))


if __name__ == "__main__":
    main()
