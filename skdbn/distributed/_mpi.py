"""The MPI transport: ``mpiexec -n K python script.py``.

Every rank runs the script; rank 0 is the coordinator and worker 0, the
other ranks turn into workers when the script starts a
``DistributedFit(transport="mpi")`` and exit when rank 0 closes it.
Collectives go through mpi4py's buffer interface (no pickling of arrays).
"""

# SPDX-License-Identifier: BSD-3-Clause

import sys
import time
import traceback

import numpy as np
from threadpoolctl import threadpool_limits

from .._state import softmax_groups_array
from ._backend import (
    chain_rows,
    commit_epochs,
    job_visible_blocks,
    data_arrays,
    data_from_arrays,
    data_slice,
    job_header,
    load_job,
    record_epoch,
    worker_threads,
)
from ._worker import Trainer


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            "transport='mpi' needs mpi4py and an MPI library: pip install 'skdbn[mpi]', "
            "then run the script with mpiexec -n K python script.py") from exc
    return MPI


class MPIMesh:
    """The collectives of :class:`~skdbn.distributed._transport.SocketMesh` over MPI.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        Communicator of the workers.
    """

    def __init__(self, comm):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.bytes_sent = 0

    def _counts(self, n):
        counts = np.empty(self.size, np.int64)
        self.comm.Allgather(np.array([n], np.int64), counts)
        return counts

    def allgather(self, payload, tag):
        MPI = _mpi()
        payload = np.ascontiguousarray(payload).view(np.uint8)
        counts = self._counts(payload.nbytes)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        recv = np.empty(int(counts.sum()), np.uint8)
        self.comm.Allgatherv([payload, MPI.BYTE], [recv, counts, displs, MPI.BYTE])
        self.bytes_sent += (self.size - 1) * payload.nbytes
        return {p: recv[displs[p]:displs[p] + counts[p]]
                for p in range(self.size) if p != self.rank}

    def exchange(self, outgoing, tag):
        MPI = _mpi()
        sizes = np.zeros(self.size, np.int64)
        for peer, payload in outgoing.items():
            sizes[peer] = payload.nbytes
        incoming = np.empty(self.size, np.int64)
        self.comm.Alltoall(sizes, incoming)
        empty = np.empty(0, np.uint8)
        send = np.concatenate([outgoing.get(p, empty).view(np.uint8).ravel()
                               for p in range(self.size)])
        recv = np.empty(int(incoming.sum()), np.uint8)
        send_off = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        recv_off = np.concatenate([[0], np.cumsum(incoming)[:-1]])
        self.comm.Alltoallv([send, sizes, send_off, MPI.BYTE],
                            [recv, incoming, recv_off, MPI.BYTE])
        self.bytes_sent += int(sizes.sum())
        return {p: recv[recv_off[p]:recv_off[p] + incoming[p]]
                for p in range(self.size) if p != self.rank}

    def release(self, peer, buf):
        pass

    def close(self):
        pass


def _send_sparse(comm, X, job, size):
    """Root: each rank's data as CSR arrays (see _receive_job); returns the
    root's own."""
    if job["strategy"] == "replicated":
        arrays = data_arrays(X, job, 0, size)
        comm.bcast([(a.size, a.dtype.str) for a in arrays], root=0)
        for a in arrays:
            comm.Bcast(np.ascontiguousarray(a), root=0)
        return X
    for r in range(1, size):
        arrays = [np.ascontiguousarray(a) for a in data_arrays(X, job, r, size)]
        comm.send([(a.size, a.dtype.str) for a in arrays], dest=r)
        for a in arrays:
            comm.Send(a, dest=r)
    return data_from_arrays(job, data_arrays(X, job, 0, size), 0, size)


def _bcast_array(comm, a):
    comm.Bcast(a, root=0)
    return a


def _train(comm, job, state, X):
    """Every rank's part of one fit; returns (trainer, bytes sent)."""
    mesh = MPIMesh(comm)
    rbm, state, X = load_job(job, state, X)
    X = data_slice(job, X, mesh.rank, mesh.size)
    trainer = Trainer(mesh, rbm, state, X, job["strategy"], job["sync_every"],
                      worker_threads(job["n_jobs"]))
    errors = []

    def report(epoch, error, rows):
        total = comm.reduce(error, root=0)
        errors.append(None if total is None else total / rows)

    with threadpool_limits(limits=1, user_api="blas"):
        trainer.run_epochs(job["n_epochs"], report)
    return trainer, mesh.bytes_sent, errors


def _receive_job(comm):
    """Non-root ranks: the next job's header, state and data (None: stop)."""
    job = comm.bcast(None, root=0)
    if job is None:
        return None, None, None
    shapes = comm.bcast(None, root=0)
    state = [_bcast_array(comm, np.empty(shape, np.dtype(dtype))) for shape, dtype in shapes]
    X = None
    if job["memmap"] is None and job.get("sparse"):
        # The CSR arrays of this rank's data: their lengths, then the arrays.
        replicated = job["strategy"] == "replicated"
        lengths = comm.bcast(None, root=0) if replicated else comm.recv(source=0)
        arrays = [np.empty(n, np.dtype(dtype)) for n, dtype in lengths]
        for a in arrays:
            if replicated:
                comm.Bcast(a, root=0)
            else:
                comm.Recv(a, source=0)
        X = data_from_arrays(job, arrays, comm.Get_rank(), comm.Get_size())
    elif job["memmap"] is None:
        if job["strategy"] == "replicated":
            X = _bcast_array(comm, np.empty(job["shape"], np.dtype(job["dtype"])))
        else:
            vb = job_visible_blocks(job, comm.Get_size())
            r = comm.Get_rank()
            X = np.empty((job["shape"][0], vb[r + 1] - vb[r]), np.dtype(job["dtype"]))
            comm.Recv(X, source=0)
    return job, state, X


def serve(comm):
    """Worker loop of the ranks other than 0; exits the process at the end."""
    try:
        while True:
            job, state, X = _receive_job(comm)
            if job is None:
                break
            trainer, sent, _ = _train(comm, job, state, X)
            comm.gather(sent, root=0)
            for array in trainer.blocks():
                comm.Send(np.ascontiguousarray(array), dest=0)
    except BaseException:
        print(f"skdbn MPI worker {comm.Get_rank()} failed:\n{traceback.format_exc()}",
              file=sys.stderr, flush=True)
        comm.Abort(1)
    sys.exit(0)


class MPIWorkers:
    """Rank 0's view of the MPI workers."""

    def __init__(self, backend):
        MPI = _mpi()
        self.comm = MPI.COMM_WORLD
        size = self.comm.Get_size()
        if backend.n_workers not in (None, size):
            raise ValueError(
                f"n_workers={backend.n_workers} but mpiexec started {size} processes; "
                "use n_workers=None with transport='mpi'.")
        if self.comm.Get_rank() != 0:
            serve(self.comm)

    def run(self, backend, rbm, X, n_epochs):
        comm, size = self.comm, self.comm.Get_size()
        job = job_header(backend, rbm, X, n_epochs)
        state = [np.ascontiguousarray(a) for a in rbm.state_.wire_arrays(rbm.visible_means_)]
        try:
            comm.bcast(job, root=0)
            comm.bcast([(a.shape, a.dtype.str) for a in state], root=0)
            for a in state:
                comm.Bcast(a, root=0)
            X_own = X
            if job["sparse"]:
                X_own = _send_sparse(comm, X, job, size)
            elif job["memmap"] is None:
                if job["strategy"] == "replicated":
                    X_own = np.ascontiguousarray(X)
                    comm.Bcast(X_own, root=0)
                else:
                    vb = job_visible_blocks(job, size)
                    for r in range(1, size):
                        comm.Send(np.ascontiguousarray(X[:, vb[r]:vb[r + 1]]), dest=r)
                    X_own = np.ascontiguousarray(X[:, vb[0]:vb[1]])
            begin = time.perf_counter()
            trainer, sent, errors = _train(comm, job, [a.copy() for a in state], X_own)
            recorded = []
            for error in errors:
                begin = record_epoch(backend, rbm, recorded, error, size, begin)
            backend.bytes_sent_ = comm.gather(sent, root=0)
            backend.n_minibatches_ = trainer.n_steps
            rows, groups = chain_rows(rbm, X), softmax_groups_array(rbm)
            rbm.state_.set_blocks(0, size, trainer.blocks(), groups)
            for r in range(1, size):
                slices = []
                for shape in rbm.state_.block_shapes(r, size, rows, groups):
                    buf = np.empty(shape, rbm.components_.dtype)
                    comm.Recv(buf, source=r)
                    slices.append(buf)
                rbm.state_.set_blocks(r, size, slices, groups)
            commit_epochs(rbm, recorded)
        except BaseException:
            print(f"skdbn MPI coordinator failed:\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
            comm.Abort(1)
        if rbm.state_.divergence() is not None:
            rbm._diverged(rbm.n_iter_ - 1)
        return rbm

    def close(self, **kwargs):
        self.comm.bcast(None, root=0)
