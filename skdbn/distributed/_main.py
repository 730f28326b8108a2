"""The worker process: ``python -m skdbn.distributed worker --connect HOST:PORT``."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import sys
import threading
import time
import traceback
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

from threadpoolctl import threadpool_limits

from ._backend import STATE_NAMES, data_slice, load_job
from ._transport import Channel, SocketMesh, connect_mesh
from ._worker import Trainer


def _watch_parent(pid):
    # A local worker whose coordinator died must not linger as an orphan.
    while True:
        if os.getppid() != pid:
            os._exit(3)
        time.sleep(0.5)


def _run_job(conn, mesh, job):
    state = [conn.recv_array() for _ in STATE_NAMES]
    rbm, X = load_job(job, state, None if job["memmap"] else conn.recv_array())
    X = data_slice(job, X, mesh.rank, mesh.size)
    trainer = Trainer(mesh, rbm, X, job["strategy"], job["sync_every"], job["n_threads"])
    sent = mesh.bytes_sent
    with threadpool_limits(limits=1, user_api="blas"):
        trainer.run_epochs(job["n_epochs"],
                           report=lambda *progress: conn.send(("epoch",) + progress))
    conn.send(("result", mesh.bytes_sent - sent, trainer.n_steps))
    for array in trainer.state():
        conn.send_array(array)


def worker(address, authkey, parent=None):
    """Join the coordinator at ``address`` and run its fits until told to stop.

    Returns the process exit status.
    """
    try:
        conn = Channel(Client(address, authkey=authkey))
    except AuthenticationError:
        print(f"skdbn worker: {address[0]}:{address[1]} refused the authkey "
              "(SKDBN_AUTHKEY must match the coordinator's).", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"skdbn worker: cannot connect to {address[0]}:{address[1]}: {exc}",
              file=sys.stderr)
        return 2
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # Peers reach this worker on the interface it reached the coordinator by.
    host = conn.sock.getsockname()[0]
    listener = Listener((host, 0), authkey=authkey, backlog=64)
    mesh = None
    try:
        conn.send(("hello", listener.address))
        _, rank, size, addresses = conn.recv()
        mesh = SocketMesh(rank, size, connect_mesh(rank, size, addresses, listener, authkey,
                                                   timeout=120.0))
        conn.send(("ready",))
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return 0
            _run_job(conn, mesh, message[1])
    except EOFError:
        return 1
    except Exception:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
        return 1
    finally:
        if mesh is not None:
            mesh.close()
        listener.close()


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
    w.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    key = os.environ.get("SKDBN_AUTHKEY")
    if not key:
        parser.error("set SKDBN_AUTHKEY to the coordinator's authkey (hex)")
    host, _, port = args.connect.rpartition(":")
    return worker((host, int(port)), bytes.fromhex(key), args.parent)
