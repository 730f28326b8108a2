"""DistributedFit over a shaped network: one network namespace per worker (root only).

Each worker runs in its own network namespace, joined to the coordinator's
by a veth link into a bridge; every link is shaped with
``tc qdisc ... tbf rate 840mbit``, the 105 MB/s network of the report's
measurements (§4.4; this kernel has no netem, so no added delay). The
workers reach each other and the coordinator only through those links.

Printed for K = 2 and 4 workers (one thread each) and both strategies: the
steady-state epoch time, and the speed-up over one single-threaded process,
next to the report's claim that with binary units doubling the machines
nearly doubles the speed. On a machine with fewer cores than workers the
workers share the cores, and the speed-up is bounded by the core count
instead.

Usage (as root): ``python benchmarks/bench_netns.py [--repeats N]``. The
namespaces, links and bridge are removed at the end, also after an error.
"""

import argparse
import os
import secrets
import subprocess
import sys

import numpy as np

from _timing import best_time
from skdbn import BernoulliRBM, DistributedFit

PREFIX, SUBNET, PORT = "skdbn", "10.77.0", 7787
SHAPE = ["tbf", "rate", "840mbit", "burst", "64kb", "latency", "50ms"]


def sh(*args, check=True):
    subprocess.run(args, check=check, stderr=subprocess.DEVNULL if not check else None)


def set_up(K):
    sh("ip", "link", "add", f"{PREFIX}-br", "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", f"{PREFIX}-br")
    sh("ip", "link", "set", f"{PREFIX}-br", "up")
    for i in range(K):
        ns, host_end, ns_end = f"{PREFIX}-w{i}", f"{PREFIX}-v{i}", f"{PREFIX}-p{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        sh("ip", "link", "set", ns_end, "netns", ns)
        sh("ip", "link", "set", host_end, "master", f"{PREFIX}-br", "up")
        sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{10 + i}/24", "dev", ns_end)
        sh("ip", "-n", ns, "link", "set", ns_end, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # Both directions of every link at 105 MB/s.
        sh("tc", "qdisc", "add", "dev", host_end, "root", *SHAPE)
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", ns_end, "root", *SHAPE)


def tear_down(K):
    for i in range(K):
        sh("ip", "netns", "del", f"{PREFIX}-w{i}", check=False)
        sh("ip", "link", "del", f"{PREFIX}-v{i}", check=False)
    sh("ip", "link", "del", f"{PREFIX}-br", check=False)


def epoch_time(make, X, repeats):
    one = best_time(lambda: make(1).fit(X), repeats)
    two = best_time(lambda: make(2).fit(X), repeats)
    return two - one


def distributed_epoch(K, strategy, params, X, repeats):
    key = secrets.token_bytes(32)
    env = dict(os.environ, SKDBN_AUTHKEY=key.hex())
    workers = [subprocess.Popen(
        ["ip", "netns", "exec", f"{PREFIX}-w{i}", "sh", "-c",
         f"sleep 1; exec {sys.executable} -m skdbn.distributed worker "
         f"--connect {SUBNET}.1:{PORT}"], env=env) for i in range(K)]
    try:
        with DistributedFit(hosts=[f"{SUBNET}.{10 + i}" for i in range(K)],
                            address=f"{SUBNET}.1:{PORT}", authkey=key,
                            strategy=strategy, n_jobs=1):
            return epoch_time(lambda n: BernoulliRBM(n_iter=n, **params), X, repeats)
    finally:
        for w in workers:
            w.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_netns.py creates network namespaces: run it as root.")
    V, H, m, n = 2000, 5000, 100, 2000
    X = (np.random.default_rng(0).random((n, V), dtype=np.float32) < 0.3).astype(np.float32)
    params = dict(n_components=H, batch_size=m, learning_rate=0.01, persistent=False,
                  sampled_statistics=True, random_state=0)
    single = epoch_time(lambda n_iter: BernoulliRBM(n_iter=n_iter, n_jobs=1, **params), X,
                        args.repeats)
    print(f"Binary RBM {V} x {H}, minibatch {m}, {n} examples, links shaped at 840 Mbit/s, "
          f"{os.cpu_count()} cores")
    print(f"  {'run':34s} {'epoch s':>8s} {'speed-up':>9s}")
    print(f"  {'1 process, 1 thread':34s} {single:8.2f} {1.0:9.2f}")
    for K in (2, 4):
        try:
            set_up(K)
            for strategy in ("replicated", "partitioned"):
                seconds = distributed_epoch(K, strategy, params, X, args.repeats)
                print(f"  {f'{K} workers, {strategy}':34s} {seconds:8.2f} "
                      f"{single / seconds:9.2f}")
        finally:
            tear_down(K)
    print("Report §4.4 (binary units): doubling the machines nearly doubles the speed; "
          f"here the {os.cpu_count()} cores bound the speed-up.")


if __name__ == "__main__":
    main()
