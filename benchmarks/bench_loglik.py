"""Test log-likelihood of a 500-hidden-unit RBM on binarised MNIST, by AIS.

Salakhutdinov & Murray (2008) report -86.34 nats for an RBM with 500 hidden
units trained by CD-25, estimated by AIS with 100 runs and 14 500
intermediate temperatures. This script trains such RBMs with skdbn, each
for the same wall-time budget (``--minutes``), with the learning rate
decayed linearly to zero over the budget:

* ``cd25``: CD-25, as in the paper;
* ``pcd``: persistent CD with one Gibbs step;
* ``pcd-centred``: the same with the centred gradient (``centering=True``).

and estimates each one's mean test log-likelihood from both sides: forward
AIS (:func:`~skdbn.metrics.log_partition_ais`, an upper estimate, with the
±3 standard-error interval of ``Z``) and reverse AIS from test digits
(:func:`~skdbn.metrics.log_partition_reverse_ais`, a lower estimate), with
the paper's schedule. The digits are binarised stochastically once (seed 0),
each pixel on with probability its intensity, as in the paper.

``--check`` adds the AIS check of the base model: a 784 x 200 RBM trained on
10 000 binarised training digits, whose ``log Z`` is estimated with a
uniform base model, with the default base model (the training data's means)
and by reverse AIS, for three seeds.

With ``--checkpoint DIR`` each model is saved every few epochs and each
finished result kept, so that a rerun resumes.

Usage: ``python benchmarks/bench_loglik.py --data PATH [--minutes 30]
[--checkpoint DIR] [--check]``.
"""

import argparse
import json
import os
import time

import joblib
import numpy as np

from _mnist import add_data_argument, load_mnist
from skdbn import BernoulliRBM
from skdbn.metrics import log_likelihood, log_partition_ais, log_partition_reverse_ais

ALGORITHMS = {
    "cd25": dict(cd_k=25, persistent=False, learning_rate=0.05),
    "pcd": dict(cd_k=1, persistent=True, learning_rate=0.01),
    "pcd-centred": dict(cd_k=1, persistent=True, learning_rate=0.01, centering=True),
}
PAPER = -86.34


def binarise(X, seed):
    return (np.random.RandomState(seed).uniform(size=X.shape) < X).astype(np.float32)


def load(path):
    return joblib.load(path) if path and os.path.exists(path) else None


def train(name, X, args):
    """Epochs of ``name`` until the budget is spent; resumable."""
    path = os.path.join(args.checkpoint, f"rbm-{name}.joblib") if args.checkpoint else None
    state = load(path)
    if state is None:
        params = ALGORITHMS[name]
        rbm = BernoulliRBM(500, batch_size=100, momentum="schedule", sample_visible=True,
                           random_state=args.seed, n_jobs=args.n_jobs,
                           **{k: v for k, v in params.items() if k != "learning_rate"})
        state = {"rbm": rbm, "seconds": 0.0, "lr0": params["learning_rate"]}
    rbm, budget = state["rbm"], 60 * args.minutes
    while state["seconds"] < budget:
        # Linear decay of the learning rate over the budget.
        rbm.set_params(learning_rate=state["lr0"] * (1 - state["seconds"] / budget))
        begin = time.perf_counter()
        rbm.partial_fit(X)
        state["seconds"] += time.perf_counter() - begin
        if rbm.n_iter_ % 5 == 0 or state["seconds"] >= budget:
            print(f"{name}: epoch {rbm.n_iter_}, {state['seconds'] / 60:.1f} min", flush=True)
            if path:
                joblib.dump(state, path)
    return rbm, state["seconds"]


def estimates(rbm, X_test, args):
    """Upper (forward AIS) and lower (reverse AIS) mean test log-likelihoods."""
    neg_f = float(np.mean(-rbm.free_energy(X_test).astype(np.float64)))
    begin = time.perf_counter()
    fwd = log_partition_ais(rbm, n_runs=args.runs, random_state=args.seed,
                            n_jobs=args.n_jobs)
    t_fwd = time.perf_counter() - begin
    begin = time.perf_counter()
    rev = log_partition_reverse_ais(rbm, X_test, n_runs=args.runs, random_state=args.seed,
                                    n_jobs=args.n_jobs)
    t_rev = time.perf_counter() - begin
    return {
        "upper": neg_f - fwd.log_z, "upper_lo": neg_f - fwd.upper, "upper_hi": neg_f - fwd.lower,
        "lower": neg_f - rev.log_z, "lower_lo": neg_f - rev.upper, "lower_hi": neg_f - rev.lower,
        "log_z": fwd.log_z, "log_z_rev": rev.log_z, "sd_log_w": float(np.std(fwd.log_weights)),
        "ais_seconds": t_fwd, "reverse_seconds": t_rev,
    }


def check_base_model(X_train, args, results):
    """The issue's AIS check: uniform base, default base, reverse, three seeds."""
    if "check" not in results:
        path = os.path.join(args.checkpoint, "rbm-check.joblib") if args.checkpoint else None
        rbm = load(path)
        if rbm is None:
            rbm = BernoulliRBM(200, learning_rate=0.05, batch_size=100, n_iter=20,
                               momentum="schedule", random_state=0, n_jobs=args.n_jobs)
            rbm.fit(X_train[:10000])
            if path:
                joblib.dump(rbm, path)
        uniform = np.full((1, X_train.shape[1]), 0.5)
        rows = []
        for seed in range(args.check_seeds):
            for base, kwargs in (("uniform", dict(X=uniform)), ("default", {})):
                est = log_partition_ais(rbm, n_runs=args.runs, random_state=seed,
                                        n_jobs=args.n_jobs, **kwargs)
                rows.append(["forward, " + base, seed, est.log_z, est.lower, est.upper,
                             float(np.std(est.log_weights))])
            est = log_partition_reverse_ais(rbm, X_train[:10000], n_runs=args.runs,
                                            random_state=seed, n_jobs=args.n_jobs)
            rows.append(["reverse, from data", seed, est.log_z, est.lower, est.upper,
                         float(np.std(est.log_weights))])
        results["check"] = rows
    print("\nAIS check: log Z of a 784 x 200 RBM (CD-1, 20 epochs) on 10 000 binarised "
          f"training digits, {args.runs} runs, 14 501 temperatures")
    print(f"  {'estimate':<20} {'seed':>4} {'log Z':>9} {'±3 s.e. interval':>22} "
          f"{'sd log w':>8}")
    for name, seed, log_z, lo, hi, sd in results["check"]:
        print(f"  {name:<20} {seed:>4} {log_z:9.2f} {f'({lo:.2f}, {hi:.2f})':>22} {sd:8.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--algorithms", default="pcd,pcd-centred,cd25",
                        help=f"comma-separated, among {', '.join(ALGORITHMS)}")
    parser.add_argument("--minutes", type=float, default=30,
                        help="training budget of each algorithm (wall time)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--checkpoint", metavar="DIR", default=None)
    parser.add_argument("--check", action="store_true",
                        help="also run the AIS base-model check")
    parser.add_argument("--check-seeds", type=int, default=3,
                        help="seeds of the AIS check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()

    X_train, _, X_test, _ = load_mnist(args.data)
    X_train, X_test = binarise(X_train, 0), binarise(X_test, 1)
    results = {}
    res_path = os.path.join(args.checkpoint, "results.json") if args.checkpoint else None
    if args.checkpoint:
        os.makedirs(args.checkpoint, exist_ok=True)
        if os.path.exists(res_path):
            with open(res_path) as f:
                results = json.load(f)

    def save():
        if res_path:
            with open(res_path, "w") as f:
                json.dump(results, f, indent=1)

    names = [name for name in args.algorithms.split(",") if name]
    for name in names:
        if name not in ALGORITHMS:
            parser.error(f"unknown algorithm {name!r}; choose among {', '.join(ALGORITHMS)}")
        key = f"{name}-{args.minutes:g}min"
        if key in results:
            continue
        rbm, seconds = train(name, X_train, args)
        result = estimates(rbm, X_test, args)
        result.update(epochs=rbm.n_iter_, train_seconds=seconds,
                      train_ll_upper=float(log_likelihood(rbm, X_train, result["log_z"])))
        results[key] = result
        save()
        print(f"{name}: {result}", flush=True)
    if args.check:
        check_base_model(X_train, args, results)
        save()

    if not names:
        return
    print(f"\nRBM with 500 hidden units on binarised MNIST, batch 100, momentum 0.5 then "
          f"0.9, learning rate decayed linearly to 0 over {args.minutes:g} min of "
          f"training; AIS with {args.runs} runs and 14 501 temperatures")
    print(f"  {'algorithm':<12} {'epochs':>6} {'train min':>9} {'test LL, forward AIS':>30} "
          f"{'test LL, reverse AIS':>30} {'AIS s':>6}")
    for name in names:
        r = results[f"{name}-{args.minutes:g}min"]
        fwd = f"{r['upper']:.2f} ({r['upper_lo']:.2f}, {r['upper_hi']:.2f})"
        rev = f"{r['lower']:.2f} ({r['lower_lo']:.2f}, {r['lower_hi']:.2f})"
        print(f"  {name:<12} {r['epochs']:>6} {r['train_seconds'] / 60:9.1f} {fwd:>30} "
              f"{rev:>30} {r['ais_seconds'] + r['reverse_seconds']:6.0f}")
    print(f"  Paper (Salakhutdinov & Murray 2008, CD-25): {PAPER}; PyDeep's centred "
          "PCD-1: -84.86")


if __name__ == "__main__":
    main()
