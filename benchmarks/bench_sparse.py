"""Sparse input: one epoch of CD-1 on a CSR matrix, against its peers in the
same run, and the peak memory of a fit on a large CSR matrix.

Binary data of ``--density`` (default 0.5 %, the density of word counts) with
V visible and H hidden units. Every peer trains the same model from the same
start: ``--warm-up`` epochs (default 3, so that the visible biases have learned how rarely
each feature is on, as in any later epoch), then the timed epochs.

Peers
-----
skdbn sparse   ``partial_fit`` of one epoch on the CSR matrix (CD-1).
skdbn dense    the same on its dense copy: what the sparse path saves.
skdbn PCD      the sparse path with ``persistent=True``, scikit-learn's
               algorithm.
sklearn        ``sklearn.neural_network.BernoulliRBM(n_iter=1).fit`` on the
               CSR matrix (PCD-1; its data-side products are sparse too).

``--memory N`` instead fits N rows (default 1 000 000) of V features in a
fresh process and prints its peak resident memory beside the sizes of the
CSR matrix and the model. Usage: ``python benchmarks/bench_sparse.py
[--repeats R] [--memory [N]]``.
"""

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_info

from _timing import best_times

from skdbn import BernoulliRBM
from skdbn._kernels import cd_variant

N_THREADS = os.cpu_count()


def random_csr(n, V, density, dtype=np.float32, seed=0, chunk=100_000):
    """Binary CSR rows with ``density * V`` nonzeros each, one per stratum of
    V / nnz columns (distinct and sorted without a per-row sort), built in
    chunks so that no dense or int64 temporary of the whole matrix exists."""
    rng = np.random.default_rng(seed)
    k = max(1, int(round(density * V)))
    width = V // k
    indices = np.empty(n * k, np.int32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        cols = rng.integers(0, width, (hi - lo, k), dtype=np.int32)
        cols += np.arange(k, dtype=np.int32) * width
        indices[lo * k:hi * k] = cols.ravel()
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64 if n * k >= 2**31 else np.int32)
    return sp.csr_matrix((np.ones(n * k, dtype), indices, indptr), shape=(n, V))


def warm_model(X, H, m, persistent=False, warm_up=3):
    """An skdbn RBM after ``warm_up`` epochs on X; its next epoch is timed."""
    rbm = BernoulliRBM(n_components=H, batch_size=m, n_iter=warm_up, learning_rate=0.1,
                       persistent=persistent, random_state=0, n_jobs=N_THREADS)
    return rbm.fit(X)


def bench(V, H, m, n, density, repeats, warm_up):
    Xs = random_csr(n, V, density)
    Xd = Xs.toarray()
    from sklearn.neural_network import BernoulliRBM as SkRBM

    sparse, dense = warm_model(Xs, H, m, warm_up=warm_up), warm_model(Xd, H, m, warm_up=warm_up)
    pcd = warm_model(Xs, H, m, persistent=True, warm_up=warm_up)
    sk = SkRBM(n_components=H, batch_size=m, n_iter=1, learning_rate=0.1, random_state=0)
    peers = {
        "skdbn sparse": lambda: sparse.partial_fit(Xs),
        "skdbn dense": lambda: dense.partial_fit(Xd),
        "skdbn PCD": lambda: pcd.partial_fit(Xs),
        "sklearn": lambda: sk.fit(Xs),
    }
    times = best_times(peers, repeats)
    # How sparse the negative visibles of the timed epochs are: the sampled
    # reconstructions of the last minibatch, as the kernel sees them.
    recon = sparse.gibbs(Xs[:m])
    print(f"\n(V, H, batch) = ({V}, {H}, {m}), {n} samples, density {density:.2%}, float32; "
          f"negative visibles on: {recon.mean():.2%}")
    print(f"  {'peer':<13} {'seconds':>9} {'skdbn sparse x':>15}")
    for name, t in times.items():
        print(f"  {name:<13} {t:9.3f} {t / times['skdbn sparse']:15.2f}")
    print(f"  vs sklearn (PCD-1 both, CSR input): skdbn {times['sklearn'] / times['skdbn PCD']:.2f}x")
    return times


def memory_child(n, V, H, m, density):
    """Runs in a fresh process: build the CSR, fit one epoch, print sizes."""
    X = random_csr(n, V, density)
    csr_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    begin = time.perf_counter()
    rbm = BernoulliRBM(n_components=H, batch_size=m, n_iter=1, random_state=0,
                       n_jobs=N_THREADS).fit(X)
    seconds = time.perf_counter() - begin
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    state = rbm.state_
    model_bytes = sum(a.nbytes for a in state.arrays().values())
    mb = 2**20
    print(f"\n{n} x {V} CSR, density {density:.2%}, H = {H}, batch {m}: one epoch in "
          f"{seconds:.1f} s")
    print(f"  CSR matrix {csr_bytes / mb:8.1f} MB   model (all state arrays) "
          f"{model_bytes / mb:7.1f} MB   batch x V float32 {m * V * 4 / mb:6.1f} MB")
    print(f"  peak RSS before fit {before / mb:8.1f} MB, after {peak / mb:8.1f} MB: "
          f"the fit added {(peak - before) / mb:.1f} MB "
          f"({(peak - before) / (model_bytes + m * V * 4):.2f} x model + batch x V)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--V", type=int, default=20_000)
    parser.add_argument("--H", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=5_000)
    parser.add_argument("--density", type=float, default=0.005)
    parser.add_argument("--warm-up", type=int, default=3, help="epochs before the timed ones")
    parser.add_argument("--memory", type=int, nargs="?", const=1_000_000, default=None,
                        metavar="N", help="fit N rows in a fresh process and report its "
                                          "peak memory (default N: 1 000 000)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory, args.V, args.H, args.batch, args.density)
        return
    blas = [(i["internal_api"], i.get("version"), i.get("architecture"), i["num_threads"])
            for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"skdbn kernels {cd_variant()}; threads: {N_THREADS}; BLAS: {blas}")
    if args.memory is not None:
        subprocess.run([sys.executable, __file__, "--memory-child", "--memory",
                        str(args.memory), "--V", str(args.V), "--H", str(args.H),
                        "--batch", str(args.batch), "--density", str(args.density)],
                       check=True)
        return
    bench(args.V, args.H, args.batch, args.samples, args.density, args.repeats, args.warm_up)


if __name__ == "__main__":
    main()
