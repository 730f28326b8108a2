"""Topic models and semantic hashing on a real labelled corpus, against
scikit-learn's LatentDirichletAllocation and LSA in the same run.

The corpus is a directory of fortune files (Debian's ``fortunes`` package:
``apt-get install fortunes`` puts about 40 of them in
``/usr/share/games/fortunes``): texts separated by lines holding ``%``, the
file's name being each text's label. The script installs nothing. The 2 000
most frequent words (English stop words removed, ``CountVectorizer``) make
the vocabulary; texts with no word left are dropped; the rest is split 80/20
with seed 0.

Printed, in one table:

- held-out per-word perplexity: a 50-topic ``ReplicatedSoftmaxRBM`` (AIS for
  each ``log Z_D``, with the interval) and
  ``LatentDirichletAllocation(n_components=50)``, and a unigram model;
- retrieval: for each test text, the fraction of its k nearest training texts
  (cosine distance on 50-dimensional features) that share its label, k = 1,
  10, 50: the Replicated Softmax's topic posteriors, LDA's topic proportions,
  LSA (``TruncatedSVD(50)`` of the tf-idf matrix);
- semantic hashing: the same fraction for the 50 nearest training texts by
  Hamming distance on 20-bit codes, a ``DBNAutoencoder`` with a Replicated
  Softmax first layer against LSA projected to 20 dimensions and binarised
  at each dimension's training median;
- the fit time of each model;
- one CD-1 epoch of the Replicated Softmax on the CSR counts and on their
  dense copy (best of ``--repeats``), in float64 and in float32
  (``--epochs-only``: just these).

Usage: ``python benchmarks/bench_text.py --data /usr/share/games/fortunes``.

``--recipe`` prints instead the study behind the Replicated Softmax's
defaults: retrieval (as above) for a grid of training settings, each fit's
time, and LSA's row for reference (a few minutes; no AIS).
"""

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import LatentDirichletAllocation, TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from _timing import best_times

from skdbn import DBNAutoencoder, ReplicatedSoftmaxRBM
from skdbn.neighbors import HammingNeighbors

KS = (1, 10, 50)


def read_fortunes(path):
    """Texts and labels (file names) of the fortune files in ``path``."""
    texts, labels = [], []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(full) or not os.path.isfile(full):
            continue
        with open(full, encoding="utf-8", errors="replace") as f:
            entries = [e.strip() for e in f.read().split("\n%\n")]
        for entry in entries:
            if entry and entry != "%":
                texts.append(entry)
                labels.append(name)
    return texts, np.array(labels)


def same_label_fraction(labels_train, labels_test, neighbours):
    """Mean fraction of each test text's neighbours with its label."""
    return float((labels_train[neighbours] == labels_test[:, None]).mean())


def cosine_retrieval(F_train, F_test, y_train, y_test):
    nn = NearestNeighbors(n_neighbors=max(KS), metric="cosine", algorithm="brute")
    ind = nn.fit(F_train).kneighbors(F_test, return_distance=False)
    return [same_label_fraction(y_train, y_test, ind[:, :k]) for k in KS]


# The recipe study: the defaults (learning_rate=0.3, n_iter=100), fewer
# epochs, other rates, and the other knobs at the default rate.
RECIPES = [
    {}, {"n_iter": 20}, {"n_iter": 50}, {"learning_rate": 0.1}, {"learning_rate": 1.0},
    {"cd_k": 3}, {"persistent": True}, {"batch_size": 20}, {"momentum": 0.5},
]


def recipe_study(X_train, X_test, y_train, y_test, k):
    print(f"\n{'ReplicatedSoftmaxRBM(...)':<40} "
          + " ".join(f"{'same label @' + str(k_):>15}" for k_ in KS) + f" {'fit (s)':>9}")
    for params in RECIPES:
        rs, t = timed(lambda: ReplicatedSoftmaxRBM(n_components=k, random_state=0, **params)
                      .fit(X_train))
        r = cosine_retrieval(rs.transform(X_train), rs.transform(X_test), y_train, y_test)
        name = ", ".join(f"{p}={v}" for p, v in params.items()) or "defaults"
        print(f"{name:<40} " + " ".join(f"{v:15.3f}" for v in r) + f" {t:9.1f}", flush=True)
    tfidf = TfidfTransformer().fit(X_train)
    lsa = TruncatedSVD(k, random_state=0).fit(tfidf.transform(X_train))
    r = cosine_retrieval(lsa.transform(tfidf.transform(X_train)),
                         lsa.transform(tfidf.transform(X_test)), y_train, y_test)
    print(f"{'(LSA, tf-idf)':<40} " + " ".join(f"{v:15.3f}" for v in r))


def timed(fn):
    begin = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - begin


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory of fortune files")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", action="store_true",
                        help="print the study of training settings instead")
    parser.add_argument("--epochs-only", action="store_true",
                        help="print only the sparse and dense epoch times")
    args = parser.parse_args()

    texts, labels = read_fortunes(args.data)
    vectorizer = CountVectorizer(max_features=2000, stop_words="english")
    counts = vectorizer.fit_transform(texts).astype(np.float64)
    keep = np.asarray(counts.sum(axis=1)).ravel() > 0
    counts, labels = counts[keep].tocsr(), labels[keep]
    X_train, X_test, y_train, y_test = train_test_split(counts, labels, test_size=0.2,
                                                        random_state=0)
    n_words = X_train.sum()
    print(f"{len(texts)} texts in {len(set(labels))} files; {counts.shape[0]} with a word of "
          f"the {counts.shape[1]}-word vocabulary; train {X_train.shape[0]}, test "
          f"{X_test.shape[0]}; {n_words / X_train.shape[0]:.1f} words per text, density "
          f"{X_train.nnz / np.prod(X_train.shape):.2%}")

    k = args.topics
    if args.recipe:
        recipe_study(X_train, X_test, y_train, y_test, k)
        return
    if args.epochs_only:
        epoch_ratios(X_train, k, args.repeats)
        return
    rs, t_rs = timed(lambda: ReplicatedSoftmaxRBM(n_components=k, random_state=0).fit(X_train))
    lda, t_lda = timed(lambda: LatentDirichletAllocation(n_components=k, random_state=0)
                       .fit(X_train))
    tfidf = TfidfTransformer().fit(X_train)
    lsa, t_lsa = timed(lambda: TruncatedSVD(k, random_state=0).fit(tfidf.transform(X_train)))

    # Perplexity.
    (ppl_rs, ppl_lo, ppl_hi), t_ais = timed(lambda: rs.perplexity(X_test, return_interval=True))
    ppl_lda = lda.perplexity(X_test)
    p = (np.asarray(X_train.sum(axis=0)).ravel() + 1) / (n_words + X_train.shape[1])
    ppl_unigram = float(np.exp(-(X_test @ np.log(p)).sum() / X_test.sum()))

    # Retrieval by cosine distance on k-dimensional features.
    retrieval = {
        "Replicated Softmax": cosine_retrieval(rs.transform(X_train), rs.transform(X_test),
                                               y_train, y_test),
        "LDA": cosine_retrieval(lda.transform(X_train), lda.transform(X_test),
                                y_train, y_test),
        "LSA": cosine_retrieval(lsa.transform(tfidf.transform(X_train)),
                                lsa.transform(tfidf.transform(X_test)), y_train, y_test),
    }

    print(f"\n{'model':<30} {'perplexity':>22} "
          + " ".join(f"{'same label @' + str(k_):>15}" for k_ in KS) + f" {'fit (s)':>9}")
    print(f"{'Replicated Softmax (' + str(k) + ')':<30} "
          f"{f'{ppl_rs:.1f} [{ppl_lo:.1f}, {ppl_hi:.1f}]':>22} "
          + " ".join(f"{v:15.3f}" for v in retrieval["Replicated Softmax"]) + f" {t_rs:9.1f}")
    print(f"{'LDA (' + str(k) + ')':<30} {ppl_lda:22.1f} "
          + " ".join(f"{v:15.3f}" for v in retrieval["LDA"]) + f" {t_lda:9.1f}")
    print(f"{'LSA (' + str(k) + ', tf-idf)':<30} {'':>22} "
          + " ".join(f"{v:15.3f}" for v in retrieval["LSA"]) + f" {t_lsa:9.1f}")
    print(f"{'unigram':<30} {ppl_unigram:22.1f}")
    print(f"\nAIS for the Replicated Softmax's perplexity: {t_ais:.1f} s "
          f"(100 runs per distinct length, "
          f"{len(np.unique(np.asarray(X_test.sum(axis=1)).ravel()))} lengths)")

    # Semantic hashing: 20-bit codes, 50 nearest by Hamming distance.
    hashing, t_hash = timed(lambda: DBNAutoencoder(
        (500, 500, 128, 20), visible_units="counts", code_units="binary",
        random_state=0).fit(X_train))
    codes_train, codes_test = hashing.transform(X_train), hashing.transform(X_test)
    ind = HammingNeighbors(50).fit(codes_train).kneighbors(codes_test, return_distance=False)
    p_hash = same_label_fraction(y_train, y_test, ind)
    lsa20 = TruncatedSVD(20, random_state=0).fit(tfidf.transform(X_train))
    z_train = lsa20.transform(tfidf.transform(X_train))
    z_test = lsa20.transform(tfidf.transform(X_test))
    median = np.median(z_train, axis=0)
    ind = HammingNeighbors(50).fit((z_train > median).astype(np.uint8)).kneighbors(
        (z_test > median).astype(np.uint8), return_distance=False)
    p_lsa_hash = same_label_fraction(y_train, y_test, ind)

    print("\nsemantic hashing, 20-bit codes, same label among the 50 nearest by Hamming "
          "distance:")
    print(f"  DBNAutoencoder (counts-500-500-128-20) {p_hash:.3f}   fit {t_hash:.1f} s")
    print(f"  LSA (20, binarised at the median)      {p_lsa_hash:.3f}")
    print(f"\nchance (a random training text's label): "
          f"{float(np.sum((np.unique(y_train, return_counts=True)[1] / len(y_train)) ** 2)):.3f}")
    epoch_ratios(X_train, k, args.repeats)


def epoch_ratios(X_train, k, repeats):
    """One CD-1 epoch on the sparse counts and on their dense copy, in
    float64 (``CountVectorizer``'s integers as ``check_array`` makes them)
    and in float32 (``CountVectorizer(dtype=np.float32)``)."""
    print()
    for dtype in (np.float64, np.float32):
        csr = X_train.astype(dtype)
        dense = csr.toarray()
        models = {name: ReplicatedSoftmaxRBM(n_components=k, n_iter=1, random_state=0)
                  .fit(data) for name, data in (("csr", csr), ("dense", dense))}
        epoch = best_times({"csr": lambda: models["csr"].partial_fit(csr),
                            "dense": lambda: models["dense"].partial_fit(dense)}, repeats)
        print(f"one CD-1 epoch, {k} topics, {np.dtype(dtype).name}: CSR {epoch['csr']:.3f} s, "
              f"dense {epoch['dense']:.3f} s ({epoch['dense'] / epoch['csr']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
