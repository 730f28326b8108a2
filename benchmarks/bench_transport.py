"""Bandwidth of the transports of DistributedFit between two local processes.

For payloads of 1 to 64 MB, the time of a two-process all-gather (each side
sends the payload and receives the other's) through
  * skdbn's socket mesh (skdbn's HMAC handshake, then ``sendall`` /
    ``recv_into`` on the raw socket, one writer and one reader thread per
    peer),
  * ``multiprocessing.connection.Connection.send_bytes`` /
    ``recv_bytes_into`` alone (what the mesh avoids on the data path),
  * MPI ``Allgatherv`` over TCP (mpich's ofi/tcp provider on loopback,
    ``MPIR_CVAR_NOLOCAL=1``), when mpiexec is installed (``skdbn[mpi]``),
printed as MB/s per direction (1 MB = 1e6 bytes), best of ``--repeats``.

Usage: ``python benchmarks/bench_transport.py [--repeats 5]``.
"""

import argparse
import multiprocessing as mp
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Client, Listener

import numpy as np

from skdbn.distributed import _transport
from skdbn.distributed._transport import SocketMesh

SIZES_MB = (1, 4, 16, 64)

MPI_SCRIPT = """
import sys, time
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
for mb in map(int, sys.argv[2:]):
    n = mb * 10**6
    send = np.ones(n, np.uint8)
    recv = np.empty(2 * n, np.uint8)
    best = 1e9
    for _ in range(int(sys.argv[1])):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allgatherv(send, [recv, [n, n], [0, n], MPI.BYTE])
        best = min(best, time.perf_counter() - t0)
    if comm.Get_rank() == 0:
        print(mb, best, flush=True)
"""


def _peer(address, key, repeats, raw):
    if raw:
        conn = Client(address, authkey=key)
    else:
        conn = _transport.connect(address, key, timeout=60)
    _exchange(conn, 1, repeats, raw)


def _exchange(conn, rank, repeats, raw):
    """Run the all-gathers on one side; returns {MB: best seconds}.

    ``conn``: a ``Connection`` (raw) or an authenticated skdbn socket.
    """
    if not raw:
        conn.settimeout(None)
    mesh = SocketMesh(rank, 2, {1 - rank: (conn, conn)}) if not raw else None
    best = {}
    for mb in SIZES_MB:
        payload = np.ones(mb * 10**6, np.uint8)
        inbox = np.empty_like(payload)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            if raw:
                # Send from a thread: both sides send at once, and a blocked
                # send_bytes would wait for a receive that never starts.
                sender = threading.Thread(target=conn.send_bytes, args=(payload,))
                sender.start()
                conn.recv_bytes_into(inbox)
                sender.join()
            else:
                for peer, buf in mesh.allgather(payload, 1).items():
                    mesh.release(peer, buf)
            times.append(time.perf_counter() - t0)
        best[mb] = min(times)
    if mesh is not None:
        mesh.close()
    return best


def python_transport(repeats, raw):
    key = secrets.token_bytes(16)
    ctx = mp.get_context("spawn")
    if raw:
        with Listener(("127.0.0.1", 0), authkey=key) as listener:
            child = ctx.Process(target=_peer, args=(listener.address, key, repeats, raw))
            child.start()
            conn = listener.accept()
            best = _exchange(conn, 0, repeats, raw)
            child.join()
        return best
    listener = _transport.Listener(("127.0.0.1", 0), backlog=1)
    child = ctx.Process(target=_peer, args=(listener.address, key, repeats, raw))
    child.start()
    gate = _transport.Gate(listener, key, timeout=60)
    channel, _, _ = gate.next(time.monotonic() + 60)
    best = _exchange(channel.sock, 0, repeats, raw)
    child.join()
    gate.close()
    listener.close()
    return best


def mpi_tcp(repeats):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        return None
    env = dict(os.environ, MPIR_CVAR_CH4_NETMOD="ofi", MPIR_CVAR_NOLOCAL="1",
               FI_PROVIDER="tcp", FI_TCP_IFACE="lo")
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(MPI_SCRIPT)
        script.flush()
        out = subprocess.run(
            ["timeout", "300", mpiexec, "-n", "2", sys.executable, script.name,
             str(repeats)] + [str(mb) for mb in SIZES_MB],
            env=env, capture_output=True, text=True, check=True).stdout
    return {int(mb): float(t) for mb, t in (line.split() for line in out.splitlines())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = {"skdbn socket mesh": python_transport(args.repeats, raw=False),
            "Connection.recv_bytes_into": python_transport(args.repeats, raw=True),
            "MPI Allgatherv over TCP": mpi_tcp(args.repeats)}
    print(f"Two-process all-gather on loopback, MB/s per direction, best of {args.repeats}")
    print(f"  {'transport':28s}" + "".join(f"{mb:>8d} MB" for mb in SIZES_MB))
    for name, best in rows.items():
        if best is None:
            print(f"  {name:28s} (mpiexec not installed: pip install 'skdbn[mpi]')")
            continue
        print(f"  {name:28s}" + "".join(f"{mb / best[mb]:11.0f}" for mb in SIZES_MB))


if __name__ == "__main__":
    main()
