"""A listening TCP socket with its accept thread: the part the RPC and stream servers share."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


def close_socket(sock: socket.socket) -> None:
    """Shut down and close a socket, ignoring one that is already gone (wakes blocked readers)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Listener:
    """Binds ``host:port`` (port 0: a free one) and hands every accepted connection to ``on_accept``.

    ``on_accept(conn)`` runs in the accept thread and must not block: start a
    thread for the connection. After :meth:`close` no connection is accepted;
    the owner closes the connections it keeps, then calls :meth:`join`.
    """

    def __init__(self, host: str, port: int, name: str, on_accept: Callable[[socket.socket], None]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(16)
        except (OSError, OverflowError):  # in use, no such address, a port out of range
            self._sock.close()
            raise
        self.host, self.port = self._sock.getsockname()[:2]
        self.closed = threading.Event()
        self._on_accept = on_accept
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.closed.set()
        close_socket(self._sock)

    def join(self, timeout_s: float = 2.0) -> None:
        if self._thread.is_alive():  # never started (the owner failed before start()): nothing to join
            self._thread.join(timeout=timeout_s)

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self.closed.is_set():
                    return  # closed
                time.sleep(0.05)  # out of file descriptors, say: keep accepting once it passes
                continue
            try:
                self._on_accept(conn)
            except Exception:  # noqa: BLE001 - one connection must not stop the accepting
                log.exception("%s: a new connection could not be served", self._thread.name)
                close_socket(conn)
