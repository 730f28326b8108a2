"""The worker process: ``python -m skdbn.distributed worker --connect HOST:PORT``."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import ssl
import sys
import threading
import time
import traceback
from multiprocessing import AuthenticationError

import numpy as np
from threadpoolctl import threadpool_limits

from .._state import RBMState
from ._backend import data_from_arrays, data_slice, load_job, worker_threads
from ._transport import (
    Channel,
    HandshakeError,
    Listener,
    PeerError,
    SocketMesh,
    check_authkey,
    connect,
    connect_mesh,
    split_address,
)
from ._worker import Trainer

# The handshake with the coordinator and the mesh set-up wait this long
# until the coordinator has sent its timeout.
_CONNECT_TIMEOUT = 60.0


def _watch_parent(pid):
    # A local worker whose coordinator died must not linger as an orphan.
    while True:
        if os.getppid() != pid:
            os._exit(3)
        time.sleep(0.5)


def _run_job(conn, mesh, job):
    arrays = [conn.recv_array() for _ in RBMState.WIRE]
    X = None
    if job["memmap"] is None:
        X = data_from_arrays(job, [conn.recv_array() for _ in range(3 if job.get("sparse") else 1)],
                             mesh.rank, mesh.size)
    rbm, state, X = load_job(job, arrays, X)
    X = data_slice(job, X, mesh.rank, mesh.size)
    trainer = Trainer(mesh, rbm, state, X, job["strategy"], job["sync_every"],
                      worker_threads(job["n_jobs"]))
    sent = mesh.bytes_sent
    with threadpool_limits(limits=1, user_api="blas"):
        trainer.run_epochs(job["n_epochs"],
                           report=lambda epoch, error, rows: conn.send(
                               ["epoch", int(epoch), float(error), int(rows)]))
    state = trainer.blocks()
    finite = all(bool(np.isfinite(np.sum(a, dtype=np.float64))) for a in state)
    conn.send(["result", int(mesh.bytes_sent - sent), int(trainer.n_steps), finite])
    if finite:
        for array in state:
            conn.send_array(array)


def worker(address, authkey, parent=None, tls=None):
    """Join the coordinator at ``address`` and run its fits until told to stop.

    ``tls`` is None or ``(client context, server context)``: the first
    checks the coordinator and the peers, the second serves the peers.
    Returns the process exit status.
    """
    where = "%s:%d" % tuple(address)
    try:
        conn = Channel(connect(address, authkey, _CONNECT_TIMEOUT,
                               tls[0] if tls else None), _CONNECT_TIMEOUT)
    except AuthenticationError:
        print(f"skdbn worker: {where} refused the authkey (SKDBN_AUTHKEY must match the "
              "coordinator's).", file=sys.stderr)
        return 2
    except ssl.SSLError as exc:
        print(f"skdbn worker: TLS with {where} failed: {exc.reason or exc} (the "
              "coordinator's certificate must be signed by --tls-cafile and name the host "
              "of --connect; without ssl_context on the coordinator, drop the --tls "
              "options).", file=sys.stderr)
        return 2
    except HandshakeError as exc:
        hint = "" if tls else " (if the coordinator uses TLS, pass the --tls options)"
        print(f"skdbn worker: {where} is not a matching skdbn coordinator: {exc}{hint}.",
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"skdbn worker: cannot connect to {where}: {exc}", file=sys.stderr)
        return 2
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # Peers reach this worker on the interface it reached the coordinator by.
    host = conn.sock.getsockname()[0]
    listener = Listener((host, 0), backlog=64)
    mesh = None
    try:
        conn.send(["hello", [host, listener.address[1]]])
        _, rank, size, addresses, timeout = conn.recv()
        conn.timeout = float(timeout)
        mesh = SocketMesh(rank, size, connect_mesh(rank, size, addresses, listener, authkey,
                                                   timeout, tls), timeout)
        # The mesh is complete: nobody else may connect.
        listener.close()
        conn.send(["ready"])
        while True:
            # Between fits the coordinator may stay silent for any time. Wake
            # every second: a Ctrl-C that the kernel delivered to another
            # thread (OpenMP's) only raises once this thread runs Python.
            while not conn.readable(1.0):
                pass
            message = conn.recv()
            if message[0] == "stop":
                return 0
            if message[0] != "job":
                raise PeerError(f"unexpected message {message[0]!r}")
            _run_job(conn, mesh, message[1])
    except (EOFError, ConnectionError):
        # The coordinator closed the connection: it stopped or failed.
        return 1
    except KeyboardInterrupt:
        print("skdbn worker: interrupted.", file=sys.stderr)
        return 130
    except Exception:
        try:
            conn.timeout = min(conn.timeout, 5.0)
            conn.send(["error", traceback.format_exc()])
        except OSError:
            pass
        return 1
    finally:
        if mesh is not None:
            mesh.close()
        listener.close()
        conn.close()


def _tls_contexts(parser, args):
    """(client, server) SSL contexts from the --tls options, or None."""
    given = [args.tls_cafile, args.tls_certfile, args.tls_keyfile]
    if not any(given):
        return None
    if not all(given):
        parser.error("TLS needs all of --tls-cafile, --tls-certfile and --tls-keyfile")
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.tls_cafile)
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(args.tls_certfile, args.tls_keyfile)
    except (OSError, ssl.SSLError) as exc:
        parser.error(f"cannot load the TLS files: {exc}")
    return client, server


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m skdbn.distributed",
        description="Run a DistributedFit worker that joins a coordinator. The "
                    "shared authkey is read, in hex, from the SKDBN_AUTHKEY "
                    "environment variable.")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="join a coordinator and train with it")
    w.add_argument("--connect", required=True, metavar="HOST:PORT",
                   help="address the coordinator listens on")
    w.add_argument("--tls-cafile", metavar="PEM",
                   help="certificate(s) that sign the coordinator's and the workers' "
                        "certificates (TLS mode)")
    w.add_argument("--tls-certfile", metavar="PEM",
                   help="this worker's certificate, presented to its peers (TLS mode)")
    w.add_argument("--tls-keyfile", metavar="PEM", help="its private key (TLS mode)")
    w.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        address = split_address(args.connect)
    except ValueError as exc:
        parser.error(f"--connect: {exc}")
    if address[1] == 0:
        parser.error("--connect: the port must be the coordinator's, not 0")
    key = os.environ.get("SKDBN_AUTHKEY")
    if not key:
        parser.error("set SKDBN_AUTHKEY to the coordinator's authkey (hex)")
    try:
        key = bytes.fromhex(key)
    except ValueError:
        parser.error("SKDBN_AUTHKEY must be the authkey in hexadecimal "
                     "(e.g. from secrets.token_hex(32))")
    try:
        key = check_authkey(key, "SKDBN_AUTHKEY")
    except ValueError as exc:
        parser.error(str(exc))
    tls = _tls_contexts(parser, args)
    try:
        return worker(address, key, args.parent, tls)
    except KeyboardInterrupt:
        print("skdbn worker: interrupted.", file=sys.stderr)
        return 130
