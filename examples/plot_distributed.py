"""
==============================================
Training one RBM with several worker processes
==============================================

:class:`skdbn.DistributedFit` splits an RBM across K workers as in chapter 4
of Krizhevsky (2009): each worker owns 1/K of the hidden and 1/K of the
visible units, computes their activities for the whole minibatch and sends
them to the others, binary activities as bits (report §4.2). Any skdbn RBM
fitted inside ``with DistributedFit(...)`` trains this way, also inside a
Pipeline or a DBNTransformer, and comes back as an ordinary estimator.

With binary units and ``sampled_statistics=True`` every statistic is a 0/1
count, so the distributed model is bit for bit the single-process one; this
example checks that, shows the filters, and counts the bytes each worker
sent against the report's formula (§4.4.1). The distributed run pays for
starting processes and for communication: it only wins on models large
enough to keep each worker busy (see ``benchmarks/bench_distributed.py``).

Several machines
----------------
On each machine, start a worker with the shared secret (at least 16
random bytes, in hex: ``python -c "import secrets; print(secrets.token_hex(32))"``)::

    SKDBN_AUTHKEY=<hex> python -m skdbn.distributed worker --connect HOST:7787

and on the machine ``HOST`` run the script with
``DistributedFit(hosts=["node1", "node2"], address="0.0.0.0:7787",
authkey=bytes.fromhex("<hex>"))``. On an untrusted network add TLS
(``ssl_context=``, and ``--tls-*`` options for the workers; see the user
guide's security section).

MPI
---
With ``pip install "skdbn[mpi]"``, write the script with
``DistributedFit(n_workers=None, transport="mpi")`` and run it as
``mpiexec -n 4 python script.py``: rank 0 runs the script, the other ranks
serve as workers until the ``with`` block ends.
"""

# %%
# Data: binarised 8x8 digits.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skdbn import BernoulliRBM, DistributedFit

X = (load_digits().data > 7).astype(np.float32)
params = dict(n_components=64, n_iter=10, learning_rate=0.05, batch_size=50,
              persistent=False, sampled_statistics=True, random_state=0)

# %%
# The same RBM in one process and with two local workers (the default
# transport: an authenticated TCP mesh on loopback).
t0 = time.perf_counter()
single = BernoulliRBM(**params).fit(X)
t1 = time.perf_counter()
with DistributedFit(n_workers=2) as backend:
    t2 = time.perf_counter()
    distributed = BernoulliRBM(**params).fit(X)
    t3 = time.perf_counter()
print(f"single process: {t1 - t0:.2f} s; two workers: {t3 - t2:.2f} s "
      "(plus the workers' start-up)")
print("identical weights:", np.array_equal(single.components_, distributed.components_))

# %%
# Bytes on the wire: per minibatch each worker sends its hidden activities
# twice and its visible activities once, as bits, to the K - 1 others; on
# top of that come 12-byte frame headers and, every ``sync_every`` = 8000
# examples, the weight synchronisation of the replicated strategy.
K, m, H, V = 2, params["batch_size"], params["n_components"], X.shape[1]
formula = (2 * (K - 1) * m * H / K + (K - 1) * m * V / K) / 8
for rank, sent in enumerate(backend.bytes_sent_):
    print(f"worker {rank}: {sent / backend.n_minibatches_:.0f} bytes per minibatch "
          f"(formula: {formula:.0f})")

# %%
# The filters learned in both ways.
fig, axes = plt.subplots(8, 16, figsize=(10, 5.4))
for i, ax in enumerate(axes.ravel()):
    model = single if i % 16 < 8 else distributed
    ax.imshow(model.components_[(i // 16) * 8 + i % 8].reshape(8, 8), cmap="gray")
    ax.set_axis_off()
fig.suptitle("Filters: one process (left) and two workers (right)")
fig.savefig("distributed_filters.png")
plt.show()
