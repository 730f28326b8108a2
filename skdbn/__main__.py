"""Demo: RBM features and a fine-tuned DBN for digit classification, ``python -m skdbn``.

Trains a :class:`~skdbn.BernoulliRBM` on scikit-learn's 8x8 digits, feeds its
hidden-unit probabilities to a logistic regression, compares the test
accuracy with a logistic regression on the raw pixels and with a DBN
fine-tuned by backpropagation (:class:`~skdbn.PretrainedMLPClassifier`), and
saves a picture of the learned filters.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import math
import os
import struct
import sys
import time
import zlib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from . import BernoulliRBM, DBNTransformer, PretrainedMLPClassifier
from .utils._threads import single_threaded_blas

# Train/test split, fixed so that runs with different model options compare.
_TEST_SIZE = 0.2
_SPLIT_SEED = 0
# lbfgs converges in under 100 iterations here, for C from 1 to 1000; stay
# well clear of the ConvergenceWarning.
_LOGISTIC_MAX_ITER = 1000

# Configuration of the fine-tuned DBN, in one place. The hidden layer sizes,
# the fine-tuning epochs, the seed and the threads come from the command line
# (--dbn-hidden, --fine-tune-epochs, --random-state, --n-jobs).
_DBN_PRETRAINING = dict(n_iter=100, learning_rate=0.2, persistent=True, momentum=0.0,
                        batch_size=10)
_DBN_FINE_TUNING = dict(logistic_C=1, solver="adam", learning_rate_init=1e-3,
                        early_stopping=False, alpha=1e-4)
_DBN_HIDDEN_DEFAULT = (256,)
_DBN_FINE_TUNE_EPOCHS_DEFAULT = 100


def _number(convert, text, ok, expected):
    """``convert(text)`` if it passes ``ok``, else an argparse error."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_int(text):
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def _positive_float(text):
    return _number(float, text, lambda v: v > 0, "a positive number")


def _n_jobs(text):
    return _number(int, text, lambda v: v != 0, "a non-zero integer")


def _layer_sizes(text):
    """Comma-separated positive integers, e.g. ``256`` or ``256,128``."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 256 or 256,128, "
            f"got {text!r}"
        )
    return sizes


def _momentum(text):
    if text == "schedule":
        return text
    return _number(float, text, lambda v: 0 <= v < 1, "a number in [0, 1) or 'schedule'")


def build_parser():
    """Command-line options of ``python -m skdbn``."""
    parser = argparse.ArgumentParser(
        prog="python -m skdbn",
        description=(
            "Train a BernoulliRBM on scikit-learn's 8x8 digits, compare a "
            "logistic regression on its features with one on the raw pixels "
            "and with a DBN fine-tuned by backpropagation, and save a picture "
            "of the learned filters."
        ),
    )
    rbm = parser.add_argument_group("RBM options")
    rbm.add_argument("--n-components", type=_positive_int, default=256, metavar="N",
                     help="number of hidden units, one filter each (default: %(default)s)")
    rbm.add_argument("--n-iter", type=_positive_int, default=40, metavar="N",
                     help="number of training epochs (default: %(default)s)")
    rbm.add_argument("--learning-rate", type=_positive_float, default=0.1, metavar="RATE",
                     help="learning rate of the weights and biases (default: %(default)s)")
    rbm.add_argument("--batch-size", type=_positive_int, default=10, metavar="N",
                     help="examples per minibatch (default: %(default)s)")
    rbm.add_argument("--cd-k", type=_positive_int, default=1, metavar="K",
                     help="Gibbs steps per negative phase, CD-k (default: %(default)s)")
    rbm.add_argument("--persistent", action=argparse.BooleanOptionalAction, default=True,
                     help="persistent contrastive divergence, PCD (the default); "
                          "--no-persistent restarts the chain from the data")
    rbm.add_argument("--sample-visible", action=argparse.BooleanOptionalAction,
                     default=False,
                     help="sample the negative-phase visible units; the default "
                          "uses their probabilities, which gives better features here")
    rbm.add_argument("--momentum", type=_momentum, default=0.0, metavar="M",
                     help="momentum in [0, 1), or 'schedule' for 0.5 then 0.9; "
                          "lower --learning-rate with it (default: %(default)s)")
    rbm.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                     help="threads of the RBM and DBN kernels (default: all cores, "
                          "as with -1); the results do not depend on it")
    rbm.add_argument("--random-state", type=int, default=0, metavar="SEED",
                     help="seed of the RBM and the DBN: initial weights, samples "
                          "and minibatch order (default: %(default)s)")
    dbn = parser.add_argument_group(
        "fine-tuned DBN options",
        f"A DBN pretrained greedily ({_DBN_PRETRAINING['n_iter']} epochs of "
        f"{'persistent ' if _DBN_PRETRAINING['persistent'] else ''}CD per layer) "
        "and fine-tuned by backpropagation as a sigmoid network with a softmax "
        "output (PretrainedMLPClassifier).",
    )
    dbn.add_argument("--dbn", action=argparse.BooleanOptionalAction, default=True,
                     help="train and score the fine-tuned DBN (the default); "
                          "--no-dbn skips it")
    dbn.add_argument("--dbn-hidden", type=_layer_sizes, default=_DBN_HIDDEN_DEFAULT,
                     metavar="SIZES",
                     help="hidden layer sizes, bottom to top, comma-separated "
                          "(default: %s)" % ",".join(map(str, _DBN_HIDDEN_DEFAULT)))
    dbn.add_argument("--fine-tune-epochs", type=_positive_int,
                     default=_DBN_FINE_TUNE_EPOCHS_DEFAULT, metavar="N",
                     help="epochs of backpropagation (default: %(default)s)")
    out = parser.add_argument_group("classifier and output")
    out.add_argument("--C", type=_positive_float, default=10.0, dest="C",
                     help="inverse regularisation strength of the logistic "
                          "regressions on raw pixels and on RBM features "
                          "(default: %(default)s)")
    out.add_argument("--output", default="skdbn_filters.png", metavar="PATH",
                     help="PNG file for the picture of the learned filters "
                          "(default: %(default)s)")
    out.add_argument("--verbose", action="store_true",
                     help="also print the progress of every epoch of the RBM "
                          "and the DBN")
    out.add_argument("--quiet", action="store_true",
                     help="print only the table: no line per phase")
    return parser


def load_data():
    """Digits scaled to [0, 1] in float32, split 80/20 stratified.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(
        X, y, test_size=_TEST_SIZE, stratify=y, random_state=_SPLIT_SEED
    )


def make_rbm_pipeline(args):
    """BernoulliRBM feature learning followed by a logistic regression."""
    rbm = BernoulliRBM(
        n_components=args.n_components,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        n_iter=args.n_iter,
        cd_k=args.cd_k,
        persistent=args.persistent,
        sample_visible=args.sample_visible,
        momentum=args.momentum,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        verbose=int(args.verbose),
    )
    logistic = LogisticRegression(C=args.C, max_iter=_LOGISTIC_MAX_ITER)
    return Pipeline([("rbm", rbm), ("logistic", logistic)])


def make_dbn_classifier(args):
    """DBN to pretrain and the classifier that fine-tunes it (unfitted)."""
    verbose = int(args.verbose)
    dbn = DBNTransformer(
        hidden_layer_sizes=args.dbn_hidden,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=verbose,
        **_DBN_PRETRAINING,
    )
    classifier = PretrainedMLPClassifier(
        dbn=dbn,
        max_iter=args.fine_tune_epochs,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
        verbose=verbose,
        **_DBN_FINE_TUNING,
    )
    return dbn, classifier


def fit_dbn_classifier(dbn, classifier, X, y):
    """Pretrain ``dbn``, then fit ``classifier`` from it, timing both apart.

    ``classifier.dbn`` is replaced by the fitted ``dbn``, which it then uses
    as it is.

    Returns
    -------
    pretraining_seconds, fine_tuning_seconds : float
        The second includes the logistic regression that initialises the
        output layer.
    """
    _, pretraining_seconds = timed(dbn.fit, X)
    classifier.set_params(dbn=dbn)
    _, fine_tuning_seconds = timed(classifier.fit, X, y)
    return pretraining_seconds, fine_tuning_seconds


def timed(fn, *args):
    """Call ``fn(*args)``; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def fit_pipeline(pipeline, X, y):
    """Fit ``pipeline`` as ``Pipeline.fit`` does, timing its feature steps apart.

    The feature steps learn and transform, then the final classifier fits on
    their output; ``pipeline`` ends up fitted.

    Returns
    -------
    features_seconds, total_seconds : float
    """
    features, features_seconds = timed(pipeline[:-1].fit_transform, X, y)
    _, classifier_seconds = timed(pipeline[-1].fit, features, y)
    return features_seconds, features_seconds + classifier_seconds


def filter_mosaic(components, image_shape=(8, 8), pad=1):
    """Tile the rows of ``components`` as images in a near-square grid.

    Each filter is divided by its largest absolute weight and mapped to
    [0, 1], so that a zero weight is 0.5 in every tile (their ranges differ).
    The padding between tiles and the unused tiles are NaN.

    Returns
    -------
    mosaic : ndarray of shape (n_rows * (h + pad) + pad, n_cols * (w + pad) + pad)
    """
    n_filters = components.shape[0]
    h, w = image_shape
    n_cols = math.ceil(math.sqrt(n_filters))
    n_rows = math.ceil(n_filters / n_cols)
    mosaic = np.full((n_rows * (h + pad) + pad, n_cols * (w + pad) + pad), np.nan)
    for i, filt in enumerate(np.asarray(components, dtype=np.float64)):
        scale = np.abs(filt).max()
        tile = 0.5 + 0.5 * filt / scale if scale > 0 else np.full_like(filt, 0.5)
        r, c = divmod(i, n_cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        mosaic[top:top + h, left:left + w] = tile.reshape(h, w)
    return mosaic


def write_png(path, image, scale=8):
    """Write a grey-level ``image`` in [0, 1] (NaN: white) as a PNG file.

    Each pixel becomes a ``scale`` x ``scale`` block. Needs only the
    standard library, so the demo saves its picture without matplotlib.
    """
    grey = np.where(np.isnan(image), 1.0, np.clip(image, 0, 1))
    pixels = np.round(grey * 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    height, width = pixels.shape
    # Each row starts with filter type 0 (none).
    raw = np.hstack([np.zeros((height, 1), np.uint8), pixels]).tobytes()

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def save_filters(components, path):
    """Save a grid picture of the filters to ``path``.

    With matplotlib (the ``plot`` extra) the picture has a title; without
    it, :func:`write_png` saves the bare grid.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        write_png(path, filter_mosaic(components))
        return
    mosaic = filter_mosaic(components)
    fig = Figure(figsize=(6, 6 * mosaic.shape[0] / mosaic.shape[1] + 0.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(np.ma.masked_invalid(mosaic), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{components.shape[0]} BernoulliRBM filters on 8x8 digits\n"
                 "(grey: zero weight, white: positive, black: negative)", fontsize=10)
    fig.savefig(path, dpi=150, bbox_inches="tight")


def format_table(rows):
    """Format ``(name, accuracy, seconds)`` rows as a text table."""
    header = ("model", "test accuracy", "fit time")
    cells = [(name, f"{accuracy:.2%}", f"{seconds:.2f} s") for name, accuracy, seconds in rows]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(3)]
    lines = []
    for row in [header, *cells]:
        lines.append("  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv=None):
    """Run the digits demo: RBM features and a fine-tuned DBN versus raw pixels.

    Prints one line per phase with its time (unless ``--quiet``; every
    epoch too with ``--verbose``), saves a picture of the learned filters,
    then prints a table of test accuracies and fit times.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments without the program name; None reads
        ``sys.argv[1:]``. ``--help`` lists them.

    Returns
    -------
    exit_code : int
        0 on success.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    output = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(output)):
        parser.error(f"argument --output: no directory {os.path.dirname(output)!r}")
    X_train, X_test, y_train, y_test = load_data()
    rows = []  # (model name, test accuracy, fit seconds)

    def phase(text):
        if not args.quiet:
            print(text, flush=True)

    # The logistic regressions are too small to gain from BLAS threads, whose
    # spinning slows them down badly on a busy machine, and one thread makes
    # their results independent of the core count. The RBM kernels run their
    # own threads (--n-jobs) whatever this limit.
    with single_threaded_blas():
        raw = LogisticRegression(C=args.C, max_iter=_LOGISTIC_MAX_ITER)
        _, seconds = timed(raw.fit, X_train, y_train)
        rows.append(("logistic regression on raw pixels", raw.score(X_test, y_test), seconds))
        phase(f"logistic regression on raw pixels: fitted in {seconds:.2f} s")

        pipeline = make_rbm_pipeline(args)
        rbm_seconds, seconds = fit_pipeline(pipeline, X_train, y_train)
        rows.append(
            ("logistic regression on RBM features", pipeline.score(X_test, y_test), seconds)
        )
        phase(f"RBM ({args.n_components} hidden units, {args.n_iter} epochs): trained in "
              f"{rbm_seconds:.2f} s; logistic regression on its features: "
              f"{seconds - rbm_seconds:.2f} s")

        if args.dbn:
            dbn, classifier = make_dbn_classifier(args)
            dbn_seconds, tune_seconds = fit_dbn_classifier(dbn, classifier,
                                                           X_train, y_train)
            phase(f"DBN pretraining (hidden layers "
                  f"{'-'.join(map(str, args.dbn_hidden))}, "
                  f"{_DBN_PRETRAINING['n_iter']} epochs each): {dbn_seconds:.2f} s")
            phase(f"DBN fine-tuning ({classifier.n_iter_} epochs of backpropagation): "
                  f"{tune_seconds:.2f} s")
            rows.append(
                ("fine-tuned DBN (PretrainedMLPClassifier)",
                 classifier.score(X_test, y_test), dbn_seconds + tune_seconds)
            )

    save_filters(pipeline["rbm"].components_, output)
    phase(f"filters saved to {output}")
    print()
    print(f"Digits: {len(X_train)} training and {len(X_test)} test images")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
