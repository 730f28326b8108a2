"""Fine-tuning throughput and accuracy of PretrainedMLPClassifier.

1. Throughput: samples per second of backprop fine-tuning against
   ``sklearn.neural_network.MLPClassifier`` with the same architecture
   (784-500-500-10), logistic activation, SGD with momentum 0.9, batch size
   100, float32, in the same run (best of ``--repeats``).
2. Accuracy on scikit-learn's digits (stratified 80/20 split,
   ``random_state=0``, pixels scaled to [0, 1]) of the baselines and of the
   pretrained and fine-tuned network, trained on the training digits alone
   and on the training digits with their 1-pixel shifts.

Usage: ``python benchmarks/bench_mlp.py [--repeats 3]``.
"""

import argparse
import copy
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline

from _timing import best_time
from skdbn import BernoulliRBM, DBNTransformer, PretrainedMLPClassifier

SIZES = (500, 500)
BATCH = 100
EPOCHS = 3


def throughput(repeats):
    rng = np.random.default_rng(0)
    X = (rng.random((8192, 784), dtype=np.float32) < 0.2).astype(np.float32)
    y = rng.integers(0, 10, X.shape[0])
    dbn = DBNTransformer(SIZES, n_iter=0, random_state=0).fit(X)
    common = dict(solver="sgd", learning_rate_init=0.01, momentum=0.9,
                  batch_size=BATCH, early_stopping=False, random_state=0)
    # Time the fine-tuning epochs alone: the logistic regression that
    # initialises the output layer is not part of the comparison.
    ours = PretrainedMLPClassifier(dbn=dbn, max_iter=0, **common).fit(X, y)
    ours.set_params(max_iter=EPOCHS)
    # The same network with dropout (0.5 hidden, 0.2 input): the cost of
    # drawing and applying the masks.
    dropped = copy.deepcopy(ours).set_params(dropout=0.5, input_dropout=0.2)
    codes = np.searchsorted(ours.classes_, y).astype(np.int32)
    rng = np.random.RandomState(0)
    theirs = MLPClassifier(SIZES, activation="logistic", nesterovs_momentum=False,
                           max_iter=EPOCHS, n_iter_no_change=EPOCHS + 1, tol=0,
                           shuffle=True, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t_ours = best_time(lambda: ours._fine_tune(X, codes, None, None, rng), repeats)
        t_dropped = best_time(lambda: dropped._fine_tune(X, codes, None, None, rng), repeats)
        t_theirs = best_time(lambda: theirs.fit(X, y), repeats)
    n = EPOCHS * X.shape[0]
    print(f"Fine-tuning 784-{'-'.join(map(str, SIZES))}-10, logistic, SGD + momentum, "
          f"batch {BATCH}, float32, {EPOCHS} epochs of {X.shape[0]} samples")
    print(f"  {'peer':<28} {'samples/s':>10} {'skdbn x':>8}")
    for name, t in (("skdbn PretrainedMLP", t_ours),
                    ("skdbn, dropout 0.5/0.2", t_dropped),
                    ("sklearn MLPClassifier", t_theirs)):
        print(f"  {name:<28} {n / t:10.0f} {t / t_ours:8.2f}")


def shifted(X, y):
    """X and its four 1-pixel shifts of the 8x8 images, as in scikit-learn's
    RBM example."""
    images = X.reshape(-1, 8, 8)
    moved = [np.roll(np.pad(images, ((0, 0), (1, 1), (1, 1))), d, axis=(1, 2))[:, 1:-1, 1:-1]
             for d in [(0, 1), (0, -1), (1, 0), (-1, 0)]]
    return np.vstack([X] + [m.reshape(len(X), 64) for m in moved]), np.tile(y, 5)


def accuracy():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y,
                                              random_state=0)
    X_aug, y_aug = shifted(X_tr, y_tr)
    rows = []

    def run(name, model, augmented=False):
        t0 = time.perf_counter()
        model.fit(*((X_aug, y_aug) if augmented else (X_tr, y_tr)))
        rows.append((name, "+ shifts" if augmented else "", model.score(X_te, y_te),
                     time.perf_counter() - t0))

    run("logistic regression, raw pixels", LogisticRegression(C=10, max_iter=2000))
    run("RBM(256) + logistic regression", make_pipeline(
        BernoulliRBM(256, learning_rate=0.1, n_iter=40, sample_visible=False,
                     random_state=0), LogisticRegression(C=10, max_iter=2000)))
    dbn = DBNTransformer((256,), learning_rate=0.2, n_iter=100, persistent=True,
                         momentum=0.0, random_state=0)
    run("DBN(256), not fine-tuned", PretrainedMLPClassifier(dbn=dbn, logistic_C=1,
                                                           max_iter=0))
    run("DBN(256), fine-tuned", PretrainedMLPClassifier(
        dbn=dbn, logistic_C=1, solver="adam", learning_rate_init=1e-3, max_iter=100,
        early_stopping=False, random_state=0))
    dbn = DBNTransformer((512,), learning_rate=0.1, n_iter=20, persistent=True,
                         momentum=0.0, random_state=0)
    run("DBN(512), fine-tuned", PretrainedMLPClassifier(
        dbn=dbn, logistic_C=10, solver="adam", learning_rate_init=1e-3, max_iter=30,
        early_stopping=False, random_state=0), augmented=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for augmented in (False, True):
            run("sklearn MLPClassifier(500)", MLPClassifier(500, max_iter=300, random_state=0),
                augmented)
    print("\nDigits, stratified 80/20 split, random_state=0 (+ shifts: trained on the "
          "training digits and their 1-pixel shifts)")
    print(f"  {'model':<34} {'data':<9} {'accuracy':>8} {'seconds':>8}")
    for name, data, acc, sec in rows:
        print(f"  {name:<34} {data:<9} {acc:8.4f} {sec:8.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    throughput(args.repeats)
    accuracy()


if __name__ == "__main__":
    main()
