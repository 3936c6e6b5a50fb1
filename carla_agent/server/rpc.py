"""msgpack-rpc framing as CARLA's rpclib speaks it.

Request ``[0, msgid, method, params]``, notification ``[2, method, params]``,
response ``[1, msgid, nil, result]``. ``params[0]`` is CARLA's metadata array
``[async_flag]``; the real arguments follow. Results are ``carla::rpc::Response<T>``:
``[[1, value]]`` for a value, ``[[0, [message]]]`` for an error, ``[[false]]`` for void.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any, Callable, Dict, Optional

import msgpack

from carla_agent.server.listener import Listener, close_socket

log = logging.getLogger(__name__)

REQUEST, RESPONSE, NOTIFY = 0, 1, 2


class Void:
    """Marker for a void result."""


VOID = Void()


class Raw:
    """A result sent as is, not wrapped in ``Response<T>`` (CARLA's ``apply_batch`` returns a bare vector)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def ok(value: Any) -> list:
    if isinstance(value, Void):
        return [False]
    return [1, value]


def error(message: str) -> list:
    return [0, [message]]


class RpcError(Exception):
    """Raised by a handler: becomes a CARLA-style error result."""


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


#: The largest message a client may send, bytes: CARLA's calls are a few kB; a longer one (or a
#: length prefix promising more) closes that connection.
MAX_MESSAGE_BYTES = 8 << 20
#: A client that does not read its replies for this long is disconnected, seconds.
REPLY_SEND_TIMEOUT_S = 30


class RpcServer:
    """Threaded msgpack-rpc server. ``dispatch(method, args) -> result`` (raw, un-wrapped)."""

    def __init__(self, host: str, port: int, dispatch: Callable[[str, list], Any],
                 on_disconnect: Optional[Callable[[int], None]] = None) -> None:
        self._dispatch = dispatch
        self._on_disconnect = on_disconnect
        self._listener = Listener(host, port, "carla-rpc-accept", self._accept)
        self.host, self.port = self._listener.host, self._listener.port
        self._closed = self._listener.closed
        self._conns: Dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._next_conn = 1

    def start(self) -> None:
        self._listener.start()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            close_socket(c)
        self._listener.join()

    def local_host(self, cid: int) -> Optional[str]:
        """The address connection ``cid`` reached (this end's IP), or None if it is gone."""
        with self._lock:
            conn = self._conns.get(cid)
        try:
            return conn.getsockname()[0] if conn is not None else None
        except OSError:
            return None

    def _accept(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Replies are sent from the connection's own thread: a client that never reads them stalls
        # only that thread, and only this long (the socket stays blocking for recv: clients idle).
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", REPLY_SEND_TIMEOUT_S, 0))
        with self._lock:
            cid = self._next_conn
            self._next_conn += 1
            self._conns[cid] = conn
        threading.Thread(target=self._serve_conn, args=(cid, conn), name=f"carla-rpc-{cid}", daemon=True).start()

    def _serve_conn(self, cid: int, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=MAX_MESSAGE_BYTES)
        send_lock = threading.Lock()
        try:
            while not self._closed.is_set():
                data = conn.recv(1 << 16)
                if not data:
                    break
                unpacker.feed(data)
                for msg in unpacker:
                    reply = self._handle(cid, msg)
                    if reply is not None:
                        with send_lock:
                            conn.sendall(reply)
        except (OSError, ValueError, msgpack.UnpackException) as e:  # gone, garbage, too long
            log.info("rpc connection %d closed: %s", cid, e)
        except Exception:  # noqa: BLE001 - whatever one client sends ends at most its own connection
            log.exception("rpc connection %d closed", cid)
        finally:
            with self._lock:
                self._conns.pop(cid, None)
            try:
                conn.close()
            except OSError:
                pass
            if self._on_disconnect is not None:
                try:
                    self._on_disconnect(cid)
                except Exception:  # noqa: BLE001
                    log.exception("disconnect handler failed")

    def _handle(self, cid: int, msg: Any) -> Optional[bytes]:
        if not isinstance(msg, (list, tuple)) or not msg:
            raise ValueError(f"malformed message {msg!r:.80}")
        kind = msg[0]
        if kind == REQUEST and len(msg) == 4:
            _, msgid, method, params = msg
        elif kind == NOTIFY and len(msg) == 3:
            msgid = None
            _, method, params = msg
        else:
            raise ValueError(f"malformed message {msg!r:.80}")
        if not isinstance(params, (list, tuple)):
            params = [params]
        args = list(params[1:]) if params and isinstance(params[0], (list, tuple)) else list(params)
        method = method if isinstance(method, str) else repr(method)[:80]
        try:
            value = self._dispatch(method, args, cid)
            if isinstance(value, Raw):
                return None if msgid is None else pack([RESPONSE, msgid, None, value.value])
            result = ok(value)
        except RpcError as e:
            log.info("call %s refused: %s", method, e)
            result = error(str(e))
        except Exception as e:  # noqa: BLE001 - a bad call must never kill the server
            log.warning("call %s failed: %s: %s", method, type(e).__name__, e, exc_info=log.isEnabledFor(logging.DEBUG))
            result = error(f"{method}: {type(e).__name__}: {e}")
        if msgid is None:
            return None
        return pack([RESPONSE, msgid, None, [result]])
