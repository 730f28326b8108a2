"""Time to fit a ZCA whitening matrix, skdbn against scikit-learn in the same run.

The problem is the report's (§2.4): 32x32 colour images, 3072 features, here
50 000 random 32x32 patches of scikit-learn's two sample photographs as
float32 in [0, 1] (``--data gaussian`` uses standard normal data instead).

Peers, each producing the same symmetric ZCA matrix W = C^(-1/2):

skdbn           ``ZCAWhitener().fit(X)``: float64 covariance by BLAS syrk over
                row chunks, float64 divide-and-conquer eigh, W = B B^T.
sklearn-full    ``PCA(whiten=True).fit(X)`` (its "auto" solver picks the full
                SVD of X here), then rotation back to pixel space:
                ``W = V^T diag(1 / sqrt(explained_variance_)) V``.
sklearn-cov     the same with ``svd_solver="covariance_eigh"`` (covariance
                and eigh in float32), scikit-learn's fastest exact solver.

Each repeat times every peer in turn, so a busy machine slows them alike;
the best of ``--repeats`` is kept. Accuracy: ``max |W C W - I|`` with ``C``
the covariance computed separately in float64 (0 for an exact whitening).

Usage: ``python benchmarks/bench_zca.py [--quick] [--repeats N] [--data {images,gaussian}]``.
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_sample_images
from sklearn.decomposition import PCA
from sklearn.feature_extraction.image import extract_patches_2d
from threadpoolctl import threadpool_info

from skdbn import ZCAWhitener


def make_data(n, data, seed=0):
    if data == "gaussian":
        return np.random.default_rng(seed).standard_normal((n, 3072), dtype=np.float32)
    images = load_sample_images().images
    per_image = [n // len(images) + (i < n % len(images)) for i in range(len(images))]
    patches = [
        extract_patches_2d(image, (32, 32), max_patches=m, random_state=seed + i)
        for i, (image, m) in enumerate(zip(images, per_image))
    ]
    return (np.concatenate(patches).reshape(n, -1) / np.float32(255)).astype(np.float32)


def skdbn_zca(X):
    return ZCAWhitener().fit(X).whitening_


def sklearn_zca(solver):
    def fit(X):
        pca = PCA(whiten=True, svd_solver=solver).fit(X)
        V = pca.components_
        return V.T @ (V / np.sqrt(pca.explained_variance_)[:, None])

    return fit


def whitening_error(W, covariance):
    W = W.astype(np.float64)
    return np.abs(W @ covariance @ W - np.eye(len(W))).max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 000 rows instead of 50 000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=["images", "gaussian"], default="images")
    args = parser.parse_args()

    n = 10_000 if args.quick else 50_000
    X = make_data(n, args.data)
    blas = ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info())
    print(f"X: {X.shape[0]} x {X.shape[1]} {X.dtype} ({args.data}); BLAS: {blas}")

    peers = {
        "skdbn": skdbn_zca,
        "sklearn-full": sklearn_zca("full"),
        "sklearn-cov": sklearn_zca("covariance_eigh"),
    }
    best = dict.fromkeys(peers, np.inf)
    matrices = {}
    for _ in range(args.repeats):
        for name, fit in peers.items():
            start = time.perf_counter()
            matrices[name] = fit(X)
            best[name] = min(best[name], time.perf_counter() - start)

    centred = X.astype(np.float64)
    centred -= centred.mean(axis=0)
    covariance = centred.T @ centred / (n - 1)
    del centred
    print(f"best of {args.repeats}; ratio = peer seconds / skdbn seconds")
    print(f"{'peer':<14}{'seconds':>9}{'ratio':>8}{'max|WCW - I|':>15}")
    for name in peers:
        error = whitening_error(matrices[name], covariance)
        print(f"{name:<14}{best[name]:>9.2f}{best[name] / best['skdbn']:>8.2f}{error:>15.2e}")


if __name__ == "__main__":
    main()
