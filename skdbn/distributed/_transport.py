"""Transport of skdbn.distributed: authenticated TCP links, optionally TLS.

Every connection starts with a mutual HMAC-SHA256 challenge on the shared
authkey; then

* the coordinator-worker **control channel** carries frames with a fixed,
  versioned header (``FRAME``: magic ``b"SKDB"``, protocol version, kind,
  payload size): a JSON message, or the raw bytes of an array announced by
  the JSON message before it (dtype limited to booleans, integers and
  floats). Nothing received is ever unpickled or evaluated;
* the worker **mesh** carries the two collectives of model-parallel CD:
  ``allgather`` (every worker's column block of the activities to every
  other worker) and ``exchange`` (a distinct block to each peer: the
  reduce-scatter of the partitioned strategy), as raw buffers behind a
  12-byte header (``HEADER``: tag, size).

Every accept, handshake, send and receive has a deadline: reads and writes
give up after ``timeout`` seconds without progress, a handshake after
``timeout`` seconds in all.
"""

# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import hmac
import json
import logging
import queue
import secrets
import selectors
import socket
import ssl
import struct
import threading
import time
from multiprocessing import AuthenticationError

import numpy as np

logger = logging.getLogger("skdbn.distributed")

PROTOCOL_VERSION = 1
MIN_AUTHKEY_BYTES = 16

# Control frames: magic, protocol version, kind, payload size in bytes.
FRAME = struct.Struct("!4sBB2xQ")
MAGIC = b"SKDB"
KIND_JSON, KIND_ARRAY = 1, 2
MAX_JSON_BYTES = 1 << 20
# Arrays travel as numbers only: no object or structured dtypes.
_ARRAY_KINDS = "biuf"
# A large send goes out in chunks, each with its own deadline, so the
# timeout bounds a stall, not the transfer of a large array on a slow link.
_CHUNK = 1 << 22

# Mesh frames: message tag and payload size in bytes.
HEADER = struct.Struct("!IQ")

# Handshake: greeting (name and version), then 32-byte nonces and MACs.
_GREETING = b"SKDBNHS" + bytes([PROTOCOL_VERSION])
_NONCE = 32


class PeerError(RuntimeError):
    """A peer closed its connection or sent something unexpected."""


class HandshakeError(ConnectionError):
    """A connection that did not complete the skdbn handshake."""


def check_authkey(key, name="authkey"):
    """``key`` as bytes, refusing a non-bytes, empty or short key."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(
            f"{name} must be bytes, e.g. secrets.token_bytes(32) or "
            f"bytes.fromhex(...), got {type(key).__name__}.")
    if len(key) < MIN_AUTHKEY_BYTES:
        raise ValueError(
            f"{name} must be at least {MIN_AUTHKEY_BYTES} random bytes, got {len(key)}; "
            "draw one with secrets.token_bytes(32) (hex: secrets.token_hex(32)).")
    return bytes(key)


# -- deadlines -----------------------------------------------------------------
def _left(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def recv_exact(sock, view, deadline=None):
    """Fill ``view`` (a writable byte memoryview) from ``sock``.

    Each read waits at most the socket's timeout, and all of them end by
    ``deadline`` (a ``time.monotonic()`` value) if one is given.
    """
    got = 0
    while got < len(view):
        if deadline is not None:
            sock.settimeout(_left(deadline))
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("connection closed")
        got += n


def send_all(sock, data, deadline=None):
    """Send ``data``, each chunk within the socket's timeout (and by
    ``deadline`` if given)."""
    view = memoryview(data).cast("B")
    while len(view):
        if deadline is not None:
            sock.settimeout(_left(deadline))
        n = sock.send(view[:_CHUNK])
        view = view[n:]


def readable(sock, timeout):
    """Whether ``sock`` has data (or an end of stream) within ``timeout`` s."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))


# -- handshake -------------------------------------------------------------------
def _mac(key, role, first, second):
    return hmac.new(key, role + first + second, hashlib.sha256).digest()


def _check_greeting(data):
    if data[:7] != _GREETING[:7]:
        raise HandshakeError("the peer does not speak the skdbn protocol")
    if data[7] != PROTOCOL_VERSION:
        raise HandshakeError(
            f"the peer speaks skdbn protocol version {data[7]}, this process version "
            f"{PROTOCOL_VERSION}: install the same skdbn version on every host")


def _recv_bytes(sock, n, deadline):
    buf = bytearray(n)
    recv_exact(sock, memoryview(buf), deadline)
    return bytes(buf)


# The connecting side speaks first, so that a client and a server that
# disagree about TLS fail at once instead of both waiting for a deadline:
#   client -> server: greeting, client nonce
#   server -> client: greeting, server nonce, MAC("server", both nonces)
#   client -> server: MAC("client", both nonces)
#   server -> client: one byte of acceptance (or it closes the connection)
# The role in each MAC keeps a reply from being reflected to its sender.
def server_handshake(sock, key, deadline):
    """Accepting side of the mutual challenge; raises on any failure."""
    hello = _recv_bytes(sock, len(_GREETING) + _NONCE, deadline)
    _check_greeting(hello)
    peer_nonce, nonce = hello[8:], secrets.token_bytes(_NONCE)
    send_all(sock, _GREETING + nonce + _mac(key, b"server", peer_nonce, nonce), deadline)
    mac = _recv_bytes(sock, _NONCE, deadline)
    if not hmac.compare_digest(mac, _mac(key, b"client", nonce, peer_nonce)):
        raise AuthenticationError("wrong authkey")
    send_all(sock, b"\x01", deadline)


def client_handshake(sock, key, deadline):
    """Connecting side of the mutual challenge; raises on any failure."""
    nonce = secrets.token_bytes(_NONCE)
    send_all(sock, _GREETING + nonce, deadline)
    try:
        reply = _recv_bytes(sock, len(_GREETING) + 2 * _NONCE, deadline)
    except (EOFError, ConnectionResetError):
        raise HandshakeError("the peer closed the connection during the handshake") from None
    _check_greeting(reply)
    peer_nonce, proof = reply[8:8 + _NONCE], reply[8 + _NONCE:]
    send_all(sock, _mac(key, b"client", peer_nonce, nonce), deadline)
    if not hmac.compare_digest(proof, _mac(key, b"server", nonce, peer_nonce)):
        raise AuthenticationError("the peer does not know the authkey")
    try:
        _recv_bytes(sock, 1, deadline)
    except (EOFError, ConnectionResetError):
        raise AuthenticationError("the peer refused the authkey") from None


def _tune(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(address, key, timeout, ssl_context=None):
    """An authenticated socket to ``address`` (``(host, port)``), or raise."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection(tuple(address), timeout=timeout)
    try:
        _tune(sock)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=address[0])
        client_handshake(sock, key, deadline)
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def split_address(text):
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6) as ``(host, port)``."""
    host, sep, port = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. 192.0.2.1:7787), got {text!r}")
    return host, int(port)


class Listener:
    """A listening TCP socket whose ``accept`` has a timeout."""

    def __init__(self, address, backlog):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.create_server(tuple(address), family=family, backlog=backlog)
        self.address = self.sock.getsockname()[:2]

    def accept(self, timeout):
        """``(socket, address)``, or None if nobody connected within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.accept()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


class Gate:
    """Authenticates the connections of a listener, each on its own thread.

    A silent, slow or hostile client holds only its own thread, for at most
    ``timeout`` seconds, and is then dropped with a warning on the
    ``skdbn.distributed`` logger; the peers that complete the handshake and
    pass ``greet`` are returned by :meth:`next`.

    Parameters
    ----------
    listener : Listener
    key : bytes
        The authkey.
    timeout : float
        Seconds a connection has to complete the handshake and ``greet``.
    greet : callable, default=None
        ``greet(channel)`` after the handshake returns what :meth:`next`
        reports with the channel; raising drops the connection.
    admit : callable, default=None
        ``admit(host)`` before the handshake returns None or why ``host`` is
        refused.
    ssl_context : ssl.SSLContext, default=None
        Server-side TLS context wrapping every accepted connection.
    max_pending : int, default=32
        Handshakes in flight; connections beyond are dropped at once.
    """

    def __init__(self, listener, key, timeout, greet=None, admit=None, ssl_context=None,
                 max_pending=32):
        self.listener, self.key, self.timeout = listener, key, timeout
        self.greet, self.admit, self.ssl_context = greet, admit, ssl_context
        self.max_pending = max_pending
        self._done = queue.Queue()
        self._pending = set()
        self._lock = threading.Lock()
        self._closed = False

    def _drop(self, sock, address, reason):
        logger.warning("skdbn.distributed: dropped a connection from %s: %s",
                       _format(address), reason)
        _close(sock)

    def _handshake(self, sock, address):
        deadline = time.monotonic() + self.timeout
        raw = sock
        try:
            _tune(sock)
            sock.settimeout(self.timeout)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
                with self._lock:
                    self._pending.add(sock)
                sock.settimeout(_left(deadline))
                sock.do_handshake()
            server_handshake(sock, self.key, deadline)
            channel = Channel(sock, self.timeout)
            value = self.greet(channel) if self.greet is not None else None
            sock.settimeout(self.timeout)
        except socket.timeout:
            self._done.put((None, address, f"no handshake within {self.timeout} s"))
        except EOFError:
            self._done.put((None, address, "closed during the handshake"))
        except AuthenticationError:
            self._done.put((None, address, "wrong authkey"))
        except Exception as exc:  # anything a hostile peer can provoke
            self._done.put((None, address, f"{type(exc).__name__}: {exc}" if str(exc)
                            else type(exc).__name__))
        else:
            with self._lock:
                self._pending.discard(raw)
                self._pending.discard(sock)
                if not self._closed:
                    self._done.put(((channel, value), address, None))
                    return
        finally:
            with self._lock:
                self._pending.discard(raw)
                self._pending.discard(sock)
        _close(sock)

    def next(self, deadline, check=None, what="a peer"):
        """``(channel, greet's value, address)`` of the next peer that joins.

        ``check()`` runs every 0.2 s at most (e.g. to notice dead local
        workers). Raises ``TimeoutError`` at ``deadline``.
        """
        while True:
            try:
                item, address, reason = self._done.get_nowait()
            except queue.Empty:
                pass
            else:
                if item is not None:
                    return (*item, address)
                logger.warning("skdbn.distributed: dropped a connection from %s: %s",
                               _format(address), reason)
                continue
            if check is not None:
                check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} joined in time")
            accepted = self.listener.accept(min(left, 0.2))
            if accepted is None:
                continue
            sock, address = accepted
            refusal = self.admit(address[0]) if self.admit is not None else None
            if refusal is None and len(self._pending) >= self.max_pending:
                refusal = f"more than {self.max_pending} handshakes in flight"
            if refusal is not None:
                self._drop(sock, address, refusal)
                continue
            with self._lock:
                self._pending.add(sock)
            threading.Thread(target=self._handshake, args=(sock, address),
                             daemon=True).start()

    def close(self):
        """Abort the handshakes in flight and close what they would return."""
        with self._lock:
            self._closed = True
            pending, self._pending = list(self._pending), set()
        for sock in pending:
            _close(sock)
        while True:
            try:
                item, _, _ = self._done.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].close()


def _format(address):
    return "%s:%s" % tuple(address[:2]) if isinstance(address, tuple) else str(address)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Channel:
    """A coordinator-worker link: JSON messages and raw arrays in frames
    with a fixed header (see the module docstring).

    Parameters
    ----------
    sock : socket.socket or ssl.SSLSocket
        An authenticated connection.
    timeout : float
        Seconds any read or write may go without progress.
    """

    def __init__(self, sock, timeout):
        self.sock, self.timeout = sock, timeout
        sock.settimeout(timeout)

    def _send_frame(self, kind, payload):
        header = FRAME.pack(MAGIC, PROTOCOL_VERSION, kind, payload.nbytes)
        self.sock.settimeout(self.timeout)
        if payload.nbytes <= 65536:
            # One segment for small frames (TCP_NODELAY is on).
            send_all(self.sock, header + bytes(payload))
        else:
            send_all(self.sock, header)
            send_all(self.sock, payload)

    def _recv_header(self):
        raw = bytearray(FRAME.size)
        self.sock.settimeout(self.timeout)
        recv_exact(self.sock, memoryview(raw))
        magic, version, kind, size = FRAME.unpack(raw)
        if magic != MAGIC:
            raise PeerError("received something that is not an skdbn frame")
        if version != PROTOCOL_VERSION:
            raise PeerError(f"received a frame of protocol version {version}, expected "
                            f"{PROTOCOL_VERSION}: install the same skdbn version everywhere")
        return kind, size

    def send(self, message):
        """Send a JSON-serialisable list whose first item names the message."""
        self._send_frame(KIND_JSON, memoryview(json.dumps(message).encode()))

    def recv(self):
        """The next message: a non-empty list starting with a string."""
        kind, size = self._recv_header()
        if kind != KIND_JSON:
            raise PeerError(f"expected a message frame, got frame kind {kind}")
        if size > MAX_JSON_BYTES:
            raise PeerError(f"a message of {size} bytes exceeds the limit of "
                            f"{MAX_JSON_BYTES}")
        buf = bytearray(size)
        recv_exact(self.sock, memoryview(buf))
        try:
            message = json.loads(buf.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError too
            raise PeerError(f"malformed message: {exc}") from None
        if not (isinstance(message, list) and message and isinstance(message[0], str)):
            raise PeerError("malformed message: not a named list")
        return message

    def readable(self, timeout):
        return readable(self.sock, timeout)

    def send_array(self, a):
        a = np.ascontiguousarray(a)
        if a.dtype.kind not in _ARRAY_KINDS or a.dtype.fields is not None:
            raise TypeError(f"cannot send an array of dtype {a.dtype}")
        zero = bool(a.size) and not a.any()
        # An all-zero array (a fresh increment, say) travels as a flag only.
        self.send(["array", a.dtype.str, list(a.shape), zero])
        if a.size and not zero:
            self._send_frame(KIND_ARRAY, memoryview(a.reshape(-1)).cast("B"))

    def recv_array(self, shape=None, dtype=None):
        """The next array; ``shape`` and ``dtype``, if given, are required."""
        message = self.recv()
        if len(message) != 4 or message[0] != "array":
            raise PeerError(f"expected an array, got message {message[0]!r}")
        _, dtype_str, got_shape, zero = message
        try:
            got_dtype = np.dtype(str(dtype_str))
        except TypeError:
            raise PeerError(f"unknown dtype {dtype_str!r}") from None
        if got_dtype.kind not in _ARRAY_KINDS or got_dtype.fields is not None \
                or got_dtype.subdtype is not None:
            raise PeerError(f"refused an array of dtype {got_dtype}")
        if not (isinstance(got_shape, list) and len(got_shape) <= 32 and all(
                type(n) is int and n >= 0 for n in got_shape)):
            raise PeerError(f"malformed array shape {got_shape!r}")
        got_shape = tuple(got_shape)
        if shape is not None and got_shape != tuple(shape):
            raise PeerError(f"expected an array of shape {tuple(shape)}, got {got_shape}")
        if dtype is not None and got_dtype != np.dtype(dtype):
            raise PeerError(f"expected an array of dtype {np.dtype(dtype)}, got {got_dtype}")
        if zero is True:
            return np.zeros(got_shape, got_dtype)
        out = np.empty(got_shape, got_dtype)
        if out.size:
            kind, size = self._recv_header()
            if kind != KIND_ARRAY or size != out.nbytes:
                raise PeerError(f"expected {out.nbytes} bytes of array data, got a frame "
                                f"of kind {kind} and {size} bytes")
            recv_exact(self.sock, memoryview(out.reshape(-1)).cast("B"))
        return out

    def close(self):
        _close(self.sock)


def connect_mesh(rank, size, addresses, listener, key, timeout, ssl_contexts=None):
    """Authenticated sockets to every other worker: ``{peer: (out, in)}``.

    Without TLS one connection per pair carries both directions (each worker
    connects to the lower ranks and accepts the higher ones). With TLS,
    ``ssl_contexts = (client, server)`` and each direction has its own
    connection, so that no TLS session is read and written by two threads
    at once.
    """
    tls = ssl_contexts is not None
    outgoing = [p for p in range(size) if p != rank] if tls else list(range(rank))
    incoming = {p for p in range(size) if p != rank} if tls else set(range(rank + 1, size))
    accepted, failure = {}, []

    def greet(channel):
        message = channel.recv()
        peer = message[1] if len(message) == 2 and message[0] == "rank" else None
        if type(peer) is not int or peer not in incoming:
            raise PeerError(f"not a worker of this mesh: {message!r}")
        return peer

    def accept_all():
        gate = Gate(listener, key, timeout, greet=greet,
                    ssl_context=ssl_contexts[1] if tls else None)
        deadline = time.monotonic() + timeout
        try:
            while len(accepted) < len(incoming):
                channel, peer, _ = gate.next(deadline, what="peer worker")
                if peer in accepted:
                    channel.close()
                    continue
                accepted[peer] = channel.sock
        except Exception as exc:
            failure.append(exc)
        finally:
            gate.close()

    thread = threading.Thread(target=accept_all, daemon=True)
    thread.start()
    connected = {}
    try:
        for peer in outgoing:
            sock = connect(addresses[peer], key, timeout, ssl_contexts[0] if tls else None)
            Channel(sock, timeout).send(["rank", rank])
            connected[peer] = sock
    finally:
        thread.join()
    if failure:
        for sock in list(connected.values()) + list(accepted.values()):
            _close(sock)
        if isinstance(failure[0], TimeoutError):
            raise PeerError(f"worker {rank}: the peer workers did not all connect within "
                            f"{timeout} s") from None
        raise failure[0]
    socks = {}
    for peer in range(size):
        if peer != rank:
            out = connected.get(peer, accepted.get(peer))
            socks[peer] = (out, accepted[peer] if tls else out)
    for pair in socks.values():
        for sock in pair:
            sock.settimeout(None)
    return socks


class SocketMesh:
    """Collectives over a full mesh of TCP sockets (report §4.3).

    One writer thread per peer sends what the worker queued for it, so the
    worker computes on while its results go out; one reader thread per peer
    receives each message as soon as it arrives, into a buffer recycled from
    a pool, so a sender never waits for a busy receiver. A collective waits
    at most ``timeout`` seconds for a peer.

    Parameters
    ----------
    rank, size : int
        This worker's index and the number of workers.
    socks : dict of int to (socket, socket)
        Per peer, the connection to send on and the one to receive on (the
        same one, or two with TLS; see :func:`connect_mesh`).
    timeout : float, default=None
        Seconds a collective waits for a peer; None waits forever.
    """

    def __init__(self, rank, size, socks, timeout=None):
        self.rank, self.size = rank, size
        self.timeout = timeout
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
        for peer, (out, inp) in socks.items():
            for target, sock in ((self._writer, out), (self._reader, inp)):
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
        except (OSError, EOFError, ValueError, MemoryError):
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
        try:
            item = self._inbox[peer].get(timeout=self.timeout)
        except queue.Empty:
            raise PeerError(f"worker {peer} sent nothing for {self.timeout} s "
                            "(it is stopped or hung)") from None
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
            if not self._sent.acquire(timeout=self.timeout):
                raise PeerError(f"a peer accepted nothing for {self.timeout} s "
                                "(it is stopped or hung)")
        if self._failure is not None:
            raise self._failure
        return received

    def allgather(self, payload, tag):
        """Send ``payload`` to every peer; return ``{peer: bytes received}``."""
        return self.exchange({p: payload for p in self._socks}, tag)

    def close(self):
        for peer in self._socks:
            self._outbox[peer].put(None)
        for sock in {s for pair in self._socks.values() for s in pair}:
            _close(sock)
