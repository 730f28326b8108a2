"""DistributedFit: equivalence with single-process training, communication
volume, use inside scikit-learn objects, and faults."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import scipy.sparse as sp
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skdbn import BernoulliRBM, DBNTransformer, DistributedFit, GaussianBernoulliRBM

STRATEGIES = ["replicated", "partitioned"]
KEY = b"0123456789abcdef"


@pytest.fixture(scope="module", params=[2, 3])
def backend(request):
    # One pool of workers per K, reused by every fit of the module.
    with DistributedFit(n_workers=request.param, sync_every=120) as fit:
        yield fit


def binary_data(n=240, d=30, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return (rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.6, d)).astype(dtype)


def fitted_attributes(rbm):
    return (rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_,
            rbm.h_samples_, rbm.state_.components_inc)


def assert_same_model(a, b, **tol):
    for x, y in zip(fitted_attributes(a), fitted_attributes(b)):
        if tol:
            assert_allclose(x, y, **tol)
        else:
            assert_array_equal(x, y)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    dict(),                                             # PCD-1
    dict(persistent=False, cd_k=2, momentum=0.5, weight_decay=1e-3),
    dict(persistent=False, momentum="schedule", batch_size=37),  # uneven batches
])
def test_binary_sampled_statistics_are_bit_identical(backend, strategy, dtype, options):
    # Every statistic is binary: the distributed weights equal the
    # single-process ones exactly, whatever K and the block boundaries.
    X = binary_data(dtype=dtype)
    params = dict(n_components=22, n_iter=3, batch_size=40, learning_rate=0.1,
                  sampled_statistics=True, random_state=0, n_jobs=1) | options
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = BernoulliRBM(**params).fit(X)
    assert distributed.components_.dtype == dtype
    assert_same_model(distributed, single)
    assert_allclose(distributed.reconstruction_errors_, single.reconstruction_errors_,
                    rtol=1e-6)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_probability_statistics_agree_within_rounding(backend, strategy):
    # Float statistics: the products are summed in other blocks (and, when
    # partitioned, hidden inputs across workers), so agreement is to rounding.
    X = binary_data(seed=1)
    params = dict(n_components=20, n_iter=2, batch_size=30, learning_rate=0.1,
                  persistent=False, sample_visible=False, random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    assert_same_model(BernoulliRBM(**params).fit(X), single, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("sample_visible", [False, True])
def test_gaussian_visibles_agree_after_synchronisation(backend, strategy, sample_visible):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 18)) @ rng.normal(size=(18, 18)) * 0.3
    params = dict(n_components=16, n_iter=2, batch_size=40, learning_rate=0.01,
                  sigma=rng.uniform(0.5, 2, 18), sample_visible=sample_visible,
                  momentum=0.5, random_state=0, n_jobs=1)
    single = GaussianBernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = GaussianBernoulliRBM(**params).fit(X)
    # float64: differences come from summation order only.
    assert_same_model(distributed, single, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("K", [2, 4])
def test_bytes_sent_follow_the_report_formula(K):
    # Report §4.4.1: per minibatch each worker sends its hidden activities
    # twice and its visible activities once to the K - 1 others, as bits.
    m, V, H = 200, 320, 800
    X = binary_data(n=4 * m, d=V)
    rbm = BernoulliRBM(n_components=H, n_iter=1, batch_size=m, persistent=False,
                       sampled_statistics=True, random_state=0)
    backend = DistributedFit(n_workers=K, sync_every=10**9)
    backend.fit(rbm, X)
    expected = (2 * (K - 1) * m * H / K + (K - 1) * m * V / K) / 8
    assert backend.n_minibatches_ == 4
    for sent in backend.bytes_sent_:
        per_batch = sent / backend.n_minibatches_
        assert expected <= per_batch <= 1.01 * expected


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sparse_data_travel_sparse_and_give_the_same_model(backend, strategy, monkeypatch):
    # A CSR matrix reaches the workers as its CSR arrays (never densified
    # whole: test_worker_keeps_sparse_minibatches_sparse checks the workers'
    # side) and trains the single-process sparse model: with binary
    # statistics every sum is exact, so only the partitioned strategy's sums
    # of partial hidden inputs round differently.
    X = binary_data(dtype=np.float32)
    params = dict(n_components=22, n_iter=2, batch_size=40, sampled_statistics=True,
                  persistent=False, random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(sp.csr_matrix(X))
    backend.strategy = strategy
    toarray = sp.csr_matrix.toarray

    def minibatch_only(self, *args, **kwargs):  # the coordinator's copy
        assert self.shape[0] <= params["batch_size"], "densified the whole matrix"
        return toarray(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", minibatch_only)
    distributed = BernoulliRBM(**params).fit(sp.csr_matrix(X))
    if strategy == "replicated":
        assert_same_model(distributed, single)
    else:
        assert_same_model(distributed, single, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("persistent", [False, True])
def test_worker_keeps_sparse_minibatches_sparse(strategy, persistent, monkeypatch):
    # The worker's products of the data are sparse (nothing densifies a
    # minibatch) and give the dense minibatch's updates within rounding.
    from skdbn._state import RBMState
    from skdbn._streams import minibatch_key
    from skdbn.distributed._worker import LoneMesh, Trainer

    X = binary_data(dtype=np.float32)
    rbm = BernoulliRBM(n_components=12, n_iter=1, batch_size=40, persistent=persistent,
                       momentum=0.5, random_state=0, n_jobs=1).fit(X)

    def trainer():
        arrays = [a.copy() for a in rbm.state_.wire_arrays(rbm.visible_means_)]
        state, _ = RBMState.from_wire(arrays, rbm.state_.seed)
        return Trainer(LoneMesh(), rbm, state, X, strategy, 10**9, 1)

    dense, sparse = trainer(), trainer()

    def refuse(*args, **kwargs):
        raise AssertionError("a sparse minibatch was densified")

    for i in range(4):
        batch = X[i * 40:(i + 1) * 40]
        error = dense.step(batch, minibatch_key(0, 0, i), 0.5)
        with monkeypatch.context() as m:
            for name in ("toarray", "todense", "__array__"):
                m.setattr(sp.csr_matrix, name, refuse, raising=False)
            sparse_error = sparse.step(sp.csr_matrix(batch), minibatch_key(0, 0, i), 0.5)
        assert sparse_error == pytest.approx(error, rel=1e-5)
    for a, b in zip(sparse.blocks(), dense.blocks()):
        assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(dense.P, rbm.components_)  # it learned


def test_inside_pipeline_dbn_and_partial_fit(backend):
    X = binary_data(n=200, d=24)
    y = (X[:, :3].sum(1) > 1).astype(int)
    backend.strategy = "replicated"
    pipe = make_pipeline(DBNTransformer((12, 6), n_iter=2, random_state=0, n_jobs=1),
                         LogisticRegression())
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (200,)
    rbm = BernoulliRBM(n_components=8, random_state=0)
    assert rbm.partial_fit(X[:100]) is rbm
    rbm.partial_fit(X[100:])
    assert rbm.n_iter_ == 2 and len(rbm.reconstruction_errors_) == 2


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_memory_mapped_data_is_mapped_by_the_workers(backend, strategy, tmp_path,
                                                      monkeypatch):
    # A .npy the workers can reach is mapped, not sent: only the model
    # crosses the control connections.
    from skdbn.distributed._transport import Channel

    X = binary_data(n=400, d=40, dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = dict(n_components=16, n_iter=2, batch_size=50, sampled_statistics=True,
                  random_state=0, n_jobs=1)
    backend.strategy = strategy
    sent = []
    send = Channel.send_array
    monkeypatch.setattr(Channel, "send_array", lambda self, a: (sent.append(a.shape),
                                                               send(self, a)))
    distributed = BernoulliRBM(**params).fit(mapped)
    assert sent and all(shape[0] != 400 for shape in sent)
    assert_same_model(distributed, BernoulliRBM(**params).fit(X))


def test_fit_method_starts_and_stops_workers():
    X = binary_data(n=120, d=12)
    backend = DistributedFit(n_workers=2)
    rbm = backend.fit(BernoulliRBM(n_components=6, n_iter=2, random_state=0), X)
    assert rbm.components_.shape == (6, 12)
    assert backend._workers is None


def test_divergence_is_an_error_and_the_next_fit_works():
    X = np.random.RandomState(0).normal(size=(200, 10)).astype(np.float32)
    with DistributedFit(n_workers=2) as backend:
        rbm = GaussianBernoulliRBM(n_components=50, learning_rate=10.0, n_iter=20,
                                   random_state=0)
        with pytest.raises(FloatingPointError, match="smaller learning_rate"):
            rbm.fit(X)
        assert not hasattr(rbm, "components_")
        rbm.set_params(learning_rate=0.001, n_iter=2).fit(X)
        assert np.all(np.isfinite(rbm.components_)) and backend._workers is not None


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("hidden_units", ["gaussian", "nrelu"])
def test_real_valued_hidden_units_agree_within_rounding(backend, strategy, hidden_units):
    # The workers draw the same hidden samples (real values, sent unpacked).
    X = binary_data(seed=2)
    params = dict(n_components=20, n_iter=2, batch_size=30, learning_rate=0.01,
                  persistent=False, hidden_units=hidden_units, random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    assert_same_model(BernoulliRBM(**params).fit(X), single, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("persistent", [False, True])
def test_sparsity_target_is_bit_identical_with_binary_statistics(backend, strategy,
                                                                 persistent):
    # Every worker applies the penalty of every hidden unit to the gathered
    # statistics, with the fused step's arithmetic: binary statistics sum
    # exactly, so the models are equal, running means included.
    X = binary_data(seed=3)
    params = dict(n_components=22, n_iter=3, batch_size=40, learning_rate=0.1,
                  sampled_statistics=True, persistent=persistent, sparsity_target=0.1,
                  sparsity_cost=0.5, random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = BernoulliRBM(**params).fit(X)
    assert_same_model(distributed, single)
    assert_array_equal(distributed.state_.hidden_mean, single.state_.hidden_mean)
    # The penalty did something: without it the model differs.
    plain = BernoulliRBM(**(params | dict(sparsity_cost=0.0))).fit(X)
    assert not np.allclose(plain.components_, single.components_)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("sample_visible", [False, True])
def test_learned_sigma_agrees_within_rounding(backend, strategy, sample_visible):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(240, 18)) * rng.uniform(0.5, 2, 18)
    params = dict(n_components=16, n_iter=3, batch_size=40, learning_rate=0.01,
                  sigma="learn", sigma_learning_rate=0.05, sample_visible=sample_visible,
                  momentum=0.5, random_state=0, n_jobs=1)
    single = GaussianBernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = GaussianBernoulliRBM(**params).fit(X)
    assert_same_model(distributed, single, rtol=1e-8, atol=1e-11)
    assert_allclose(distributed.sigma_, single.sigma_, rtol=1e-9)
    assert np.ptp(single.sigma_) > 0.05  # sigma moved, and not uniformly


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("persistent", [False, True])
def test_softmax_groups_are_bit_identical_with_binary_statistics(backend, strategy,
                                                                 persistent):
    # Block bounds move so that each group lives on one worker (K = 3 would
    # split (8, 14)); one-hot draws follow the group's global first column.
    rng = np.random.RandomState(4)
    X = binary_data(seed=4)
    for start, stop in ((8, 14), (24, 30)):
        X[:, start:stop] = np.eye(stop - start)[rng.randint(0, stop - start, X.shape[0])]
    params = dict(n_components=12, n_iter=3, batch_size=40, learning_rate=0.1,
                  sampled_statistics=True, persistent=persistent,
                  softmax_groups=[(8, 14), (24, 30)], random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = BernoulliRBM(**params).fit(X)
    assert_same_model(distributed, single)
    assert_allclose(distributed.reconstruction_errors_, single.reconstruction_errors_,
                    rtol=1e-6)
    samples = distributed.gibbs(X[:20])
    assert_array_equal(samples[:, 8:14].sum(axis=1), 1)


def test_visible_blocks_keep_softmax_groups_whole():
    from skdbn._state import visible_blocks

    assert visible_blocks(30, 3) == [0, 10, 20, 30]
    assert visible_blocks(30, 3, [(8, 14), (24, 30)]) == [0, 8, 20, 30]
    # Moving to the start would empty the block before: to the stop instead.
    assert visible_blocks(12, 3, [(4, 10)]) == [0, 4, 10, 12]
    assert visible_blocks(12, 3, [(0, 6)]) == [0, 6, 8, 12]
    for n, size, groups in ((30, 4, [(5, 12), (20, 29)]), (100, 7, [(0, 30), (40, 61)])):
        bounds = visible_blocks(n, size, groups)
        assert bounds == sorted(bounds) and bounds[0] == 0 and bounds[-1] == n
        assert not any(start < b < stop for start, stop in groups for b in bounds)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("persistent", [False, True])
def test_centred_gradient_agrees_within_rounding(backend, strategy, persistent):
    X = binary_data(seed=5)
    params = dict(n_components=20, n_iter=3, batch_size=40, learning_rate=0.1,
                  persistent=persistent, centering=True, momentum=0.5, random_state=0,
                  n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    backend.strategy = strategy
    distributed = BernoulliRBM(**params).fit(X)
    assert_same_model(distributed, single, rtol=1e-8, atol=1e-10)
    assert_allclose(distributed.state_.hidden_offsets, single.state_.hidden_offsets,
                    rtol=1e-10)
    # The offsets moved, and a plain fit differs: the test can fail.
    assert np.ptp(single.state_.hidden_offsets) > 1e-3
    plain = BernoulliRBM(**(params | dict(centering=False))).fit(X)
    assert not np.allclose(plain.components_, single.components_)


def test_unknown_strategy_is_refused(backend):
    X = binary_data(n=60, d=8)
    with pytest.raises(ValueError, match="strategy"):
        DistributedFit(strategy="ring").fit(BernoulliRBM(), X)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_worker_killed_mid_fit_raises_quickly_and_leaves_no_process():
    X = binary_data(n=2000, d=300, dtype=np.float32)
    backend = DistributedFit(n_workers=3)
    rbm = BernoulliRBM(n_components=400, n_iter=1000, batch_size=20, random_state=0)
    with backend:
        pids = [p.pid for p in backend._workers.procs]
        killed = []

        def kill():
            killed.append(time.monotonic())
            os.kill(pids[1], signal.SIGKILL)

        timer = threading.Timer(1.5, kill)
        timer.start()
        with pytest.raises(RuntimeError, match="worker"):
            rbm.fit(X)
        assert time.monotonic() - killed[0] < 10
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)
    assert not hasattr(rbm, "components_") or np.all(np.isfinite(rbm.components_))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_process(port, key):
    env = dict(os.environ, SKDBN_AUTHKEY=key.hex())
    return subprocess.Popen(
        [sys.executable, "-m", "skdbn.distributed", "worker", "--connect",
         f"127.0.0.1:{port}"], env=env, stderr=subprocess.PIPE, text=True)


def test_wrong_authkey_is_refused_and_the_right_one_joins():
    port = _free_port()
    backend = DistributedFit(hosts=["127.0.0.1"], address=f"127.0.0.1:{port}",
                             authkey=b"the right key, 16+ bytes", timeout=20)
    intruder = _worker_process(port, b"a wrong key of 16+ bytes")
    good = None
    try:
        result = {}

        def start():
            try:
                backend.start()
                result["ok"] = True
            except Exception as exc:  # reported below
                result["error"] = exc

        thread = threading.Thread(target=start)
        thread.start()
        _, err = intruder.communicate(timeout=20)
        assert intruder.returncode == 2 and "refused the authkey" in err
        good = _worker_process(port, b"the right key, 16+ bytes")
        thread.join(timeout=30)
        assert result == {"ok": True}
        X = binary_data(n=60, d=8)
        rbm = backend.fit(BernoulliRBM(n_components=4, n_iter=1, random_state=0), X)
        assert np.all(np.isfinite(rbm.components_))
    finally:
        backend.close()
        if good is not None:
            good.wait(timeout=10)
            assert good.returncode == 0


def test_taken_port_and_unreachable_coordinator_are_clear_errors():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="cannot listen on 127.0.0.1"):
            DistributedFit(address=f"127.0.0.1:{port}").start()
    worker = _worker_process(_free_port(), KEY)
    _, err = worker.communicate(timeout=20)
    assert worker.returncode == 2 and "cannot connect" in err


def test_no_worker_connects_is_a_timeout():
    backend = DistributedFit(hosts=["127.0.0.1"], address=f"127.0.0.1:{_free_port()}",
                             authkey=KEY, timeout=1)
    with pytest.raises(TimeoutError, match="0 of 1 workers connected"):
        backend.start()


# -- MPI transport: mpiexec -n K python script.py ---------------------------
MPI_SCRIPT = """
import sys
import numpy as np
from skdbn import BernoulliRBM, DistributedFit

X = np.load(sys.argv[1])
params = dict(n_components=22, n_iter=3, batch_size=40, learning_rate=0.1,
              sampled_statistics=True, persistent=False, cd_k=2, random_state=0, n_jobs=1)
models = {}
import scipy.sparse as sp
with DistributedFit(n_workers=None, transport="mpi") as backend:
    for strategy in ("replicated", "partitioned"):
        backend.strategy = strategy
        models[strategy] = BernoulliRBM(**params).fit(X).components_
        models[strategy + "_sparse"] = BernoulliRBM(**params).fit(sp.csr_matrix(X)).components_
# Only rank 0 gets here.
np.savez(sys.argv[2], **models, bytes_sent=backend.bytes_sent_)
"""

MPI_TCP = {"MPIR_CVAR_CH4_NETMOD": "ofi", "MPIR_CVAR_NOLOCAL": "1",
           "FI_PROVIDER": "tcp", "FI_TCP_IFACE": "lo"}


def _mpiexec(tmp_path, n, script, env=None, timeout=120):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    assert os.path.exists(mpiexec), "the tests need the mpi extra (mpi4py and mpich)"
    path = tmp_path / "script.py"
    path.write_text(script)
    X = binary_data(dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    command = ["timeout", str(timeout), mpiexec, "-n", str(n), sys.executable, str(path),
               str(tmp_path / "X.npy"), str(tmp_path / "out.npz")]
    run = subprocess.run(command, env=dict(os.environ, **(env or {})), capture_output=True,
                         text=True, timeout=timeout + 10)
    return run, X


@pytest.mark.parametrize("n, env", [(2, None), (3, None), (2, MPI_TCP)],
                         ids=["K2-shm", "K3-shm", "K2-tcp"])
def test_mpi_transport_is_bit_identical(tmp_path, n, env):
    run, X = _mpiexec(tmp_path, n, MPI_SCRIPT, env)
    assert run.returncode == 0, run.stderr
    params = dict(n_components=22, n_iter=3, batch_size=40, learning_rate=0.1,
                  sampled_statistics=True, persistent=False, cd_k=2, random_state=0, n_jobs=1)
    single = BernoulliRBM(**params).fit(X)
    # Sparse data keep their sparse products (as a single process does).
    single_sparse = BernoulliRBM(**params).fit(sp.csr_matrix(X))
    out = np.load(tmp_path / "out.npz")
    for strategy in ("replicated", "partitioned"):
        assert_array_equal(out[strategy], single.components_)
    assert_array_equal(out["replicated_sparse"], single_sparse.components_)
    assert_allclose(out["partitioned_sparse"], single_sparse.components_, rtol=1e-5,
                    atol=1e-7)
    assert len(out["bytes_sent"]) == n and np.all(out["bytes_sent"] > 0)


def test_mpi_rank_that_dies_stops_the_job(tmp_path):
    script = MPI_SCRIPT.replace(
        "with DistributedFit", "from mpi4py import MPI\n"
        "if MPI.COMM_WORLD.Get_rank() == 1:\n"
        "    import threading, os\n"
        "    threading.Timer(0.5, lambda: os._exit(9)).start()\n"
        "params.update(n_iter=10**6)\n"
        "with DistributedFit")
    begin = time.monotonic()
    run, _ = _mpiexec(tmp_path, 2, script, timeout=60)
    assert run.returncode != 0
    assert time.monotonic() - begin < 30
    assert not (tmp_path / "out.npz").exists()


def test_unknown_worker_host_is_a_clear_error():
    backend = DistributedFit(hosts=["no-such-host.invalid"], authkey=KEY,
                             address=f"127.0.0.1:{_free_port()}", timeout=1)
    with pytest.raises(OSError, match="cannot resolve the worker host"):
        backend.start()
