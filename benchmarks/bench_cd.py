"""Throughput of one epoch of CD-1, against its peers in the same run.

FLOP model: one CD-1 minibatch of m rows costs 10*m*V*H flops (three
forward products and two gradient products of 2*m*V*H each). Every peer is
timed on the same data in the same process; the best of ``--repeats`` runs
is kept, and the ratios are what to compare across machines.

Peers
-----
gemm-only   the five products of a CD-1 step through the same BLAS that
            skdbn calls (scipy's), no element-wise work: the ceiling of a
            one-product-at-a-time implementation.
gemm numpy  the same five products through numpy's ``matmul``, i.e. numpy's
            BLAS, which scikit-learn's RBM uses; it can be a different
            OpenBLAS build from scipy's, and faster or slower at these shapes.
skdbn       ``partial_fit`` (one epoch) of a fitted skdbn RBM, CD-1.
skdbn base  the same with the baseline build of the kernels (SSE2 on x86-64),
            which skdbn runs on CPUs without AVX2 + FMA: what the runtime
            dispatch to the AVX2 + FMA build gains.
skdbn PCD   the same with ``persistent=True`` (BernoulliRBM's default): the
            algorithm of sklearn's BernoulliRBM, five products of the same
            shapes; the positive and negative hidden passes share one product.
skdbn gauss, skdbn nrelu
            CD-1 with Gaussian (linear) or noisy rectified linear hidden
            units: the same five products, other element-wise work (a normal
            draw per sampled hidden unit), so the same ceiling.
numpy       a plain numpy CD-1 (matmul + expit + uniform sampling).
sklearn     ``sklearn.neural_network.BernoulliRBM(n_iter=1).fit`` (PCD-1).

"skdbn x" is each peer's time over skdbn's CD-1 time; "vs sklearn" compares
like with like, skdbn PCD with sklearn's PCD.
torch       the numpy CD-1 written in torch, when torch is installed.

Usage: ``python benchmarks/bench_cd.py [--quick] [--repeats N]``;
``--problem V H BATCH N`` times one problem with skdbn and the ceiling only
(run it with a portable and a native build: the "x ceiling" ratios compare).
"""

import argparse
import importlib.util
import os
import time

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_info, threadpool_limits

from _timing import best_times
from ceilings import gemm_only_cd1
from skdbn import BernoulliRBM, GaussianBernoulliRBM
from skdbn._kernels import _cd, cd_variant

N_THREADS = os.cpu_count()
# time.perf_counter (wall time) or time.process_time (--cpu-time).
CLOCK = time.perf_counter


def make_data(n, V, gaussian, seed=0):
    rng = np.random.default_rng(seed)
    if gaussian:
        return rng.standard_normal((n, V), dtype=np.float32)
    return (rng.random((n, V), dtype=np.float32) < 0.3).astype(np.float32)


def run_gemm_only(X, H, m):
    V = X.shape[1]
    W = np.random.default_rng(1).normal(0, 0.01, (H, V)).astype(np.float32)
    vis = np.empty((2 * m, V), np.float32)
    hid = np.empty((2 * m, H), np.float32)
    grad = np.zeros((H, V), np.float32)

    def epoch():
        for start in range(0, X.shape[0], m):
            vis[:m] = X[start : start + m]
            gemm_only_cd1(W, vis, hid, grad, m)

    return epoch


def run_gemm_numpy(X, H, m):
    V = X.shape[1]
    W = np.random.default_rng(1).normal(0, 0.01, (H, V)).astype(np.float32)
    v1 = np.empty((m, V), np.float32)
    h0, h1 = np.empty((m, H), np.float32), np.empty((m, H), np.float32)
    # Two gradient outputs instead of accumulating (matmul has no beta).
    g0, g1 = np.empty((H, V), np.float32), np.empty((H, V), np.float32)

    def epoch():
        for start in range(0, X.shape[0], m):
            v0 = X[start : start + m]
            np.matmul(v0, W.T, out=h0)
            np.matmul(h0, W, out=v1)
            np.matmul(v1, W.T, out=h1)
            np.matmul(h0.T, v0, out=g0)
            np.matmul(h1.T, v1, out=g1)

    return epoch


def run_numpy(X, H, m, gaussian):
    V = X.shape[1]
    rng = np.random.default_rng(2)
    W = rng.normal(0, 0.01, (H, V)).astype(np.float32)
    b = np.zeros(V, np.float32)
    c = np.zeros(H, np.float32)
    lr = np.float32(0.001 / m)

    def epoch():
        nonlocal W, b, c
        for start in range(0, X.shape[0], m):
            v0 = X[start : start + m]
            h0 = expit(v0 @ W.T + c)
            s0 = (rng.random(h0.shape, dtype=np.float32) < h0).astype(np.float32)
            v1 = s0 @ W + b
            if not gaussian:
                v1 = expit(v1)
            h1 = expit(v1 @ W.T + c)
            W += lr * (h0.T @ v0 - h1.T @ v1)
            b += lr * (v0.sum(0) - v1.sum(0))
            c += lr * (h0.sum(0) - h1.sum(0))

    return epoch


def run_torch(X, H, m, gaussian):
    import torch

    torch.set_num_threads(N_THREADS)
    Xt = torch.from_numpy(X)
    V = X.shape[1]
    W = torch.randn(H, V) * 0.01
    b = torch.zeros(V)
    c = torch.zeros(H)
    lr = 0.001 / m

    def epoch():
        for start in range(0, X.shape[0], m):
            v0 = Xt[start : start + m]
            h0 = torch.sigmoid(v0 @ W.T + c)
            s0 = (torch.rand_like(h0) < h0).float()
            v1 = s0 @ W + b
            if not gaussian:
                v1 = torch.sigmoid(v1)
            h1 = torch.sigmoid(v1 @ W.T + c)
            W.add_(h0.T @ v0 - h1.T @ v1, alpha=lr)
            b.add_(v0.sum(0) - v1.sum(0), alpha=lr)
            c.add_(h0.sum(0) - h1.sum(0), alpha=lr)

    return epoch


def run_skdbn(X, H, m, gaussian, persistent=False, kernels=None, hidden_units="bernoulli"):
    """``kernels``: a build of the CD kernels to run instead of the one
    skdbn dispatched to at import (the baseline one, to time dispatch)."""
    cls = GaussianBernoulliRBM if gaussian else BernoulliRBM
    if kernels is not None:
        # The CD step is called from the RBM's state (skdbn._state).
        import skdbn._state

        def swapped():
            dispatched, skdbn._state._cd = skdbn._state._cd, kernels
            try:
                epoch()
            finally:
                skdbn._state._cd = dispatched

        epoch = run_skdbn(X, H, m, gaussian, persistent)
        return swapped
    model = cls(
        n_components=H,
        batch_size=m,
        n_iter=0,
        learning_rate=0.001,
        persistent=persistent,
        hidden_units=hidden_units,
        random_state=0,
        n_jobs=N_THREADS,
    ).fit(X[:m])
    return lambda: model.partial_fit(X)


def run_sklearn(X, H, m):
    from sklearn.neural_network import BernoulliRBM as SkRBM

    model = SkRBM(n_components=H, batch_size=m, n_iter=1, learning_rate=0.001, random_state=0)
    return lambda: model.fit(X)


def bench(V, H, m, n_samples, gaussian, repeats, skdbn_only=False, unit_peers=False):
    X = make_data(n_samples, V, gaussian)
    flops = 10.0 * m * V * H * (n_samples // m)
    peers = {"gemm-only": run_gemm_only(X, H, m)}
    if not skdbn_only:
        peers["gemm numpy"] = run_gemm_numpy(X, H, m)
    peers["skdbn"] = run_skdbn(X, H, m, gaussian)
    if cd_variant() != "baseline":
        # The same build's baseline kernels, which CPUs without AVX2 run.
        from skdbn._kernels import driver

        peers["skdbn base"] = run_skdbn(X, H, m, gaussian, kernels=driver("_cd", "baseline"))
    if not gaussian:
        peers["skdbn PCD"] = run_skdbn(X, H, m, gaussian, persistent=True)
    if unit_peers:
        peers["skdbn gauss"] = run_skdbn(X, H, m, gaussian, hidden_units="gaussian")
        peers["skdbn nrelu"] = run_skdbn(X, H, m, gaussian, hidden_units="nrelu")
    if not skdbn_only:
        peers["numpy"] = run_numpy(X, H, m, gaussian)
        if not gaussian:
            peers["sklearn"] = run_sklearn(X, H, m)
        if importlib.util.find_spec("torch") is not None:
            peers["torch"] = run_torch(X, H, m, gaussian)
    units = "Gaussian" if gaussian else "Bernoulli"
    print(f"\n(V, H, batch) = ({V}, {H}, {m}) {units}, {n_samples} samples, float32")
    with threadpool_limits(limits=N_THREADS, user_api="blas"):
        times = best_times(peers, repeats, CLOCK)
    ceiling = times["gemm-only"]
    print(f"  {'peer':<11} {'seconds':>9} {'GFLOP/s':>9} {'x ceiling':>10} {'skdbn x':>8}")
    for name, t in times.items():
        print(
            f"  {name:<11} {t:9.3f} {flops / t / 1e9:9.1f} {ceiling / t:10.2f} "
            f"{t / times['skdbn']:8.2f}"
        )
    if "sklearn" in times:
        print(f"  vs sklearn (PCD-1 both): skdbn {times['sklearn'] / times['skdbn PCD']:.2f}x")
    return times


def main():
    global N_THREADS, CLOCK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="skip the report's 8000 x 20000 problem"
    )
    parser.add_argument(
        "--problem", type=int, nargs=4, action="append", metavar=("V", "H", "BATCH", "N"),
        help="run only this Bernoulli problem (repeatable), with the skdbn peers and "
             "the GEMM-only ceiling: e.g. to compare a portable build with a native one",
    )
    parser.add_argument("--units", action="store_true",
                        help="with --problem: also time the Gaussian and NReLU hidden units")
    parser.add_argument("--threads", type=int, default=N_THREADS,
                        help="threads of skdbn and BLAS (default: all cores)")
    parser.add_argument(
        "--cpu-time", action="store_true",
        help="time by the process's CPU time, not wall time: with --threads 1 on a "
             "busy machine, the time spent waiting for a core is not counted",
    )
    args = parser.parse_args()
    N_THREADS = args.threads
    if args.cpu_time:
        CLOCK = time.process_time
    from skdbn._kernels import _openmp_helpers

    print(f"skdbn build: {'native' if _openmp_helpers.native_build() else 'portable'}, "
          f"CD kernels {cd_variant()}, "
          f"OpenMP {'on' if _openmp_helpers.openmp_enabled() else 'off'}; "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    blas = [(i["internal_api"], i.get("version"), i.get("architecture"), i["num_threads"])
            for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"threads: {N_THREADS}; BLAS libraries (api, version, kernel, threads): {blas}")
    if args.problem:
        for V, H, m, n in args.problem:
            bench(V, H, m, n, False, args.repeats, skdbn_only=True, unit_peers=args.units)
        return
    bench(784, 500, 100, 10_000, False, args.repeats, unit_peers=True)
    bench(784, 500, 1000, 20_000, False, args.repeats)
    bench(3072, 1024, 100, 5_000, True, args.repeats)
    if not args.quick:
        # The report's problem (ch. 4): 8000 binary visibles, 20000 hiddens,
        # minibatch 1000, one epoch of 8000 examples.
        bench(8000, 20000, 1000, 8000, False, repeats=2)


if __name__ == "__main__":
    main()
