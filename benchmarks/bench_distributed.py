"""Model-parallel CD (report chapter 4): speed-up, and bytes on the wire.

Part 1, speed-up. A compute-bound problem (default 4000 visibles x 10000
hiddens, minibatch 1000, CD-1, float32) trained by
  * one process with one thread,
  * one process with two threads,
  * DistributedFit with 2 single-threaded workers on loopback, for each
    strategy ("replicated", report §4.2; "partitioned", §4.5).
Printed: the time of a steady-state epoch (a two-epoch fit minus a one-epoch
fit) and the set-up time of a fit (the rest): initialisation, and for the
workers, already started, sending them the data and the model and
collecting the model.

Part 2, communication (report Table 4.1). Bytes sent by all workers for one
epoch of a small problem with the report's shape scaled down (800 visibles,
2000 hiddens, 800 examples, minibatch 100), for K = 1, 2, 4, 8, next to the
§4.4.1 formula. Binary visibles use sampled statistics (everything travels
as bits); Gaussian visibles send their float activities.

Part 3, one CD step, two ways. Both run the phases of one definition of the
chain (``skdbn/_kernels/_chain.pxd``): a worker calls them one by one from
Python (``distributed/_worker.py``), because its exchanges come between
them; one process runs them in one fused kernel call (``cd_step``: one
OpenMP team for all phases). Printed: the
time per minibatch of the fused step and of the worker's step on a mesh of
one worker (every exchange a no-op, the partitioned strategy, so no weight
is updated twice), CD-1 with sampled statistics, float32, 1 and 2 threads,
and their ratio.

Usage: ``python benchmarks/bench_distributed.py [--quick] [--repeats N] [--step-only]``.
"""

import argparse

import numpy as np

from _timing import best_time
from skdbn import BernoulliRBM, DistributedFit, GaussianBernoulliRBM
from skdbn._state import CDParams, RBMState
from skdbn._streams import minibatch_key
from skdbn.distributed._worker import LoneMesh, Trainer
from skdbn.utils._threads import single_threaded_blas


def data(n, V, gaussian=False, seed=0):
    rng = np.random.default_rng(seed)
    if gaussian:
        return rng.standard_normal((n, V), dtype=np.float32)
    return (rng.random((n, V), dtype=np.float32) < 0.3).astype(np.float32)


def speedup(V, H, m, n_batches, repeats):
    X = data(m * n_batches, V)
    params = dict(n_components=H, batch_size=m, learning_rate=0.01, persistent=False,
                  random_state=0)
    flops = 10 * X.shape[0] * V * H

    def timed(make, n_iter):
        return best_time(lambda: make(n_iter).fit(X), repeats)

    def epoch_and_setup(make):
        # A fit of two epochs minus a fit of one: the steady-state epoch; the
        # rest of the one-epoch fit is set-up (initialisation, and for the
        # workers sending data and model, and collecting the model).
        one, two = timed(make, 1), timed(make, 2)
        return two - one, 2 * one - two

    rows = []
    for n_jobs in (1, 2):
        rows.append((f"1 process, {n_jobs} thread{'s' if n_jobs > 1 else ''}",
                     *epoch_and_setup(lambda n_iter: BernoulliRBM(
                         n_iter=n_iter, n_jobs=n_jobs, **params))))
    for strategy in ("replicated", "partitioned"):
        with DistributedFit(n_workers=2, n_jobs=1, strategy=strategy):
            rows.append((f"2 workers x 1 thread, {strategy}",
                         *epoch_and_setup(lambda n_iter: BernoulliRBM(n_iter=n_iter,
                                                                      **params))))
    base, threads = rows[0][1], rows[1][1]
    print(f"(V, H, batch) = ({V}, {H}, {m}), epochs of {X.shape[0]} examples, CD-1, "
          f"float32, best of {repeats}")
    print(f"  {'run':36s} {'epoch s':>8s} {'GFLOP/s':>8s} {'vs 1 thread':>12s} "
          f"{'vs 2 threads':>13s} {'set-up s':>9s}")
    for name, epoch, setup in rows:
        print(f"  {name:36s} {epoch:8.2f} {flops / epoch / 1e9:8.1f} {base / epoch:12.2f} "
              f"{threads / epoch:13.2f} {setup:9.2f}")


def communication(quick):
    V, H, m, n = 800, 2000, 100, 800
    print(f"\nBytes sent by all workers in one epoch: V={V}, H={H}, {n} examples, "
          f"minibatch {m} (report Table 4.1 scaled down)")
    print(f"  {'K':>2s} {'binary MB':>10s} {'formula':>8s} {'gauss f32 MB':>13s} "
          f"{'formula':>8s} {'gauss f64 MB':>13s} {'formula':>8s}")
    for K in (1, 2, 4) if quick else (1, 2, 4, 8):
        cells = []
        for gaussian, dtype in ((False, np.float32), (True, np.float32), (True, np.float64)):
            X = data(n, V, gaussian).astype(dtype)
            cls = GaussianBernoulliRBM if gaussian else BernoulliRBM
            rbm = cls(n_components=H, n_iter=1, batch_size=m, persistent=False,
                      sampled_statistics=True, sample_visible=True,
                      learning_rate=0.001, random_state=0)
            backend = DistributedFit(n_workers=K, sync_every=10**9)
            backend.fit(rbm, X)
            bits_h = 2 * (K - 1) * n * H          # all workers, hiddens as bits
            vis = (K - 1) * n * V * (np.dtype(dtype).itemsize * 8 if gaussian else 1)
            cells += [sum(backend.bytes_sent_) / 1e6, (bits_h + vis) / 8 / 1e6]
        print(f"  {K:2d} {cells[0]:10.2f} {cells[1]:8.2f} {cells[2]:13.2f} {cells[3]:8.2f} "
              f"{cells[4]:13.2f} {cells[5]:8.2f}")


def step_cost(shapes, n_batches, repeats):
    print("\nOne CD-1 step (sampled statistics, float32): the fused single-process kernel "
          f"against the worker's phase-by-phase step on one worker; ms per minibatch, "
          f"best of {repeats} passes of {n_batches} minibatches")
    print(f"  {'(V, H, batch)':18s} {'threads':>7s} {'fused ms':>9s} {'phases ms':>10s} "
          f"{'phases / fused':>15s}")
    for V, H, m in shapes:
        X = data(m * n_batches, V)
        batches = [np.ascontiguousarray(X[i * m:(i + 1) * m]) for i in range(n_batches)]
        for n_jobs in (1, 2):
            rbm = BernoulliRBM(n_components=H, batch_size=m, n_iter=0, learning_rate=0.01,
                               persistent=False, sampled_statistics=True, random_state=0,
                               n_jobs=n_jobs).fit(X)
            state = rbm.state_
            params = CDParams.of(rbm)
            buffers = state.buffers(m, params)
            # The worker keeps its chains by example: its own copy of the state.
            copy, _ = RBMState.from_wire(
                [a.copy() for a in state.wire_arrays(rbm.visible_means_)], state.seed)
            trainer = Trainer(LoneMesh(), rbm, copy, X, "partitioned", 10**9, n_jobs)

            def fused():
                for i, batch in enumerate(batches):
                    buffers[0][:m] = batch
                    state.step(buffers, m, params, 0.0, minibatch_key(0, 0, i), n_jobs)

            def phases():
                for i, batch in enumerate(batches):
                    trainer.step(batch, minibatch_key(0, 0, i), 0.0)

            with single_threaded_blas():
                t_fused = best_time(fused, repeats) / n_batches * 1e3
                t_phases = best_time(phases, repeats) / n_batches * 1e3
            print(f"  {str((V, H, m)):18s} {n_jobs:7d} {t_fused:9.3f} {t_phases:10.3f} "
                  f"{t_phases / t_fused:15.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smaller problem (2000 x 5000, minibatch 500) and K <= 4")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--step-only", action="store_true",
                        help="only part 3, the cost of the phase-by-phase CD step")
    args = parser.parse_args()
    shapes = [(784, 500, 10), (784, 500, 100), (4000, 2000, 100)]
    if args.step_only:
        step_cost(shapes, 20, args.repeats)
        return
    if args.quick:
        speedup(2000, 5000, 500, 2, args.repeats)
    else:
        speedup(4000, 10000, 1000, 3, args.repeats)
    communication(args.quick)
    step_cost(shapes, 20, args.repeats)


if __name__ == "__main__":
    main()
