"""DistributedFit under faults: rogue clients on the coordinator's port,
stopped, killed and failing workers, bad parameters and command lines, and
the TLS mode. Every connection stays on loopback; every wait is bounded."""

import os
import pickle
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skdbn import BernoulliRBM, DistributedFit, GaussianBernoulliRBM
from skdbn.distributed import _main, _transport
from skdbn.distributed._worker import Trainer
from test_distributed import _alive

KEY = b"skdbn fault-suite key"


def binary_data(n=120, d=12, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return (rng.uniform(size=(n, d)) < 0.3).astype(dtype)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(port, deadline=5.0):
    """A TCP connection to the coordinator, once it listens."""
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def _wait_listening(port, deadline=10.0):
    """Wait (without connecting) until something listens on ``port``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        if any(row[1].endswith(":%04X" % port) and row[3] == "0A" for row in rows):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port}")


def _state(rbm):
    """Everything a fit may change, copied."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else
                list(v) if isinstance(v, list) else v) for k, v in vars(rbm).items()}


def assert_same_state(rbm, before):
    after = vars(rbm)
    assert after.keys() == before.keys()
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            assert_array_equal(after[name], value, err_msg=name)
            assert after[name].dtype == value.dtype
        else:
            assert after[name] == value, name


class _Coordinator:
    """``DistributedFit(hosts=[loopback] * n).start()`` on a thread, with
    workers run in this process (threads) by :meth:`add_worker`."""

    def __init__(self, n=1, timeout=5.0, **kwargs):
        self.port = _free_port()
        self.backend = DistributedFit(hosts=["127.0.0.1"] * n, authkey=KEY,
                                      address=f"127.0.0.1:{self.port}", timeout=timeout,
                                      **kwargs)
        self.result, self.workers = {}, []
        self.thread = threading.Thread(target=self._start, daemon=True)
        self.thread.start()

    def _start(self):
        begin = time.monotonic()
        try:
            self.backend.start()
            self.result["ok"] = time.monotonic() - begin
        except Exception as exc:  # reported by the test
            self.result["error"] = exc

    def add_worker(self, key=KEY):
        # A worker that finds no coordinator gives up at once.
        _wait_listening(self.port)
        codes = []
        thread = threading.Thread(target=lambda: codes.append(
            _main.worker(("127.0.0.1", self.port), key)), daemon=True)
        thread.start()
        self.workers.append((thread, codes))
        return codes

    def join(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return self.result

    def close(self):
        self.backend.close()
        for thread, _ in self.workers:
            thread.join(10)
            assert not thread.is_alive()


class _Boom:
    """Unpickling this creates the file ``path``: evidence that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _authenticated(port):
    sock = _connect(port)
    _transport.client_handshake(sock, KEY, time.monotonic() + 5)
    return sock


def _frame(kind, payload):
    return _transport.FRAME.pack(_transport.MAGIC, _transport.PROTOCOL_VERSION, kind,
                                 len(payload)) + payload


def _rogue_silent(port, marker):
    return _connect(port)  # and says nothing


def _rogue_close(port, marker):
    _connect(port).close()


def _rogue_reset(port, marker):
    sock = _connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _rogue_garbage(port, marker):
    sock = _connect(port)
    sock.sendall(b"\xff" * 64)
    return sock


def _rogue_wrong_key(port, marker):
    sock = _connect(port)
    with pytest.raises(_transport.AuthenticationError):
        _transport.client_handshake(sock, b"not the key, but long enough", 
                                    time.monotonic() + 5)
    return sock


def _rogue_other_version(port, marker):
    sock = _connect(port)
    sock.sendall(b"SKDBNHS\x00" + bytes(32))
    return sock


def _rogue_pickle(port, marker):
    # What multiprocessing.connection would send: a length and a pickle.
    sock = _authenticated(port)
    payload = pickle.dumps(_Boom(marker))
    sock.sendall(struct.pack("!i", len(payload)) + payload)
    return sock


def _rogue_pickle_in_frame(port, marker):
    sock = _authenticated(port)
    sock.sendall(_frame(_transport.KIND_JSON, pickle.dumps(_Boom(marker))))
    return sock


def _rogue_huge_frame(port, marker):
    sock = _authenticated(port)
    sock.sendall(_transport.FRAME.pack(_transport.MAGIC, _transport.PROTOCOL_VERSION,
                                       _transport.KIND_JSON, 2**62))
    return sock


def _rogue_bad_hello(port, marker):
    sock = _authenticated(port)
    sock.sendall(_frame(_transport.KIND_JSON, b'["hello", "me"]'))
    return sock


ROGUES = {
    "silent": (_rogue_silent, None),
    "connect-and-close": (_rogue_close, "closed during the handshake"),
    "reset": (_rogue_reset, "dropped a connection"),
    "64 bytes of 0xff": (_rogue_garbage, "does not speak the skdbn protocol"),
    "wrong authkey": (_rogue_wrong_key, "wrong authkey"),
    "other protocol version": (_rogue_other_version, "protocol version 0"),
    "pickle after the handshake": (_rogue_pickle, "not an skdbn frame"),
    "pickle in a message frame": (_rogue_pickle_in_frame, "malformed message"),
    "frame of 2**62 bytes": (_rogue_huge_frame, "exceeds the limit"),
    "malformed hello": (_rogue_bad_hello, "expected a worker's hello"),
}


@pytest.mark.parametrize("rogue", ROGUES)
def test_rogue_client_is_dropped_and_the_fit_goes_on(rogue, caplog, tmp_path):
    act, logged = ROGUES[rogue]
    marker = str(tmp_path / "code-ran")
    coordinator = _Coordinator(timeout=4)
    try:
        with caplog.at_level("WARNING", logger="skdbn.distributed"):
            held = act(coordinator.port, marker)
            time.sleep(0.2)  # the rogue is first in line
            coordinator.add_worker()
            result = coordinator.join()
        # The real worker joined without waiting for the rogue's deadline.
        assert "ok" in result, result
        assert result["ok"] < 3
        if logged is not None:
            messages = " ".join(r.getMessage() for r in caplog.records)
            assert "dropped a connection from 127.0.0.1" in messages
            assert logged in messages
        if held is not None:
            # The rogue's connection was closed (at the latest when start ended).
            held.settimeout(5)
            try:
                while held.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            held.close()
        X = binary_data()
        params = dict(n_components=6, n_iter=2, batch_size=20, sampled_statistics=True,
                      random_state=0, n_jobs=1)
        rbm = coordinator.backend.fit(BernoulliRBM(**params), X)
        assert_array_equal(rbm.components_, BernoulliRBM(**params).fit(X).components_)
    finally:
        coordinator.close()
    assert not os.path.exists(marker)


def _fake_worker(port, marker, failure):
    """Joins as a worker, then answers the job with ``failure``."""
    sock = _authenticated(port)
    channel = _transport.Channel(sock, 5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        channel.send(["hello", ["127.0.0.1", listener.getsockname()[1]]])
        assert channel.recv()[0] == "mesh"
        channel.send(["ready"])
        assert channel.recv()[0] == "job"
        if failure == "pickle":
            payload = pickle.dumps(_Boom(marker))
            sock.sendall(struct.pack("!i", len(payload)) + payload)
        elif failure == "wrong shape":
            # Drain the job, report a finished epoch and a result, then
            # send a slice of the wrong shape.
            channel.sock.settimeout(1)
            try:
                while channel.sock.recv(1 << 20):
                    pass
            except socket.timeout:
                pass
            channel.send(["epoch", 0, 1.0, 120])
            channel.send(["result", 0, 6, True])
            channel.send_array(np.zeros((3, 3)))
        time.sleep(1)


@pytest.mark.parametrize("failure", ["pickle", "wrong shape"])
def test_authenticated_worker_sending_garbage_aborts_the_fit_and_runs_nothing(failure,
                                                                              tmp_path):
    marker = str(tmp_path / "code-ran")
    coordinator = _Coordinator(timeout=5)
    fake = threading.Thread(target=_fake_worker, args=(coordinator.port, marker, failure),
                            daemon=True)
    fake.start()
    try:
        assert "ok" in coordinator.join()
        X = binary_data()
        rbm = BernoulliRBM(n_components=6, n_iter=1, batch_size=20, random_state=0).fit(X)
        before = _state(rbm)
        with coordinator.backend:
            with pytest.raises(RuntimeError, match="malformed message|expected an array"):
                rbm.partial_fit(X)
        assert_same_state(rbm, before)
    finally:
        coordinator.close()
        fake.join(10)
    assert not os.path.exists(marker)


def test_worker_refuses_a_pickle_from_its_coordinator(tmp_path):
    # The worker trusts its coordinator's key, not its bytes.
    marker = str(tmp_path / "code-ran")
    listener = _transport.Listener(("127.0.0.1", 0), backlog=1)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(
        _main.worker(listener.address, KEY)), daemon=True)
    thread.start()
    sock, _ = listener.accept(10)
    _transport.server_handshake(sock, KEY, time.monotonic() + 5)
    channel = _transport.Channel(sock, 5)
    assert channel.recv()[0] == "hello"
    payload = pickle.dumps(_Boom(marker))
    sock.sendall(struct.pack("!i", len(payload)) + payload)
    thread.join(10)
    assert codes == [1]
    assert not os.path.exists(marker)
    sock.close()
    listener.close()


# -- faults during a fit: the estimator stays as it was -----------------------
@pytest.mark.parametrize("rank, step", [(0, 1), (1, 4)])
@pytest.mark.parametrize("call", ["partial_fit of a fitted model", "fit of a fitted model",
                                  "fit of a new model"])
def test_fault_in_the_nth_minibatch_leaves_the_estimator_as_it_was(monkeypatch, rank, step,
                                                                   call):
    # The coordinator writes nothing before every worker has succeeded; a
    # fit's own initialisation is undone by the estimator's atomic fit.
    step_method = Trainer.step
    calls = {}

    def faulty(self, v, key, momentum):
        calls[self.mesh.rank] = calls.get(self.mesh.rank, 0) + 1
        if self.mesh.rank == rank and calls[rank] == step:
            raise RuntimeError("injected fault")
        return step_method(self, v, key, momentum)

    X = binary_data()
    rbm = BernoulliRBM(n_components=6, n_iter=2, batch_size=20, random_state=0)
    if "fitted" in call:
        rbm.fit(X)
    before = _state(rbm)
    coordinator = _Coordinator(n=2, timeout=5)
    monkeypatch.setattr(Trainer, "step", faulty)
    try:
        coordinator.add_worker()
        coordinator.add_worker()
        assert "ok" in coordinator.join()
        with coordinator.backend:
            # The failing worker's traceback, or a peer's report of its exit.
            with pytest.raises(RuntimeError, match="DistributedFit: worker [01] "):
                getattr(rbm, call.split()[0])(X)
        assert calls[rank] == step
        assert_same_state(rbm, before)
    finally:
        coordinator.close()


def test_divergence_raises_with_a_hint_and_leaves_the_estimator_as_it_was():
    X = np.random.RandomState(0).normal(size=(200, 10)).astype(np.float32)
    with DistributedFit(n_workers=2):
        rbm = GaussianBernoulliRBM(n_components=50, learning_rate=0.001, n_iter=1,
                                   random_state=0).fit(X)
        rbm.set_params(learning_rate=10.0)
        with pytest.raises(FloatingPointError, match="smaller learning_rate"):
            for _ in range(20):
                before = _state(rbm)
                rbm.partial_fit(X)
        assert_same_state(rbm, before)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP])
def test_worker_killed_or_stopped_mid_fit_leaves_the_estimator_as_it_was(monkeypatch,
                                                                         signum):
    # Killed: seen at once through the process and the sockets. Stopped:
    # nothing arrives, and the fit gives up after `timeout` seconds.
    from skdbn.distributed import _backend

    X = binary_data(n=6000, d=200, dtype=np.float32)
    rbm = BernoulliRBM(n_components=200, n_iter=1, batch_size=10, random_state=0)
    rbm.fit(X[:100])
    before = _state(rbm)
    backend = DistributedFit(n_workers=2, timeout=2)
    recv = _backend._SocketWorkers._recv
    hit = []

    def recv_and_strike(self, rank, *args):
        # The job is out and the workers are in their first epoch.
        if not hit:
            hit.append(time.monotonic())
            os.kill(self.procs[1].pid, signum)
        return recv(self, rank, *args)

    with backend:
        pids = [p.pid for p in backend._workers.procs]
        monkeypatch.setattr(_backend._SocketWorkers, "_recv", recv_and_strike)
        with pytest.raises((RuntimeError, TimeoutError), match="worker"):
            rbm.partial_fit(X)
        assert time.monotonic() - hit[0] < 6
    assert_same_state(rbm, before)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def test_stopped_worker_times_out_the_sending_of_the_data():
    # 16 MB of X cannot fit in the socket buffers of a stopped worker.
    X = binary_data(n=2000, d=1000, dtype=np.float64)
    rbm = BernoulliRBM(n_components=4, n_iter=1, batch_size=500, random_state=0)
    rbm.fit(X[:50])
    before = _state(rbm)
    backend = DistributedFit(n_workers=2, timeout=1.5)
    with backend:
        pid = backend._workers.procs[0].pid
        os.kill(pid, signal.SIGSTOP)
        begin = time.monotonic()
        with pytest.raises(TimeoutError, match="accepted no data for 1.5 s"):
            rbm.partial_fit(X)
        assert time.monotonic() - begin < 6
    assert_same_state(rbm, before)
    assert not _alive(pid)


# -- start-up --------------------------------------------------------------------
def test_local_worker_dying_at_start_is_reported_at_once_with_its_stderr(monkeypatch,
                                                                         tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'worker cannot start: no skdbn here' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*no skdbn here"):
        DistributedFit(n_workers=2, timeout=30).start()
    assert time.monotonic() - begin < 1.5


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(authkey=b""), ValueError, "at least 16"),
    (dict(authkey=b"short"), ValueError, "token_bytes"),
    (dict(authkey="a string key, long enough"), TypeError, "must be bytes"),
    (dict(timeout=-1), ValueError, "timeout must be a positive"),
    (dict(timeout=0), ValueError, "timeout must be a positive"),
    (dict(timeout=float("nan")), ValueError, "timeout must be a positive"),
    (dict(timeout="5"), ValueError, "timeout must be a positive"),
    (dict(n_workers=0), ValueError, "n_workers must be a positive"),
    (dict(n_workers=1.5), ValueError, "n_workers must be a positive"),
    (dict(n_jobs=0), ValueError, "n_jobs must be"),
    (dict(address="localhost"), ValueError, "HOST:PORT"),
    (dict(hosts=["127.0.0.1"]), ValueError, "needs an authkey"),
    (dict(hosts="node1", authkey=KEY), ValueError, "list of host names"),
    (dict(ssl_context=ssl.create_default_context()), ValueError, "other machines"),
    (dict(hosts=["127.0.0.1"], authkey=KEY, ssl_context="tls"), TypeError, "SSLContext"),
])
def test_bad_parameters_are_refused_before_any_socket_or_worker(monkeypatch, kwargs, error,
                                                                match):
    def no_process(*args, **kw):
        raise AssertionError("a worker was started")

    def no_socket(*args, **kw):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(_transport.socket, "create_server", no_socket)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(error, match=match):
            with DistributedFit(**kwargs):
                pass


def test_n_threads_is_deprecated_for_n_jobs():
    from skdbn.distributed._backend import job_header

    X = binary_data()
    params = dict(n_components=6, n_iter=1, batch_size=20, sampled_statistics=True,
                  random_state=0, n_jobs=1)
    old = DistributedFit(n_workers=2, n_threads=2)
    with pytest.warns(FutureWarning, match="use n_jobs"):
        rbm = old.fit(BernoulliRBM(**params), X)
    assert_array_equal(rbm.components_, BernoulliRBM(**params).fit(X).components_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert job_header(DistributedFit(n_jobs=2), rbm, X, 1)["n_jobs"] == 2
    assert job_header(old, rbm, X, 1)["n_jobs"] == 2
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="n_jobs"):
        DistributedFit(n_threads=0).start()


# -- the worker's command line ---------------------------------------------------
@pytest.mark.parametrize("connect, key, match", [
    ("no-port-here", KEY.hex(), "--connect: expected HOST:PORT"),
    ("127.0.0.1:http", KEY.hex(), "--connect: expected HOST:PORT"),
    ("127.0.0.1:99999", KEY.hex(), "--connect: expected HOST:PORT"),
    ("127.0.0.1:0", KEY.hex(), "the port must be the coordinator's"),
    ("127.0.0.1:7787", "not hex", "must be the authkey in hexadecimal"),
    ("127.0.0.1:7787", "", "set SKDBN_AUTHKEY"),
    ("127.0.0.1:7787", "abcd", "at least 16"),
])
def test_worker_command_line_errors_are_one_line(monkeypatch, capsys, connect, key, match):
    monkeypatch.setenv("SKDBN_AUTHKEY", key)
    with pytest.raises(SystemExit) as exit_info:
        _main.main(["worker", "--connect", connect])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_sigint_to_the_workers_group_prints_no_traceback():
    coordinator = _Coordinator(n=1, timeout=20)
    env = dict(os.environ, SKDBN_AUTHKEY=KEY.hex())
    _wait_listening(coordinator.port)
    # The worker as started from a terminal, SIGINT at its default: a suite
    # run in the background ignores SIGINT, the child would inherit that,
    # and Python installs no KeyboardInterrupt handler for an ignored signal.
    worker = subprocess.Popen(
        [sys.executable, "-m", "skdbn.distributed", "worker", "--connect",
         f"127.0.0.1:{coordinator.port}"], env=env, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert "ok" in coordinator.join(timeout=30)
        os.killpg(worker.pid, signal.SIGINT)
        _, err = worker.communicate(timeout=10)
        assert worker.returncode == 130
        assert "interrupted" in err and "Traceback" not in err
        # The coordinator sees the worker gone at the next fit.
        with pytest.raises(RuntimeError, match="worker 0"):
            coordinator.backend.fit(BernoulliRBM(n_components=4, n_iter=1), binary_data())
    finally:
        coordinator.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()


# -- TLS ---------------------------------------------------------------------------
def _certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, made for this test."""
    openssl = shutil.which("openssl")
    assert openssl, "the TLS test needs the openssl command"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=skdbn-test", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True,
                   timeout=30)
    return cert, key


def test_tls_mode_trains_bit_identically_and_drops_plain_clients(tmp_path, caplog):
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    coordinator = _Coordinator(n=2, timeout=20, ssl_context=context)
    env = dict(os.environ, SKDBN_AUTHKEY=KEY.hex())
    command = [sys.executable, "-m", "skdbn.distributed", "worker", "--connect",
               f"127.0.0.1:{coordinator.port}"]
    tls = ["--tls-cafile", str(cert), "--tls-certfile", str(cert), "--tls-keyfile", str(key)]
    workers = []
    _wait_listening(coordinator.port)
    try:
        with caplog.at_level("WARNING", logger="skdbn.distributed"):
            # A worker without TLS cannot join, and says why.
            plain = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=30)
            assert plain.returncode == 2 and "--tls options" in plain.stderr
            workers = [subprocess.Popen(command + tls, env=env, stderr=subprocess.PIPE,
                                        text=True) for _ in range(2)]
            assert "ok" in coordinator.join(timeout=30), coordinator.result
        assert "dropped a connection from 127.0.0.1" in caplog.text
        assert all(isinstance(c.sock, ssl.SSLSocket)
                   for c in coordinator.backend._workers.conns)
        X = binary_data(n=200, d=20)
        params = dict(n_components=10, n_iter=2, batch_size=40, sampled_statistics=True,
                      random_state=0, n_jobs=1)
        rbm = coordinator.backend.fit(BernoulliRBM(**params), X)
        assert_array_equal(rbm.components_, BernoulliRBM(**params).fit(X).components_)
    finally:
        coordinator.close()
        for worker in workers:
            _, err = worker.communicate(timeout=10)
            assert worker.returncode == 0, err
