"""CARLA's streaming side: tokens, subscriptions, framed messages.

Token (24 bytes): ``u32 stream_id, u16 port, u8 protocol (1=TCP), u8 address type
(1=IPv4)``, 16 address bytes. A subscriber connects to the port and sends the u32
stream id; the server then writes ``u32 size`` + payload, little-endian.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Dict, List

from carla_agent.server.listener import Listener, close_socket

log = logging.getLogger(__name__)

#: Kernel send buffer asked for each subscriber socket, bytes (capped by net.core.wmem_max).
SEND_BUFFER_BYTES = 4 << 20
SENSOR_HEADER = struct.Struct("<QQd6f")  # type, frame, timestamp, x y z pitch yaw roll


def sensor_header(sensor_type: int, frame: int, timestamp: float, transform=(0, 0, 0, 0, 0, 0)) -> bytes:
    return SENSOR_HEADER.pack(sensor_type, frame, timestamp, *transform)


class StreamServer:
    def __init__(self, host: str, port: int = 0) -> None:
        self._listener = Listener(host, port, "carla-stream-accept", self._accept)
        self.host, self.port = self._listener.host, self._listener.port
        addr = socket.inet_aton("127.0.0.1" if host in ("0.0.0.0", "") else host)
        self._addr16 = addr + bytes(12)
        self._subs: Dict[int, List[socket.socket]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Condition(self._lock)
        self._expected: set = set()
        self._closed = self._listener.closed

    def token(self, stream_id: int) -> bytes:
        return struct.pack("<IHBB", stream_id, self.port, 1, 1) + self._addr16

    def start(self) -> None:
        self._listener.start()

    def expect(self, stream_id: int) -> None:
        """A client asked for this stream's token: it is about to subscribe."""
        with self._lock:
            if not self._subs.get(stream_id):
                self._expected.add(stream_id)

    def wait_expected(self, stream_id: int, timeout: float = 1.0) -> None:
        """Wait (bounded) for an expected subscription, so the first frame after listen() is not lost."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while stream_id in self._expected and not self._closed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._expected.discard(stream_id)
                    break
                self._subscribed.wait(left)

    def has_subscribers(self, stream_id: int) -> bool:
        with self._lock:
            return bool(self._subs.get(stream_id))

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            socks = [s for lst in self._subs.values() for s in lst]
            self._subs.clear()
        for s in socks:
            close_socket(s)
        self._listener.join()

    def _accept(self, conn: socket.socket) -> None:
        threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5.0)
            buf = b""
            while len(buf) < 4:
                chunk = conn.recv(4 - len(buf))
                if not chunk:
                    conn.close()
                    return
                buf += chunk
            conn.settimeout(5.0)  # bounded sends: a stuck client is dropped
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:  # room for a whole 800x600 BGRA frame: one sendmsg, no waiting on the reader
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:
                pass
            (sid,) = struct.unpack("<I", buf)
            with self._lock:
                self._subs.setdefault(sid, []).append(conn)
                self._expected.discard(sid)
                self._subscribed.notify_all()
            log.debug("stream %d subscribed", sid)
        except OSError:
            conn.close()

    def publish(self, stream_id: int, *parts) -> None:
        """Send one message (the concatenation of ``parts``, bytes-like) to every subscriber."""
        with self._lock:
            subs = list(self._subs.get(stream_id, ()))
        if not subs:
            return
        size = sum(len(p) for p in parts)
        dead = []
        for s in subs:
            try:
                _send_all(s, [struct.pack("<I", size), *parts])
            except OSError:
                dead.append(s)
        if dead:
            with self._lock:
                lst = self._subs.get(stream_id, [])
                for s in dead:
                    if s in lst:
                        lst.remove(s)
                    try:
                        s.close()
                    except OSError:
                        pass


def _send_all(sock: socket.socket, buffers) -> None:
    """``sendall`` for a list of buffers, without joining them (no copy of big images)."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if sent:
            views[0] = views[0][sent:]
