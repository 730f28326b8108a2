"""The deep autoencoder of Hinton & Salakhutdinov (2006) on MNIST.

A 784-1000-500-250-30 stack of RBMs (logistic units, a linear code layer of
Gaussian units at the top), unrolled into an encoder and a mirrored decoder
and fine-tuned by backpropagation of the cross-entropy reconstruction error
with :class:`~skdbn.DBNAutoencoder`. The tutorial reports the average
squared reconstruction error per test image (summed over the 784 pixels in
[0, 1], mean over the 10 000 test images): 3.00 for the deep autoencoder,
8.01 for logistic PCA and 13.87 for PCA with 30 components.

In one run, this script prints that error for skdbn's autoencoder, for
``PCA(30)`` fitted on the training images, and for scikit-learn's
``MLPRegressor`` of the same architecture (logistic hidden units) trained
as an autoencoder from a random start with the same optimiser, batch size
and number of epochs, with the wall time of every phase; then the
fine-tuning throughput (samples/s) of skdbn against ``MLPRegressor`` with
the same architecture, activations (logistic hidden units, linear output,
squared error), solver and batch size, measured one after the other on the
same data.

The pretraining follows the paper's code: CD-1, minibatches of 100,
learning rate 0.1 (0.001 for the linear top layer), momentum 0.5 then 0.9,
weight decay 2e-4. The paper fine-tunes by conjugate gradients for 200
epochs; here Adam runs ``--fine-tune-epochs`` epochs.

``--checkpoint DIR`` saves every finished phase (the pretraining after each
layer, the fine-tuning after each epoch) and a rerun resumes from there.

Usage: ``python benchmarks/bench_autoencoder.py --data PATH [--checkpoint DIR]
[--n-train 2000]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from _mnist import add_data_argument, load_mnist
from bench_mnist import Checkpoints, stack
from skdbn import DBNAutoencoder, DBNTransformer

SIZES = (1000, 500, 250, 30)
REPORTED = {"deep autoencoder": 3.00, "logistic PCA": 8.01, "PCA": 13.87}


def squared_error(X, X_rec):
    """Squared error per image, summed over the pixels, mean over images."""
    diff = np.asarray(X_rec, np.float64) - X
    return float(np.mean(np.einsum("ij,ij->i", diff, diff)))


def run_pca(X, X_test, args, store):
    if "pca" not in store.results:
        begin = time.perf_counter()
        pca = PCA(SIZES[-1], random_state=args.seed).fit(X)
        error = squared_error(X_test, pca.inverse_transform(pca.transform(X_test)))
        store.save("pca", {"error": error, "seconds": time.perf_counter() - begin})
    print(f"PCA({SIZES[-1]}): test error {store.results['pca']['error']:.2f}", flush=True)


def pretrain(X, args, store):
    """The RBMs one after the other (a linear top layer), saved after each."""
    layers = store.model("ae_layers") or []
    seconds = store.results.get("ae_layer_seconds", [])
    features = X
    for dbn in layers:
        features = dbn.transform(features)
    for i in range(len(layers), len(SIZES)):
        top = i == len(SIZES) - 1
        begin = time.perf_counter()
        # The linear code layer: Gaussian hidden units, a smaller step.
        units = {"hidden_units": "gaussian"} if top else {}
        dbn = DBNTransformer(
            (SIZES[i],), learning_rate=0.001 if top else 0.1, n_iter=args.pretrain_epochs,
            batch_size=100, momentum="schedule", weight_decay=2e-4,
            random_state=args.seed + i, n_jobs=args.n_jobs, verbose=args.verbose, **units)
        features = dbn.fit_transform(features)
        layers.append(dbn)
        seconds.append(time.perf_counter() - begin)
        print(f"pretraining layer {i + 1} ({SIZES[i]} units): {seconds[-1]:.1f} s",
              flush=True)
        store.save("ae_layers", len(layers), model=layers)
        store.save("ae_layer_seconds", seconds)
    dbn = stack(layers).set_params(hidden_layer_sizes=SIZES)
    return dbn, sum(seconds)


def fine_tune(dbn, X, X_test, args, store):
    """Fine-tuning one epoch per fit (warm start), saved after each epoch."""
    ae = store.model("ae")
    if ae is None:
        ae = DBNAutoencoder(dbn=dbn, solver="adam", learning_rate_init=args.learning_rate,
                            batch_size=100, max_iter=1, warm_start=True,
                            random_state=args.seed, n_jobs=args.n_jobs,
                            verbose=args.verbose)
    seconds = store.results.get("ae_fine_tune_seconds", 0.0)
    while getattr(ae, "n_iter_", 0) < args.fine_tune_epochs:
        begin = time.perf_counter()
        # A new seed per epoch: the same one would repeat the minibatch order.
        ae.set_params(random_state=args.seed + getattr(ae, "n_iter_", 0)).fit(X)
        seconds += time.perf_counter() - begin
        error = -ae.score(X_test)
        print(f"fine-tuning epoch {ae.n_iter_}: loss {ae.loss_curve_[-1]:.2f}, "
              f"test error {error:.2f}, {seconds:.0f} s so far", flush=True)
        store.save("ae_fine_tune_seconds", seconds)
        store.save("ae_error", error, model=ae)
    return ae, seconds


def run_mlp(X, X_test, args, store):
    """MLPRegressor autoencoder from a random start, the same budget."""
    if args.mlp_epochs == 0:
        return None
    mlp = store.model("mlp")
    if mlp is None:
        mlp = MLPRegressor(hidden_layer_sizes=SIZES + SIZES[-2::-1], activation="logistic",
                           solver="adam", learning_rate_init=args.learning_rate, batch_size=100,
                           max_iter=1, warm_start=True, random_state=args.seed)
    seconds = store.results.get("mlp_seconds", 0.0)
    # Its n_iter_ restarts at each warm-started fit; loss_curve_ grows.
    while len(getattr(mlp, "loss_curve_", [])) < args.mlp_epochs:
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, X)
        seconds += time.perf_counter() - begin
        error = squared_error(X_test, mlp.predict(X_test))
        print(f"MLPRegressor epoch {len(mlp.loss_curve_)}: test error {error:.2f}, "
              f"{seconds:.0f} s so far", flush=True)
        store.save("mlp_seconds", seconds)
        store.save("mlp_error", error, model=mlp)
    return store.results["mlp_error"]


def throughput(X, args):
    """Fine-tuning samples/s of both on the same network and data: logistic
    hidden units (the code too), linear outputs, squared error, Adam."""
    X = X[:args.throughput_samples]
    ae = DBNAutoencoder(SIZES, visible_units="gaussian", code_units="binary",
                        code_noise=0.0, pretrain_n_iter=0, batch_size=100, max_iter=1,
                        random_state=args.seed, n_jobs=args.n_jobs)
    mlp = MLPRegressor(hidden_layer_sizes=SIZES + SIZES[-2::-1], activation="logistic",
                       solver="adam", batch_size=100, max_iter=1, random_state=args.seed)
    rates = {"skdbn": [], "MLPRegressor": []}
    for _ in range(args.repeats):
        # Time the fine-tuning epoch only: the DBN is given fitted (random
        # weights, no pretraining epochs).
        model = clone(ae).set_params(dbn=clone(ae).set_params(max_iter=0).fit(X).dbn_)
        begin = time.perf_counter()
        model.fit(X)
        rates["skdbn"].append(X.shape[0] / (time.perf_counter() - begin))
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clone(mlp).fit(X, X)
        rates["MLPRegressor"].append(X.shape[0] / (time.perf_counter() - begin))
    return {name: max(r) for name, r in rates.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--checkpoint", metavar="DIR", default=None,
                        help="save finished phases there and resume from them")
    parser.add_argument("--n-train", type=int, default=60000,
                        help="training images used (all 60 000 by default)")
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--fine-tune-epochs", type=int, default=20)
    parser.add_argument("--mlp-epochs", type=int, default=None,
                        help="MLPRegressor epochs (default: --fine-tune-epochs; 0 skips it)")
    parser.add_argument("--learning-rate", type=float, default=3e-3,
                        help="Adam's learning rate, for both fine-tunings")
    parser.add_argument("--throughput-samples", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="throughput runs (the fastest counts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()
    if args.mlp_epochs is None:
        args.mlp_epochs = args.fine_tune_epochs

    X, _, X_test, _ = load_mnist(args.data)
    X, X_test = X[:args.n_train], X_test[:args.n_test]
    store = Checkpoints(args.checkpoint)
    print(f"{X.shape[0]} training and {X_test.shape[0]} test images; "
          f"784-{'-'.join(map(str, SIZES))}", flush=True)

    rates = throughput(X, args)
    print(f"fine-tuning throughput: skdbn {rates['skdbn']:.0f} samples/s, MLPRegressor "
          f"{rates['MLPRegressor']:.0f} samples/s, ratio "
          f"{rates['skdbn'] / rates['MLPRegressor']:.2f}", flush=True)
    run_pca(X, X_test, args, store)
    dbn, pretrain_seconds = pretrain(X, args, store)
    ae, fine_tune_seconds = fine_tune(dbn, X, X_test, args, store)
    mlp_error = run_mlp(X, X_test, args, store)

    rows = [
        (f"skdbn DBNAutoencoder ({args.pretrain_epochs} + {ae.n_iter_} epochs)",
         -ae.score(X_test), pretrain_seconds + fine_tune_seconds,
         REPORTED["deep autoencoder"]),
        (f"PCA({SIZES[-1]})", store.results["pca"]["error"],
         store.results["pca"]["seconds"], REPORTED["PCA"]),
    ]
    if mlp_error is not None:
        rows.append((f"MLPRegressor from random start ({args.mlp_epochs} epochs)",
                     mlp_error, store.results["mlp_seconds"], None))
    print()
    print(f"| model | test error per image | reported | wall time (s) |")
    print("|---|---|---|---|")
    for name, error, seconds, reported in rows:
        print(f"| {name} | {error:.2f} | {'' if reported is None else f'{reported:.2f}'} "
              f"| {seconds:.0f} |")
    print(f"\npretraining {pretrain_seconds:.0f} s, fine-tuning {fine_tune_seconds:.0f} s "
          f"({fine_tune_seconds / max(ae.n_iter_, 1):.0f} s per epoch); skdbn / PCA = "
          f"{rows[0][1] / rows[1][1]:.3f} (target <= 0.25)")
    print(f"fine-tuning throughput ratio skdbn / MLPRegressor = "
          f"{rates['skdbn'] / rates['MLPRegressor']:.2f} (target >= 1.5)")


if __name__ == "__main__":
    main()
