"""AIS on a 784 x 500 Bernoulli RBM: seconds and ratio to the GEMM ceiling.

Each temperature needs two products, ``v W^T`` (which serves both the
importance weight and the hidden sample) and ``h W``. The ceiling runs just
those products, as many times, through the same BLAS with its own threads;
skdbn's ratio to it is what compares across machines.

Usage: ``python benchmarks/bench_ais.py [--runs 100] [--repeats 3]``.
"""

import argparse
import os

import numpy as np
from threadpoolctl import threadpool_limits

from _timing import best_time
from ceilings import gemm_only_ais
from skdbn import BernoulliRBM
from skdbn.metrics import default_betas, log_partition_ais


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    V, H = 784, 500
    rng = np.random.default_rng(0)
    rbm = BernoulliRBM(H, n_iter=0, random_state=0).fit(np.zeros((1, V), np.float32))
    rbm.components_[:] = rng.normal(0, 0.05, (H, V))
    betas = default_betas()
    K = betas.size - 1
    v = np.zeros((args.runs, V), np.float32)
    h = np.zeros((args.runs, H), np.float32)

    with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
        t_ceiling = best_time(lambda: gemm_only_ais(rbm.components_, v, h, K), args.repeats)
    t_ais = best_time(lambda: log_partition_ais(rbm, n_runs=args.runs, random_state=0),
                      args.repeats)
    flops = 4.0 * args.runs * V * H * K
    print(f"AIS, {V} x {H} Bernoulli RBM, {args.runs} runs, {K + 1} temperatures, float32")
    print(f"  {'peer':<10} {'seconds':>8} {'GFLOP/s':>8} {'x ceiling':>10}")
    for name, t in (("gemm-only", t_ceiling), ("skdbn AIS", t_ais)):
        print(f"  {name:<10} {t:8.2f} {flops / t / 1e9:8.1f} {t_ceiling / t:10.2f}")


if __name__ == "__main__":
    main()
