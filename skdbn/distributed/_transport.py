"""Transport of skdbn.distributed: an authenticated TCP mesh.

It offers the two collectives of model-parallel CD: ``allgather`` (every
worker's column block of the activities to every other worker) and
``exchange`` (a distinct block to each peer: the reduce-scatter of the
partitioned strategy). Payloads are raw numpy buffers; nothing is pickled on
the data path.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import queue
import socket
import struct
import threading
from multiprocessing.connection import Client

import numpy as np

# Frame header: message tag and payload size in bytes.
HEADER = struct.Struct("!IQ")


class PeerError(RuntimeError):
    """A peer closed its connection or sent something unexpected."""


def to_socket(conn):
    """The TCP socket under an authenticated ``multiprocessing`` connection.

    The handshake (HMAC challenge on the authkey) is done; payloads then go
    through ``sendall``/``recv_into`` on the socket itself, which copies each
    byte once instead of twice as ``Connection.recv_bytes_into`` does.
    """
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    sock.setblocking(True)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock, view):
    """Fill ``view`` (a writable byte memoryview) from ``sock``."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("connection closed")
        got += n


class Channel:
    """A coordinator-worker link: small control messages through an
    authenticated ``multiprocessing`` connection, arrays as raw bytes through
    its socket (one copy, and an all-zero array as a flag only).

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The connection, after its authkey handshake.
    """

    def __init__(self, conn):
        self.conn = conn
        self.sock = socket.socket(fileno=os.dup(conn.fileno()))
        self.sock.setblocking(True)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, message):
        self.conn.send(message)

    def recv(self):
        return self.conn.recv()

    def poll(self, timeout):
        return self.conn.poll(timeout)

    def send_array(self, a):
        a = np.ascontiguousarray(a)
        zero = a.size > 0 and not a.any()
        # The Connection reads exactly its own frames, so raw bytes may follow.
        self.conn.send(("array", a.dtype.str, a.shape, zero))
        if a.size and not zero:
            self.sock.sendall(memoryview(a).cast("B"))

    def recv_array(self):
        kind, dtype, shape, zero = self.conn.recv()
        if kind != "array":
            raise PeerError(f"expected an array, got {kind!r}")
        if zero:
            return np.zeros(shape, np.dtype(dtype))
        out = np.empty(shape, np.dtype(dtype))
        if out.size:
            recv_exact(self.sock, memoryview(out).cast("B"))
        return out

    def close(self):
        self.sock.close()
        self.conn.close()


def accept(listener, timeout):
    """``listener.accept()`` that gives up after ``timeout`` seconds.

    ``multiprocessing.connection.Listener`` has no timeout of its own; its
    listening socket gets one (raising ``socket.timeout``).
    """
    listener._listener._socket.settimeout(timeout)
    return listener.accept()


def connect_mesh(rank, size, addresses, listener, authkey, timeout=60.0):
    """Authenticated sockets to every other worker: ``{peer: socket}``.

    Each worker connects to the lower ranks and accepts the higher ones; a
    peer with another authkey fails the handshake
    (``multiprocessing.AuthenticationError``).
    """
    socks = {}
    for peer in range(rank):
        conn = Client(tuple(addresses[peer]), authkey=authkey)
        conn.send_bytes(struct.pack("!I", rank))
        socks[peer] = to_socket(conn)
    for _ in range(rank + 1, size):
        try:
            conn = accept(listener, timeout)
        except socket.timeout:
            raise PeerError(f"worker {rank}: a peer did not connect within {timeout} s") from None
        (peer,) = struct.unpack("!I", conn.recv_bytes())
        socks[peer] = to_socket(conn)
    return socks


class SocketMesh:
    """Collectives over a full mesh of TCP sockets (report §4.3).

    One writer thread per peer sends what the worker queued for it, so the
    worker computes on while its results go out; one reader thread per peer
    receives each message as soon as it arrives, into a buffer recycled from
    a pool, so a sender never waits for a busy receiver.

    Parameters
    ----------
    rank, size : int
        This worker's index and the number of workers.
    socks : dict of int to socket.socket
        A connected socket per peer (see :func:`connect_mesh`).
    """

    def __init__(self, rank, size, socks):
        self.rank, self.size = rank, size
        self.bytes_sent = 0
        self._socks = socks
        self._outbox = {p: queue.Queue() for p in socks}
        self._inbox = {p: queue.Queue() for p in socks}
        self._pool = {p: {} for p in socks}
        self._pool_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._sent = threading.Semaphore(0)
        self._failure = None
        self._threads = []
        for peer, sock in socks.items():
            for target in (self._writer, self._reader):
                thread = threading.Thread(target=target, args=(peer, sock), daemon=True)
                thread.start()
                self._threads.append(thread)

    # -- threads ---------------------------------------------------------
    def _writer(self, peer, sock):
        while True:
            item = self._outbox[peer].get()
            if item is None:
                return
            tag, payload = item
            try:
                sock.sendall(HEADER.pack(tag, payload.nbytes))
                sock.sendall(payload)
                with self._count_lock:
                    self.bytes_sent += HEADER.size + payload.nbytes
            except OSError as exc:
                self._failure = PeerError(f"sending to worker {peer} failed: {exc}")
                self._inbox[peer].put(None)
            finally:
                self._sent.release()

    def _reader(self, peer, sock):
        header = bytearray(HEADER.size)
        try:
            while True:
                recv_exact(sock, memoryview(header))
                tag, n = HEADER.unpack(header)
                buf = self._take_buffer(peer, n)
                recv_exact(sock, memoryview(buf))
                self._inbox[peer].put((tag, buf))
        except (OSError, EOFError):
            self._inbox[peer].put(None)

    def _take_buffer(self, peer, n):
        with self._pool_lock:
            free = self._pool[peer].get(n)
            if free:
                return free.pop()
        return np.empty(n, dtype=np.uint8)

    def release(self, peer, buf):
        """Return a received buffer to its reader's pool."""
        with self._pool_lock:
            self._pool[peer].setdefault(buf.nbytes, []).append(buf)

    # -- collectives -----------------------------------------------------
    def _receive(self, peer, tag):
        item = self._inbox[peer].get()
        if item is None:
            raise self._failure or PeerError(
                f"worker {peer} closed its connection (it stopped or died)")
        got, buf = item
        if got != tag:
            raise PeerError(f"worker {peer} sent message {got}, expected {tag}")
        return buf

    def exchange(self, outgoing, tag):
        """Send ``outgoing[peer]`` (a byte array) to each peer; return
        ``{peer: bytes received}``. Call :meth:`release` on them when done."""
        for peer, payload in outgoing.items():
            self._outbox[peer].put((tag, payload))
        received = {peer: self._receive(peer, tag) for peer in outgoing}
        for _ in outgoing:
            # The caller may overwrite its payloads once they are sent.
            self._sent.acquire()
        if self._failure is not None:
            raise self._failure
        return received

    def allgather(self, payload, tag):
        """Send ``payload`` to every peer; return ``{peer: bytes received}``."""
        return self.exchange({p: payload for p in self._socks}, tag)

    def close(self):
        for peer, sock in self._socks.items():
            self._outbox[peer].put(None)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
