"""DistributedFit: the coordinator of model-parallel RBM training."""

# SPDX-License-Identifier: BSD-3-Clause

import contextvars
import math
import numbers
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ._transport import Gate, Listener, PeerError, check_authkey, split_address
from .._state import RBMState, softmax_groups_array, visible_blocks

_ACTIVE = contextvars.ContextVar("skdbn_distributed_backend", default=None)


def active_backend():
    """The DistributedFit of the innermost ``with`` block, or None."""
    return _ACTIVE.get()


# -- what coordinator and workers exchange about a fit ----------------------
# The model state a worker starts from is RBMState.wire_arrays(); it returns
# its blocks of RBMState.BLOCKS.

# Parameters a worker does not need: the seed, the model's dtype and sigma
# reach it as state (the seed, the arrays, sigma).
_STATE_PARAMS = ("random_state", "dtype", "sigma")


def _job_params(rbm):
    """The estimator's parameters as JSON values (the wire carries no pickles)."""
    params = {}
    for name, value in rbm.get_params().items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            params[name] = value
        elif name == "softmax_groups":
            params[name] = softmax_groups_array(rbm).tolist()
        elif name not in _STATE_PARAMS:
            raise TypeError(f"DistributedFit cannot send {type(rbm).__name__}'s parameter "
                            f"{name}={value!r} to its workers: use a number or a string.")
    return params


def job_header(backend, rbm, X, n_epochs):
    """The small description of a fit sent to every worker (JSON values)."""
    job = {"cls": type(rbm).__name__, "params": _job_params(rbm),
           "strategy": backend.strategy, "sync_every": int(backend.sync_every),
           "n_jobs": backend._n_jobs(), "n_epochs": int(n_epochs),
           "seed": int(rbm.state_.seed), "n_iter": int(rbm.n_iter_), "shape": list(X.shape),
           "dtype": np.dtype(X.dtype).str, "memmap": None, "sparse": bool(sp.issparse(X))}
    mapped = None if sp.issparse(X) else _whole_memmap(X)
    if mapped is not None:
        # Each host maps the same file instead of receiving the data.
        job["memmap"] = [os.fspath(mapped.filename), X.dtype.str, list(X.shape),
                         int(mapped.offset)]
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


def record_epoch(backend, rbm, errors, error, n_workers, begin):
    """Book-keeping of one distributed epoch: ``errors`` collects the
    reconstruction errors; the estimator changes only in :func:`commit`."""
    errors.append(error)
    if not np.isfinite(error):
        rbm._diverged(rbm.n_iter_ + len(errors) - 1)
    if backend.verbose or rbm.verbose:
        print(f"[{type(rbm).__name__}] Iteration {rbm.n_iter_ + len(errors)}, "
              f"reconstruction error = {error:.4f}, "
              f"time = {time.perf_counter() - begin:.2f}s ({n_workers} workers)")
    return time.perf_counter()


def chain_rows(rbm, X):
    """Rows of the chains the workers return: the model's, grown to a
    minibatch if that is larger (``RBMState.buffers``)."""
    return max(rbm.h_samples_.shape[0], min(rbm.batch_size, X.shape[0]))


def commit_epochs(rbm, errors):
    """The epochs' book-keeping, once the fit has succeeded."""
    rbm.reconstruction_errors_.extend(errors)
    rbm.n_iter_ += len(errors)


def load_job(job, arrays, X):
    """Worker side: the estimator of ``job`` (its parameters and epoch count),
    the coordinator's state rebuilt from ``arrays``, and the training data
    (mapped from the job's file when there is one)."""
    from .. import BernoulliRBM, GaussianBernoulliRBM

    cls = {"BernoulliRBM": BernoulliRBM, "GaussianBernoulliRBM": GaussianBernoulliRBM}
    rbm = cls[job["cls"]](**job["params"])
    rbm.n_iter_ = job["n_iter"]
    state, rbm.visible_means_ = RBMState.from_wire(arrays, job["seed"])
    if job["memmap"] is not None:
        filename, dtype, shape, offset = job["memmap"]
        X = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset,
                      shape=tuple(shape))
    return rbm, state, X


def job_visible_blocks(job, n_workers):
    """The bounds of the workers' visible blocks for ``job``, as both sides
    compute them (``skdbn._state.visible_blocks``)."""
    groups = job["params"].get("softmax_groups") if "params" in job else None
    return visible_blocks(job["shape"][1], n_workers, groups)


def data_arrays(X, job, rank, n_workers):
    """The arrays that carry worker ``rank``'s data: all columns of X or its
    own block; a sparse X as its CSR arrays (data, indices, indptr)."""
    if job["strategy"] != "replicated":
        vb = job_visible_blocks(job, n_workers)
        X = X[:, vb[rank]:vb[rank + 1]]
    if not sp.issparse(X):
        return [X]
    X = sp.csr_matrix(X)
    return [X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)]


def data_from_arrays(job, arrays, rank, n_workers):
    """Worker side: the data of :func:`data_arrays`, a CSR matrix rebuilt and
    checked (indices within its columns) when the job is sparse."""
    if not job.get("sparse"):
        return arrays[0]
    n_rows, n_cols = job["shape"]
    if job["strategy"] != "replicated":
        vb = job_visible_blocks(job, n_workers)
        n_cols = vb[rank + 1] - vb[rank]
    X = sp.csr_matrix(tuple(arrays), shape=(n_rows, n_cols))
    X.check_format(full_check=True)
    return X


def worker_threads(n_jobs):
    """Kernel threads of a worker for the job's ``n_jobs`` (-1: its own cores)."""
    from ..utils._compat import _openmp_effective_n_threads

    return _openmp_effective_n_threads(int(n_jobs), only_physical_cores=False)


def data_slice(job, X, rank, n_workers):
    """The columns of X a worker trains on: all, or its own block."""
    if job["strategy"] == "replicated" or job["memmap"] is None:
        return X
    vb = job_visible_blocks(job, n_workers)
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
        ``"socket"``: an authenticated TCP mesh (HMAC challenge on the
        authkey, then raw sockets with ``TCP_NODELAY``; TLS with
        ``ssl_context``), workers started locally or joining from ``hosts``.
        ``"mpi"``: run the script under ``mpiexec -n K python script.py``
        (``pip install "skdbn[mpi]"``); rank 0 runs the script and is worker
        0, the other ranks become workers when the backend starts and exit
        when it closes, so code after the ``with`` block runs on rank 0 only.
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
        Shared secret of every connection, at least 16 random bytes
        (``secrets.token_bytes(32)``); None draws one (local workers only).
    strategy : {"replicated", "partitioned"}, default="replicated"
        ``"replicated"`` is the algorithm of report §4.2: each worker has
        the whole data and the "green" and "purple" weights, the weights
        known to two workers are updated on both and re-synchronised every
        ``sync_every`` examples. ``"partitioned"`` is the §4.5 variant: each
        worker holds only its 1/K of the data dimensions and of the weights,
        and the workers exchange partial hidden inputs (floats) instead.
    sync_every : int, default=8000
        Examples between weight synchronisations (``"replicated"``).
    n_jobs : int, default=1
        Kernel threads in each worker; -1 uses all the worker's cores.
    timeout : float, default=60.0
        Seconds to wait for the workers to connect (local workers get 30 s
        more to start, and one that exits is reported at once); the
        deadline of each handshake; and how long any send or receive may go
        without progress (a worker's message included) before the fit is
        declared hung.
    ssl_context : ssl.SSLContext, default=None
        Server-side TLS context (``ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH)`` with ``load_cert_chain``) for workers on
        other machines (``hosts``): every connection, the workers' mesh
        included, is then encrypted. Start the workers with ``--tls-cafile``,
        ``--tls-certfile`` and ``--tls-keyfile`` (see :ref:`distributed`).
    verbose : int, default=0
        Print the workers' progress per epoch.
    n_threads : int, default="deprecated"
        Former name of ``n_jobs``.

        .. deprecated:: 0.1
           ``n_threads`` was renamed ``n_jobs`` in 0.1 and will be removed
           in 0.3.

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
                 authkey=None, strategy="replicated", sync_every=8000, n_jobs=1,
                 timeout=60.0, ssl_context=None, verbose=0, n_threads="deprecated"):
        self.n_workers = n_workers
        self.transport = transport
        self.hosts = hosts
        self.address = address
        self.authkey = authkey
        self.strategy = strategy
        self.sync_every = sync_every
        self.n_jobs = n_jobs
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.verbose = verbose
        self.n_threads = n_threads
        self._workers = None
        self._tokens = []

    # -- life cycle --------------------------------------------------------
    def _n_jobs(self, warn=False):
        """Kernel threads per worker (-1: the worker's cores); checks n_threads."""
        if self.n_threads != "deprecated":
            if warn:
                warnings.warn("DistributedFit(n_threads=...) is deprecated since 0.1 and "
                              "will be removed in 0.3; use n_jobs=... (the name "
                              "scikit-learn uses).",
                              FutureWarning, stacklevel=4)
            n_jobs = self.n_threads
        else:
            n_jobs = 1 if self.n_jobs is None else self.n_jobs
        if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or \
                not (n_jobs >= 1 or n_jobs == -1):
            raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}.")
        return int(n_jobs)

    def _check_params(self):
        """Validate everything before a socket is opened or a worker started."""
        if self.transport not in ("socket", "mpi"):
            raise ValueError(f"transport must be 'socket' or 'mpi', got {self.transport!r}.")
        if self.strategy not in ("replicated", "partitioned"):
            raise ValueError(
                f"strategy must be 'replicated' or 'partitioned', got {self.strategy!r}.")
        for name in ("sync_every",) + (("n_workers",) if self.transport == "socket"
                                        and self.hosts is None else ()):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) \
                    or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self._n_jobs(warn=True)
        timeout = self.timeout
        if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool) or \
                not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        if self.authkey is not None:
            check_authkey(self.authkey)
        if self.transport == "mpi":
            return
        if self.hosts is not None:
            if isinstance(self.hosts, str) or not len(self.hosts) or not all(
                    isinstance(h, str) and h for h in self.hosts):
                raise ValueError("hosts must be a non-empty list of host names, "
                                 f"got {self.hosts!r}.")
            if self.authkey is None:
                raise ValueError("hosts=... needs an authkey shared with the remote workers, "
                                 "e.g. secrets.token_bytes(32).")
        if self.address is not None:
            split_address(self.address)
        if self.ssl_context is not None:
            if not isinstance(self.ssl_context, ssl.SSLContext):
                raise TypeError("ssl_context must be an ssl.SSLContext, got "
                                f"{type(self.ssl_context).__name__}.")
            if self.hosts is None:
                raise ValueError("ssl_context is for workers on other machines (hosts=...); "
                                 "local workers talk over loopback.")

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
        self._close()

    def _close(self, **kwargs):
        if self._workers is not None:
            workers, self._workers = self._workers, None
            workers.close(**kwargs)

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
        self._check_params()
        token = _ACTIVE.set(self)
        try:
            # The workers start when the estimator's epochs do, after its
            # own validation: a bad parameter or X costs no process.
            return rbm.fit(X)
        finally:
            _ACTIVE.reset(token)
            if started:
                self.close()

    def run_epochs(self, rbm, X, n_epochs):
        """Called by an RBM's epoch loop inside a ``with`` block."""
        if sp.issparse(X):
            X = sp.csr_matrix(X)  # travels as its CSR arrays, never dense
        self.start()
        try:
            return self._workers.run(self, rbm, X, n_epochs)
        except BaseException:
            # The workers' state is unknown after a failure: the next fit
            # starts new ones.
            self._close(grace=0.5)
            raise


def _resolve(host):
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise OSError(f"DistributedFit: cannot resolve the worker host {host!r}: {exc}") \
            from None


# Seconds local workers get, on top of the timeout, to start.
_LOCAL_START_SECONDS = 30.0


# The command of a local worker (it reads the authkey from SKDBN_AUTHKEY).
def _worker_command(address):
    return [sys.executable, "-m", "skdbn.distributed", "worker", "--connect", address,
            "--parent", str(os.getpid())]


def _read_hello(channel):
    """A joining worker's first message: the address its peers reach it on."""
    message = channel.recv()
    if len(message) == 2 and message[0] == "hello" and isinstance(message[1], list) \
            and len(message[1]) == 2 and isinstance(message[1][0], str) \
            and type(message[1][1]) is int and 0 < message[1][1] < 65536:
        return message[1]
    raise PeerError(f"expected a worker's hello, got {str(message)[:80]}")


class _SocketWorkers:
    """Local or remote workers joined over TCP, and the fits they run."""

    def __init__(self, backend):
        self.backend = backend
        self.procs, self.logs, self.conns = [], [], []
        self.timeout = float(backend.timeout)
        local = backend.hosts is None
        n = int(backend.n_workers) if local else len(backend.hosts)
        key = backend.authkey
        self.authkey = secrets.token_bytes(32) if key is None else bytes(key)
        if backend.address is not None:
            host, port = split_address(backend.address)
        else:
            host, port = ("127.0.0.1", 0) if local else ("0.0.0.0", 7787)
        expected = None if local else Counter(_resolve(h) for h in backend.hosts)
        try:
            self.listener = Listener((host, port), backlog=max(n, 16))
        except OSError as exc:
            raise OSError(f"DistributedFit cannot listen on {host}:{port}: {exc.strerror}. "
                          "Choose another address or free the port.") from exc
        gate = None
        try:
            if local:
                env = dict(os.environ, SKDBN_AUTHKEY=self.authkey.hex())
                address = "%s:%d" % self.listener.address
                for _ in range(n):
                    # stderr to a file: shown if the worker dies, and never
                    # a full pipe that blocks it.
                    log = tempfile.TemporaryFile()
                    self.logs.append(log)
                    self.procs.append(subprocess.Popen(_worker_command(address), env=env,
                                                       stderr=log))

            def admit(peer):
                # With hosts: one worker from each entry, from no other address.
                if expected is not None and expected[peer] == 0:
                    return "not one of the expected hosts (or all its workers joined)"
                return None

            gate = Gate(self.listener, self.authkey, self.timeout, greet=_read_hello,
                        admit=admit, ssl_context=backend.ssl_context)
            # Local workers get time to start Python and import skdbn on a
            # busy machine; if one dies, _check_procs says so at once.
            wait = self.timeout + (_LOCAL_START_SECONDS if local else 0)
            deadline = time.monotonic() + wait
            addresses = []
            while len(self.conns) < n:
                try:
                    conn, hello, peer = gate.next(deadline, check=self._check_procs,
                                                  what="worker")
                except TimeoutError:
                    raise TimeoutError(
                        f"DistributedFit: only {len(self.conns)} of {n} workers connected "
                        f"within {wait:g} s.") from None
                if expected is not None:
                    if expected[peer[0]] == 0:
                        conn.close()
                        continue
                    expected[peer[0]] -= 1
                self.conns.append(conn)
                addresses.append(hello)
            # Everyone is here: nobody else may join.
            gate.close()
            self.listener.close()
            for rank, conn in enumerate(self.conns):
                conn.send(["mesh", rank, n, addresses, self.timeout])
            self._expect_all("ready")
        except BaseException:
            if gate is not None:
                gate.close()
            self.close(grace=0)
            raise

    def _stderr(self, i):
        log = self.logs[i]
        log.seek(0)
        text = log.read()[-4000:].decode("utf-8", "replace").strip()
        return f"; its stderr:\n{text}" if text else " (nothing on its stderr)"

    def _check_procs(self):
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"DistributedFit: worker process {proc.pid} exited with code {code}; "
                    f"the fit was aborted{self._stderr(i)}")

    def _died(self, rank, what):
        # A local worker's exit status and stderr say more than the socket.
        end = time.monotonic() + 1
        while self.procs and time.monotonic() < end:
            self._check_procs()
            time.sleep(0.05)
        return RuntimeError(f"DistributedFit: worker {rank} {what}; the fit was aborted.")

    def _recv(self, rank, shape=None, dtype=None):
        """Next message (or array) of worker ``rank``; fails fast if any
        worker dies, and after ``timeout`` seconds without progress.

        A worker that dies is seen here through its process (local workers)
        or through the error its peers report when their links to it close.
        """
        conn = self.conns[rank]
        deadline = time.monotonic() + self.timeout
        while not conn.readable(0.2):
            self._check_procs()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"DistributedFit: worker {rank} sent nothing for {self.timeout} s "
                    "(stopped or hung?); the fit was aborted.")
        try:
            if shape is not None:
                return conn.recv_array(shape, dtype)
            message = conn.recv()
        except socket.timeout:
            raise TimeoutError(f"DistributedFit: worker {rank} stalled for {self.timeout} s "
                               "in the middle of a message; the fit was aborted.") from None
        except (EOFError, OSError):
            raise self._died(rank, "closed its connection (it died)") from None
        except PeerError as exc:
            raise RuntimeError(f"DistributedFit: worker {rank} sent a malformed message "
                               f"({exc}); the fit was aborted.") from None
        if message[0] == "error":
            detail = message[1] if len(message) > 1 and isinstance(message[1], str) else ""
            raise RuntimeError(f"DistributedFit: worker {rank} failed:\n{detail}")
        return message

    def _expect(self, rank, kind, length):
        message = self._recv(rank)
        if message[0] != kind or len(message) != length:
            raise RuntimeError(f"DistributedFit: worker {rank} sent {str(message)[:80]}, "
                               f"expected {kind!r}; the fit was aborted.")
        return message

    def _expect_all(self, kind):
        for rank in range(len(self.conns)):
            self._expect(rank, kind, 1)

    def run(self, backend, rbm, X, n_epochs):
        n = len(self.conns)
        job = job_header(backend, rbm, X, n_epochs)
        state = rbm.state_.wire_arrays(rbm.visible_means_)

        def send_job(rank):
            conn = self.conns[rank]
            try:
                conn.send(["job", job])
                for a in state:
                    conn.send_array(a)
                if job["memmap"] is None:
                    for a in data_arrays(X, job, rank, n):
                        conn.send_array(a)
            except socket.timeout:
                raise TimeoutError(
                    f"DistributedFit: worker {rank} accepted no data for {self.timeout} s "
                    "(stopped or hung?); the fit was aborted.") from None
            except OSError:
                raise self._died(rank, "closed its connection (it died)") from None

        # One thread per worker: the transfers overlap.
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(send_job, range(n)))
        begin = time.perf_counter()
        errors = []
        for _ in range(n_epochs):
            progress = [self._expect(rank, "epoch", 4) for rank in range(n)]
            try:
                error = sum(float(p[2]) for p in progress) / float(progress[0][3])
            except (TypeError, ValueError, ZeroDivisionError):
                raise RuntimeError("DistributedFit: a worker sent a malformed progress "
                                   "report; the fit was aborted.") from None
            begin = record_epoch(backend, rbm, errors, error, n, begin)
        results = [self._expect(rank, "result", 4) for rank in range(n)]
        if not all(finite is True for *_, finite in results):
            # Before any weight is written: the estimator stays as it was.
            rbm._diverged(rbm.n_iter_ + n_epochs - 1)
        rows = chain_rows(rbm, X)
        groups = softmax_groups_array(rbm)
        dtype = rbm.components_.dtype
        slices = [[self._recv(rank, shape, dtype)
                   for shape in rbm.state_.block_shapes(rank, n, rows, groups)]
                  for rank in range(n)]
        for rank in range(n):
            rbm.state_.set_blocks(rank, n, slices[rank], groups)
        commit_epochs(rbm, errors)
        backend.bytes_sent_ = [int(r[1]) for r in results]
        backend.n_minibatches_ = int(results[0][2])
        if rbm.state_.divergence() is not None:
            rbm._diverged(rbm.n_iter_ - 1)
        return rbm

    def close(self, grace=5.0):
        for conn in self.conns:
            try:
                # Briefly: a stopped worker's full buffer must not hold us.
                conn.timeout = min(self.timeout, 1.0)
                conn.send(["stop"])
            except (OSError, ValueError):
                pass
            conn.close()
        self.conns = []
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()) if grace else 0.1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        for log in self.logs:
            log.close()
        self.logs = []
        listener, self.listener = getattr(self, "listener", None), None
        if listener is not None:
            listener.close()
