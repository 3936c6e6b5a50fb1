"""CARLA's streaming side: tokens, subscriptions, framed messages.

Token (24 bytes): ``u32 stream_id, u16 port, u8 protocol (1=TCP), u8 address type
(1=IPv4)``, 16 address bytes. A subscriber connects to the port and sends the u32
stream id; the server then writes ``u32 size`` + payload, little-endian.

No subscriber is waited on by the tick beyond a small budget (:data:`SEND_BUDGET_S`): a message
a subscriber cannot take at once is finished by a flusher thread of its own, and while it is
being finished that subscriber skips the next messages (whole messages only, so its framing
stays intact); one that takes nothing for :data:`STALL_CLOSE_S` is disconnected. A message no
byte of which went out is skipped, not queued. Each subscriber has a reader thread that notices
when its client goes (and drops it); a stream id that no sensor has is refused at once.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from typing import Dict, Iterable, List, Optional, Set

from carla_agent.server.listener import Listener, close_socket

log = logging.getLogger(__name__)

#: Kernel send buffer asked for each subscriber socket, bytes (capped by net.core.wmem_max).
SEND_BUFFER_BYTES = 4 << 20
#: How long one message may wait for one subscriber to take it, seconds (the tick's budget per
#: subscriber; a healthy reader takes an 800x600 frame at once, into the socket buffers).
SEND_BUDGET_S = 0.05
#: A subscriber that takes no byte for this long is disconnected, seconds.
STALL_CLOSE_S = 10.0
#: A new subscriber must send its stream id within this long, seconds.
HANDSHAKE_TIMEOUT_S = 5.0
#: Subscriber connections at most (each holds a socket and a thread); more are refused.
MAX_SUBSCRIBERS = 256
SENSOR_HEADER = struct.Struct("<QQd6f")  # type, frame, timestamp, x y z pitch yaw roll


def sensor_header(sensor_type: int, frame: int, timestamp: float, transform=(0, 0, 0, 0, 0, 0)) -> bytes:
    return SENSOR_HEADER.pack(sensor_type, frame, timestamp, *transform)


class Subscriber:
    """One subscriber connection to one stream; all sends and its state under ``lock``."""

    def __init__(self, sock: socket.socket, stream_id: int) -> None:
        self.sock, self.stream_id = sock, stream_id
        self.lock = threading.Lock()
        self.pending: List[memoryview] = []  # the rest of a message begun but not finished (copies)
        self.last_progress = time.monotonic()
        self.skipped = 0  # messages skipped while it was slow
        self.stuck = False  # the last message could not begin: try the next without waiting
        self.closed = False
        self._flusher: Optional[threading.Thread] = None

    def offer(self, buffers: list) -> bool:
        """Send one message if it can go now (within :data:`SEND_BUDGET_S`); False: it is gone."""
        if not self.lock.acquire(timeout=SEND_BUDGET_S):
            self.skipped += 1
            return True
        try:
            if self.closed:
                return False
            now = time.monotonic()
            if self.pending:  # still finishing an earlier message: skip this one
                if now - self.last_progress > STALL_CLOSE_S:
                    self._close(f"took nothing for {now - self.last_progress:.0f} s")
                    return False
                self.skipped += 1
                return True
            views = [memoryview(b).cast("B") for b in buffers if len(b)]
            total = sum(len(v) for v in views)
            deadline = now + (0.0 if self.stuck else SEND_BUDGET_S)
            tried = False
            try:
                while views:
                    left = deadline - time.monotonic()
                    if tried and left <= 0:
                        break  # the budget is spent (one try is always made)
                    tried = True
                    self.sock.settimeout(max(left, 0.0))
                    try:
                        sent = self.sock.sendmsg(views)
                    except (socket.timeout, BlockingIOError):
                        break
                    _advance(views, sent)
                    self.last_progress = time.monotonic()
            except OSError as e:
                self._close(f"send failed: {e}")
                return False
            self.stuck = bool(views) and sum(len(v) for v in views) == total
            if views:
                if self.stuck:  # not a byte went out: skip it whole
                    self.skipped += 1
                    if now - self.last_progress > STALL_CLOSE_S:
                        self._close(f"took nothing for {now - self.last_progress:.0f} s")
                        return False
                    return True
                self.pending = [memoryview(bytes(v)) for v in views]  # the frame buffer is reused
                self._flusher = threading.Thread(target=self._flush, name=f"carla-stream-flush-{self.stream_id}",
                                                 daemon=True)
                self._flusher.start()
            return True
        finally:
            self.lock.release()

    def _flush(self) -> None:
        """Finish the pending message as the reader takes it, without holding the lock while waiting."""
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLOUT)
        except (OSError, ValueError):
            pass
        while True:
            with self.lock:
                if self.closed or not self.pending:
                    return
                if time.monotonic() - self.last_progress > STALL_CLOSE_S:
                    self._close(f"took nothing for {STALL_CLOSE_S:.0f} s")
                    return
                try:
                    self.sock.settimeout(0.0)
                    sent = self.sock.sendmsg(self.pending)
                except BlockingIOError:
                    sent = 0
                except OSError as e:
                    self._close(f"send failed: {e}")
                    return
                if sent:
                    _advance(self.pending, sent)
                    self.last_progress = time.monotonic()
                if not self.pending:
                    return
            poller.poll(200)  # ms: wakes when it can take more, or to look at the stall again

    def close(self, why: str = "") -> None:
        with self.lock:
            self._close(why)

    def _close(self, why: str) -> None:
        if not self.closed:
            self.closed = True
            self.pending = []
            if why:
                log.warning("stream %d: subscriber dropped (%s; %d messages skipped)", self.stream_id, why,
                            self.skipped)
            close_socket(self.sock)


def _advance(views: List[memoryview], sent: int) -> None:
    """Drop ``sent`` bytes from the front of ``views`` (in place)."""
    while views and sent >= len(views[0]):
        sent -= len(views[0])
        views.pop(0)
    if sent:
        views[0] = views[0][sent:]


class StreamServer:
    def __init__(self, host: str, port: int = 0) -> None:
        self._listener = Listener(host, port, "carla-stream-accept", self._accept)
        self.host, self.port = self._listener.host, self._listener.port
        self._default_host = "127.0.0.1" if host in ("0.0.0.0", "") else self.host
        self._subs: Dict[int, List[Subscriber]] = {}
        self._streams: Set[int] = set()  # the stream ids a client may subscribe to
        self._lock = threading.Lock()
        self._subscribed = threading.Condition(self._lock)
        self._expected: Set[int] = set()
        self._gave_up: Set[int] = set()  # expected once, never subscribed: not waited for again
        self._closed = self._listener.closed
        self._count = 0

    def token(self, stream_id: int, host: Optional[str] = None) -> bytes:
        """The 24-byte token of ``stream_id`` at ``host`` (the address the asking client reached;
        default: the bind address, loopback for a wildcard bind)."""
        addr = socket.inet_aton(host or self._default_host)
        return struct.pack("<IHBB", stream_id, self.port, 1, 1) + addr + bytes(12)

    def start(self) -> None:
        self._listener.start()

    def register(self, stream_id: int) -> None:
        """``stream_id`` exists (the episode, a sensor): clients may subscribe to it."""
        with self._lock:
            self._streams.add(stream_id)

    def unregister(self, stream_id: int) -> None:
        """The stream is gone (its sensor destroyed): its subscribers are disconnected."""
        with self._lock:
            self._streams.discard(stream_id)
            self._expected.discard(stream_id)
            self._gave_up.discard(stream_id)
            subs = self._subs.pop(stream_id, [])
        for sub in subs:
            sub.close()

    def expect(self, stream_id: int) -> None:
        """A client asked for this stream's token: it is about to subscribe."""
        with self._lock:
            if stream_id in self._streams and not self._subs.get(stream_id) and stream_id not in self._gave_up:
                self._expected.add(stream_id)

    def wait_expected(self, stream_ids: Iterable[int], timeout: float = 1.0) -> None:
        """Wait (at most ``timeout`` in all) for the expected subscriptions among ``stream_ids``, so the
        first frame after listen() is not lost. One that does not come is not waited for again
        until it has had a subscriber."""
        ids = set(stream_ids)
        deadline = time.monotonic() + timeout
        with self._lock:
            while ids & self._expected and not self._closed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    late = ids & self._expected
                    log.warning("streams %s: a client asked for the token but did not subscribe within %.1f s",
                                sorted(late), timeout)
                    self._expected -= late
                    self._gave_up |= late
                    break
                self._subscribed.wait(left)

    def has_subscribers(self, stream_id: int) -> bool:
        with self._lock:
            return bool(self._subs.get(stream_id))

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            subs = [s for lst in self._subs.values() for s in lst]
            self._subs.clear()
        for s in subs:
            s.close()
        self._listener.join()

    def _accept(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve_subscriber, args=(conn,), name="carla-stream-sub", daemon=True).start()

    def _serve_subscriber(self, conn: socket.socket) -> None:
        """Read the stream id, subscribe, then read until the client goes (it sends nothing more)."""
        sub = None
        try:
            sub = self._handshake(conn)
            if sub is not None:
                self._watch(sub)
        except Exception:  # noqa: BLE001 - one subscriber must never take others down
            log.exception("stream subscriber failed")
        finally:
            if sub is None:
                close_socket(conn)
            else:
                self._remove(sub)
                sub.close()
                with self._lock:
                    self._count -= 1

    def _handshake(self, conn: socket.socket) -> Optional[Subscriber]:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        buf = b""
        try:
            while len(buf) < 4:
                chunk = conn.recv(4 - len(buf))
                if not chunk:
                    return None
                buf += chunk
        except OSError:
            return None  # timed out or gone
        (sid,) = struct.unpack("<I", buf)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:  # room for a whole 800x600 BGRA frame: one sendmsg, no waiting on the reader
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except OSError:
            pass
        with self._lock:
            if sid not in self._streams:
                log.info("refused a subscription to stream %d: no such stream", sid)
                return None
            if self._count >= MAX_SUBSCRIBERS:
                log.warning("refused a subscription to stream %d: %d subscribers already", sid, self._count)
                return None
            sub = Subscriber(conn, sid)
            self._count += 1
            self._subs.setdefault(sid, []).append(sub)
            self._expected.discard(sid)
            self._gave_up.discard(sid)
            self._subscribed.notify_all()
        log.debug("stream %d subscribed", sid)
        return sub

    def _watch(self, sub: Subscriber) -> None:
        """Until the client closes (or the server does): anything it sends is read and dropped."""
        poller = select.poll()
        poller.register(sub.sock, select.POLLIN)
        while not sub.closed and not self._closed.is_set():
            if not poller.poll(1000):
                continue
            try:
                data = sub.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, socket.timeout):
                continue
            except OSError:
                return
            if not data:
                return

    def _remove(self, sub: Subscriber) -> None:
        with self._lock:
            lst = self._subs.get(sub.stream_id, [])
            if sub in lst:
                lst.remove(sub)

    def publish(self, stream_id: int, *parts) -> None:
        """Send one message (the concatenation of ``parts``, bytes-like) to every subscriber that
        can take it now; a slow one skips it (see the module's docstring)."""
        with self._lock:
            subs = list(self._subs.get(stream_id, ()))
        if not subs:
            return
        size = sum(len(p) for p in parts)
        buffers = [struct.pack("<I", size), *parts]
        for sub in subs:
            if not sub.offer(buffers):
                self._remove(sub)
