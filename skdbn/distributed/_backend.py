"""DistributedFit: the coordinator of model-parallel RBM training."""

# SPDX-License-Identifier: BSD-3-Clause

import contextvars
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
import os
import secrets
import socket
import subprocess
import sys
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Listener

import numpy as np

from ._transport import Channel, accept
from ._worker import blocks

_ACTIVE = contextvars.ContextVar("skdbn_distributed_backend", default=None)


def active_backend():
    """The DistributedFit of the innermost ``with`` block, or None."""
    return _ACTIVE.get()


# -- what coordinator and workers exchange about a fit ----------------------
# The model state a worker starts from, and the slices it returns.
STATE_NAMES = ("components_", "_components_inc", "intercept_visible_", "_visible_inc",
               "intercept_hidden_", "_hidden_inc", "_sigma", "h_samples_")
SLICE_NAMES = ("components_", "_components_inc", "intercept_visible_", "_visible_inc",
               "intercept_hidden_", "_hidden_inc", "h_samples_")


def job_header(backend, rbm, X, n_epochs):
    """The small description of a fit sent to every worker."""
    job = {"cls": type(rbm).__name__, "params": rbm.get_params(),
           "strategy": backend.strategy, "sync_every": int(backend.sync_every),
           "n_threads": int(backend.n_threads), "n_epochs": int(n_epochs),
           "seed": rbm._seed, "n_iter": rbm.n_iter_, "shape": X.shape,
           "dtype": np.dtype(X.dtype).str, "memmap": None}
    mapped = _whole_memmap(X)
    if mapped is not None:
        # Each host maps the same file instead of receiving the data.
        job["memmap"] = (mapped.filename, X.dtype.str, X.shape, int(mapped.offset))
    return job


def _whole_memmap(X):
    """The file-backed np.memmap X is a full view of, or None.

    Validation turns a memmap into a plain ndarray view of it; the memmap
    is found again through ``base``, and used only if X covers it exactly.
    """
    a = X
    while isinstance(a, np.ndarray) and not isinstance(a, np.memmap):
        a = a.base
    if (isinstance(a, np.memmap) and getattr(a, "filename", None)
            and a.shape == X.shape and a.dtype == X.dtype and X.flags.c_contiguous
            and a.__array_interface__["data"][0] == X.__array_interface__["data"][0]):
        return a
    return None


def model_state(rbm):
    return [getattr(rbm, name) for name in STATE_NAMES]


def record_epoch(backend, rbm, epoch, error, n_workers, begin):
    """Book-keeping of one distributed epoch on the coordinator's estimator."""
    rbm.reconstruction_errors_.append(error)
    rbm.n_iter_ += 1
    if not np.isfinite(error):
        rbm._diverged(epoch)
    if backend.verbose or rbm.verbose:
        print(f"[{type(rbm).__name__}] Iteration {rbm.n_iter_}, "
              f"reconstruction error = {error:.4f}, "
              f"time = {time.perf_counter() - begin:.2f}s ({n_workers} workers)")
    return time.perf_counter()


def assemble(rbm, rank, n_workers, slices):
    """Write worker ``rank``'s canonical slices into the estimator."""
    n_hid, n_vis = rbm.components_.shape
    hb, vb = blocks(n_hid, n_workers), blocks(n_vis, n_workers)
    vs, hs = slice(vb[rank], vb[rank + 1]), slice(hb[rank], hb[rank + 1])
    parts = dict(zip(SLICE_NAMES, slices))
    rbm.components_[:, vs] = parts["components_"]
    rbm._components_inc[:, vs] = parts["_components_inc"]
    rbm.intercept_visible_[vs] = parts["intercept_visible_"]
    rbm._visible_inc[vs] = parts["_visible_inc"]
    rbm.intercept_hidden_[hs] = parts["intercept_hidden_"]
    rbm._hidden_inc[hs] = parts["_hidden_inc"]
    if rank == 0:
        rbm.h_samples_ = parts["h_samples_"]


def load_job(job, state, X):
    """Worker side: the estimator of ``job`` with the coordinator's state,
    and its training data (mapped from the job's file when there is one)."""
    from .. import BernoulliRBM, GaussianBernoulliRBM

    cls = {"BernoulliRBM": BernoulliRBM, "GaussianBernoulliRBM": GaussianBernoulliRBM}
    rbm = cls[job["cls"]](**job["params"])
    for name, value in zip(STATE_NAMES, state):
        setattr(rbm, name, value)
    rbm._seed, rbm.n_iter_ = job["seed"], job["n_iter"]
    if job["memmap"] is not None:
        filename, dtype, shape, offset = job["memmap"]
        X = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset,
                      shape=tuple(shape))
    return rbm, X


def data_slice(job, X, rank, n_workers):
    """The columns of X a worker trains on: all, or its own block."""
    if job["strategy"] == "replicated" or job["memmap"] is None:
        return X
    vb = blocks(X.shape[1], n_workers)
    return X[:, vb[rank]:vb[rank + 1]]


class DistributedFit:
    """Train skdbn RBMs across processes or machines (report chapter 4).

    Each of ``n_workers`` workers owns 1/K of the hidden and 1/K of the
    visible units, computes their activities for the whole minibatch and
    all-gathers them (binary activities as bits), three times per CD-1 step
    (report §4.2). The workers run the same Cython kernels as single-process
    training on their slices of the weights, and the random numbers follow
    the global unit index: with binary units and ``sampled_statistics=True``
    the fitted model is bit-identical to single-process training.

    Use it around any fit — every skdbn RBM fitted inside the block,
    including inside a Pipeline or a DBNTransformer, trains distributed — or
    call :meth:`fit` directly.

    Parameters
    ----------
    n_workers : int, default=2
        Number of workers K (with ``transport="mpi"``: None or the number of
        MPI processes).
    transport : {"socket", "mpi"}, default="socket"
        ``"socket"``: an authenticated TCP mesh (``multiprocessing.connection``
        handshake, then raw sockets with ``TCP_NODELAY``), workers started
        locally or joining from ``hosts``. ``"mpi"``: run the script under
        ``mpiexec -n K python script.py`` (``pip install "skdbn[mpi]"``);
        rank 0 runs the script and is worker 0, the other ranks become
        workers when the backend starts and exit when it closes, so code
        after the ``with`` block runs on rank 0 only.
    hosts : list of str, default=None
        Socket transport on several machines: the host names (or addresses)
        of the machines whose workers will join, one worker per entry. Start
        ``python -m skdbn.distributed worker --connect HOST:PORT`` on each,
        with the authkey in the ``SKDBN_AUTHKEY`` environment variable
        (hex). None starts ``n_workers`` local workers on loopback.
    address : str, default=None
        ``"HOST:PORT"`` the coordinator listens on. None means loopback and
        a free port (local workers), or all interfaces and port 7787
        (``hosts``).
    authkey : bytes, default=None
        Shared secret of every connection; None draws a random one (local
        workers only).
    strategy : {"replicated", "partitioned"}, default="replicated"
        ``"replicated"`` is the algorithm of report §4.2: each worker has
        the whole data and the "green" and "purple" weights, the weights
        known to two workers are updated on both and re-synchronised every
        ``sync_every`` examples. ``"partitioned"`` is the §4.5 variant: each
        worker holds only its 1/K of the data dimensions and of the weights,
        and the workers exchange partial hidden inputs (floats) instead.
    sync_every : int, default=8000
        Examples between weight synchronisations (``"replicated"``).
    n_threads : int, default=1
        Kernel threads in each worker.
    timeout : float, default=60.0
        Seconds to wait for workers to connect, and for a worker's message
        before the fit is declared hung.
    verbose : int, default=0
        Print the workers' progress per epoch.

    Attributes
    ----------
    bytes_sent_ : list of int
        Bytes each worker sent to its peers during the last fit (payload and
        frame headers; socket transport).
    n_minibatches_ : int
        Minibatches of the last fit.

    See Also
    --------
    skdbn.BernoulliRBM, skdbn.GaussianBernoulliRBM : The estimators it trains.

    Examples
    --------
    >>> import numpy as np
    >>> from skdbn import BernoulliRBM, DistributedFit
    >>> X = (np.random.RandomState(0).uniform(size=(200, 16)) < 0.3).astype(np.float32)
    >>> rbm = BernoulliRBM(n_components=8, n_iter=2, random_state=0)
    >>> with DistributedFit(n_workers=2):
    ...     rbm = rbm.fit(X)
    >>> rbm.components_.shape
    (8, 16)
    """

    def __init__(self, n_workers=2, *, transport="socket", hosts=None, address=None,
                 authkey=None, strategy="replicated", sync_every=8000, n_threads=1,
                 timeout=60.0, verbose=0):
        self.n_workers = n_workers
        self.transport = transport
        self.hosts = hosts
        self.address = address
        self.authkey = authkey
        self.strategy = strategy
        self.sync_every = sync_every
        self.n_threads = n_threads
        self.timeout = timeout
        self.verbose = verbose
        self._workers = None
        self._tokens = []

    # -- life cycle --------------------------------------------------------
    def _check_params(self):
        if self.transport not in ("socket", "mpi"):
            raise ValueError(f"transport must be 'socket' or 'mpi', got {self.transport!r}.")
        if self.strategy not in ("replicated", "partitioned"):
            raise ValueError(
                f"strategy must be 'replicated' or 'partitioned', got {self.strategy!r}.")
        if (self.transport == "socket" and int(self.n_workers) < 1) or \
                int(self.sync_every) < 1 or int(self.n_threads) < 1:
            raise ValueError("n_workers, sync_every and n_threads must be positive.")

    def __enter__(self):
        self._check_params()
        self.start()
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(self, *exc):
        _ACTIVE.reset(self._tokens.pop())
        self.close()
        return False

    def start(self):
        """Start (or wait for) the workers and connect them into a mesh."""
        if self._workers is not None:
            return
        self._check_params()
        if self.transport == "mpi":
            from ._mpi import MPIWorkers

            self._workers = MPIWorkers(self)
        else:
            self._workers = _SocketWorkers(self)

    def close(self):
        """Stop the workers."""
        if self._workers is not None:
            workers, self._workers = self._workers, None
            workers.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- training ------------------------------------------------------------
    def fit(self, rbm, X, y=None):
        """Fit ``rbm`` on ``X`` with the workers; returns the fitted ``rbm``.

        Parameters
        ----------
        rbm : BernoulliRBM or GaussianBernoulliRBM
            The estimator; its parameters and ``random_state`` apply.
        X : array-like of shape (n_samples, n_features)
            Training data. A ``np.memmap`` is not sent: each worker maps the
            same file (it must be at the same path on every host).
        y : None
            Ignored.

        Returns
        -------
        rbm : estimator
            The fitted estimator, an ordinary single-process object.
        """
        started = self._workers is None
        token = _ACTIVE.set(self)
        try:
            self.start()
            return rbm.fit(X)
        finally:
            _ACTIVE.reset(token)
            if started:
                self.close()

    def run_epochs(self, rbm, X, n_epochs):
        """Called by an RBM's epoch loop inside a ``with`` block."""
        if rbm.sparsity_cost > 0 or rbm._learn_sigma():
            raise ValueError(
                "DistributedFit does not support sparsity_cost > 0 or sigma='learn'; "
                "fit this RBM in a single process.")
        if hasattr(X, "toarray"):
            X = X.toarray()
        self.start()
        try:
            return self._workers.run(self, rbm, X, n_epochs)
        except BaseException:
            # The workers' state is unknown after a failure: the next fit
            # starts new ones.
            self.close()
            raise


def _resolve(host):
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise OSError(f"DistributedFit: cannot resolve the worker host {host!r}: {exc}") \
            from None


class _SocketWorkers:
    """Local or remote workers joined over TCP, and the fits they run."""

    def __init__(self, backend):
        self.backend = backend
        self.procs = []
        self.conns = []
        local = backend.hosts is None
        n = int(backend.n_workers) if local else len(backend.hosts)
        key = backend.authkey
        if key is None:
            if not local:
                raise ValueError("hosts=... needs an authkey shared with the remote workers.")
            key = secrets.token_bytes(32)
        self.authkey = key
        host, port = ("127.0.0.1", 0) if local else ("0.0.0.0", 7787)
        if backend.address is not None:
            host, _, p = backend.address.rpartition(":")
            port = int(p)
        try:
            self.listener = Listener((host, port), authkey=key, backlog=max(n, 1))
        except OSError as exc:
            raise OSError(f"DistributedFit cannot listen on {host}:{port}: {exc.strerror}. "
                          "Choose another address or free the port.") from exc
        try:
            if local:
                env = dict(os.environ, SKDBN_AUTHKEY=key.hex())
                addr = "%s:%d" % self.listener.address
                for _ in range(n):
                    self.procs.append(subprocess.Popen(
                        [sys.executable, "-m", "skdbn.distributed", "worker",
                         "--connect", addr, "--parent", str(os.getpid())], env=env))
            self._accept(n)
            addresses = [conn.recv() for conn in self.conns]
            for rank, conn in enumerate(self.conns):
                conn.send(("mesh", rank, n, [a[1] for a in addresses]))
            self._expect_all("ready")
        except BaseException:
            self.close()
            raise

    def _accept(self, n):
        # With hosts: one worker from each entry, from no other address.
        expected = None if self.backend.hosts is None else Counter(
            _resolve(host) for host in self.backend.hosts)
        while len(self.conns) < n:
            try:
                conn = accept(self.listener, self.backend.timeout)
            except socket.timeout:
                raise TimeoutError(
                    f"DistributedFit: only {len(self.conns)} of {n} workers connected "
                    f"within {self.backend.timeout} s.") from None
            except AuthenticationError:
                # A peer with the wrong authkey: refused, keep waiting.
                continue
            peer = self.listener.last_accepted[0]
            if expected is not None:
                if expected[peer] == 0:
                    conn.close()
                    continue
                expected[peer] -= 1
            self.conns.append(Channel(conn))
            self._check_procs()

    def _check_procs(self):
        for proc in self.procs:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"DistributedFit: worker process {proc.pid} exited with code {code}; "
                    "the fit was aborted.")

    def _recv(self, rank):
        """Next message of worker ``rank``; fails fast if any worker dies.

        A worker that dies is seen here through its process (local workers)
        or through the error its peers report when their links to it close.
        """
        conn = self.conns[rank]
        deadline = time.monotonic() + self.backend.timeout
        while not conn.poll(0.2):
            self._check_procs()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"DistributedFit: worker {rank} sent nothing for {self.backend.timeout} s.")
        try:
            message = conn.recv()
        except (EOFError, OSError):
            raise RuntimeError(
                f"DistributedFit: worker {rank} closed its connection (it died); the fit "
                "was aborted.") from None
        if message[0] == "error":
            raise RuntimeError(f"DistributedFit: worker {rank} failed:\n{message[1]}")
        return message

    def _expect_all(self, kind):
        for rank in range(len(self.conns)):
            message = self._recv(rank)
            if message[0] != kind:
                raise RuntimeError(f"DistributedFit: worker {rank} sent {message[0]!r}, "
                                   f"expected {kind!r}.")

    def run(self, backend, rbm, X, n_epochs):
        n = len(self.conns)
        vb = blocks(X.shape[1], n)
        job = job_header(backend, rbm, X, n_epochs)

        def send_job(rank):
            conn = self.conns[rank]
            conn.send(("job", job))
            for a in model_state(rbm):
                conn.send_array(a)
            if job["memmap"] is None:
                conn.send_array(X if backend.strategy == "replicated"
                                else X[:, vb[rank]:vb[rank + 1]])

        # One thread per worker: the transfers overlap.
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(send_job, range(n)))
        begin = time.perf_counter()
        for epoch in range(n_epochs):
            progress = [self._recv(rank) for rank in range(n)]
            error = sum(p[2] for p in progress) / progress[0][3]
            begin = record_epoch(backend, rbm, epoch, error, n, begin)
        sent = []
        for rank, conn in enumerate(self.conns):
            _, bytes_sent, n_minibatches = self._recv(rank)
            sent.append(bytes_sent)
            assemble(rbm, rank, n, [conn.recv_array() for _ in SLICE_NAMES])
        backend.bytes_sent_, backend.n_minibatches_ = sent, n_minibatches
        if not rbm._parameters_finite():
            rbm._diverged(rbm.n_iter_ - 1)
        return rbm

    def close(self):
        for conn in self.conns:
            try:
                conn.send(("stop",))
                conn.close()
            except (OSError, ValueError):
                pass
        self.conns = []
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        listener, self.listener = getattr(self, "listener", None), None
        if listener is not None:
            listener.close()

