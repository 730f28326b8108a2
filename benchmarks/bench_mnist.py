"""The papers' permutation-invariant MNIST classifier: a 784-500-500-2000 DBN
pretrained greedily and fine-tuned by backpropagation.

Hinton & Salakhutdinov (2006) report 1.15 % test error for this network
("generative model of unlabelled digits followed by gentle backpropagation";
1.0 % with more fine-tuning), against 1.6 % for a carefully trained backprop
net and 1.4 % for an SVM. This script pretrains the three RBMs with CD-1 as
in their code (minibatches of 100, learning rate 0.1, momentum 0.5 then 0.9,
weight decay 2e-4), fine-tunes the whole network with
:class:`~skdbn.PretrainedMLPClassifier` on all 60 000 training digits, and
trains ``sklearn.neural_network.MLPClassifier`` of the same architecture
(logistic units) from a random start with the same optimiser and number of
epochs, in the same run. No convolutions, no distortions, no augmentation.

Fine-tuning defaults to SGD with dropout (0.5 of the hidden units, 0.2 of
the pixels; Srivastava et al. 2014) for 250 epochs at a learning rate of
0.1, chosen on the last 10 000 training digits held out (the user guide's
"Results" page has the study); ``--dropout 0 --input-dropout 0`` gives plain
backpropagation. scikit-learn's MLP has no dropout, so its baseline is
plain SGD with the same step, momentum, batch and epochs.

It prints the wall time of each phase, the test error every
``--report-every`` epochs of fine-tuning (reported, never used to choose
anything) and a table of test errors. With ``--checkpoint DIR`` every phase
saves its result there and a rerun resumes after the last finished phase or
block of epochs (the pretraining saves the DBN after each layer).

Usage: ``python benchmarks/bench_mnist.py --data PATH [--checkpoint DIR]``.
"""

import argparse
import json
import os
import time

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.neural_network import MLPClassifier

from _mnist import add_data_argument, load_mnist
from skdbn import DBNTransformer, PretrainedMLPClassifier

SIZES = (500, 500, 2000)


class Checkpoints:
    """Results and models of finished phases, kept in a directory (or nowhere)."""

    def __init__(self, directory):
        self.directory = directory
        self.results = {}
        if directory:
            os.makedirs(directory, exist_ok=True)
            if os.path.exists(self._path("results.json")):
                with open(self._path("results.json")) as f:
                    self.results = json.load(f)

    def _path(self, name):
        return os.path.join(self.directory, name)

    def save(self, key, result, model=None):
        self.results[key] = result
        if self.directory:
            if model is not None:
                joblib.dump(model, self._path(f"{key}.joblib"))
            # Only this key over what is on disk: another process (--only)
            # may have saved its own results meanwhile.
            if os.path.exists(self._path("results.json")):
                with open(self._path("results.json")) as f:
                    self.results.update({**json.load(f), key: result})
            with open(self._path("results.json"), "w") as f:
                json.dump(self.results, f, indent=1)

    def model(self, key):
        if self.directory and os.path.exists(self._path(f"{key}.joblib")):
            return joblib.load(self._path(f"{key}.joblib"))
        return None


def pretrain(X, args, store):
    """Greedy CD-1 pretraining, one RBM after the other, saved after each."""
    dbn_params = dict(learning_rate=0.1, batch_size=100, momentum="schedule",
                      weight_decay=2e-4, random_state=args.seed, n_jobs=args.n_jobs,
                      verbose=args.verbose)
    layers = store.model("pretrained_layers") or []
    seconds = store.results.get("pretrain_layer_seconds", [])
    features = X
    for dbn in layers:
        features = dbn.transform(features)
    for i in range(len(layers), len(SIZES)):
        begin = time.perf_counter()
        dbn = DBNTransformer((SIZES[i],), n_iter=args.pretrain_epochs, **dbn_params)
        # Each layer is seeded apart, like the layers of one DBNTransformer.
        dbn.set_params(random_state=args.seed + i)
        features = dbn.fit_transform(features)
        layers.append(dbn)
        seconds.append(time.perf_counter() - begin)
        print(f"pretraining layer {i + 1} ({features.shape[1]} units): "
              f"{seconds[-1]:.1f} s", flush=True)
        store.save("pretrained_layers", len(layers), model=layers)
        store.save("pretrain_layer_seconds", seconds)
    return stack(layers), seconds


def stack(layers):
    """One fitted DBNTransformer holding the separately trained layers."""
    dbn = clone(layers[0]).set_params(hidden_layer_sizes=tuple(SIZES))
    dbn.rbms_ = [d.rbms_[0] for d in layers]
    dbn.generative_components_ = [rbm.components_.copy() for rbm in dbn.rbms_[:-1]]
    dbn.generative_intercepts_ = [rbm.intercept_visible_.copy() for rbm in dbn.rbms_[:-1]]
    dbn.up_down_errors_ = []
    dbn.n_features_in_ = layers[0].n_features_in_
    return dbn


def fine_tune_params(args):
    return dict(solver="sgd", learning_rate_init=args.learning_rate, momentum=0.9,
                batch_size=100, alpha=args.alpha, max_iter=args.fine_tune_epochs,
                early_stopping=False, random_state=args.seed)


def train_in_blocks(label, key, model, done, train_epochs, X_test, y_test, args, store):
    """Run ``train_epochs(n)`` in blocks of ``--report-every`` epochs from
    epoch ``done`` to ``--fine-tune-epochs``: after each block the test error
    is printed (never used to choose anything) and ``model`` is saved under
    ``key`` with its epoch count, wall time and error curve, so that a rerun
    resumes after the last finished block."""
    seconds = store.results.get(f"{key}_seconds", 0.0)
    curve = store.results.get(f"{key}_curve", [])
    while done < args.fine_tune_epochs:
        n = min(args.report_every, args.fine_tune_epochs - done)
        begin = time.perf_counter()
        train_epochs(n)
        seconds += time.perf_counter() - begin
        done += n
        error = 1 - model.score(X_test, y_test)
        curve.append((done, error))
        print(f"{label} epoch {done}: test error {100 * error:.2f} %, "
              f"{seconds / 60:.1f} min so far", flush=True)
        store.save(key, done, model=model)
        store.save(f"{key}_seconds", seconds)
        store.save(f"{key}_curve", curve)
    return model


def fine_tune(clf, X_train, y_train, X_test, y_test, args, store):
    """The DBN network's backprop epochs, with its optimiser state kept
    from block to block."""
    saved = store.model("fine_tuning")
    if saved is not None:
        clf = saved
        print(f"resumed fine-tuning after epoch {clf.n_iter_}", flush=True)
    codes = np.searchsorted(clf.classes_, y_train).astype(np.int32)

    def train_epochs(n):
        # The epochs of fit(max_iter=N) after its initialisation, as
        # bench_mlp times them (fit would repeat the output layer's logistic
        # regression); each block continues the minibatch order's seed.
        clf._fine_tune(X_train, codes, None, None,
                       np.random.RandomState([args.seed, clf.n_iter_]), n_epochs=n,
                       keep_solver_state=True)

    return train_in_blocks("fine-tuning", "fine_tuning", clf, clf.n_iter_, train_epochs,
                           X_test, y_test, args, store)


def train_mlp(X_train, y_train, X_test, y_test, args, store):
    """MLPClassifier from a random start, one ``partial_fit`` per epoch (the
    epochs of ``fit``, whose optimiser state it keeps)."""
    mlp = store.model("mlp")
    done = store.results.get("mlp", 0)
    if mlp is None:
        mlp = MLPClassifier(SIZES, activation="logistic", nesterovs_momentum=False,
                            shuffle=True, tol=0, n_iter_no_change=args.fine_tune_epochs + 1,
                            verbose=bool(args.verbose), **fine_tune_params(args))
    else:
        print(f"resumed MLPClassifier after epoch {done}", flush=True)
    classes = np.unique(y_train)

    def train_epochs(n):
        for _ in range(n):
            mlp.partial_fit(X_train, y_train, classes=classes)

    return train_in_blocks("MLPClassifier", "mlp", mlp, done, train_epochs,
                           X_test, y_test, args, store)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--checkpoint", metavar="DIR", default=None,
                        help="save each finished phase here and resume from it")
    parser.add_argument("--pretrain-epochs", type=int, default=50)
    parser.add_argument("--fine-tune-epochs", type=int, default=250)
    parser.add_argument("--learning-rate", type=float, default=0.1,
                        help="fine-tuning SGD step, for both networks")
    parser.add_argument("--alpha", type=float, default=1e-4,
                        help="L2 penalty of fine-tuning, for both networks")
    parser.add_argument("--dropout", type=float, default=0.5,
                        help="dropout of the hidden units in the DBN's fine-tuning")
    parser.add_argument("--input-dropout", type=float, default=0.2,
                        help="dropout of the pixels in the DBN's fine-tuning")
    parser.add_argument("--report-every", type=int, default=10, metavar="N",
                        help="print the test error (and checkpoint) every N epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--only", choices=["dbn", "mlp"], default=None,
                        help="run one side only (two processes can share --checkpoint)")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args()

    X_train, y_train, X_test, y_test = load_mnist(args.data)
    store = Checkpoints(args.checkpoint)
    res = store.results

    if "fine_tuned_error" not in res and args.only != "mlp":
        dbn, layer_seconds = pretrain(X_train, args, store)
        # Not fine-tuned: the output layer alone, a logistic regression on the
        # top-level features (fit's initialisation, max_iter=0).
        clf = PretrainedMLPClassifier(dbn=dbn, n_jobs=args.n_jobs,
                                      **{**fine_tune_params(args), "max_iter": 0})
        if "fine_tuning" not in res:
            begin = time.perf_counter()
            clf.fit(X_train, y_train)
            store.save("init_seconds", time.perf_counter() - begin)
            store.save("pretrained_error", 1 - clf.score(X_test, y_test))
        print(f"output layer initialised: {res['init_seconds']:.1f} s, test error "
              f"{100 * res['pretrained_error']:.2f} %", flush=True)

        # Fine-tune the same network, with dropout when asked for.
        clf.set_params(max_iter=args.fine_tune_epochs, verbose=args.verbose,
                       dropout=args.dropout, input_dropout=args.input_dropout)
        clf = fine_tune(clf, X_train, y_train, X_test, y_test, args, store)
        store.save("fine_tuned_error", 1 - clf.score(X_test, y_test), model=clf)
        print(f"fine-tuned: {res['fine_tuning_seconds']:.1f} s, test error "
              f"{100 * res['fine_tuned_error']:.2f} %", flush=True)

    if "mlp_error" not in res and args.only != "dbn":
        mlp = train_mlp(X_train, y_train, X_test, y_test, args, store)
        store.save("mlp_error", 1 - mlp.score(X_test, y_test))

    if args.only:
        return
    pretrain_s = sum(res["pretrain_layer_seconds"])
    print(f"\nMNIST, permutation-invariant, 60 000 training / 10 000 test digits, "
          f"784-{'-'.join(map(str, SIZES))}-10 logistic network")
    print(f"Pretraining: CD-1, {args.pretrain_epochs} epochs per layer, batch 100, "
          f"learning rate 0.1, momentum 0.5 then 0.9, weight decay 2e-4")
    print(f"Fine-tuning: SGD, {args.fine_tune_epochs} epochs, batch 100, learning rate "
          f"{args.learning_rate}, momentum 0.9, alpha {args.alpha}; the DBN's with dropout "
          f"{args.dropout} (hidden) and {args.input_dropout} (pixels)")
    print(f"  {'model':<44} {'test error':>10} {'minutes':>8}")
    rows = [
        ("skdbn DBN, output layer only (not fine-tuned)", res["pretrained_error"],
         pretrain_s + res["init_seconds"]),
        ("skdbn DBN, pretrained + fine-tuned", res["fine_tuned_error"],
         pretrain_s + res["init_seconds"] + res["fine_tuning_seconds"]),
    ]
    if "mlp_error" in res:
        rows.append(("sklearn MLPClassifier, random start", res["mlp_error"],
                     res["mlp_seconds"]))
    for name, error, seconds in rows:
        print(f"  {name:<44} {100 * error:9.2f}% {seconds / 60:8.1f}")
    print("  Papers (Hinton & Salakhutdinov 2006): 1.15 % (1.0 % with longer "
          "fine-tuning); backprop 1.6 %, SVM 1.4 %")
    print(f"Phases: pretraining {' + '.join(f'{s / 60:.1f}' for s in res['pretrain_layer_seconds'])}"
          f" min (layers 1-3), output layer {res['init_seconds'] / 60:.1f} min, "
          f"fine-tuning {res['fine_tuning_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
